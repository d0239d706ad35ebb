package edge

import (
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestWasmLeavesOutTransport: the edge build does not link net/http's
// Transport (its dialing, TLS client and HTTP/2 code), which cannot reach
// the network from js/wasm and made the wasm about 4 MB larger; outbound
// calls go through fetch() (bridge.FetchTransport). Function names stay in
// the wasm's runtime tables even with -s -w, so their absence shows.
func TestWasmLeavesOutTransport(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(built(t), "keypool.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("net/http.(*ServeMux).ServeHTTP")) {
		t.Fatal("the wasm has no function names to check (the name tables changed?)")
	}
	for _, fn := range []string{"net/http.(*Transport).roundTrip", "net/http.(*Transport).dialConn", "crypto/tls.(*Conn).clientHandshake"} {
		if bytes.Contains(b, []byte(fn)) {
			t.Errorf("keypool.wasm links %s: something names net/http's Transport or DefaultTransport (see worker-proxy/edge/build/overlay.go)", fn)
		}
	}
}

// wasmGzipBudget is issue 12's size goal for the edge wasm: at most 3 MB
// (decimal) once gzipped, as `gzip -9` does it.
const wasmGzipBudget = 3_000_000

// TestWasmSizeBudget fails when the edge wasm, gzipped by `gzip -9`,
// passes the budget: the build is close to it (2,984,002 bytes on
// 2026-12-04), so growth must be a decision, not an accident. Go's
// compress/gzip at BestCompression makes about 1 % more; both are logged.
func TestWasmSizeBudget(t *testing.T) {
	path := filepath.Join(built(t), "keypool.wasm")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	w, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	w.Write(b)
	w.Close()
	if _, err := exec.LookPath("gzip"); err != nil {
		t.Fatalf("no gzip command to measure with: %v", err)
	}
	out, err := exec.Command("gzip", "-9", "-c", path).Output()
	if err != nil {
		t.Fatalf("gzip -9: %v", err)
	}
	t.Logf("keypool.wasm: %d bytes; gzip -9 %d; compress/gzip best %d", len(b), len(out), gz.Len())
	if len(out) > wasmGzipBudget {
		t.Errorf("keypool.wasm is %d bytes after gzip -9, over the %d budget (raw %d): see the edge README's Building section for what is left in it", len(out), wasmGzipBudget, len(b))
	}
}
