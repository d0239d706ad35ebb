package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keypool/keypool/worker-proxy/internal/fakeupstream"
	"github.com/keypool/keypool/worker-proxy/internal/testenv"
	"github.com/keypool/keypool/worker-proxy/provider"
	"github.com/keypool/keypool/worker-proxy/store/boltstore"
)

// newUpstreamServer runs a Server whose providers all point at one fake
// upstream; edit adjusts the config first.
func newUpstreamServer(t *testing.T, edit func(*Config)) (*Server, *fakeupstream.Server) {
	t.Helper()
	up, err := fakeupstream.Start(fakeupstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	bolt, err := boltstore.Open(filepath.Join(t.TempDir(), "keypool.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bolt.Close() })
	provs := provider.Defaults()
	for _, p := range provs {
		base := up.URL + "/v1"
		if p.Name == "gemini" {
			base = up.URL + "/v1beta"
		}
		if p.Base, err = provider.ParseBase(base); err != nil {
			t.Fatal(err)
		}
	}
	reg, err := provider.NewRegistry(provs...)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{AdminKey: adminKey, AllowAnonymous: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if edit != nil {
		edit(&cfg)
	}
	s, err := New(t.Context(), cfg, bolt, reg)
	if err != nil {
		t.Fatal(err)
	}
	return s, up
}

func relayChat(s *Server, path, body string, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	return w
}

func scrapeMetrics(s *Server, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", "/metrics", nil)
	for k, v := range header {
		req.Header[k] = v
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	return w
}

// Relayed requests show up on /metrics: by status class, attempts and the
// failover a rate-limited key caused, latency, keys by state; the output
// passes promtool and names no secret.
func TestMetricsCountRelayedRequests(t *testing.T) {
	s, up := newUpstreamServer(t, nil)
	const limited, good = "sk-test-fake-metrics-limited-01", "sk-test-fake-metrics-good-0001"
	for _, k := range []string{limited, good} {
		if w := serve(s, "POST", "/admin/keys", `{"provider":"openai","apiKey":"`+k+`"}`); w.Code != 201 {
			t.Fatalf("add: %d %s", w.Code, w.Body)
		}
	}
	serve(s, "POST", "/admin/keys", `{"provider":"gemini","apiKey":"AIza-test-fake-metrics-00001","isActive":false}`)
	up.SetBehavior(limited, fakeupstream.RateLimited)
	for range 4 {
		if w := relayChat(s, "/api/openai/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`, nil); w.Code != 200 {
			t.Fatalf("relay: %d %s", w.Code, w.Body)
		}
	}
	if w := relayChat(s, "/api/gemini/models/gemini-2.0-flash:generateContent", `{}`, nil); w.Code != 503 {
		t.Fatalf("relay without a servable key: %d, want 503", w.Code)
	}

	w := scrapeMetrics(s, http.Header{"X-Admin-Key": {adminKey}})
	if w.Code != 200 {
		t.Fatalf("metrics: %d %s", w.Code, w.Body)
	}
	body := w.Body.String()
	for _, want := range []string{
		`keypool_requests_total{provider="openai",status_class="2xx",strategy="roundRobin"} 4`,
		`keypool_requests_total{provider="gemini",status_class="5xx",strategy="roundRobin"} 1`,
		`keypool_upstream_attempts_total{class="success",provider="openai"} 4`,
		`keypool_upstream_attempts_total{class="rate_limited",provider="openai"} 1`,
		`keypool_failovers_total{class="rate_limited",provider="openai"} 1`,
		`keypool_client_requests_total{token="anonymous"} 5`,
		`keypool_request_duration_seconds_count{provider="openai"} 4`,
		`keypool_time_to_first_byte_seconds_count{provider="openai"} 4`,
		// A rate limit rests the (key, model) pair only: the key stays active.
		`keypool_keys{provider="openai",state="active"} 2`,
		`keypool_keys{provider="openai",state="cooling"} 0`,
		`keypool_keys{provider="gemini",state="inactive"} 1`,
		`keypool_store_up{backend=""} 1`,
		`keypool_key_requests_total{key_id="`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	for _, secret := range []string{limited, good, adminKey, "AIza-test-fake"} {
		if strings.Contains(body, secret) {
			t.Errorf("metrics contain the secret %q", secret)
		}
	}
	if p, err := exec.LookPath("promtool"); err != nil {
		testenv.Missing(t, "promtool (Debian package prometheus)")
	} else {
		cmd := exec.Command(p, "check", "metrics")
		cmd.Stdin = strings.NewReader(body)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool check metrics: %v\n%s", err, out)
		}
	}
}

// /metrics takes METRICS_TOKEN as a bearer token when it is set, and then
// only that; unset, the admin key.
func TestMetricsAuth(t *testing.T) {
	const token = "metrics-token-test-fake-000001"
	s, _ := newUpstreamServer(t, nil)
	withToken, _ := newUpstreamServer(t, func(c *Config) { c.MetricsToken = token })
	for _, tc := range []struct {
		name   string
		s      *Server
		header http.Header
		want   int
	}{
		{"no credentials", s, nil, 401},
		{"admin key header", s, http.Header{"X-Admin-Key": {adminKey}}, 200},
		{"admin key bearer", s, http.Header{"Authorization": {"Bearer " + adminKey}}, 200},
		{"metrics token unset", s, http.Header{"Authorization": {"Bearer " + token}}, 401},
		{"metrics token", withToken, http.Header{"Authorization": {"Bearer " + token}}, 200},
		{"admin key when a metrics token is set", withToken, http.Header{"X-Admin-Key": {adminKey}}, 401},
		{"wrong token", withToken, http.Header{"Authorization": {"Bearer metrics-token-test-fake-000002"}}, 401},
	} {
		w := scrapeMetrics(tc.s, tc.header)
		if w.Code != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, w.Code, tc.want)
		}
		if w.Code == 401 && (strings.Contains(w.Body.String(), token) || strings.Contains(w.Body.String(), adminKey)) {
			t.Errorf("%s: the refusal names a secret", tc.name)
		}
	}
}
