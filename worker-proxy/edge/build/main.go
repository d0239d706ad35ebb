// Command build writes the proxy's edge folder: the proxy compiled to
// WebAssembly, the Go toolchain's wasm_exec.js, main.js and wasm_module.js
// (Deno), worker.js (Cloudflare Workers) and a wrangler.toml template.
//
//	go run ./worker-proxy/edge/build -out DIR
//	deno run --allow-all DIR/main.js      # or: cd DIR && wrangler deploy
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/keypool/keypool/worker-proxy/edge/folder"
)

//go:embed assets/main.js assets/wasm_module.js assets/worker.js assets/kvrest.js assets/fetch.js assets/wrangler.toml
var assets embed.FS

// The embed pattern must name every file of folder.Assets (its test
// compares that list with the assets directory).

// Package is the import path of the proxy, which holds the edge main
// (edge_js.go) beside the binary's.
const Package = "github.com/keypool/keypool/worker-proxy"

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "folder to write (created; files in it are replaced)")
	goCmd := fs.String("go", "go", "the go command to build with")
	namespace := fs.String("kv-namespace-id", "", "Cloudflare KV namespace id to write into wrangler.toml (default: a placeholder)")
	pkg := fs.String("package", Package, "the main package to compile as "+folder.Wasm+" (another program behind the same bridge, for measurements)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: go run ./worker-proxy/edge/build -out DIR [-kv-namespace-id ID]")
		return 2
	}
	if err := Build(ctx, *goCmd, *pkg, *out, *namespace, stderr); err != nil {
		fmt.Fprintln(stderr, "edge build:", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s: %s\n", *out, strings.Join(folder.Files(), ", "))
	if raw, gz, err := wasmSize(filepath.Join(*out, folder.Wasm)); err == nil {
		fmt.Fprintf(stdout, "  keypool.wasm: %.1f MiB, %.2f MiB gzip\n", float64(raw)/(1<<20), float64(gz)/(1<<20))
	}
	fmt.Fprintf(stdout, "  Deno:    ADMIN_KEY=... deno run --allow-all --v8-flags=--max-semi-space-size=4 %s\n", filepath.Join(*out, "main.js"))
	fmt.Fprintf(stdout, "  Workers: cd %s && wrangler deploy\n", *out)
	return 0
}

// Build writes the edge folder into dir, with the main package pkg
// (normally Package) as its wasm. Warnings (the build went on, but not as
// intended) go to warn.
func Build(ctx context.Context, goCmd, pkg, dir, namespaceID string, warn io.Writer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root, err := goEnv(ctx, goCmd, "GOROOT")
	if err != nil {
		return err
	}
	wasmExec := filepath.Join(root, "lib", "wasm", "wasm_exec.js")
	if _, err := os.Stat(wasmExec); err != nil {
		wasmExec = filepath.Join(root, "misc", "wasm", "wasm_exec.js") // Go before 1.24
	}
	b, err := os.ReadFile(wasmExec)
	if err != nil {
		return fmt.Errorf("wasm_exec.js of the Go toolchain: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, folder.WasmExec), b, 0o644); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "keypool-edge-overlay-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	args := []string{"build", "-trimpath", "-ldflags=-s -w"}
	if overlay, err := writeOverlay(root, tmp); err != nil {
		// A toolchain whose sources moved on: the build still works, with
		// net/http's Transport in it (about 4 MB more, 0.9 MB gzip).
		fmt.Fprintf(warn, "edge build: warning: %v; building without it (a larger wasm)\n", err)
	} else {
		args = append(args, "-overlay", overlay)
	}
	args = append(args, "-o", filepath.Join(dir, folder.Wasm), pkg)
	cmd := exec.CommandContext(ctx, goCmd, args...)
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0")
	var msg bytes.Buffer
	cmd.Stdout, cmd.Stderr = &msg, &msg
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build (GOOS=js GOARCH=wasm): %w\n%s", err, msg.String())
	}
	for _, name := range folder.Assets {
		b, err := assets.ReadFile("assets/" + name)
		if err != nil {
			return err
		}
		if name == "wrangler.toml" {
			id := namespaceID
			if id == "" {
				id = "<your KV namespace id: `worker-proxy kv-setup` prints it>"
			}
			b = bytes.ReplaceAll(b, []byte("{{NAMESPACE_ID}}"), []byte(id))
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// wasmSize returns the size of the file at path and of its gzip (best
// compression), which is what hosts' limits and downloads count.
func wasmSize(path string) (raw, gz int64, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	var n countWriter
	w, err := gzip.NewWriterLevel(&n, gzip.BestCompression)
	if err != nil {
		return 0, 0, err
	}
	if _, err := w.Write(b); err != nil {
		return 0, 0, err
	}
	if err := w.Close(); err != nil {
		return 0, 0, err
	}
	return int64(len(b)), int64(n), nil
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

func goEnv(ctx context.Context, goCmd, name string) (string, error) {
	out, err := exec.CommandContext(ctx, goCmd, "env", name).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("go env %s: %w: %s", name, err, ee.Stderr)
		}
		return "", fmt.Errorf("go env %s: %w", name, err)
	}
	return strings.TrimSpace(string(out)), nil
}
