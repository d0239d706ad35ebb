package edge

import (
	"net/http"
	"strings"
	"testing"

	"github.com/keypool/keypool/worker-proxy/internal/fakeupstream"
)

// TestDenoPerKeyProxyFailsClosed: fetch() cannot send through a proxy, so
// on the edge a key with an outbound proxy fails its attempts with a clear
// reason and never calls the upstream directly; the relay goes on with a
// direct key.
func TestDenoPerKeyProxyFailsClosed(t *testing.T) {
	up, err := fakeupstream.Start(fakeupstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	p := startDeno(t, upstreamEnv(up))
	const proxied = "sk-test-fake-edge-proxied-0001"
	r := p.admin("POST", "/admin/keys", map[string]any{"provider": "openai", "apiKey": proxied, "proxy": "http://127.0.0.1:9"})
	if r.Status != http.StatusCreated {
		t.Fatalf("add key: %d %s", r.Status, r.Body)
	}
	proxiedID := r.JSON(t)["keyId"].(string)

	// The only key is behind a proxy: the relay fails, upstream sees nothing.
	if r := p.do("POST", "/api/openai/chat/completions", chatBody, bearer()); r.Status == http.StatusOK {
		t.Fatalf("relay through a proxied key on the edge: %d %s, want a failure", r.Status, r.Body)
	}
	k := p.admin("GET", "/admin/keys/"+proxiedID, nil).JSON(t)
	last, _ := k["lastError"].(map[string]any)
	if msg, _ := last["message"].(string); !strings.Contains(msg, "proxies are not available") {
		t.Errorf("lastError %v, want one saying per-key proxies are not available on the edge", k["lastError"])
	}

	// With a direct key as well, requests succeed on it.
	direct := p.addKey("openai", "sk-test-fake-edge-direct-0001")
	for range 4 {
		r := p.do("POST", "/api/openai/chat/completions", chatBody, bearer())
		if r.Status != http.StatusOK || r.Header.Get("X-KeyPool-Key-Id") != direct {
			t.Fatalf("relay: %d key %q %s, want 200 from the direct key", r.Status, r.Header.Get("X-KeyPool-Key-Id"), r.Body)
		}
	}
	for _, rec := range up.Requests() {
		if rec.Key == proxied {
			t.Fatal("the proxied key reached the upstream directly")
		}
	}
}
