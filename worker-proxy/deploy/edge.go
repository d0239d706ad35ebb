package deploy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/keypool/keypool/worker-proxy/edge/folder"
)

// Targets of deploy: the dashboard on GitHub Pages (and the container's
// instructions), or the proxy's edge folder for Deno or Cloudflare Workers.
const (
	targetPages   = "pages"
	targetDeno    = "deno"
	targetWorkers = "workers"
)

// defaultEdgeOut is where --target deno|workers writes the edge folder
// (ignored by git).
const defaultEdgeOut = "worker-proxy/edge/dist"

// edgeCheck is step 1 of an edge deploy: the checkout holds the edge
// build, and the folder is one deploy may write into.
func (d *deployer) edgeCheck(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(d.dir, "worker-proxy", "edge", "build", "main.go")); err != nil {
		return problemf([]string{"Run deploy from the root of a KeyPool checkout (the scripts do so themselves)."},
			"%s is not a KeyPool checkout: worker-proxy/edge/build is missing", d.dir)
	}
	out := d.edgeOut()
	if info, err := os.Stat(out); err == nil && !info.IsDir() {
		return problemf(nil, "--out %s is a file, not a folder", d.o.Out)
	}
	if entries, err := os.ReadDir(out); err == nil {
		for _, e := range entries {
			if !folder.Has(e.Name()) {
				return problemf([]string{"Choose an empty folder, or one an earlier edge build wrote (--out)."},
					"--out %s holds %s, which the edge build did not write; deploy will not write into it", d.o.Out, e.Name())
			}
		}
	}
	d.say("target %s, edge folder %s", d.o.Target, d.o.Out)
	if d.o.DryRun {
		d.say("dry run: nothing will be changed; \"would:\" lines are what a real run does")
	}
	return nil
}

// edgeOut is the edge folder's path.
func (d *deployer) edgeOut() string {
	if filepath.IsAbs(d.o.Out) {
		return d.o.Out
	}
	return filepath.Join(d.dir, d.o.Out)
}

// edgeBuildArgs are the go arguments that write the edge folder, with
// the namespace id (once known) filled into wrangler.toml.
func (d *deployer) edgeBuildArgs() []string {
	args := []string{"run", "-trimpath", "./worker-proxy/edge/build", "-out", d.o.Out}
	if d.o.Target == targetWorkers && d.ns.id != "" {
		args = append(args, "-kv-namespace-id", d.ns.id)
	}
	return args
}

// edgeBuild writes the edge folder (the proxy as WebAssembly, its Deno and
// Workers entries and wrangler.toml).
func (d *deployer) edgeBuild(ctx context.Context) error {
	args := d.edgeBuildArgs()
	line := "go " + shellJoin(args)
	if d.o.DryRun {
		d.would("%s", line)
		return nil
	}
	if err := d.goRun(ctx, args, "the edge folder", "Fix the build, then run deploy again."); err != nil {
		return err
	}
	for _, f := range folder.Files() {
		if _, err := os.Stat(filepath.Join(d.edgeOut(), f)); err != nil {
			return problemf(nil, "the edge build wrote no %s into %s", f, d.o.Out)
		}
	}
	d.did("built the edge folder %s (%s)", d.o.Out, strings.Join(folder.Files(), ", "))
	return nil
}

// edgeReport is the last step of an edge deploy: the exact commands that
// publish the folder, and the environment the proxy needs there.
func (d *deployer) edgeReport() {
	o := d.o
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, "  "+format+"\n", args...) }
	dir := o.Out
	switch o.Target {
	case targetWorkers:
		line("Cloudflare Workers (needs Node.js for npx; wrangler asks you to log in the first time):")
		line("1. cd %s", dir)
		switch {
		case d.ns.id != "":
			line("   wrangler.toml binds KEYPOOL_KV to namespace %s.", d.ns.id)
		case o.kvEnabled() && o.DryRun:
			line("   A real run creates the namespace and writes its id into wrangler.toml.")
		default:
			line("   wrangler.toml has a placeholder namespace id: rerun deploy with --cf-account ID and CF_API_TOKEN set,")
			line("   or create one (npx wrangler kv namespace create keypool) and put its id into wrangler.toml.")
		}
		line("2. npx wrangler secret put ADMIN_KEY        (required on the edge; generate one: openssl rand -hex 32)")
		line("   npx wrangler secret put CLIENT_TOKENS    (optional, likewise ENCRYPTION_KEY and OPENAI_KEYS, GEMINI_KEYS, ...)")
		line("3. npx wrangler deploy")
		line("   It prints the worker's URL: the dashboard's proxy URL. Set ALLOWED_ORIGINS in wrangler.toml [vars]")
		line("   to the dashboard's origin.")
		line("Plan limits: the free plan gives 10 ms CPU per request, and an isolate's first request (starting the wasm)")
		line("takes far more, so use the paid plan (worker-proxy/edge/README.md, Cloudflare Workers). Each failover attempt is")
		line("a subrequest: keep 1 + MAX_RETRIES within the plan's cap (50 on free).")
	default: // deno
		line("Deno Deploy (Deno 2.4 or newer):")
		line("1. cd %s && deno deploy --prod", dir)
		line("   The first run asks you to log in and to create the app; its entry point is main.js.")
		line("2. In the app's settings → Environment Variables (secrets as secrets), set:")
		for _, kv := range d.edgeEnv() {
			line("     %s", kv)
		}
		line("   or from this shell: deno deploy env --help shows how.")
		line("Self-hosted Deno: the same variables, then")
		line("     deno run --allow-all --v8-flags=--max-semi-space-size=4 %s", filepath.ToSlash(filepath.Join(dir, "main.js")))
		line("   (listens on PORT, default 8080; SIGTERM flushes the counters before it exits; the V8 flag caps the")
		line("   young generation: about 150 MiB instead of 190 under load, worker-proxy/edge/README.md, Memory).")
	}
	line("Without STORE=cfkv an edge instance keeps its keys in memory only: lost on every restart. Keys given in")
	line("OPENAI_KEYS, GEMINI_KEYS, ANTHROPIC_KEYS (comma-separated, as secrets) are loaded at every start instead.")
	fmt.Fprint(d.out, b.String())
}

// edgeEnv is the environment of a Deno instance sharing keys through KV;
// secrets as placeholders.
func (d *deployer) edgeEnv() []string {
	env := d.proxyEnv()
	out := env[:0:0]
	for _, kv := range env {
		switch {
		case strings.HasPrefix(kv, "ALLOWED_ORIGINS="):
			out = append(out, "ALLOWED_ORIGINS=<the dashboard's origin, e.g. https://OWNER.github.io>")
		case strings.HasPrefix(kv, "INSTANCE_ID="):
			// An edge instance takes a random one at each start; the
			// usage records are folded (worker-proxy/edge/README.md).
		default:
			out = append(out, kv)
		}
	}
	return out
}
