package edge

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/internal/fakeupstream"
)

// memSample is where a Deno process's memory is at one moment, in MiB.
type memSample struct {
	rss, anon, file float64 // /proc/PID/status: VmRSS, RssAnon, RssFile
	mallocHeap      float64 // the [heap] mapping: glibc malloc's main arena
	v8New, v8Old    float64 // V8's young generation and old space
	external        float64 // ArrayBuffers and other memory V8 was told about
	goValues        float64 // JavaScript values Go holds references to (a count)
	goMemory        float64 // Go's wasm linear memory (its size, not what is resident)
}

// sampleMem reads p's memory from /proc and, through testdata/memstat.js
// (SIGUSR2), from V8.
func sampleMem(tb testing.TB, p *instance) memSample {
	tb.Helper()
	pid := p.cmd.Process.Pid
	var s memSample
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	field := func(name string) float64 {
		for line := range strings.SplitSeq(string(st), "\n") {
			if v, ok := strings.CutPrefix(line, name+":"); ok {
				kb, _ := strconv.ParseFloat(strings.Fields(v)[0], 64)
				return kb / 1024
			}
		}
		return 0
	}
	s.rss, s.anon, s.file = field("VmRSS"), field("RssAnon"), field("RssFile")
	sm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	inHeap := false
	for line := range strings.SplitSeq(string(sm), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			inHeap = len(f) >= 6 && f[5] == "[heap]"
		case inHeap && len(f) >= 2 && f[0] == "Rss:":
			kb, _ := strconv.ParseFloat(f[1], 64)
			s.mallocHeap += kb / 1024
		}
	}
	before := strings.Count(p.logs.String(), "memstat {")
	p.signal(syscall.SIGUSR2)
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(p.logs.String(), "memstat {") == before {
		if time.Now().After(deadline) {
			tb.Fatalf("no memstat line after SIGUSR2:\n%s", p.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	logs := p.logs.String()
	line := logs[strings.LastIndex(logs, "memstat {")+len("memstat "):]
	line, _, _ = strings.Cut(line, "\n")
	var m struct {
		External float64            `json:"external"`
		GoValues float64            `json:"goValues"`
		GoMemory float64            `json:"goMemory"`
		Spaces   map[string]float64 `json:"spaces"`
	}
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		tb.Fatalf("memstat %q: %v", line, err)
	}
	s.v8New = (m.Spaces["new_space"] + m.Spaces["new_large_object_space"]) / (1 << 20)
	s.v8Old = m.Spaces["old_space"] / (1 << 20)
	s.external = m.External / (1 << 20)
	s.goValues = m.GoValues
	s.goMemory = m.GoMemory / (1 << 20)
	return s
}

// BenchmarkEdgeMemory tells where the memory of the Deno process running
// the edge build goes, beside the bare relay in plain JavaScript
// (testdata/bare_relay.js) under one load (200 requests to warm up, then
// 2,000 JSON and 1,000 SSE relays from 4 clients, against the fake
// upstream; KEYPOOL_MEM_ROUNDS repeats the latter, default 1): resident
// memory idle and right after the load; and after the load, the part of
// it mapped from files (mostly the deno executable), malloc's main arena
// ([heap]), V8's young generation and old space and its external memory,
// how many JavaScript values Go holds (each alive until Go's garbage
// collector finalizes its js.Value) and the size of Go's linear memory;
// and the proxy's CPU per relayed request over the measured rounds.
// KEYPOOL_DENO_V8_FLAGS is passed to both processes as DENO_V8_FLAGS
// (e.g. --max-semi-space-size=1), to see what a V8 flag changes. Run: go test -run '^$' -bench EdgeMemory
// -benchtime 1x ./worker-proxy/edge/
func BenchmarkEdgeMemory(b *testing.B) {
	const n, conc = 2000, 4
	rounds := 1
	if s := os.Getenv("KEYPOOL_MEM_ROUNDS"); s != "" {
		rounds, _ = strconv.Atoi(s)
	}
	up, err := fakeupstream.Start(fakeupstream.Options{StreamChunks: 5})
	if err != nil {
		b.Fatal(err)
	}
	defer up.Close()
	wrapper, err := filepath.Abs(filepath.Join("testdata", "memstat.js"))
	if err != nil {
		b.Fatal(err)
	}
	bare, _ := filepath.Abs(filepath.Join("testdata", "bare_relay.js"))
	sse := `{"model":"gpt-4o-mini","stream":true}`
	b.ResetTimer()
	for _, c := range []struct{ name, entry string }{
		{"deno", filepath.Join(built(b), "main.js")},
		{"bare", bare},
	} {
		env := upstreamEnv(up)
		env["LOG_LEVEL"] = "warn"
		env["MEMSTAT_ENTRY"] = c.entry
		if f := os.Getenv("KEYPOOL_DENO_V8_FLAGS"); f != "" {
			env["DENO_V8_FLAGS"] = f
		}
		var p *instance
		t, _ := coldStart(b, func() (target, time.Time) {
			began := time.Now()
			p = startDenoScript(b, wrapper, env)
			return target{p.URL, p.cmd.Process.Pid}, began
		}, true)
		idle := sampleMem(b, p)
		load(b, t, 200, conc, chatBody)
		var cpu time.Duration
		for range rounds {
			cpu += load(b, t, n, conc, chatBody)
			cpu += load(b, t, n/2, conc, sse)
		}
		after := sampleMem(b, p)
		b.ReportMetric(idle.rss, c.name+"-rss-idle-MB")
		b.ReportMetric(after.rss, c.name+"-rss-load-MB")
		b.ReportMetric(after.file, c.name+"-rss-file-MB")
		b.ReportMetric(after.mallocHeap, c.name+"-malloc-heap-MB")
		b.ReportMetric(after.v8New, c.name+"-v8-young-MB")
		b.ReportMetric(after.v8Old, c.name+"-v8-old-MB")
		b.ReportMetric(after.external, c.name+"-external-MB")
		if c.name != "bare" {
			b.ReportMetric(after.goValues, c.name+"-go-values")
			b.ReportMetric(after.goMemory, c.name+"-go-memory-MB")
		}
		b.ReportMetric(float64(cpu)/float64(time.Millisecond)/float64(rounds*(n+n/2)), c.name+"-cpu-ms/req")
		p.signal(syscall.SIGKILL)
	}
}
