package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// goInstallHints say how to get Go.
var goInstallHints = []string{
	"Install Go (the version in go.mod or newer), then run deploy again:",
	"  any system: https://go.dev/dl/",
	"  macOS: brew install go    Windows: winget install --id GoLang.Go -e   (or: choco install golang)",
	"  Debian/Ubuntu: apt's golang is often too old; use https://go.dev/dl/ (or: sudo snap install go --classic)",
}

// buildArgs are the go arguments that build the dashboard for d's
// repository into web/dist.
func (d *deployer) buildArgs() []string {
	args := []string{"run", "-trimpath", "./wasm/build", "-out", "web/dist"}
	if p := d.st.repo.Prefix(); p != "" {
		args = append(args, "-prefix", p)
	}
	if d.o.ProxyURL != "" {
		args = append(args, "-proxy", d.o.ProxyURL)
	}
	return args
}

// build is step 2: the dashboard, as pages.yml builds it, so a broken
// build shows here. web/dist is ignored by git.
func (d *deployer) build(ctx context.Context) error {
	args := d.buildArgs()
	line := "go " + shellJoin(args)
	switch {
	case d.o.SkipBuild:
		d.say("skipped (--skip-build); GitHub Actions builds it after the push")
		return nil
	case d.o.DryRun:
		d.would("%s", line)
		return nil
	}
	if err := d.goRun(ctx, args, "the dashboard", "Fix the build (or pass --skip-build to let GitHub Actions try), then run deploy again."); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(d.dir, "web", "dist", "index.html")); err != nil {
		return problemf(nil, "the dashboard build wrote no web/dist/index.html")
	}
	d.say("built web/dist for %s", d.st.repo.PagesURL())
	return nil
}

// goRun runs go with args in the checkout, its output to stderr, without
// the secrets in its environment; what names the build in the error.
func (d *deployer) goRun(ctx context.Context, args []string, what, fix string) error {
	if _, err := exec.LookPath("go"); err != nil {
		return problemf(goInstallHints, "go is not installed (or not on PATH)")
	}
	d.say("go %s", shellJoin(args))
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir, cmd.Env = d.dir, childEnv()
	cmd.Stdout, cmd.Stderr = d.log, d.log
	if err := cmd.Run(); err != nil {
		return problemf([]string{"Its output is above. " + fix}, "%s did not build: %v", what, err)
	}
	return nil
}

// shellJoin joins args for display, quoting those a shell would split.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'$&|;<>()*?`\\") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}
