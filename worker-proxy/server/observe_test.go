package server

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/internal/fakeupstream"
	"github.com/keypool/keypool/worker-proxy/internal/testenv"
	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/provider"
	"github.com/keypool/keypool/worker-proxy/reqlog"
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

// Each relayed request leaves one record in the request log: the client
// token's name, provider, model, the final key masked, every attempt with
// its class, status and timings. No secret reaches the API or the file.
func TestRequestLogRecordsRelayedRequests(t *testing.T) {
	path := filepath.Join(t.TempDir(), "requests.db")
	rl, err := reqlog.OpenBolt(path, reqlog.Bounds{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := reqlog.New(rl, "bolt", reqlog.Options{BatchDelay: 10 * time.Millisecond})
	s, up := newUpstreamServer(t, func(c *Config) { c.RequestLog = l; c.AllowAnonymous = false })
	w := serve(s, "POST", "/admin/tokens", `{"name":"team-observe"}`)
	var tok adminapi.CreateTokenResponse
	if err := json.Unmarshal(w.Body.Bytes(), &tok); err != nil || tok.Token == "" {
		t.Fatalf("create token: %d %s", w.Code, w.Body)
	}
	const limited, good, gem = "sk-test-fake-reqlog-limited-01", "sk-test-fake-reqlog-good-00001", "AIza-test-fake-reqlog-000001"
	var ids = map[string]string{}
	for _, k := range [][2]string{{"openai", limited}, {"openai", good}, {"gemini", gem}} {
		w := serve(s, "POST", "/admin/keys", `{"provider":"`+k[0]+`","apiKey":"`+k[1]+`"}`)
		var added struct{ KeyID string }
		json.Unmarshal(w.Body.Bytes(), &added)
		ids[k[1]] = added.KeyID
	}
	up.SetBehavior(limited, fakeupstream.RateLimited)
	up.SetBehavior(gem, fakeupstream.Invalid)
	auth := http.Header{"Authorization": {"Bearer " + tok.Token}}
	for range 2 {
		if w := relayChat(s, "/api/openai/chat/completions", `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"secret prompt text"}]}`, auth); w.Code != 200 {
			t.Fatalf("relay: %d %s", w.Code, w.Body)
		}
	}
	if w := relayChat(s, "/api/gemini/models/gemini-2.0-flash:generateContent?strategy=random", `{"contents":[]}`, http.Header{"X-Goog-Api-Key": {tok.Token}}); w.Code != 400 {
		t.Fatalf("gemini relay with an invalid key: %d %s", w.Code, w.Body)
	}
	if w := relayChat(s, "/api/gemini/models/gemini-2.0-flash:generateContent", `{}`, auth); w.Code != 503 {
		t.Fatalf("gemini relay with no key left: %d %s", w.Code, w.Body)
	}
	l.Flush()

	get := func(query string) adminapi.RequestsResponse {
		t.Helper()
		w := serve(s, "GET", "/admin/requests"+query, "")
		if w.Code != 200 {
			t.Fatalf("GET /admin/requests%s: %d %s", query, w.Code, w.Body)
		}
		for _, secret := range []string{limited, good, gem, tok.Token, adminKey, "secret prompt"} {
			if strings.Contains(w.Body.String(), secret) {
				t.Fatalf("the request log shows %q", secret)
			}
		}
		var resp adminapi.RequestsResponse
		json.Unmarshal(w.Body.Bytes(), &resp)
		return resp
	}
	all := get("")
	if len(all.Records) != 4 || all.Backend != "bolt" {
		t.Fatalf("%d records from %q, want 4 from bolt", len(all.Records), all.Backend)
	}
	noKey, invalid, second, first := all.Records[0], all.Records[1], all.Records[2], all.Records[3]
	if first.Token != "team-observe" || first.TokenID != tok.ID || first.Provider != "openai" || first.Model != "gpt-4o-mini" ||
		first.Route != "api" || first.Strategy != "roundRobin" || first.Status != 200 || first.Class != "" ||
		first.KeyID != ids[good] || first.Key != pool.Mask(good) || first.LatencyMs <= 0 || first.TTFBMs <= 0 || first.TTFBMs > first.LatencyMs {
		t.Errorf("first record: %+v", first)
	}
	if len(first.Attempts) != 2 || first.Attempts[0] != (adminapi.RequestAttempt{KeyID: ids[limited], Key: pool.Mask(limited), Class: "rate_limited", Status: 429}) ||
		first.Attempts[1].KeyID != ids[good] || first.Attempts[1].Class != "success" {
		t.Errorf("first record's attempts: %+v", first.Attempts)
	}
	if len(second.Attempts) != 1 || second.KeyID != ids[good] {
		t.Errorf("second record (the limited key rests): %+v", second)
	}
	if invalid.Provider != "gemini" || invalid.Model != "gemini-2.0-flash" || invalid.Status != 400 || invalid.Class != "invalid_key" || invalid.Strategy != "random" {
		t.Errorf("invalid-key record: %+v", invalid)
	}
	if noKey.Status != 503 || noKey.KeyID != "" || len(noKey.Attempts) != 0 || noKey.TTFBMs != 0 {
		t.Errorf("no-key record: %+v", noKey)
	}

	for _, tc := range []struct {
		query string
		want  int
	}{
		{"?provider=openai", 2}, {"?status=5xx", 1}, {"?status=400", 1}, {"?status=2xx&provider=gemini", 0},
		{"?key=" + ids[limited], 1}, {"?key=" + ids[gem], 1}, {"?token=team-observe", 4}, {"?token=" + tok.ID, 4}, {"?token=other", 0},
		{"?model=gpt-4o-mini", 2}, {"?since=" + url.QueryEscape(time.Now().Add(time.Minute).Format(time.RFC3339)), 0},
		{"?until=" + url.QueryEscape(time.Now().Add(time.Minute).Format(time.RFC3339)), 4},
	} {
		if got := get(tc.query); len(got.Records) != tc.want {
			t.Errorf("%s: %d records, want %d", tc.query, len(got.Records), tc.want)
		}
	}
	page := get("?limit=3")
	if len(page.Records) != 3 || page.Next == "" {
		t.Fatalf("limit 3: %d records, next %q", len(page.Records), page.Next)
	}
	if rest := get("?limit=3&cursor=" + page.Next); len(rest.Records) != 1 || rest.Records[0].ID != first.ID || rest.Next != "" {
		t.Fatalf("second page: %+v", rest)
	}
	for _, q := range []string{"?status=abc", "?limit=0", "?since=today", "?cursor=nope"} {
		if w := serve(s, "GET", "/admin/requests"+q, ""); w.Code != 400 || !strings.Contains(w.Body.String(), `"error"`) {
			t.Errorf("%s: %d %s, want a 400 JSON error", q, w.Code, w.Body)
		}
	}
	req := httptest.NewRequest("GET", "/admin/requests", nil)
	if w := httptest.NewRecorder(); func() int { s.ServeHTTP(w, req); return w.Code }() != 401 {
		t.Error("GET /admin/requests without the admin key was not refused")
	}

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{limited, good, gem, tok.Token, adminKey, "secret prompt"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("requests.db holds %q", secret)
		}
	}
}

// Without a request log the endpoint answers an empty, "off" log.
func TestRequestLogOff(t *testing.T) {
	s, _ := newUpstreamServer(t, nil)
	w := serve(s, "GET", "/admin/requests", "")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"backend":"off"`) || !strings.Contains(w.Body.String(), `"records":[]`) {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}
