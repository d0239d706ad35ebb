package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Run is `worker-proxy deploy ARGS`: it reads the options from args and
// the environment through env, works on the current directory (the
// checkout's root: the scripts cd there) and returns the exit code: 0 done,
// 1 a step failed, 2 a usage error. The plan and the result go to stdout;
// errors, hints and the output of git and the dashboard build to stderr.
// Child processes get this process's environment without CF_API_TOKEN and
// ADMIN_KEY.
func Run(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) int {
	o, err := parseArgs(args, env)
	if errors.Is(err, errHelp) {
		io.WriteString(stdout, usage)
		return 0
	}
	if err != nil {
		msg := maskValues(err.Error(), env("CF_API_TOKEN"), env("ADMIN_KEY"))
		fmt.Fprintf(stderr, "deploy: %s\nRun with --help for the options.\n", msg)
		return 2
	}
	dir, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(stderr, "deploy:", err)
		return 1
	}
	return run(ctx, dir, o, stdout, stderr)
}

// deployer carries one run's options, findings and changes.
type deployer struct {
	o       Options
	dir     string
	g       gitRunner
	st      state
	out     io.Writer // stdout
	log     io.Writer // stderr
	changes []string  // what this run changed, for the summary
	ns      namespace
}

// namespace is the KV step's result.
type namespace struct {
	id      string // "" if unknown (skipped, or to be created by a real run)
	created bool
}

// step is one numbered step of a run.
type step struct {
	title string
	do    func(context.Context) error
}

func run(ctx context.Context, dir string, o Options, stdout, stderr io.Writer) int {
	d := &deployer{o: o, dir: dir, g: gitRunner{dir: dir, env: childEnv()}, out: stdout, log: stderr}
	steps := []step{
		{"Checks", d.check},
		{"Dashboard", d.build},
		{"Cloudflare KV", d.kv},
		{"Git", d.publish},
	}
	report := d.report
	if o.Target != targetPages {
		// The edge folder is built here and published from here (deno
		// deploy, wrangler): no dashboard build, nothing committed or pushed.
		steps = []step{
			{"Checks", d.edgeCheck},
			{"Cloudflare KV", d.kv},
			{"Edge folder", d.edgeBuild},
		}
		report = d.edgeReport
	}
	total := len(steps) + 1
	for i, s := range steps {
		fmt.Fprintf(stdout, "[%d/%d] %s\n", i+1, total, s.title)
		if err := s.do(ctx); err != nil {
			d.fail(s.title, err)
			return 1
		}
	}
	if o.DryRun {
		d.say("dry run: nothing was changed")
	} else if len(d.changes) == 0 {
		d.say("nothing changed: everything was already in place")
	}
	fmt.Fprintf(stdout, "[%d/%d] What is left to do\n", total, total)
	report()
	return 0
}

// say prints one line of the current step.
func (d *deployer) say(format string, args ...any) {
	fmt.Fprintf(d.out, "  "+format+"\n", args...)
}

// would prints what a real run does at this point (dry run).
func (d *deployer) would(format string, args ...any) {
	fmt.Fprintf(d.out, "  would: "+format+"\n", args...)
}

// did prints and records a change.
func (d *deployer) did(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	d.changes = append(d.changes, msg)
	d.say("%s", msg)
}

// fail prints err (and its hints) to stderr, with any secret value masked.
func (d *deployer) fail(step string, err error) {
	var b strings.Builder
	fmt.Fprintf(&b, "deploy: %s: %v\n", strings.ToLower(step), err)
	var p *problem
	if errors.As(err, &p) {
		for _, h := range p.hints {
			b.WriteString("  " + h + "\n")
		}
	}
	if len(d.changes) > 0 {
		b.WriteString("  Done before the failure: " + strings.Join(d.changes, "; ") + ".\n")
	}
	io.WriteString(d.log, d.mask(b.String()))
}

// mask replaces the values of secretVars (and the token deploy was given)
// in s.
func (d *deployer) mask(s string) string {
	values := []string{d.o.token}
	for _, name := range secretVars {
		values = append(values, os.Getenv(name))
	}
	return maskValues(s, values...)
}

// maskValues replaces each of values (at least 4 bytes long) in s by
// "[secret]".
func maskValues(s string, values ...string) string {
	for _, v := range values {
		if len(v) >= 4 {
			s = strings.ReplaceAll(s, v, "[secret]")
		}
	}
	return s
}
