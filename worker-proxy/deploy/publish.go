package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// mustIgnore are paths git must never see: the built site and the
// proxy's local data (its admin key).
var mustIgnore = []string{"web/dist/index.html", "data/admin.key", "worker-proxy/data/admin.key"}

// publish is step 4: git init and origin if missing, commit what is
// uncommitted, push. Never forced; on a diverged branch it stops.
func (d *deployer) publish(ctx context.Context) error {
	st, o := &d.st, d.o
	g := d.g
	if !st.hasRepo {
		if o.DryRun {
			d.would("git init (branch %s)", st.branch)
			scratch, err := os.MkdirTemp("", "keypool-deploy-dry-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(scratch)
			// A repository outside the checkout, so .gitignore can be read
			// without creating .git here.
			if _, err := g.out(ctx, "init", "-q", "--bare", scratch); err != nil {
				return err
			}
			g.pre = []string{"--git-dir=" + scratch, "--work-tree=" + d.dir}
		} else {
			if _, err := g.out(ctx, "-c", "init.defaultBranch="+st.branch, "init", "-q"); err != nil {
				return err
			}
			if _, err := g.out(ctx, "symbolic-ref", "HEAD", "refs/heads/"+st.branch); err != nil {
				return err
			}
			st.hasRepo, st.current = true, st.branch
			d.did("initialised a git repository (branch %s)", st.branch)
		}
	}
	if st.origin == "" {
		if o.DryRun {
			d.would("git remote add origin %s", redact(st.remote))
		} else {
			if _, err := g.out(ctx, "remote", "add", "origin", st.remote); err != nil {
				return err
			}
			st.origin = st.remote
			d.did("added the remote origin (%s)", redact(st.remote))
		}
	}
	for _, p := range mustIgnore {
		if !g.ok(ctx, "check-ignore", "-q", "--no-index", p) {
			return problemf([]string{"Restore .gitignore (and web/.gitignore) from KeyPool, then run deploy again. Nothing was committed."},
				"%s is not ignored by .gitignore", p)
		}
	}

	files, err := pending(ctx, g, st.hasHead)
	if err != nil {
		return err
	}
	if err := d.scan(files); err != nil {
		return err
	}
	msg := "deploy: publish KeyPool to " + st.repo.String()
	committed := false
	switch {
	case len(files) == 0:
		d.say("nothing to commit")
	case o.DryRun:
		d.would("commit %d changed file(s) as %q (git add -A; .gitignore respected)", len(files), msg)
	default:
		if _, err := g.out(ctx, "add", "-A"); err != nil {
			return err
		}
		if st.hasHead && g.ok(ctx, "diff", "--cached", "--quiet") {
			d.say("nothing to commit")
			break
		}
		if _, err := g.tee(ctx, d.log, "commit", "-q", "-m", msg); err != nil {
			return problemf([]string{"Your changes are staged, not lost (git status shows them). Fix the cause, then run deploy again."},
				"the commit failed: %v", err)
		}
		st.hasHead, committed = true, true
		sha, _ := g.out(ctx, "rev-parse", "--short", "HEAD")
		d.did("committed %d file(s) as %q (%s)", len(files), msg, sha)
	}
	return d.push(ctx, g, committed || (o.DryRun && len(files) > 0))
}

// pending lists the paths `git add -A` would stage: tracked files changed
// or deleted since HEAD and untracked files .gitignore does not exclude.
func pending(ctx context.Context, g gitRunner, hasHead bool) ([]string, error) {
	tracked := []string{"ls-files", "-z", "--cached"}
	if hasHead {
		tracked = []string{"diff", "-z", "--name-only", "HEAD", "--"}
	}
	var files []string
	seen := map[string]bool{}
	for _, args := range [][]string{tracked, {"ls-files", "-z", "--others", "--exclude-standard"}} {
		out, err := g.out(ctx, args...)
		if err != nil {
			return nil, err
		}
		for _, f := range strings.Split(out, "\x00") {
			if f != "" && !seen[f] {
				seen[f] = true
				files = append(files, f)
			}
		}
	}
	return files, nil
}

// scan refuses to commit a file that holds the value of a secretVars
// variable of this process.
func (d *deployer) scan(files []string) error {
	type secret struct{ name, value string }
	var secrets []secret
	for _, name := range secretVars {
		if v := os.Getenv(name); len(v) >= 8 {
			secrets = append(secrets, secret{name, v})
		}
	}
	if name := "CF_API_TOKEN"; d.o.token != "" && os.Getenv(name) != d.o.token && len(d.o.token) >= 8 {
		secrets = append(secrets, secret{name, d.o.token})
	}
	if len(secrets) == 0 {
		return nil
	}
	for _, f := range files {
		path := filepath.Join(d.dir, filepath.FromSlash(f))
		info, err := os.Lstat(path)
		if err != nil || !info.Mode().IsRegular() {
			continue // deleted, a symlink or a directory (submodule)
		}
		b, err := readLimited(path, 64<<20)
		if err != nil {
			return fmt.Errorf("reading %s: %w", f, err)
		}
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s.value)) {
				return problemf([]string{
					"deploy never commits a secret. Remove it from the file, or add the file to .gitignore, then run deploy again.",
					"Nothing was committed.",
				}, "%s contains the value of %s", f, s.name)
			}
		}
	}
	return nil
}

func readLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, max))
}

// push sends HEAD to the branch on origin, unless it is there already.
// It refuses up front when origin's branch is not an ancestor of HEAD (a
// push would be rejected; deploy never forces), and explains git's own
// rejection the same way.
func (d *deployer) push(ctx context.Context, g gitRunner, newCommit bool) error {
	st, o := &d.st, d.o
	ref := "refs/heads/" + st.branch
	pushLine := "git push origin HEAD:" + ref
	remoteSHA, lsErr := lsRemote(ctx, g, st.remote, ref)
	var local string
	if st.hasHead {
		local, _ = g.out(ctx, "rev-parse", "HEAD")
	}
	switch {
	case !st.hasHead && !o.DryRun:
		return problemf(nil, "there is nothing to push: the repository has no commit")
	case lsErr != nil && o.DryRun:
		d.would("%s (origin could not be read now: %v)", pushLine, lsErr)
		return nil
	case lsErr != nil:
		// git push says why (sign-in, network); try it and explain.
	case remoteSHA == "":
		if o.DryRun {
			d.would("%s (a new branch on origin)", pushLine)
			return nil
		}
	case remoteSHA == local && !newCommit:
		d.say("origin's %s is already at %s: nothing to push", st.branch, short(local))
		return nil
	case local == "" || !g.ok(ctx, "merge-base", "--is-ancestor", remoteSHA, "HEAD"):
		return d.diverged()
	case o.DryRun:
		d.would("%s (fast-forward from %s)", pushLine, short(remoteSHA))
		return nil
	}
	stderr, err := g.tee(ctx, d.log, "push", "origin", "HEAD:"+ref)
	if err != nil {
		if strings.Contains(stderr, "non-fast-forward") || strings.Contains(stderr, "fetch first") || strings.Contains(stderr, "[rejected]") {
			return d.diverged()
		}
		return problemf([]string{
			"git's message is above. If GitHub asked you to sign in: install GitHub CLI and run `gh auth login`,",
			"or use Git Credential Manager, or an SSH remote (pass --remote git@github.com:" + st.repo.String() + ".git).",
			"If GitHub says the repository is not found: create " + st.repo.String() + " first (https://github.com/new, empty) or fork KeyPool.",
			"Your commits are intact; run deploy again once the push can go through.",
		}, "the push failed: %v", errors.Unwrap(err))
	}
	local, _ = g.out(ctx, "rev-parse", "HEAD")
	d.did("pushed %s to origin's %s", short(local), st.branch)
	return nil
}

// diverged is the stop for a branch on origin that HEAD does not contain.
func (d *deployer) diverged() error {
	b := d.st.branch
	return problemf([]string{
		"deploy never force-pushes, and your commits are intact. Bring origin's work in, then run deploy again:",
		"  git pull --rebase origin " + b,
		"(A GitHub repository created with a README or licence has such a commit: create it empty instead, or",
		" merge it: git pull --no-rebase --allow-unrelated-histories origin " + b + ")",
	}, "origin's branch %s has commits this checkout does not have, so the push would replace them", b)
}

// lsRemote returns the commit remote has at ref; "" if it has no such ref.
// It never asks for credentials (the push may): if origin needs a sign-in
// it fails, and the push decides.
func lsRemote(ctx context.Context, g gitRunner, remote, ref string) (string, error) {
	g.env = append(g.env[:len(g.env):len(g.env)], "GIT_TERMINAL_PROMPT=0", "GCM_INTERACTIVE=never")
	out, err := g.out(ctx, "ls-remote", "--", remote, ref)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(out, "\n") {
		sha, name, ok := strings.Cut(line, "\t")
		if ok && name == ref {
			return sha, nil
		}
	}
	return "", nil
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
