package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// writeReport prints res as markdown: the setting, the load table with
// the ratios to the baseline, and the idle and memory table.
func writeReport(w io.Writer, res *Results) error {
	var b strings.Builder
	cfg := res.Config
	fmt.Fprintf(&b, "## keypool relay benchmark\n\n")
	fmt.Fprintf(&b, "- date: %s (run took %s)\n", res.Started.UTC().Format("2006-01-02 15:04 MST"), res.Elapsed.Round(time.Second))
	fmt.Fprintf(&b, "- machine: %s, %d cores, Linux %s\n", res.Machine.CPU, res.Machine.Cores, res.Machine.Kernel)
	fmt.Fprintf(&b, "- Go: harness, baseline and fake upstream %s; proxy binary %s\n", res.GoVersion, res.ProxyGoVersion)
	fmt.Fprintf(&b, "- command: `go run ./worker-proxy/bench %s`\n", cfg.Flags())
	fmt.Fprintf(&b, "- load: %d connections, %d rounds × %s per target and mode (after %s warm-up), targets interleaved in each round; "+
		"fake upstream streams %d chunks %s apart; all processes on 127.0.0.1 share the machine\n",
		cfg.Conns, cfg.Rounds, cfg.Duration, cfg.Warmup, cfg.Chunks, cfg.ChunkInterval)
	fmt.Fprintf(&b, "- other load: processes outside the benchmark used %.0f %% of the machine's CPU during the measured rounds (worst round %.0f %%)%s\n",
		100*res.OtherCPU, 100*res.OtherCPUMax, otherLoadWarning(res))
	b.WriteString("\n")

	b.WriteString("| target | mode | req/s | p50 ms | p99 ms | CPU ms/req | peak RSS MB | errors | req/s ÷ base | p99 ÷ base | CPU/req ÷ base |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	var base *TargetResult
	for _, t := range res.Targets {
		if t.Baseline {
			base = t
		}
	}
	for _, m := range cfg.Modes {
		for _, t := range res.Targets {
			r := t.Mode(m)
			if r == nil {
				continue
			}
			ratios := "- | - | -"
			if base != nil && !t.Baseline {
				if br := base.Mode(m); br != nil {
					ratios = fmt.Sprintf("%s | %s | %s", ratio(r.RPS(), br.RPS()),
						ratio(r.P99().Seconds(), br.P99().Seconds()),
						ratio(r.CPUPerRequest().Seconds(), br.CPUPerRequest().Seconds()))
				}
			}
			fmt.Fprintf(&b, "| %s | %s | %.0f | %s | %s | %s | %s | %d | %s |\n",
				t.Name, m, r.RPS(), fmtMS(r.P50()), fmtMS(r.P99()), fmtCPU(r.CPUPerRequest()), fmtMB(r.PeakRSS), r.Errors, ratios)
		}
	}
	b.WriteString("\n")

	fmt.Fprintf(&b, "| target | what | RSS after start MB | idle CPU ms over %s | RSS idle MB | log warnings |\n", cfg.Idle)
	b.WriteString("|---|---|--:|--:|--:|--:|\n")
	for _, t := range res.Targets {
		idle, idleRSS := "-", "-"
		if cfg.Idle > 0 {
			idle, idleRSS = strconv.FormatInt(t.IdleCPU.Milliseconds(), 10), fmtMB(t.IdleRSS)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %d |\n", t.Name, t.Desc, fmtMB(t.SetupRSS), idle, idleRSS, t.LogProblems)
	}
	b.WriteString("\n")

	if small, large := proxyPair(res); small != nil {
		writeScale(&b, cfg, small, large)
	}
	writeKVStart(&b, res)
	writeStores(&b, res)
	errs := false
	for _, t := range res.Targets {
		for _, r := range t.Modes {
			if r.FirstErr != "" {
				if !errs {
					b.WriteString("First error of each target and mode with errors:\n\n")
					errs = true
				}
				fmt.Fprintf(&b, "- %s %s: %s\n", t.Name, r.Mode, r.FirstErr)
			}
		}
	}
	if errs {
		b.WriteString("\n")
	}
	b.WriteString("Notes: a proxy's keys are split evenly between OpenAI and Gemini. Latency is measured by the in-process load generator, request start to last byte. " +
		"CPU is utime+stime of the server process from /proc/PID/stat (all threads; " + clockTick().String() + " ticks), over the measured rounds only, divided by the requests that passed. ")
	if res.PeakReset {
		b.WriteString("Peak RSS is VmHWM of /proc/PID/status, reset through /proc/PID/clear_refs before each measured round: the peak under load, the highest of the rounds. ")
	} else {
		b.WriteString("Peak RSS is VmHWM of /proc/PID/status since the process started (it could not be reset here), so it includes the key import. ")
	}
	b.WriteString("Idle CPU is over the time right after the load, so a proxy's figure includes its next usage flush (every FLUSH_INTERVAL, default 5 s), which writes the counters of the keys used since the previous one; later flushes have nothing to write. " +
		"Ratios divide the proxy's figure by the baseline's for the same mode: above 1 means more requests/s, a slower p99 or more CPU per request.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// proxyPair returns the small-pool and large-pool proxies at the same log
// level, for the memory-per-key estimate.
func proxyPair(res *Results) (small, large *TargetResult) {
	var proxies []*TargetResult
	for _, t := range res.Targets {
		if !t.Baseline {
			proxies = append(proxies, t)
		}
	}
	if len(proxies) < 2 || proxies[1].Keys <= proxies[0].Keys {
		return nil, nil
	}
	return proxies[0], proxies[1]
}

// otherLoadWarning flags a run disturbed by other work on the machine.
func otherLoadWarning(res *Results) string {
	if res.OtherCPUMax < 0.10 {
		return ""
	}
	return ": the machine was not quiet, so requests/s and latencies are disturbed (CPU per request much less so); rerun on a quiet machine"
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return strconv.FormatFloat(a/b, 'f', 2, 64)
}

func fmtMS(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64)
}

// fmtCPU shows CPU per request in ms with three decimals (microseconds).
func fmtCPU(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 3, 64)
}

func fmtMB(n int64) string {
	return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64)
}

// writeScale prints what the pool's size costs: the large pool's start,
// memory and CPU per request next to the small pool's (issue 17's goals).
func writeScale(b *strings.Builder, cfg Config, small, large *TargetResult) {
	n := large.Keys - small.Keys
	fmt.Fprintf(b, "Scale: %s next to %s, each restarted over its stored keys (bbolt) before the load.\n\n", large.Name, small.Name)
	b.WriteString("| target | keys | start s | start CPU s | RSS after start MB | peak RSS under load MB | RSS/key after start | peak RSS/key under load |")
	for _, m := range cfg.Modes {
		if large.Mode(m) != nil && small.Mode(m) != nil {
			fmt.Fprintf(b, " CPU/req %s ÷ %s |", m, small.Name)
		}
	}
	b.WriteString("\n|---|--:|--:|--:|--:|--:|--:|--:|")
	for _, m := range cfg.Modes {
		if large.Mode(m) != nil && small.Mode(m) != nil {
			b.WriteString("--:|")
		}
	}
	b.WriteString("\n")
	for _, t := range []*TargetResult{small, large} {
		perKey, peakPerKey := "-", "-"
		if t == large && n > 0 {
			perKey = fmtBytes(float64(large.SetupRSS-small.SetupRSS) / float64(n))
			peakPerKey = fmtBytes(float64(peakRSS(large)-peakRSS(small)) / float64(n))
		}
		fmt.Fprintf(b, "| %s | %d | %.2f | %.2f | %s | %s | %s | %s |", t.Name, t.Keys, t.StartWall.Seconds(), t.StartCPU.Seconds(),
			fmtMB(t.SetupRSS), fmtMB(peakRSS(t)), perKey, peakPerKey)
		for _, m := range cfg.Modes {
			lr, sr := large.Mode(m), small.Mode(m)
			if lr == nil || sr == nil {
				continue
			}
			r := t.Mode(m)
			fmt.Fprintf(b, " %s |", ratio(r.CPUPerRequest().Seconds(), sr.CPUPerRequest().Seconds()))
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(b, "\nGoals (issue 17, at 100,000 keys): RSS/key ≤ 1 KB, peak RSS under load ≤ 120 MB, start ≤ 2 s, CPU/req within 5 %% of %s. "+
		"Start is exec to the \"listening on\" line (keys loaded, serving); with other processes busy on the machine it is longer than its CPU. "+
		"RSS per key divides the difference to %s by the %d keys more; RSS moves with the garbage collector, so read it as a rough figure.\n\n", small.Name, small.Name, n)
}

// writeKVStart prints the start of each STORE=cfkv proxy over its keys on
// the KV emulator (issue 17: at most 10 s at 100,000 keys).
func writeKVStart(b *strings.Builder, res *Results) {
	var rows []string
	for _, t := range res.Targets {
		if t.Store == storeKV {
			rows = append(rows, fmt.Sprintf("| %s | %d | %.2f | %.2f | %s |", t.Name, t.Keys, t.StartWall.Seconds(), t.StartCPU.Seconds(), fmtMB(t.SetupRSS)))
		}
	}
	if len(rows) == 0 {
		return
	}
	b.WriteString("KV start: a STORE=cfkv proxy restarted over the keys it imported, on the repository's KV emulator (in the harness, on 127.0.0.1).\n\n")
	b.WriteString("| target | keys | start s | start CPU s | RSS after start MB |\n|---|--:|--:|--:|--:|\n")
	for _, r := range rows {
		b.WriteString(r + "\n")
	}
	b.WriteString("\nGoal (issue 17, at 100,000 keys): start ≤ 10 s. Start is exec to the \"listening on\" line (keys loaded from KV, serving).\n\n")
}

// peakRSS is the highest peak RSS of t's measured rounds.
func peakRSS(t *TargetResult) int64 {
	var p int64
	for _, m := range t.Modes {
		p = max(p, m.PeakRSS)
	}
	return p
}

// fmtBytes writes a size per key: 812 B, 1.2 KB.
func fmtBytes(n float64) string {
	if n < 1024 {
		return strconv.FormatFloat(n, 'f', 0, 64) + " B"
	}
	return strconv.FormatFloat(n/1024, 'f', 2, 64) + " KB"
}

// writeStores prints what STORE=redis costs next to the embedded store:
// each Redis target's CPU per request divided by that of its bolt twin
// (same pool, same limits), for the proxy alone and with the
// redis-server's CPU added (issue 13's goals).
func writeStores(b *strings.Builder, res *Results) {
	byName := map[string]*TargetResult{}
	for _, t := range res.Targets {
		byName[t.Name] = t
	}
	var rows []string
	for _, t := range res.Targets {
		vs := byName[t.Versus]
		if vs == nil {
			continue
		}
		goal := "≤ 1.05"
		limit := "none"
		if t.Limited {
			goal, limit = "≤ 1.3", "on every key"
		}
		for _, m := range res.Config.Modes {
			r, v := t.Mode(m), vs.Mode(m)
			if r == nil || v == nil || r.Requests == 0 {
				continue
			}
			storePer := r.StoreCPU / time.Duration(r.Requests)
			rows = append(rows, fmt.Sprintf("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |", t.Name, t.Keys, limit, m,
				fmtCPU(v.CPUPerRequest()), fmtCPU(r.CPUPerRequest()), ratio(r.CPUPerRequest().Seconds(), v.CPUPerRequest().Seconds()),
				fmtCPU(storePer), ratio((r.CPUPerRequest()+storePer).Seconds(), v.CPUPerRequest().Seconds()), goal))
		}
	}
	if len(rows) == 0 {
		return
	}
	b.WriteString("Stores: each STORE=redis proxy next to its bbolt twin (same keys, same limits), one redis-server on 127.0.0.1 without persistence.\n\n")
	b.WriteString("| target | keys | maxRequests | mode | bolt CPU ms/req | redis CPU ms/req | redis ÷ bolt | redis-server CPU ms/req | (proxy + redis-server) ÷ bolt | goal (redis ÷ bolt) |\n")
	b.WriteString("|---|--:|---|---|--:|--:|--:|--:|--:|---|\n")
	for _, r := range rows {
		b.WriteString(r + "\n")
	}
	b.WriteString("\nA limited key costs one Redis call per request (its count and its maxRequests check are one script); unlimited keys are counted in memory and flushed every FLUSH_INTERVAL.\n\n")
}
