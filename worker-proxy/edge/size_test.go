package edge

import (
	"bytes"
	"os"
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
