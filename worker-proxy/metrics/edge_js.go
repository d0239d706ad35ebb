//go:build js

package metrics

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
)

// Collector is what Options.ExtraCollectors holds. The edge build has no
// Prometheus client (with its protobuf code it would add about 1.5 MB gzip
// to the wasm, a third of it), so collectors are ignored there.
type Collector = any

// Metrics on the edge build (Deno, Cloudflare Workers) keeps the request
// counter and reads the key states and store health at scrape time, and
// writes them in the Prometheus text format itself; the histograms, token
// and per-client-token counters and the Go runtime's metrics are the
// binary's only.
type Metrics struct {
	src Source
	mu  sync.Mutex
	n   map[requestLabels]int64
}

type requestLabels struct{ provider, strategy, class string }

// New returns the edge build's Metrics; only src is used.
func New(src Source, o Options) *Metrics { return &Metrics{src: src, n: map[requestLabels]int64{}} }

// Observe counts one finished request.
func (m *Metrics) Observe(r Request) {
	m.mu.Lock()
	m.n[requestLabels{r.Provider, r.Strategy, StatusClass(r.Status)}]++
	m.mu.Unlock()
}

// RequestTotals sums the requests per provider.
func (m *Metrics) RequestTotals() map[string]Totals {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]Totals{}
	for l, n := range m.n {
		t := out[l.provider]
		t.Requests += n
		if l.class == "5xx" {
			t.ServerErrors += n
		}
		out[l.provider] = t
	}
	return out
}

// Handler serves keypool_requests_total, keypool_keys and keypool_store_up
// in the Prometheus text format to callers that allowed accepts; others
// get 401 with a JSON error.
func (m *Metrics) Handler(allowed func(*http.Request) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowed(r) {
			unauthorized(w)
			return
		}
		var b strings.Builder
		b.WriteString("# HELP keypool_requests_total Relayed client requests by provider, strategy and the status class the client got.\n# TYPE keypool_requests_total counter\n")
		m.mu.Lock()
		lines := make([]string, 0, len(m.n))
		for l, n := range m.n {
			lines = append(lines, fmt.Sprintf("keypool_requests_total{provider=%s,status_class=%s,strategy=%s} %d\n", quote(l.provider), quote(l.class), quote(l.strategy), n))
		}
		m.mu.Unlock()
		slices.Sort(lines)
		b.WriteString(strings.Join(lines, ""))
		if m.src.Keys != nil {
			b.WriteString("# HELP keypool_keys Keys by provider and state (exclusive).\n# TYPE keypool_keys gauge\n")
			for _, p := range m.src.Keys() {
				for _, s := range KeyStateNames {
					fmt.Fprintf(&b, "keypool_keys{provider=%s,state=%s} %d\n", quote(p.Provider), quote(s), p.Counts[s])
				}
			}
		}
		if m.src.Store != nil {
			backend, ok := m.src.Store()
			up := 0
			if ok {
				up = 1
			}
			fmt.Fprintf(&b, "# HELP keypool_store_up 1 while the store answers, 0 while it is degraded.\n# TYPE keypool_store_up gauge\nkeypool_store_up{backend=%s} %d\n", quote(backend), up)
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Write([]byte(b.String()))
	})
}

// quote writes a label value in the text format's escaping.
func quote(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v) + `"`
}
