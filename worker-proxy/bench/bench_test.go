package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/internal/testenv"
)

// TestMain lets the test binary play the harness's helper roles: bench
// re-executes os.Executable, which under go test is this binary.
func TestMain(m *testing.M) {
	if role := os.Getenv(envRole); role != "" {
		if err := runRole(role, os.Getenv, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSmoke runs the whole harness with tiny settings and checks that it
// works and measures. It asserts no time or speed.
func TestSmoke(t *testing.T) {
	if runtime.GOOS != "linux" {
		testenv.Missing(t, "Linux /proc")
	}
	if _, err := exec.LookPath("go"); err != nil {
		testenv.Missing(t, "the go command")
	}
	cfg := smokeConfig(t)
	cfg.Idle = 300 * time.Millisecond
	cfg.Timeout = 3 * time.Minute
	res, report := smokeRun(t, cfg)

	all := cfg.Modes
	want := []struct {
		name  string
		modes []string
	}{
		{"baseline", all},
		{"proxy-10", all},
		{"proxy-100", all},
		{"proxy-10-nolog", []string{"json", "stream"}},
	}
	if len(res.Targets) != len(want) {
		t.Fatalf("%d targets, want %d", len(res.Targets), len(want))
	}
	if !res.PeakReset {
		t.Log("peak RSS could not be reset on this machine; peaks are since start")
	}
	for i, w := range want {
		tr := res.Targets[i]
		if tr.Name != w.name {
			t.Errorf("target %d is %q, want %q", i, tr.Name, w.name)
			continue
		}
		if tr.SetupRSS <= 0 || tr.IdleRSS <= 0 {
			t.Errorf("%s: RSS after start %d, when idle %d: want both > 0", tr.Name, tr.SetupRSS, tr.IdleRSS)
		}
		if tr.LogProblems != 0 {
			t.Errorf("%s logged %d warnings or errors", tr.Name, tr.LogProblems)
		}
		if len(tr.Modes) != len(w.modes) {
			t.Errorf("%s: %d modes measured, want %d", tr.Name, len(tr.Modes), len(w.modes))
		}
		for _, m := range w.modes {
			r := tr.Mode(m)
			if r == nil {
				t.Errorf("%s: no %s row", tr.Name, m)
				continue
			}
			if r.Requests == 0 || r.Errors != 0 {
				t.Errorf("%s %s: %d requests, %d errors (%s): want some requests and no error", tr.Name, m, r.Requests, r.Errors, r.FirstErr)
			}
			if r.CPU <= 0 || r.PeakRSS <= 0 || r.P50() <= 0 || r.P99() < r.P50() || r.RPS() <= 0 {
				t.Errorf("%s %s: CPU %s, peak RSS %d, p50 %s, p99 %s, %.0f req/s: want all measured", tr.Name, m, r.CPU, r.PeakRSS, r.P50(), r.P99(), r.RPS())
			}
			if row := "| " + tr.Name + " | " + m + " |"; !strings.Contains(report.String(), row) {
				t.Errorf("report lacks the row %q", row)
			}
		}
	}
}

// TestSmokeStores runs the harness with -stores: each pool again with
// maxRequests on every key, and both ways on a redis-server it starts,
// compared in the stores table. It asserts no time or speed.
func TestSmokeStores(t *testing.T) {
	if runtime.GOOS != "linux" {
		testenv.Missing(t, "Linux /proc")
	}
	if _, err := findRedisServer(""); err != nil {
		testenv.Missing(t, "redis-server")
	}
	cfg := smokeConfig(t)
	cfg.Duration = 500 * time.Millisecond
	cfg.QuietLog, cfg.Stores = false, true
	cfg.Modes = []string{"json", "gemini-json"}
	cfg.Timeout = 4 * time.Minute
	res, report := smokeRun(t, cfg)
	want := []struct {
		name, store, versus string
		limited             bool
	}{
		{"baseline", "", "", false},
		{"proxy-10", storeBolt, "", false},
		{"proxy-100", storeBolt, "", false},
		{"proxy-10-limited", storeBolt, "", true},
		{"redis-10", storeRedis, "proxy-10", false},
		{"redis-10-limited", storeRedis, "proxy-10-limited", true},
		{"proxy-100-limited", storeBolt, "", true},
		{"redis-100", storeRedis, "proxy-100", false},
		{"redis-100-limited", storeRedis, "proxy-100-limited", true},
	}
	if len(res.Targets) != len(want) {
		t.Fatalf("%d targets, want %d", len(res.Targets), len(want))
	}
	for i, w := range want {
		tr := res.Targets[i]
		if tr.Name != w.name || tr.Store != w.store || tr.Versus != w.versus || tr.Limited != w.limited {
			t.Errorf("target %d is %s (store %q, versus %q, limited %t), want %+v", i, tr.Name, tr.Store, tr.Versus, tr.Limited, w)
			continue
		}
		if tr.Store == "" {
			continue
		}
		// The comparison runs the OpenAI modes only.
		if tr.Name != "proxy-10" && tr.Name != "proxy-100" && (tr.Mode("gemini-json") != nil || tr.Mode("json") == nil) {
			t.Errorf("%s ran %d modes, want json only", tr.Name, len(tr.Modes))
		}
		r := tr.Mode("json")
		if r == nil || r.Requests == 0 || r.Errors != 0 {
			t.Errorf("%s json: %+v: want requests and no error", tr.Name, r)
			continue
		}
		// A limited key costs a Redis call per request: the
		// redis-server worked while that target was loaded.
		if tr.Store == storeRedis && tr.Limited && r.StoreCPU <= 0 {
			t.Errorf("%s: redis-server used no CPU under load: the limit was not checked in Redis", tr.Name)
		}
		if tr.Store == storeBolt && r.StoreCPU != 0 {
			t.Errorf("%s: store CPU %s on the embedded store", tr.Name, r.StoreCPU)
		}
		if tr.Versus != "" {
			if row := "| " + tr.Name + " | " + strconv.Itoa(tr.Keys) + " | "; !strings.Contains(report.String(), row) {
				t.Errorf("the stores table lacks %q", row)
			}
		}
	}
}

// TestSmokeKV times a STORE=cfkv proxy's restart over the keys it imported
// into the KV emulator, and reports it in its own table.
func TestSmokeKV(t *testing.T) {
	if runtime.GOOS != "linux" {
		testenv.Missing(t, "Linux /proc")
	}
	cfg := smokeConfig(t)
	cfg.QuietLog, cfg.KV = false, true
	cfg.Modes = []string{"json"}
	cfg.Timeout = 4 * time.Minute
	res, report := smokeRun(t, cfg)
	names := make([]string, len(res.Targets))
	for i, tr := range res.Targets {
		names[i] = tr.Name
	}
	if want := []string{"baseline", "proxy-10", "proxy-100", "kv-100"}; !slices.Equal(names, want) {
		t.Fatalf("targets %v, want %v", names, want)
	}
	kv := res.Targets[3]
	if kv.Store != storeKV || kv.Keys != 100 || len(kv.Modes) != 0 {
		t.Errorf("kv-100: store %q, %d keys, %d modes; want cfkv, 100 keys, no load", kv.Store, kv.Keys, len(kv.Modes))
	}
	if kv.StartWall <= 0 || kv.StartCPU <= 0 || kv.SetupRSS <= 0 {
		t.Errorf("kv-100: start %s (CPU %s), RSS %d: want all measured", kv.StartWall, kv.StartCPU, kv.SetupRSS)
	}
	for _, want := range []string{"KV start:", "| kv-100 | 100 | ", "start ≤ 10 s"} {
		if !strings.Contains(report.String(), want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	// The scale table still pairs the two bolt pools.
	if !strings.Contains(report.String(), "Scale: proxy-100 next to proxy-10") {
		t.Error("the scale table lost its bolt pair")
	}
}

// smokeConfig is a tiny run: 4 connections, one round of 300 ms, 100
// keys in the large pool, no idle time.
func smokeConfig(t *testing.T) Config {
	cfg := DefaultConfig()
	cfg.Conns, cfg.Rounds = 4, 1
	cfg.Duration, cfg.Warmup, cfg.Idle = 300*time.Millisecond, 100*time.Millisecond, 0
	cfg.Keys = 100
	// Build the proxy like this test binary, so the build reuses the
	// standard library this binary was built with.
	cfg.Race = raceEnabled
	cfg.Progress = testLog{t}
	return cfg
}

// smokeRun runs the harness with cfg and returns its results and report.
func smokeRun(t *testing.T, cfg Config) (*Results, *bytes.Buffer) {
	t.Helper()
	res, err := bench(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var report bytes.Buffer
	if err := writeReport(&report, res); err != nil {
		t.Fatal(err)
	}
	t.Logf("report:\n%s", report.String())
	return res, &report
}

// testLog sends progress lines to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestHistogram(t *testing.T) {
	var h histogram
	if h.quantile(0.5) != 0 {
		t.Fatal("empty histogram has a quantile")
	}
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {1, 1000 * time.Microsecond}} {
		got := h.quantile(c.q)
		if diff := float64(got-c.want) / float64(c.want); diff < -0.02 || diff > 0.02 {
			t.Errorf("quantile(%v) = %s, want %s ± 2%%", c.q, got, c.want)
		}
	}
	var o histogram
	o.add(time.Hour)
	h.merge(&o)
	if got := h.quantile(1); got < 59*time.Minute || got > 61*time.Minute {
		t.Errorf("max after merge = %s, want about 1h", got)
	}
	// Every bucket maps back into itself.
	for _, v := range []int64{0, 1, 127, 128, 129, 1000, 1 << 20, 1<<62 + 12345} {
		if i := histIndex(v); histIndex(histValue(i)) != i {
			t.Errorf("bucket %d of %d does not hold its own middle %d", i, v, histValue(i))
		}
	}
}

func TestParseProc(t *testing.T) {
	stat := []byte("4242 (odd) name) S 1 4242 4242 0 -1 4194560 1234 0 0 0 150 25 0 0 20 0 9 0 100 0 0")
	if cpu, err := parseStatCPU(stat, 10*time.Millisecond); err != nil || cpu != 1750*time.Millisecond {
		t.Errorf("parseStatCPU = %s, %v; want 1.75s", cpu, err)
	}
	if _, err := parseStatCPU([]byte("4242 (x) S 1"), 10*time.Millisecond); err == nil {
		t.Error("parseStatCPU accepted a short line")
	}
	status := []byte("Name:\tworker-proxy\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t9\n")
	if rss, peak, err := parseStatusMem(status); err != nil || rss != 10<<20 || peak != 20<<20 {
		t.Errorf("parseStatusMem = %d, %d, %v; want 10 MiB, 20 MiB", rss, peak, err)
	}
	if _, _, err := parseStatusMem([]byte("Name:\tx\n")); err == nil {
		t.Error("parseStatusMem accepted a status without memory lines")
	}
	auxv := make([]byte, 48)
	binary.NativeEndian.PutUint64(auxv[0:], 6) // AT_PAGESZ
	binary.NativeEndian.PutUint64(auxv[8:], 4096)
	binary.NativeEndian.PutUint64(auxv[16:], atClkTck)
	binary.NativeEndian.PutUint64(auxv[24:], 100)
	if got := auxvValue(auxv, atClkTck); got != 100 {
		t.Errorf("auxvValue = %d, want 100", got)
	}
	if clockTick() <= 0 {
		t.Error("no clock tick")
	}
}

// TestStreamChecks feeds the answer checks whole and broken streams.
func TestStreamChecks(t *testing.T) {
	sse := func(events ...string) string {
		var b strings.Builder
		for _, e := range events {
			b.WriteString("data: " + e + "\n\n")
		}
		return b.String()
	}
	chunk := func(i int) string { return `{"choices":[{"delta":{"content":"[chunk ` + fmt.Sprint(i) + `] hi\n"}}]}` }
	gchunk := func(i int, last bool) string {
		s := `{"candidates":[{"content":{"parts":[{"text":"[chunk ` + fmt.Sprint(i) + `] hi"}]}`
		if last {
			s += `,"finishReason":"STOP"`
		}
		return s + `}]}`
	}
	cases := []struct {
		name  string
		check func(*http.Response, *bodyReader, int) error
		body  string
		ok    bool
	}{
		{"openai whole", checkOpenAIStream, sse(`{"role":"assistant"}`, chunk(0), chunk(1), `{"finish_reason":"stop"}`, "[DONE]"), true},
		{"openai short", checkOpenAIStream, sse(chunk(0), "[DONE]"), false},
		{"openai no done", checkOpenAIStream, sse(chunk(0), chunk(1)), false},
		{"openai cut", checkOpenAIStream, sse(chunk(0), chunk(1)) + "data: [DO", false},
		{"gemini whole", checkGeminiStream, strings.ReplaceAll(sse(gchunk(0, false), gchunk(1, true)), "\n", "\r\n"), true},
		{"gemini no stop", checkGeminiStream, sse(gchunk(0, false), gchunk(1, false)), false},
	}
	for _, c := range cases {
		res := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}}
		br := newBodyReader()
		br.Reset(strings.NewReader(c.body))
		err := c.check(res, br, 2)
		if (err == nil) != c.ok {
			t.Errorf("%s: err = %v, want ok %t", c.name, err, c.ok)
		}
	}
	res := &http.Response{StatusCode: 503, Header: http.Header{}}
	br := newBodyReader()
	br.Reset(strings.NewReader(`{"error":"No available API keys"}`))
	if err := checkJSON("Hello")(res, br, 0); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("checkJSON on a 503: %v", err)
	}
	br.Reset(strings.NewReader(`{"text":"Hello"}`))
	if err := checkJSON("Hello")(&http.Response{StatusCode: 200}, br, 0); err != nil {
		t.Errorf("checkJSON on a good answer: %v", err)
	}
}

func TestConfigCheck(t *testing.T) {
	if err := DefaultConfig().Check(); err != nil {
		t.Fatalf("default settings rejected: %v", err)
	}
	c := DefaultConfig()
	c.Conns, c.Rounds, c.Modes = 0, 0, []string{"json", "bogus"}
	err := c.Check()
	if err == nil {
		t.Fatal("bad settings accepted")
	}
	for _, want := range []string{"-conns", "-rounds", "bogus"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}
