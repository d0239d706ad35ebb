package deploy_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --target workers --dry-run: the plan names the build and the namespace,
// and nothing changes (no folder, no namespace, no git).
func TestDeployEdgeDryRun(t *testing.T) {
	need(t, "bash", "go")
	cf := startCloudflare(t)
	dir, env := checkout(t), testEnv(t)
	before := snapshot(t, dir)
	r := deploySh(t, dir, env, "--target", "workers", "--cf-account", testAccount, "--cf-api-base", cf.URL, "--dry-run")
	if r.code != 0 {
		t.Fatalf("dry run failed: %s", r)
	}
	mustContain(t, r, "stdout",
		"[1/4] Checks", "target workers, edge folder worker-proxy/edge/dist",
		"would: create namespace \"keypool\" in account "+testAccount,
		"would: go run -trimpath ./worker-proxy/edge/build -out worker-proxy/edge/dist",
		"dry run: nothing was changed", "npx wrangler deploy", "A real run creates the namespace")
	noSecret(t, r)
	if after := snapshot(t, dir); after != before {
		t.Error("the dry run changed the checkout")
	}
	for _, p := range []string{".git", "worker-proxy/edge/dist"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err == nil {
			t.Errorf("the dry run created %s", p)
		}
	}
	if n := cf.creates.Load(); n != 0 {
		t.Errorf("the dry run created %d namespaces", n)
	}
}

// --target workers builds the edge folder with the namespace it created
// in wrangler.toml, prints wrangler's commands, and commits or pushes
// nothing; a rerun finds the namespace instead of creating another.
// --target deno into another folder prints deno's commands and the
// variables with the namespace id.
func TestDeployEdgeTargets(t *testing.T) {
	need(t, "bash", "go")
	cf := startCloudflare(t)
	dir, env := checkout(t), testEnv(t)
	args := []string{"--target", "workers", "--cf-account", testAccount, "--cf-api-base", cf.URL}
	r := deploySh(t, dir, env, args...)
	if r.code != 0 {
		t.Fatalf("deploy --target workers failed: %s", r)
	}
	id := cf.namespaces(t)["keypool"]
	if id == "" {
		t.Fatalf("no namespace created: %s", r)
	}
	out := filepath.Join(dir, "worker-proxy", "edge", "dist")
	for _, f := range []string{"keypool.wasm", "wasm_exec.js", "main.js", "worker.js", "kvrest.js", "fetch.js", "wrangler.toml"} {
		if info, err := os.Stat(filepath.Join(out, f)); err != nil || info.Size() == 0 {
			t.Errorf("%s missing or empty in the edge folder: %v", f, err)
		}
	}
	toml, err := os.ReadFile(filepath.Join(out, "wrangler.toml"))
	if err != nil || !strings.Contains(string(toml), `id = "`+id+`"`) {
		t.Fatalf("wrangler.toml does not bind namespace %s:\n%s", id, toml)
	}
	mustContain(t, r, "stdout", "created namespace \"keypool\" (id "+id+")", "built the edge folder worker-proxy/edge/dist",
		"1. cd worker-proxy/edge/dist", "wrangler.toml binds KEYPOOL_KV to namespace "+id,
		"npx wrangler secret put ADMIN_KEY", "3. npx wrangler deploy")
	noSecret(t, r)
	for _, s := range []string{testToken} {
		if strings.Contains(string(toml), s) {
			t.Error("wrangler.toml holds the API token")
		}
	}
	if _, err := os.Stat(filepath.Join(dir, ".git")); err == nil {
		t.Error("an edge deploy initialised git")
	}

	r = deploySh(t, dir, env, args...)
	if r.code != 0 || cf.creates.Load() != 1 {
		t.Fatalf("rerun: %d namespaces created in all, %s", cf.creates.Load(), r)
	}
	mustContain(t, r, "stdout", "found namespace \"keypool\" (id "+id+")")

	r = deploySh(t, dir, env, "--target", "deno", "--out", "edge-deno", "--cf-account", testAccount, "--cf-api-base", cf.URL)
	if r.code != 0 {
		t.Fatalf("deploy --target deno failed: %s", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "edge-deno", "main.js")); err != nil {
		t.Fatalf("--out edge-deno: %v", err)
	}
	mustContain(t, r, "stdout", "cd edge-deno && deno deploy --prod", "STORE=cfkv", "CF_ACCOUNT_ID="+testAccount,
		"CF_KV_NAMESPACE_ID="+id, "ADMIN_KEY=<secret", "deno run --allow-all --v8-flags=--max-semi-space-size=4 edge-deno/main.js")
	noSecret(t, r)

	// A folder holding something else is not written into.
	if err := os.WriteFile(filepath.Join(dir, "edge-deno", "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = deploySh(t, dir, env, "--target", "deno", "--out", "edge-deno", "--cf-account", testAccount, "--cf-api-base", cf.URL)
	if r.code == 0 || !strings.Contains(r.stderr, "notes.txt") {
		t.Fatalf("deploy wrote into a folder holding other files: %s", r)
	}
}
