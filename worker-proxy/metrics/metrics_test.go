package metrics_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/internal/testenv"
	"github.com/keypool/keypool/worker-proxy/metrics"
)

const testToken = "metrics-test-token-fake-0001"

func source(keys int) metrics.Source {
	return metrics.Source{
		Keys: func() []metrics.KeyStates {
			return []metrics.KeyStates{
				{Provider: "gemini", Counts: map[string]int{"active": 2, "cooling": 1, "disabled": 1}},
				{Provider: "openai", Counts: map[string]int{"inactive": 1}},
			}
		},
		KeyCount: func() int { return keys },
		PerKey: func() []metrics.KeyCounts {
			return []metrics.KeyCounts{{Provider: "gemini", ID: "key_test_1", Requests: 7, Failures: 2}}
		},
		Store: func() (string, bool) { return "bolt", false },
	}
}

// scrape serves m over HTTP and returns the status and body.
func scrape(t *testing.T, m *metrics.Metrics, auth string) (int, string) {
	t.Helper()
	srv := httptest.NewServer(m.Handler(func(r *http.Request) bool { return metrics.BearerIs(r, testToken) }))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/metrics", nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		testenv.Missing(t, "promtool (Debian package prometheus)")
	}
	return p
}

func TestMetricsExposition(t *testing.T) {
	m := metrics.New(source(1), metrics.Options{})
	m.Observe(metrics.Request{Provider: "gemini", Strategy: "roundRobin", Token: "team-a", Model: "gemini-2.0-flash",
		Status: 200, Attempts: []string{"rate_limited", "success"}, Latency: 1500 * time.Millisecond, TTFB: 300 * time.Millisecond,
		PromptTokens: 12, CompletionTokens: 30})
	m.Observe(metrics.Request{Provider: "gemini", Strategy: "roundRobin", Status: 503, Latency: time.Millisecond})
	m.Observe(metrics.Request{Provider: "openai", Strategy: "random", Token: "team-a", Status: 499, Attempts: []string{"canceled"}, Latency: time.Second})

	status, body := scrape(t, m, "Bearer "+testToken)
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	for _, want := range []string{
		`keypool_requests_total{provider="gemini",status_class="2xx",strategy="roundRobin"} 1`,
		`keypool_requests_total{provider="gemini",status_class="5xx",strategy="roundRobin"} 1`,
		`keypool_requests_total{provider="openai",status_class="4xx",strategy="random"} 1`,
		`keypool_client_requests_total{token="team-a"} 2`,
		`keypool_client_requests_total{token="anonymous"} 1`,
		`keypool_upstream_attempts_total{class="rate_limited",provider="gemini"} 1`,
		`keypool_upstream_attempts_total{class="success",provider="gemini"} 1`,
		`keypool_failovers_total{class="rate_limited",provider="gemini"} 1`,
		`keypool_request_duration_seconds_bucket{provider="gemini",le="2.5"} 2`,
		`keypool_request_duration_seconds_bucket{provider="gemini",le="1"} 1`,
		`keypool_time_to_first_byte_seconds_count{provider="gemini"} 1`,
		`keypool_tokens_total{model="gemini-2.0-flash",provider="gemini",type="prompt"} 12`,
		`keypool_tokens_total{model="gemini-2.0-flash",provider="gemini",type="completion"} 30`,
		`keypool_keys{provider="gemini",state="active"} 2`,
		`keypool_keys{provider="gemini",state="exhausted"} 0`,
		`keypool_keys{provider="openai",state="inactive"} 1`,
		`keypool_store_up{backend="bolt"} 0`,
		`keypool_key_requests_total{key_id="key_test_1",provider="gemini"} 7`,
		`keypool_key_failures_total{key_id="key_test_1",provider="gemini"} 2`,
		`go_goroutines `,
	} {
		if !strings.Contains(body, want+"\n") && !strings.Contains(body, want) {
			t.Errorf("missing %q", want)
		}
	}
	if strings.Contains(body, `keypool_failovers_total{class="success"`) || strings.Contains(body, `keypool_failovers_total{class="canceled"`) {
		t.Error("the last attempt counted as a failover")
	}
	if got := m.RequestTotals(); got["gemini"] != (metrics.Totals{Requests: 2, ServerErrors: 1}) || got["openai"] != (metrics.Totals{Requests: 1}) {
		t.Errorf("RequestTotals = %+v", got)
	}
	if strings.Contains(body, testToken) {
		t.Error("the metrics token appears in the output")
	}

	cmd := exec.Command(promtool(t), "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestMetricsAuth(t *testing.T) {
	m := metrics.New(source(1), metrics.Options{})
	for _, auth := range []string{"", "Bearer wrong-token-fake-0000000", "Basic " + testToken, testToken} {
		status, body := scrape(t, m, auth)
		if status != http.StatusUnauthorized || !strings.Contains(body, `"error"`) {
			t.Errorf("auth %q: status %d, body %q; want 401 with a JSON error", auth, status, body)
		}
	}
	if status, _ := scrape(t, m, "bearer "+testToken); status != 200 {
		t.Errorf("lower-case bearer: status %d, want 200", status)
	}
	if metrics.BearerIs(httptest.NewRequest("GET", "/", nil), "") {
		t.Error("an empty secret matched a request without credentials")
	}
}

func TestLabelCaps(t *testing.T) {
	m := metrics.New(source(3), metrics.Options{MaxTokenLabels: 2, MaxModelLabels: 1, MaxKeyLabels: 2})
	for _, tok := range []string{"t1", "t2", "t3", "t4", "t1"} {
		m.Observe(metrics.Request{Provider: "openai", Strategy: "random", Token: tok, Model: "m-" + tok, Status: 200, PromptTokens: 1})
	}
	_, body := scrape(t, m, "Bearer "+testToken)
	for _, want := range []string{
		`keypool_client_requests_total{token="t1"} 2`,
		`keypool_client_requests_total{token="t2"} 1`,
		`keypool_client_requests_total{token="other"} 2`,
		`keypool_tokens_total{model="m-t1",provider="openai",type="prompt"} 2`,
		`keypool_tokens_total{model="other",provider="openai",type="prompt"} 3`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %q", want)
		}
	}
	if strings.Contains(body, "keypool_key_requests_total{") {
		t.Error("per-key series reported for a pool above MaxKeyLabels")
	}
}

func TestStatusClass(t *testing.T) {
	for status, want := range map[int]string{200: "2xx", 204: "2xx", 301: "3xx", 429: "4xx", 499: "4xx", 503: "5xx", 0: "other", 600: "other"} {
		if got := metrics.StatusClass(status); got != want {
			t.Errorf("StatusClass(%d) = %q, want %q", status, got, want)
		}
	}
}

// TestRulesAndDashboard checks the example alert rules with promtool (and
// their unit tests), and that every keypool_ metric the rules and the
// Grafana dashboard use is one the proxy exports.
func TestRulesAndDashboard(t *testing.T) {
	m := metrics.New(source(1), metrics.Options{})
	m.Observe(metrics.Request{Provider: "gemini", Strategy: "random", Status: 200, Attempts: []string{"upstream", "success"},
		TTFB: time.Second, Latency: time.Second, PromptTokens: 1, CompletionTokens: 1, Model: "x"})
	_, body := scrape(t, m, "Bearer "+testToken)
	exported := map[string]bool{}
	for _, line := range strings.Split(body, "\n") {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			exported[strings.Fields(name)[0]] = true
		}
	}
	names := regexp.MustCompile(`keypool_[a-z_]+`)
	for _, file := range []string{"alerts.yml", "alerts_test.yml", "grafana.json"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names.FindAllString(string(b), -1) {
			base := n
			for _, suf := range []string{"_bucket", "_count", "_sum"} {
				if exported[strings.TrimSuffix(n, suf)] {
					base = strings.TrimSuffix(n, suf)
				}
			}
			if !exported[base] {
				t.Errorf("%s uses %s, which the proxy does not export", file, n)
			}
		}
	}
	pt := promtool(t)
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		var out bytes.Buffer
		cmd := exec.Command(pt, args...)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
	}
}

// keypoolSeries returns the keypool_ series of a scrape by name and labels
// (sums left out: float sums need not add up exactly).
func keypoolSeries(t *testing.T, m *metrics.Metrics) map[string]float64 {
	t.Helper()
	_, body := scrape(t, m, "Bearer "+testToken)
	out := map[string]float64{}
	for _, line := range strings.Split(body, "\n") {
		name, value, ok := strings.Cut(line, " ")
		if !ok || !strings.HasPrefix(name, "keypool_") || strings.Contains(name, "_sum") {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out[name] = v
	}
	return out
}

// The relay's series are looked up once and reused: the same requests
// observed 50 times, concurrently, give the same series 50 times over, and
// no series a single observation would not have created.
func TestObserveRepeatedAndConcurrent(t *testing.T) {
	reqs := []metrics.Request{
		{Provider: "gemini", Strategy: "roundRobin", Token: "team-a", Model: "gemini-2.0-flash", Status: 200,
			Attempts: []string{"rate_limited", "upstream", "success"}, Latency: 1500 * time.Millisecond, TTFB: 300 * time.Millisecond, PromptTokens: 12, CompletionTokens: 30},
		{Provider: "gemini", Strategy: "roundRobin", Status: 503, Latency: time.Millisecond, Attempts: []string{"upstream"}},
		{Provider: "openai", Strategy: "random", Token: "team-b", Status: 499, Attempts: []string{"canceled"}, Latency: time.Second},
		{Provider: "openai", Strategy: "leastUsed", Token: "team-a", Model: "gpt-4o", Status: 200, Attempts: []string{"success"},
			Latency: 20 * time.Millisecond, TTFB: 10 * time.Millisecond, CompletionTokens: 7},
		{Provider: "openai", Strategy: "random", Status: 429, Latency: time.Millisecond},
	}
	once, many := metrics.New(source(1), metrics.Options{}), metrics.New(source(1), metrics.Options{})
	for _, r := range reqs {
		once.Observe(r)
	}
	const n = 50
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for _, r := range reqs {
				many.Observe(r)
			}
		})
	}
	wg.Wait()
	want, got := keypoolSeries(t, once), keypoolSeries(t, many)
	for k, v := range want {
		if strings.HasPrefix(k, "keypool_keys") || strings.HasPrefix(k, "keypool_store_up") || strings.HasPrefix(k, "keypool_key_") {
			continue // read from the source at scrape time
		}
		if got[k] != n*v {
			t.Errorf("%s = %v, want %d × %v", k, got[k], n, v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("series %s appears only after repeated observations", k)
		}
	}
	if len(want) < 20 {
		t.Fatalf("only %d series scraped", len(want))
	}
}

// Counting a request whose series exist allocates nothing.
func TestObserveSeenRequestAllocatesNothing(t *testing.T) {
	m := metrics.New(source(1), metrics.Options{})
	r := metrics.Request{Provider: "openai", Strategy: "roundRobin", Token: "team-a", Model: "gpt-4o-mini", Status: 200,
		Attempts: []string{"success"}, Latency: 20 * time.Millisecond, TTFB: 5 * time.Millisecond, PromptTokens: 9, CompletionTokens: 6}
	m.Observe(r)
	if a := testing.AllocsPerRun(1000, func() { m.Observe(r) }); a != 0 {
		t.Fatalf("%v allocations per observed request, want 0", a)
	}
}
