package main

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStdPatchesApply checks that the standard-library edits of the edge
// build match the Go toolchain in use, and that the patched files no
// longer name http.DefaultTransport outside comments.
func TestStdPatchesApply(t *testing.T) {
	root, err := goEnv(context.Background(), "go", "GOROOT")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	path, err := writeOverlay(root, tmp)
	if err != nil {
		t.Fatalf("the edge build's overlay does not apply to this toolchain: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	for i, p := range stdPatches {
		name := filepath.Join(tmp, fmt.Sprintf("%d-%s", i, filepath.Base(p.file)))
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("%s as patched: %v", p.file, err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.ValueSpec:
				return false // the declaration (in transport.go, not patched) is fine
			case *ast.Ident:
				if n.Name == "DefaultTransport" {
					t.Errorf("%s as patched still uses DefaultTransport", p.file)
				}
			}
			return true
		})
	}
}

// TestWriteOverlayRefusesChangedSources: a toolchain whose file lacks the
// expected text is reported, not patched half-way.
func TestWriteOverlayRefusesChangedSources(t *testing.T) {
	root := t.TempDir()
	for _, p := range stdPatches {
		dst := filepath.Join(root, "src", filepath.FromSlash(p.file))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, []byte("package x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := writeOverlay(root, t.TempDir()); err == nil || !strings.Contains(err.Error(), "expected text") {
		t.Fatalf("err = %v, want one about the expected text", err)
	}
}
