package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/alerts"
	"github.com/keypool/keypool/worker-proxy/internal/fakeupstream"
)

// A key the upstream rejects is disabled by the relay; the next check
// sends "key disabled" and "no key can serve" to the webhook, naming the
// key masked and never its secret. POST /admin/alerts/test reaches the
// webhook too, and GET /admin/alerts shows the destination without its
// path.
func TestAlertsFromRelay(t *testing.T) {
	got := make(chan map[string]any, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		json.Unmarshal(b, &m)
		m["raw"] = string(b)
		got <- m
	}))
	defer hook.Close()
	n := alerts.New(alerts.Config{Destinations: []alerts.Destination{{Format: "json", URL: hook.URL + "/secret-fake-hook-path"}}})
	s, up := newUpstreamServer(t, func(c *Config) { c.Alerts = n })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.RunAlerts(ctx, 0); close(done) }()
	defer func() { cancel(); <-done }()

	const secret = "sk-test-fake-alerts-invalid-01"
	serve(s, "POST", "/admin/keys", `{"provider":"openai","apiKey":"`+secret+`"}`)
	up.SetBehavior(secret, fakeupstream.Invalid)
	n.Check(s.AlertState())
	if w := relayChat(s, "/api/openai/chat/completions", `{"model":"gpt-4o-mini","messages":[]}`, nil); w.Code != 401 {
		t.Fatalf("relay: %d", w.Code)
	}
	n.Check(s.AlertState())
	kinds := map[string]map[string]any{}
	for range 2 {
		select {
		case m := <-got:
			kinds[m["kind"].(string)] = m
			if strings.Contains(m["raw"].(string), secret) {
				t.Fatalf("an alert holds the key: %s", m["raw"])
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("alerts received: %v", kinds)
		}
	}
	if d := kinds["key_disabled"]; d == nil || !strings.Contains(d["title"].(string), "sk-t…") || !strings.Contains(d["text"].(string), "invalid_key") {
		t.Errorf("key disabled alert: %v", d)
	}
	if e := kinds["pool_empty"]; e == nil || e["provider"] != "openai" {
		t.Errorf("pool empty alert: %v", e)
	}

	w := serve(s, "POST", "/admin/alerts/test", "")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"ok":true`) || strings.Contains(w.Body.String(), "secret-fake-hook-path") {
		t.Fatalf("alert test: %d %s", w.Code, w.Body)
	}
	if m := <-got; m["kind"] != "test" {
		t.Fatalf("test alert: %v", m)
	}
	w = serve(s, "GET", "/admin/alerts", "")
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"enabled":true`) || !strings.Contains(w.Body.String(), `"json http://127.0.0.1:`) ||
		strings.Contains(w.Body.String(), "secret-fake-hook-path") || strings.Contains(w.Body.String(), secret) {
		t.Fatalf("alert settings: %d %s", w.Code, w.Body)
	}
}

func TestAlertsOff(t *testing.T) {
	s, _ := newUpstreamServer(t, nil)
	if w := serve(s, "POST", "/admin/alerts/test", ""); w.Code != 400 || !strings.Contains(w.Body.String(), "ALERT_WEBHOOK_URL") {
		t.Fatalf("test without destinations: %d %s", w.Code, w.Body)
	}
	if w := serve(s, "GET", "/admin/alerts", ""); w.Code != 200 || !strings.Contains(w.Body.String(), `"enabled":false`) {
		t.Fatalf("settings: %d %s", w.Code, w.Body)
	}
}
