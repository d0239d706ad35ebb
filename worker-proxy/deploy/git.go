package deploy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// secretVars are never passed to a child process, and a file holding one
// of their values is never committed.
var secretVars = []string{"CF_API_TOKEN", "ADMIN_KEY"}

// childEnv is this process's environment without secretVars.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		secret := false
		for _, s := range secretVars {
			if strings.EqualFold(name, s) {
				secret = true
			}
		}
		if !secret {
			env = append(env, kv)
		}
	}
	return env
}

// gitRunner runs git in a directory.
type gitRunner struct {
	dir string
	env []string
	pre []string // arguments before the command, e.g. --git-dir for a scratch repository
}

// out runs git and returns its standard output, trailing newlines
// trimmed. The error names the command and carries git's message.
func (g gitRunner) out(ctx context.Context, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	err := g.cmd(ctx, &stdout, &stderr, args...).Run()
	if err != nil {
		return "", gitError(args, err, stderr.String())
	}
	return strings.TrimRight(stdout.String(), "\r\n"), nil
}

// ok runs git and reports whether it exited 0.
func (g gitRunner) ok(ctx context.Context, args ...string) bool {
	return g.cmd(ctx, io.Discard, io.Discard, args...).Run() == nil
}

// tee runs git with its standard error shown on w as well as returned,
// for commands whose progress the operator should see (push).
func (g gitRunner) tee(ctx context.Context, w io.Writer, args ...string) (string, error) {
	var stderr bytes.Buffer
	err := g.cmd(ctx, w, io.MultiWriter(w, &stderr), args...).Run()
	if err != nil {
		return stderr.String(), gitError(args, err, stderr.String())
	}
	return stderr.String(), nil
}

func (g gitRunner) cmd(ctx context.Context, stdout, stderr io.Writer, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "git", append(append([]string(nil), g.pre...), args...)...)
	cmd.Dir, cmd.Env = g.dir, g.env
	cmd.Stdout, cmd.Stderr = stdout, stderr
	return cmd
}

func gitError(args []string, err error, stderr string) error {
	shown := make([]string, len(args))
	for i, a := range args {
		shown[i] = redact(a)
	}
	msg := strings.TrimSpace(stderr)
	if msg == "" {
		return fmt.Errorf("git %s: %w", strings.Join(shown, " "), err)
	}
	return fmt.Errorf("git %s: %w: %s", strings.Join(shown, " "), err, msg)
}
