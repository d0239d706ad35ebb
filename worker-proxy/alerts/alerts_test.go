package alerts_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/alerts"
)

// receiver is a local webhook endpoint that records what it gets and
// answers with the statuses queued in fail (then 200).
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	got  []message
	fail []int
	ch   chan message
}

type message struct {
	path string
	body map[string]any
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{ch: make(chan message, 100)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		var m map[string]any
		json.Unmarshal(b, &m)
		r.mu.Lock()
		status := 200
		if len(r.fail) > 0 {
			status, r.fail = r.fail[0], r.fail[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(status)
		if status == 200 {
			msg := message{path: req.URL.Path, body: m}
			r.mu.Lock()
			r.got = append(r.got, msg)
			r.mu.Unlock()
			r.ch <- msg
		}
	}))
	t.Cleanup(r.Close)
	return r
}

// next waits for the next delivered message.
func (r *receiver) next(t *testing.T) message {
	t.Helper()
	select {
	case m := <-r.ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no alert arrived")
	}
	return message{}
}

// none asserts no message arrives for a moment.
func (r *receiver) none(t *testing.T) {
	t.Helper()
	select {
	case m := <-r.ch:
		t.Fatalf("unexpected alert: %v", m.body)
	case <-time.After(100 * time.Millisecond):
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var logs = &syncBuf{}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// start runs a Notifier's sender with cfg on a test clock.
func start(t *testing.T, cfg alerts.Config) (*alerts.Notifier, *clock) {
	clk := &clock{t: time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)}
	cfg.Now = clk.Now
	cfg.Backoff = time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	n := alerts.New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx, 0, nil); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return n, clk
}

func state(provider string, available, total int, disabled ...alerts.KeyRef) []alerts.ProviderState {
	return []alerts.ProviderState{{Provider: provider, Available: available, Total: total, Disabled: disabled}}
}

// An empty pool alerts once per interval, its recovery once, and flapping
// inside the interval sends nothing more.
func TestPoolEmptyDebouncedAndRecovered(t *testing.T) {
	r := newReceiver(t)
	n, clk := start(t, alerts.Config{Destinations: []alerts.Destination{{Format: "json", URL: r.URL + "/hook"}}})
	n.Check(state("gemini", 3, 3))
	r.none(t)
	n.Check(state("gemini", 0, 3))
	m := r.next(t)
	if m.body["kind"] != "pool_empty" || m.body["severity"] != "critical" || m.body["provider"] != "gemini" || m.body["total"] != 3.0 {
		t.Fatalf("empty alert: %v", m.body)
	}
	clk.Add(time.Minute)
	n.Check(state("gemini", 0, 3))
	r.none(t)
	n.Check(state("gemini", 2, 3))
	if m := r.next(t); m.body["kind"] != "recovered" || m.body["resolves"] != "pool_empty" {
		t.Fatalf("recovery: %v", m.body)
	}
	// Flapping within the interval: nothing.
	for range 3 {
		clk.Add(time.Minute)
		n.Check(state("gemini", 0, 3))
		n.Check(state("gemini", 3, 3))
	}
	r.none(t)
	// After the interval, the condition alerts again.
	clk.Add(10 * time.Minute)
	n.Check(state("gemini", 0, 3))
	if m := r.next(t); m.body["kind"] != "pool_empty" {
		t.Fatalf("after the interval: %v", m.body)
	}
}

func TestPoolLowThresholds(t *testing.T) {
	r := newReceiver(t)
	pct, _ := alerts.ParseThreshold("30%")
	n, _ := start(t, alerts.Config{Destinations: []alerts.Destination{{Format: "json", URL: r.URL}}, MinAvailable: &pct})
	n.Check(state("openai", 3, 10))
	r.none(t)
	n.Check(state("openai", 2, 10))
	if m := r.next(t); m.body["kind"] != "pool_low" || m.body["available"] != 2.0 || !strings.Contains(m.body["text"].(string), "ALERT_MIN_AVAILABLE=30%") {
		t.Fatalf("low alert: %v", m.body)
	}
	n.Check(state("openai", 0, 10))
	if m := r.next(t); m.body["kind"] != "pool_empty" {
		t.Fatalf("empty after low: %v", m.body)
	}
	// A provider without keys is not watched.
	n.Check(state("anthropic", 0, 0))
	r.none(t)

	cnt, _ := alerts.ParseThreshold("2")
	r2 := newReceiver(t)
	n2, _ := start(t, alerts.Config{Destinations: []alerts.Destination{{Format: "json", URL: r2.URL}}, MinAvailable: &cnt})
	n2.Check(state("openai", 1, 50))
	if m := r2.next(t); m.body["kind"] != "pool_low" {
		t.Fatalf("count threshold: %v", m.body)
	}
}

func TestKeyDisabled(t *testing.T) {
	r := newReceiver(t)
	n, _ := start(t, alerts.Config{Destinations: []alerts.Destination{{Format: "json", URL: r.URL}}})
	old := alerts.KeyRef{ID: "key_old", Masked: "sk-t…0001", Reason: "invalid_key: 401"}
	n.Check(state("openai", 5, 6, old))
	r.none(t) // disabled before the first check: old news
	k := alerts.KeyRef{ID: "key_new", Masked: "sk-t…0002", Reason: "invalid_key: 401 invalid_api_key"}
	n.Check(state("openai", 4, 6, old, k))
	m := r.next(t)
	if m.body["kind"] != "key_disabled" || !strings.Contains(m.body["title"].(string), "key_new (sk-t…0002)") || !strings.Contains(m.body["text"].(string), "invalid_api_key") {
		t.Fatalf("key disabled: %v", m.body)
	}
	n.Check(state("openai", 4, 6, old, k))
	r.none(t)
	var many []alerts.KeyRef
	for i := range 7 {
		many = append(many, alerts.KeyRef{ID: "key_m" + string(rune('a'+i)), Masked: "sk-t…xxxx", Reason: "quota"})
	}
	n.Check(state("openai", 1, 13, append([]alerts.KeyRef{old, k}, many...)...))
	m = r.next(t)
	if !strings.Contains(m.body["title"].(string), "7 keys disabled") || !strings.Contains(m.body["text"].(string), "and 2 more") || len(m.body["keys"].([]any)) != 5 {
		t.Fatalf("many disabled: %v", m.body)
	}
	r.none(t)
}

func TestErrorRate(t *testing.T) {
	r := newReceiver(t)
	n, clk := start(t, alerts.Config{Destinations: []alerts.Destination{{Format: "json", URL: r.URL}}, ErrorRate: 0.5, ErrorWindow: 5 * time.Minute, ErrorMinRequests: 20})
	var reqs, errs int64
	tick := func(req, e int64) {
		reqs, errs = reqs+req, errs+e
		clk.Add(time.Minute)
		n.Check([]alerts.ProviderState{{Provider: "anthropic", Total: 2, Available: 2, Requests: reqs, ServerErrors: errs}})
	}
	tick(0, 0)
	tick(10, 9) // 90%, but under 20 requests
	r.none(t)
	tick(20, 12)
	m := r.next(t)
	if m.body["kind"] != "error_rate" || m.body["errorRate"].(float64) < 0.5 {
		t.Fatalf("error rate: %v", m.body)
	}
	tick(30, 20)
	r.none(t)
	for range 6 {
		tick(40, 0)
	}
	if m := r.next(t); m.body["kind"] != "recovered" || m.body["resolves"] != "error_rate" {
		t.Fatalf("error rate recovery: %v", m.body)
	}
}

// Slack gets {"text"}, Telegram a sendMessage call with the chat id, and
// generic JSON the alert object.
func TestFormats(t *testing.T) {
	r := newReceiver(t)
	const botToken = "123456:test-fake-bot-token"
	n, _ := start(t, alerts.Config{Destinations: []alerts.Destination{
		{Format: "slack", URL: r.URL + "/slack"},
		{Format: "telegram", URL: r.URL, BotToken: botToken, ChatID: "-1001234"},
		{Format: "json", URL: r.URL + "/json"},
	}})
	res := n.Test(context.Background())
	if len(res) != 3 {
		t.Fatalf("%d results", len(res))
	}
	for _, x := range res {
		if !x.OK || x.Status != 200 || x.Attempts != 1 || strings.Contains(x.Destination, botToken) || strings.Contains(x.Destination, "/slack") {
			t.Errorf("result %+v", x)
		}
	}
	byPath := map[string]map[string]any{}
	for range 3 {
		m := r.next(t)
		byPath[m.path] = m.body
	}
	if s := byPath["/slack"]; len(s) != 1 || !strings.HasPrefix(s["text"].(string), "*API Key Pool: test alert*\n") {
		t.Errorf("slack body: %v", s)
	}
	if tg := byPath["/bot"+botToken+"/sendMessage"]; tg["chat_id"] != "-1001234" || !strings.Contains(tg["text"].(string), "test alert") {
		t.Errorf("telegram body: %v (paths %v)", tg, byPath)
	}
	if j := byPath["/json"]; j["kind"] != "test" || j["title"] != "API Key Pool: test alert" {
		t.Errorf("json body: %v", j)
	}
	if rec := n.Recent(); len(rec) != 1 || rec[0].Alert.Kind != "test" {
		t.Errorf("recent: %+v", rec)
	}
}

// Failed sends are retried with backoff; a 4xx other than 429 is not; an
// unreachable destination's error never shows its URL.
func TestRetriesAndSecrecy(t *testing.T) {
	r := newReceiver(t)
	r.fail = []int{500, 503}
	n, _ := start(t, alerts.Config{Destinations: []alerts.Destination{{Format: "json", URL: r.URL + "/retry"}}, Retries: 3})
	n.Check(state("gemini", 0, 1))
	r.next(t)
	waitFor(t, func() bool { return len(n.Recent()) == 1 })
	if res := n.Recent()[0].Results[0]; !res.OK || res.Attempts != 3 {
		t.Fatalf("retried send: %+v", res)
	}

	r.fail = []int{400}
	res := n.Test(context.Background())
	if res[0].OK || res[0].Attempts != 1 || res[0].Status != 400 {
		t.Fatalf("400: %+v", res[0])
	}

	dead := httptest.NewServer(http.NotFoundHandler())
	secretURL := dead.URL + "/services/T000/B000/secret-fake-webhook-path"
	dead.Close()
	n2, _ := start(t, alerts.Config{Destinations: []alerts.Destination{{Format: "slack", URL: secretURL}}, Retries: 1})
	res = n2.Test(context.Background())
	if res[0].OK || res[0].Error == "" || res[0].Attempts != 2 {
		t.Fatalf("unreachable: %+v", res[0])
	}
	b, _ := json.Marshal(n2.Recent())
	for _, where := range []string{res[0].Error, res[0].Destination, string(b), logs.String()} {
		if strings.Contains(where, "secret-fake-webhook-path") {
			t.Fatalf("the webhook URL leaked: %s", where)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
	}
}

func TestParse(t *testing.T) {
	d, err := alerts.ParseWebhooks(" https://hooks.slack.com/services/x , json=https://example.test/a,slack=http://127.0.0.1:9/h,")
	if err != nil || len(d) != 3 || d[0].Format != "slack" || d[1].Format != "json" || d[1].URL != "https://example.test/a" || d[2].Format != "slack" {
		t.Fatalf("ParseWebhooks = %+v, %v", d, err)
	}
	for _, bad := range []string{"ftp://x", "not a url", "slack=", "https://"} {
		if _, err := alerts.ParseWebhooks(bad); err == nil {
			t.Errorf("ParseWebhooks(%q) accepted", bad)
		}
	}
	for in, want := range map[string]string{"2": "2", "20%": "20%", " 0 ": "0"} {
		if th, err := alerts.ParseThreshold(in); err != nil || th.String() != want {
			t.Errorf("ParseThreshold(%q) = %v, %v", in, th, err)
		}
	}
	for _, bad := range []string{"", "-1", "101%", "x%", "2.5"} {
		if _, err := alerts.ParseThreshold(bad); err == nil {
			t.Errorf("ParseThreshold(%q) accepted", bad)
		}
	}
}
