package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/internal/fakeupstream"
	"github.com/keypool/keypool/worker-proxy/internal/redistest"
)

const testMetricsToken = "metrics-test-token-fake-00000001"

// The binary serves /metrics behind METRICS_TOKEN and keeps its request
// log in DATA_DIR/requests.db, across a restart.
func TestMetricsAndRequestLogInBinary(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"METRICS_TOKEN": testMetricsToken, "DATA_DIR": dir}
	f, p := startFakeProxy(t, fakeupstream.Options{}, env)
	_, secrets := addKeys(t, f, p, "openai", "sk-test-observe", fakeupstream.OK)
	for range 3 {
		if r := p.do("POST", "/api/openai/chat/completions", chatBody, bearer()); r.Status != http.StatusOK {
			t.Fatalf("relay: %d %s", r.Status, r.Body)
		}
	}
	if r := p.do("GET", "/metrics", nil, nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("/metrics without the token: %d", r.Status)
	}
	r := p.do("GET", "/metrics", nil, map[string]string{"Authorization": "Bearer " + testMetricsToken})
	if r.Status != 200 || !strings.Contains(string(r.Body), `keypool_requests_total{provider="openai",status_class="2xx",strategy="roundRobin"} 3`) ||
		!strings.Contains(string(r.Body), `keypool_request_log_records_total{result="dropped"} 0`) {
		t.Fatalf("/metrics: %d\n%s", r.Status, r.Body)
	}
	p.stop() // every line logged
	p.assertNoSecretsLogged(secrets...)
	if _, err := os.Stat(filepath.Join(dir, "requests.db")); err != nil {
		t.Fatal(err)
	}

	p = startProxy(t, map[string]string{"DATA_DIR": dir, "OPENAI_BASE_URL": f.URL + "/v1"})
	var resp adminapi.RequestsResponse
	p.admin("GET", "/admin/requests?provider=openai", nil).Decode(t, &resp)
	if len(resp.Records) != 3 || resp.Backend != "bolt" || resp.Max != 100000 || resp.MaxAge != "168h0m0s" {
		t.Fatalf("after a restart: %d records, %q %d %q", len(resp.Records), resp.Backend, resp.Max, resp.MaxAge)
	}
	if rec := resp.Records[0]; rec.Token != "CLIENT_TOKENS #1" || rec.Model != "gpt-4o-mini" || rec.Status != 200 {
		t.Fatalf("record: %+v", rec)
	}
	p.stop()
	p.assertNoSecretsLogged(secrets...)
}

// REQUEST_LOG_MAX=0 turns the request log off.
func TestRequestLogOffInBinary(t *testing.T) {
	p := startProxy(t, map[string]string{"REQUEST_LOG_MAX": "0"})
	var resp adminapi.RequestsResponse
	p.admin("GET", "/admin/requests", nil).Decode(t, &resp)
	if resp.Backend != "off" {
		t.Fatalf("backend %q, want off", resp.Backend)
	}
	if _, err := os.Stat(filepath.Join(p.DataDir, "requests.db")); err == nil {
		t.Fatal("requests.db was created with the log off")
	}
}

// With ALERT_WEBHOOK_URL set, a key the upstream rejects brings a
// webhook alert within a check interval; the log never shows the URL.
func TestAlertsInBinary(t *testing.T) {
	got := make(chan string, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- string(b)
	}))
	defer hook.Close()
	url := hook.URL + "/hooks/secret-fake-webhook-path"
	f, p := startFakeProxy(t, fakeupstream.Options{}, map[string]string{"ALERT_WEBHOOK_URL": "json=" + url, "ALERT_CHECK_INTERVAL": "100ms", "SYNC_INTERVAL": "200ms"})
	_, secrets := addKeys(t, f, p, "openai", "sk-test-alerting", fakeupstream.Invalid)
	time.Sleep(300 * time.Millisecond) // a first check sees the healthy pool
	if r := p.do("POST", "/api/openai/chat/completions", chatBody, bearer()); r.Status != http.StatusUnauthorized {
		t.Fatalf("relay: %d %s", r.Status, r.Body)
	}
	var bodies []string
	for len(bodies) < 2 {
		select {
		case b := <-got:
			bodies = append(bodies, b)
		case <-time.After(10 * time.Second):
			t.Fatalf("alerts received: %q", bodies)
		}
	}
	all := strings.Join(bodies, "\n")
	if !strings.Contains(all, `"kind":"key_disabled"`) || !strings.Contains(all, `"kind":"pool_empty"`) || strings.Contains(all, secrets[0]) {
		t.Fatalf("alerts: %s", all)
	}
	if r := p.admin("POST", "/admin/alerts/test", nil); r.Status != 200 || !strings.Contains(string(r.Body), `"ok":true`) {
		t.Fatalf("alert test: %d %s", r.Status, r.Body)
	}
	p.stop()
	if strings.Contains(p.stderr.String(), "secret-fake-webhook-path") {
		t.Fatal("the log shows the webhook URL")
	}
	p.assertNoSecretsLogged(secrets...)
}

// Two proxies on one Redis (STORE=redis) share one request log, and only
// one of them sends each alert.
func TestRedisSharedRequestLogAndAlerts(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	got := make(chan string, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- string(b)
	}))
	defer hook.Close()
	env := map[string]string{"STORE": "redis", "REDIS_URL": srv.URL(), "ALERT_WEBHOOK_URL": hook.URL, "ALERT_CHECK_INTERVAL": "100ms", "SYNC_INTERVAL": "200ms"}
	f, a := startFakeProxy(t, fakeupstream.Options{}, env)
	env["OPENAI_BASE_URL"] = f.URL + "/v1"
	b := startProxy(t, env)
	addKeys(t, f, a, "openai", "sk-test-shared", fakeupstream.OK)
	waitUntil(t, 5*time.Second, "the key on the second proxy", func() bool {
		var st adminapi.StatusResponse
		b.admin("GET", "/admin/status", nil).Decode(t, &st)
		return st.TotalKeys == 1
	})
	for _, p := range []*proxy{a, b, a} {
		if r := p.do("POST", "/api/openai/chat/completions", chatBody, bearer()); r.Status != http.StatusOK {
			t.Fatalf("relay: %d %s", r.Status, r.Body)
		}
	}
	waitUntil(t, 5*time.Second, "3 records seen from both proxies", func() bool {
		for _, p := range []*proxy{a, b} {
			var resp adminapi.RequestsResponse
			p.admin("GET", "/admin/requests", nil).Decode(t, &resp)
			if len(resp.Records) != 3 || resp.Backend != "redis" {
				return false
			}
		}
		return true
	})
	// Both see the pool go empty; one message arrives.
	ids := a.admin("GET", "/admin/status?provider=openai", nil).JSON(t)["keys"].([]any)
	id := ids[0].(map[string]any)["id"].(string)
	if r := a.admin("PUT", "/admin/keys/"+id, map[string]any{"isActive": false}); r.Status != 200 {
		t.Fatalf("turn off: %d %s", r.Status, r.Body)
	}
	select {
	case m := <-got:
		if !strings.Contains(m, `"kind":"pool_empty"`) {
			t.Fatalf("alert: %s", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no alert")
	}
	select {
	case m := <-got:
		t.Fatalf("a second alert: %s", m)
	case <-time.After(time.Second):
	}
}

func TestObservabilityConfig(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"METRICS_TOKEN": "short"}, "METRICS_TOKEN: too weak"},
		{map[string]string{"REQUEST_LOG_DAYS": "0"}, "REQUEST_LOG_DAYS"},
		{map[string]string{"REQUEST_LOG_MAX": "-5"}, "REQUEST_LOG_MAX"},
		{map[string]string{"METRICS_MAX_KEY_LABELS": "x"}, "METRICS_MAX_KEY_LABELS"},
		{map[string]string{"ALERT_WEBHOOK_URL": "ftp://secret-fake"}, "ALERT_WEBHOOK_URL: webhook #1"},
		{map[string]string{"ALERT_TELEGRAM_BOT_TOKEN": "123:secret-fake"}, "ALERT_TELEGRAM_CHAT_ID"},
		{map[string]string{"ALERT_MIN_AVAILABLE": "120%"}, "ALERT_MIN_AVAILABLE"},
		{map[string]string{"ALERT_ERROR_RATE": "2"}, "ALERT_ERROR_RATE"},
		{map[string]string{"ALERT_INTERVAL": "soon"}, "ALERT_INTERVAL"},
	} {
		_, err := LoadConfig(func(k string) string { return tc.env[k] })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error naming %s", tc.env, err, tc.want)
		}
		if err != nil && (strings.Contains(err.Error(), `"short"`) || strings.Contains(err.Error(), "secret-fake")) {
			t.Errorf("the error shows a secret: %v", err)
		}
	}
	cfg, err := LoadConfig(func(string) string { return "" })
	if err != nil || cfg.RequestLogDays != 7 || cfg.RequestLogMax != -1 || cfg.MetricsMaxKeyLabels != 100 ||
		len(cfg.AlertDestinations) != 0 || cfg.AlertMinAvailable.String() != "1" || cfg.AlertInterval != 10*time.Minute || cfg.AlertErrorRate != 0.5 {
		t.Fatalf("defaults: %+v, %v", cfg, err)
	}
}
