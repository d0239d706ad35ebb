package deploy

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// state is what deploy finds before it changes anything.
type state struct {
	gitVersion string
	hasRepo    bool   // the directory is the top of a git work tree
	hasHead    bool   // ... with at least one commit
	current    string // the checked-out branch; "" without a repository or on a detached HEAD
	origin     string // origin's URL; "" if there is no origin

	repo   Repo
	remote string // where to push: origin's URL, or the one to add as origin
	branch string // the remote branch to push to
}

// problem is an error with the steps that fix it.
type problem struct {
	msg   string
	hints []string
}

func (p *problem) Error() string { return p.msg }

func problemf(hints []string, format string, args ...any) *problem {
	return &problem{msg: fmt.Sprintf(format, args...), hints: hints}
}

// gitInstallHints say how to install git on each system.
var gitInstallHints = []string{
	"Install git, then run deploy again:",
	"  Debian/Ubuntu: sudo apt-get install git    Fedora: sudo dnf install git",
	"  macOS: xcode-select --install   (or: brew install git)",
	"  Windows: winget install --id Git.Git -e   (or: choco install git)",
	"  or https://git-scm.com/downloads",
}

// inspect reads the checkout and settles the repository, remote and
// branch. It changes nothing.
func inspect(ctx context.Context, g gitRunner, o Options) (state, error) {
	var st state
	if _, err := exec.LookPath("git"); err != nil {
		return st, problemf(gitInstallHints, "git is not installed (or not on PATH)")
	}
	v, err := g.out(ctx, "--version")
	if err != nil {
		return st, problemf(gitInstallHints, "git does not run: %v", err)
	}
	st.gitVersion = strings.TrimPrefix(v, "git version ")

	for _, p := range []string{"go.mod", filepath.Join("wasm", "build"), filepath.Join("worker-proxy", "deploy")} {
		if _, err := os.Stat(filepath.Join(g.dir, p)); err != nil {
			return st, problemf(nil, "%s is not the root of a KeyPool checkout (no %s): run the deploy script from the repository's root", g.dir, p)
		}
	}

	if err := inspectGit(ctx, g, &st); err != nil {
		return st, err
	}
	if err := settleTarget(ctx, g, o, &st); err != nil {
		return st, err
	}
	for _, who := range []string{"GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT"} {
		if _, err := g.out(ctx, "var", who); err != nil {
			return st, problemf([]string{
				"Tell git who you are (the name and e-mail go into the commit), then run deploy again:",
				`  git config --global user.name "Your Name"`,
				`  git config --global user.email "you@example.com"`,
				"  (GitHub can keep your address private: Settings → Emails → Keep my email addresses private)",
			}, "git has no identity to commit with (user.name and user.email are not set)")
		}
	}
	return st, nil
}

// inspectGit fills in the repository facts of st.
func inspectGit(ctx context.Context, g gitRunner, st *state) error {
	top, err := g.out(ctx, "rev-parse", "--show-toplevel")
	if err != nil {
		if _, statErr := os.Stat(filepath.Join(g.dir, ".git")); statErr == nil || !strings.Contains(err.Error(), "not a git repository") {
			return problemf(nil, "git cannot read the repository here: %v", err)
		}
		return nil // no repository yet: deploy creates one
	}
	if !sameDir(top, g.dir) {
		return problemf([]string{"Clone or copy KeyPool into a directory of its own and run deploy there."},
			"%s is inside another git repository (%s)", g.dir, top)
	}
	st.hasRepo = true
	st.hasHead = g.ok(ctx, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
	st.current, _ = g.out(ctx, "symbolic-ref", "--quiet", "--short", "HEAD")
	st.origin, _ = g.out(ctx, "config", "--get", "remote.origin.url")

	if u, _ := g.out(ctx, "ls-files", "--unmerged"); u != "" {
		return problemf([]string{"Resolve the conflicts and commit (or abort the merge), then run deploy again."},
			"the checkout has unresolved merge conflicts")
	}
	for _, p := range []string{"MERGE_HEAD", "rebase-merge", "rebase-apply", "CHERRY_PICK_HEAD", "REVERT_HEAD"} {
		path, err := g.out(ctx, "rev-parse", "--git-path", p)
		if err != nil {
			return problemf(nil, "git cannot read the repository here: %v", err)
		}
		if !filepath.IsAbs(path) {
			path = filepath.Join(g.dir, path)
		}
		if _, err := os.Stat(path); err == nil {
			return problemf([]string{"Finish it (git merge --continue / git rebase --continue) or abort it, then run deploy again."},
				"a merge, rebase, cherry-pick or revert is in progress (%s)", p)
		}
	}
	return nil
}

// settleTarget decides the repository, the URL to push to and the branch.
// An origin that points elsewhere is an error, never rewritten.
func settleTarget(ctx context.Context, g gitRunner, o Options, st *state) error {
	originRepo, originKnown := repoOf(st.origin)
	switch {
	case o.Repo != "":
		r, err := ParseRepo(o.Repo)
		if err != nil {
			return err
		}
		st.repo = r
	case originKnown:
		st.repo = originRepo
	case st.origin != "":
		return problemf(nil, "origin is %s, which names no GitHub repository: pass --repo OWNER/NAME (and --remote %s to keep pushing there)", redact(st.origin), redact(st.origin))
	default:
		return problemf([]string{
			"Pass the GitHub repository to publish to, e.g.  deploy.sh your-name/keypool",
			"(create it first on https://github.com/new, empty: no README, licence or .gitignore; or fork KeyPool).",
		}, "which GitHub repository? There is no origin remote to read it from")
	}

	st.remote = o.Remote
	if st.remote == "" {
		st.remote = st.repo.CloneURL()
	}
	if st.origin != "" {
		switch {
		case o.Remote != "" && o.Remote != st.origin:
			return problemf([]string{
				"deploy does not change an existing origin. To publish somewhere else, rename it first:",
				"  git remote rename origin upstream",
			}, "origin is %s, not %s", redact(st.origin), redact(o.Remote))
		case o.Remote == "" && !(originKnown && originRepo.Same(st.repo)):
			return problemf([]string{
				"deploy does not change an existing origin. If you cloned KeyPool instead of forking it,",
				"fork it on GitHub (or create " + st.repo.String() + " empty), then keep the original as upstream:",
				"  git remote rename origin upstream",
				"and run deploy again. To push to origin after all, pass --remote " + redact(st.origin) + ".",
			}, "origin is %s, not %s", redact(st.origin), st.repo)
		}
		st.remote = st.origin
	}

	st.branch = o.Branch
	if st.branch == "" {
		st.branch = st.current
	}
	if st.branch == "" {
		st.branch = "main"
	}
	if !g.ok(ctx, "check-ref-format", "--branch", st.branch) {
		return problemf(nil, "%q is not a valid branch name", st.branch)
	}
	return nil
}

// sameDir reports whether a and b are the same directory.
func sameDir(a, b string) bool {
	ia, err1 := os.Stat(a)
	ib, err2 := os.Stat(b)
	if err1 != nil || err2 != nil {
		return filepath.Clean(a) == filepath.Clean(b)
	}
	return os.SameFile(ia, ib)
}
