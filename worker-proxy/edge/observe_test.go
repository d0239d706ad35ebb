package edge

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/internal/fakeupstream"
)

// Under Deno the edge build keeps a per-isolate request log in memory and
// serves /metrics behind METRICS_TOKEN, as the binary does: the request
// counter, the keys by state and the store's health, written without the
// Prometheus client (left out of the wasm for its size).
func TestDenoRequestLogAndMetrics(t *testing.T) {
	up, err := fakeupstream.Start(fakeupstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	env := upstreamEnv(up)
	const metricsToken = "metrics-test-token-fake-edge-01"
	env["METRICS_TOKEN"] = metricsToken
	p := startDeno(t, env)
	p.addKey("openai", "sk-test-fake-edge-observe-0001")
	for range 2 {
		if r := p.do("POST", "/api/openai/chat/completions", chatBody, bearer()); r.Status != 200 {
			t.Fatalf("relay: %d %s", r.Status, r.Body)
		}
	}
	var resp adminapi.RequestsResponse
	for deadline := time.Now().Add(10 * time.Second); len(resp.Records) < 2; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("request log: %+v", resp)
		}
		r := p.admin("GET", "/admin/requests", nil)
		if err := json.Unmarshal([]byte(r.Body), &resp); err != nil {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	}
	if resp.Backend != "memory" || resp.Records[0].Model != "gpt-4o-mini" || resp.Records[0].Status != 200 {
		t.Fatalf("records: %+v", resp)
	}
	if r := p.do("GET", "/metrics", nil, nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("/metrics without the token: %d", r.Status)
	}
	r := p.do("GET", "/metrics", nil, map[string]string{"Authorization": "Bearer " + metricsToken})
	for _, want := range []string{
		"# TYPE keypool_requests_total counter\n",
		`keypool_requests_total{provider="openai",status_class="2xx",strategy="roundRobin"} 2` + "\n",
		`keypool_keys{provider="openai",state="active"} 1` + "\n",
		`keypool_store_up{backend="memory"} 1` + "\n",
	} {
		if r.Status != 200 || !strings.Contains(r.Body, want) {
			t.Fatalf("/metrics lacks %q: %d\n%s", want, r.Status, r.Body)
		}
	}
}
