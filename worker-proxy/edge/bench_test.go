package edge

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/internal/fakeupstream"
)

// procStat reads a process's CPU time (user+system) and resident memory
// from /proc.
func procStat(tb testing.TB, pid int) (cpu time.Duration, rss int64) {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	cpu = time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ 100
	s, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for line := range strings.SplitSeq(string(s), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			rss = kb << 10
		}
	}
	return cpu, rss
}

// target is a proxy process under measurement.
type target struct {
	url string
	pid int
}

// load sends n relayed requests from conc clients; it returns the
// proxy's CPU time spent.
func load(tb testing.TB, t target, n, conc int, body string) time.Duration {
	tb.Helper()
	cpu0, _ := procStat(tb, t.pid)
	var wg sync.WaitGroup
	var failed sync.Once
	per := n / conc
	for range conc {
		wg.Go(func() {
			for range per {
				req, _ := http.NewRequest("POST", t.url+"/api/openai/chat/completions", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+clientToken)
				res, err := http.DefaultClient.Do(req)
				if err != nil || res.StatusCode != 200 {
					failed.Do(func() { tb.Errorf("relay: %v %v", err, res) })
					if res != nil {
						res.Body.Close()
					}
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
		})
	}
	wg.Wait()
	cpu1, _ := procStat(tb, t.pid)
	return cpu1 - cpu0
}

// benchKey is the one key of the benchmarks' proxies.
const benchKey = "sk-test-fake-bench-0001"

// withEnv is a copy of env with k set to v.
func withEnv(env map[string]string, k, v string) map[string]string {
	m := maps.Clone(env)
	m[k] = v
	return m
}

// withStartKey is env with benchKey given at start (OPENAI_KEYS).
func withStartKey(env map[string]string) map[string]string {
	return withEnv(env, "OPENAI_KEYS", benchKey)
}

// buildNative builds the proxy's binary into a temp dir.
func buildNative(b *testing.B) string {
	bin := filepath.Join(b.TempDir(), "worker-proxy")
	if out, err := exec.Command("go", "build", "-trimpath", "-o", bin, "github.com/keypool/keypool/worker-proxy").CombinedOutput(); err != nil {
		b.Fatalf("native build: %v\n%s", err, out)
	}
	return bin
}

// denoStarter returns a function that starts script under Deno with env.
func denoStarter(b *testing.B, script string, env map[string]string) func() (target, time.Time) {
	return func() (target, time.Time) {
		began := time.Now()
		p := startDenoScript(b, script, env)
		return target{p.URL, p.cmd.Process.Pid}, began
	}
}

// coldStart starts a proxy with start() and times process start → first
// relayed 200. viaAdmin: the key is added through the admin API on the
// way (a proxy whose store starts empty); otherwise the proxy has it at
// start (OPENAI_KEYS, withStartKey).
func coldStart(tb testing.TB, start func() (target, time.Time), viaAdmin bool) (target, time.Duration) {
	tb.Helper()
	t, began := start()
	for viaAdmin {
		req, _ := http.NewRequest("POST", t.url+"/admin/keys", strings.NewReader(`{"provider":"openai","apiKey":"`+benchKey+`"}`))
		req.Header.Set("X-Admin-Key", adminKey)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusCreated || res.StatusCode == http.StatusConflict {
				break
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	load(tb, t, 1, 1, chatBody)
	return t, time.Since(began)
}

// coldStartRuns is how many starts each cold start figure is the median
// of: one start is too noisy on a shared machine to compare two builds.
const coldStartRuns = 5

// coldStarts starts a proxy n times, each after the previous one was
// stopped, and returns the last one and the median cold start.
func coldStarts(tb testing.TB, n int, start func() (target, time.Time), viaAdmin bool) (target, time.Duration) {
	tb.Helper()
	var t target
	var ds []time.Duration
	for i := range n {
		if i > 0 {
			syscall.Kill(t.pid, syscall.SIGKILL) // the harness's cleanup reaps it
		}
		var d time.Duration
		t, d = coldStart(tb, start, viaAdmin)
		ds = append(ds, d)
	}
	slices.Sort(ds)
	return t, ds[len(ds)/2]
}

// nativeStarter returns a function that starts the native program bin
// (the proxy, or the floor) with env on a free port and waits for its
// "listening on" line.
func nativeStarter(b *testing.B, bin string, env map[string]string) func() (target, time.Time) {
	return func() (target, time.Time) {
		cmd := exec.Command(bin)
		cmd.Env = []string{"PORT=0", "HOST=127.0.0.1", "ADMIN_KEY=" + adminKey, "DATA_DIR=" + b.TempDir(), "LOG_FLUSH_INTERVAL=0"}
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		out, _ := cmd.StdoutPipe()
		began := time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		buf := make([]byte, 4096)
		var got []byte
		for {
			k, err := out.Read(buf)
			got = append(got, buf[:k]...)
			if m := bannerURL.FindSubmatch(got); m != nil {
				go io.Copy(io.Discard, out)
				return target{string(m[1]), cmd.Process.Pid}, began
			}
			if err != nil {
				b.Fatalf("%s: %v\n%s", filepath.Base(bin), err, got)
			}
		}
	}
}

// sseBody asks the fake upstream for an event stream.
const sseBody = `{"model":"gpt-4o-mini","stream":true}`

// relayCost warms t up, then returns its CPU per relayed request in ms
// (plain JSON and SSE) and its resident memory after the load.
func relayCost(b *testing.B, t target) (plain, stream float64, rss int64) {
	const n, conc, warm = 2000, 4, 2000
	// Warm up until the engines are steady: V8 compiles the hot wasm
	// and JavaScript functions again, optimized, on its own threads,
	// over the first thousands of requests (after a warm-up of 200,
	// that work was about a fifth of the Deno process's CPU in the
	// measured window).
	load(b, t, warm, conc, chatBody)
	load(b, t, warm/4, conc, sseBody)
	plain = float64(load(b, t, n, conc, chatBody)) / float64(n) / float64(time.Millisecond)
	stream = float64(load(b, t, n/2, conc, sseBody)) / float64(n/2) / float64(time.Millisecond)
	_, rss = procStat(b, t.pid)
	return
}

// BenchmarkEdgeVsNative measures the edge build under Deno against the
// native binary in one run, on the same fake upstream: cold start
// (process start → first relayed 200, the median of coldStartRuns starts
// of the same build; the key given at start in OPENAI_KEYS, and, as
// *-cold-admin-ms, added through the admin API first), proxy CPU per
// relayed request (plain JSON and SSE), resident memory after the load,
// and the wasm's gzip size; and the same for a bare relay in plain
// JavaScript on Deno (testdata/bare_relay.js), the floor of any proxy
// there. Run: go test -run '^$' -bench EdgeVsNative -benchtime 1x ./worker-proxy/edge/
func BenchmarkEdgeVsNative(b *testing.B) {
	up, err := fakeupstream.Start(fakeupstream.Options{StreamChunks: 5})
	if err != nil {
		b.Fatal(err)
	}
	defer up.Close()
	bin := buildNative(b)
	env := upstreamEnv(up)
	env["LOG_LEVEL"] = "warn"
	keyed := withStartKey(env)
	edgeMain := filepath.Join(built(b), "main.js")

	_, nativeAdminCold := coldStarts(b, coldStartRuns, nativeStarter(b, bin, env), true)
	_, denoAdminCold := coldStarts(b, coldStartRuns, denoStarter(b, edgeMain, env), true)
	native, nativeCold := coldStarts(b, coldStartRuns, nativeStarter(b, bin, keyed), false)
	deno, denoCold := coldStarts(b, coldStartRuns, denoStarter(b, edgeMain, keyed), false)
	// Deno's own floor: a relay in plain JavaScript.
	bare, bareCold := coldStarts(b, coldStartRuns, denoStarter(b, filepath.Join("testdata", "bare_relay.js"), env), false)
	b.ResetTimer()
	nPlain, nSSE, nRSS := relayCost(b, native)
	dPlain, dSSE, dRSS := relayCost(b, deno)
	bPlain, bSSE, bRSS := relayCost(b, bare)
	b.StopTimer()

	wasm, err := os.ReadFile(filepath.Join(built(b), "keypool.wasm"))
	if err != nil {
		b.Fatal(err)
	}
	var gz bytes.Buffer
	w, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	w.Write(wasm)
	w.Close()

	b.ReportMetric(float64(nativeCold.Microseconds())/1000, "native-cold-ms")
	b.ReportMetric(float64(denoCold.Microseconds())/1000, "deno-cold-ms")
	// Machines differ threefold in start-up speed (first-touched memory
	// above all): the ratios to the same run's baselines compare across
	// runs where the milliseconds cannot.
	b.ReportMetric(float64(denoCold)/float64(nativeCold), "cold-ratio-native")
	b.ReportMetric(float64(denoCold)/float64(bareCold), "cold-ratio-bare")
	b.ReportMetric(float64(nativeAdminCold.Microseconds())/1000, "native-cold-admin-ms")
	b.ReportMetric(float64(denoAdminCold.Microseconds())/1000, "deno-cold-admin-ms")
	b.ReportMetric(nPlain, "native-cpu-ms/req")
	b.ReportMetric(dPlain, "deno-cpu-ms/req")
	b.ReportMetric(dPlain/nPlain, "cpu-ratio-plain")
	b.ReportMetric(nSSE, "native-cpu-ms/sse")
	b.ReportMetric(dSSE, "deno-cpu-ms/sse")
	b.ReportMetric(dSSE/nSSE, "cpu-ratio-sse")
	b.ReportMetric(float64(nRSS)/(1<<20), "native-rss-MB")
	b.ReportMetric(float64(dRSS)/(1<<20), "deno-rss-MB")
	b.ReportMetric(float64(bareCold.Microseconds())/1000, "deno-bare-cold-ms")
	b.ReportMetric(bPlain, "deno-bare-cpu-ms/req")
	b.ReportMetric(bSSE, "deno-bare-cpu-ms/sse")
	b.ReportMetric(bPlain/nPlain, "bare-ratio-plain")
	b.ReportMetric(bSSE/nSSE, "bare-ratio-sse")
	b.ReportMetric(float64(bRSS)/(1<<20), "deno-bare-rss-MB")
	b.ReportMetric(float64(len(wasm))/(1<<20), "wasm-MB")
	b.ReportMetric(float64(gz.Len())/(1<<20), "wasm-gzip-MB")
}
