package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Results is everything one run measured.
type Results struct {
	Started        time.Time
	Elapsed        time.Duration
	Config         Config
	Machine        machine
	GoVersion      string // the harness's (and so the baseline's and upstream's)
	ProxyGoVersion string // the proxy binary's
	// PeakReset reports that the peak RSS could be reset before each
	// measured round, so a peak is that of the load alone; otherwise it
	// is the peak since the process started (key import included).
	PeakReset bool
	// OtherCPU is the share of the machine's CPU capacity that processes
	// other than the harness and its servers used during the measured
	// rounds (0.25: half a core of two); OtherCPUMax that of the worst
	// round. Anything well above 0 means the figures are disturbed. It is
	// the busy time of /proc/stat minus the CPU time of our processes, so
	// it also holds kernel threads (ksoftirqd) and, on kernels with
	// CONFIG_IRQ_TIME_ACCOUNTING, the softirq time of our own loopback
	// traffic, which such kernels charge to no process.
	OtherCPU, OtherCPUMax float64
	Targets               []*TargetResult // baseline first

	otherCPU, capacity time.Duration // sums behind OtherCPU
}

// TargetResult is one server measured.
type TargetResult struct {
	Name     string
	Desc     string
	Baseline bool
	Keys     int    // keys in its pool (OpenAI and Gemini); 0 for the baseline
	Store    string // storeBolt or storeRedis; "" for the baseline
	Limited  bool   // every key has a maxRequests
	Versus   string // the target it is compared with in the stores table
	SetupRSS int64  // RSS once started and loaded with keys, bytes
	// StartWall is a proxy's start over its stored keys: exec to serving
	// (its "listening on" line); StartCPU the CPU it used by then.
	StartWall, StartCPU time.Duration
	IdleCPU             time.Duration
	IdleRSS             int64 // RSS at the end of the idle time, bytes
	// LogProblems counts warning and error lines the server logged.
	LogProblems int
	Modes       []*ModeResult // in run order
}

// Mode returns the result of mode name, or nil.
func (t *TargetResult) Mode(name string) *ModeResult {
	for _, m := range t.Modes {
		if m.Mode == name {
			return m
		}
	}
	return nil
}

// ModeResult sums the measured rounds of one target and mode.
type ModeResult struct {
	Mode     string
	Requests int64 // answers that passed their check
	Errors   int64
	FirstErr string
	Elapsed  time.Duration // measured load time, all rounds
	CPU      time.Duration // the server process's CPU over the measured load
	// StoreCPU is the redis-server's CPU over the same rounds, for a
	// STORE=redis proxy (0 otherwise).
	StoreCPU time.Duration
	PeakRSS  int64 // highest peak RSS of a measured round, bytes
	Latency  histogram
}

// RPS is the throughput: passed requests per second of load.
func (m *ModeResult) RPS() float64 {
	if m.Elapsed <= 0 {
		return 0
	}
	return float64(m.Requests) / m.Elapsed.Seconds()
}

// CPUPerRequest is the server's CPU time per passed request.
func (m *ModeResult) CPUPerRequest() time.Duration {
	if m.Requests == 0 {
		return 0
	}
	return m.CPU / time.Duration(m.Requests)
}

// P50 and P99 are latency quantiles, as the load generator saw them.
func (m *ModeResult) P50() time.Duration { return m.Latency.quantile(0.50) }
func (m *ModeResult) P99() time.Duration { return m.Latency.quantile(0.99) }

// target is a server under load during a run.
type target struct {
	res   *TargetResult
	proc  *child
	store *child // its redis-server, for STORE=redis
	load  *loader
	modes []string
}

// bench runs the whole benchmark: builds and starts the servers, loads
// them round by round, measures idle, and stops them.
func bench(ctx context.Context, cfg Config) (res *Results, err error) {
	if err := cfg.Check(); err != nil {
		return nil, fmt.Errorf("bad settings:\n%w", err)
	}
	progress := cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	logf := func(format string, args ...any) { fmt.Fprintf(progress, format+"\n", args...) }
	specs := proxySpecs(cfg)
	cells := len(cfg.Modes)
	for _, s := range specs {
		cells += len(s.modes)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.limit(cells))
	defer cancel()

	res = &Results{
		Started: time.Now(), Config: cfg, GoVersion: runtime.Version(),
		Machine: machine{CPU: readCPUModel(), Cores: runtime.NumCPU(), Kernel: readKernel()},
	}
	dir, err := os.MkdirTemp("", "keypool-bench-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	bin := cfg.ProxyBin
	if bin == "" {
		logf("building %s", proxyPackage)
		if bin, err = buildProxy(ctx, dir, cfg.Race); err != nil {
			return nil, err
		}
	}
	res.ProxyGoVersion = binaryGoVersion(bin)

	var cs children
	defer func() {
		if serr := cs.stopAll(10 * time.Second); serr != nil && err == nil {
			err = serr
		}
	}()
	sec := newSecrets()
	targets, err := startServers(ctx, cfg, &cs, dir, bin, specs, sec, logf)
	if err != nil {
		return nil, err
	}
	for _, t := range targets {
		t.load = newLoader(t.proc.URL, sec.clientToken, cfg.Conns, cfg.Chunks)
		defer t.load.close()
		res.Targets = append(res.Targets, t.res)
	}
	res.PeakReset = resetPeakRSS(targets[0].proc.pid()) == nil

	for round := 1; round <= cfg.Rounds; round++ {
		for _, m := range cfg.Modes {
			for _, t := range targets {
				if !slices.Contains(t.modes, m) {
					continue
				}
				lr, err := measure(ctx, cfg, res, &cs, t, modes[m])
				if err != nil {
					return nil, fmt.Errorf("round %d, %s, %s: %w", round, t.res.Name, m, err)
				}
				logf("round %d/%d  %-13s  %-16s  %6.0f req/s  p99 %6s ms  %d errors", round, cfg.Rounds, m, t.res.Name,
					float64(lr.Requests)/lr.Elapsed.Seconds(), fmtMS(lr.Latency.quantile(0.99)), lr.Errors)
			}
		}
	}
	if cfg.Idle > 0 {
		logf("idle for %s", cfg.Idle)
		if err := measureIdle(ctx, cfg.Idle, targets); err != nil {
			return nil, err
		}
	}
	for _, t := range targets {
		t.res.LogProblems = countLogProblems(t.proc.logPath)
	}
	res.Elapsed = time.Since(res.Started)
	return res, nil
}

// proxySpecs lists the proxy runs: the small and the large pool as
// configured by default (LOG_LEVEL=info: one log line per request), and the
// small pool with the request log off, which only runs the OpenAI modes
// (the log line is the same for every provider).
func proxySpecs(cfg Config) []proxySpec {
	specs := []proxySpec{
		{name: "proxy-" + keysLabel(cfg.SmallKeys), keys: cfg.SmallKeys, logLevel: "info", modes: cfg.Modes},
		{name: "proxy-" + keysLabel(cfg.Keys), keys: cfg.Keys, logLevel: "info", modes: cfg.Modes},
	}
	if specs[0].name == specs[1].name {
		specs[1].name += "-b"
	}
	if cfg.QuietLog {
		openai := slices.DeleteFunc(slices.Clone(cfg.Modes), func(m string) bool { return modes[m].provider != "openai" })
		if len(openai) == 0 {
			openai = cfg.Modes
		}
		specs = append(specs, proxySpec{name: specs[0].name + "-nolog", keys: cfg.SmallKeys, logLevel: "warn", modes: openai})
	}
	if cfg.Stores {
		// Each pool again with maxRequests on every key, then both ways on
		// Redis, each compared with its bolt twin (the OpenAI modes only:
		// the store's work is the same for every provider).
		openai := slices.DeleteFunc(slices.Clone(cfg.Modes), func(m string) bool { return modes[m].provider != "openai" })
		if len(openai) == 0 {
			openai = cfg.Modes
		}
		for _, bolt := range slices.Clone(specs[:2]) {
			limited := proxySpec{name: bolt.name + "-limited", keys: bolt.keys, logLevel: bolt.logLevel, modes: openai, limited: true}
			specs = append(specs, limited,
				proxySpec{name: "redis-" + strings.TrimPrefix(bolt.name, "proxy-"), keys: bolt.keys, logLevel: bolt.logLevel, modes: openai, store: storeRedis, versus: bolt.name},
				proxySpec{name: "redis-" + strings.TrimPrefix(limited.name, "proxy-"), keys: bolt.keys, logLevel: bolt.logLevel, modes: openai, store: storeRedis, limited: true, versus: limited.name})
		}
	}
	if cfg.KV {
		specs = append(specs, proxySpec{name: "kv-" + keysLabel(cfg.Keys), keys: cfg.Keys, logLevel: "info", store: storeKV})
	}
	for i := range specs {
		if specs[i].store == "" {
			specs[i].store = storeBolt
		}
	}
	return specs
}

// startServers starts the fake upstream, the baseline and the proxies of
// specs, and returns the targets, baseline first.
func startServers(ctx context.Context, cfg Config, cs *children, dir, bin string, specs []proxySpec, sec secrets, logf func(string, ...any)) ([]*target, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable for the helper servers: %w", err)
	}
	up, err := cs.start(ctx, roleUpstream, self, nil, append(baseEnv(),
		envRole+"="+roleUpstream, envChunks+"="+strconv.Itoa(cfg.Chunks), envChunkInterval+"="+cfg.ChunkInterval.String(),
	), filepath.Join(dir, "upstream.log"))
	if err != nil {
		return nil, err
	}
	logf("fake upstream at %s", up.URL)
	base, err := cs.start(ctx, roleBaseline, self, nil, append(baseEnv(),
		envRole+"="+roleBaseline, envUpstream+"="+up.URL, envOpenAIKey+"="+sec.openaiKey, envGeminiKey+"="+sec.geminiKey,
	), filepath.Join(dir, "baseline.log"))
	if err != nil {
		return nil, err
	}
	targets := []*target{{
		res:   &TargetResult{Name: "baseline", Desc: "bare httputil.ReverseProxy injecting one key", Baseline: true},
		proc:  base,
		modes: cfg.Modes,
	}}
	var redis *child
	if cfg.Stores {
		path, err := findRedisServer(cfg.RedisServer)
		if err != nil {
			return nil, err
		}
		if redis, err = startRedis(ctx, cs, dir, path); err != nil {
			return nil, err
		}
		logf("redis-server at %s", redis.URL)
	}
	var kv *kvNamespace
	if cfg.KV {
		if kv, err = startKV(sec); err != nil {
			return nil, err
		}
		logf("KV emulator at %s", kv.url)
	}
	for _, spec := range specs {
		logf("starting %s (%d keys, STORE=%s, limited %t, LOG_LEVEL=%s)", spec.name, spec.keys, spec.store, spec.limited, spec.logLevel)
		redisURL := ""
		if spec.store == storeRedis {
			redisURL = redis.URL
		}
		p, err := startProxy(ctx, cs, bin, dir, up.URL, redisURL, kv, spec, sec)
		if err != nil {
			return nil, err
		}
		logf("%s restarted over its %d keys in %s (CPU %s)", spec.name, spec.keys, p.wall.Round(time.Millisecond), p.cpu)
		desc := fmt.Sprintf("proxy, %d keys, LOG_LEVEL=%s", spec.keys, spec.logLevel)
		if cfg.Stores || spec.store == storeKV {
			desc += ", STORE=" + spec.store
			if spec.limited {
				desc += ", maxRequests on every key"
			}
		}
		tg := &target{
			res: &TargetResult{Name: spec.name, Keys: spec.keys, Desc: desc, Store: spec.store, Limited: spec.limited, Versus: spec.versus,
				StartWall: p.wall, StartCPU: p.cpu},
			proc:  p.proc,
			modes: spec.modes,
		}
		if spec.store == storeRedis {
			tg.store = redis
		}
		targets = append(targets, tg)
	}
	for _, t := range targets {
		if t.res.SetupRSS, _, err = procMem(t.proc.pid()); err != nil {
			return nil, err
		}
		for _, m := range t.modes {
			t.res.Modes = append(t.res.Modes, &ModeResult{Mode: m})
		}
	}
	return targets, nil
}

// measure runs one warm-up and one measured round of mode m on t and adds
// the measured one to t's results, and the CPU other processes used
// meanwhile to res.
func measure(ctx context.Context, cfg Config, res *Results, cs *children, t *target, m *mode) (loadResult, error) {
	if err := t.proc.alive(); err != nil {
		return loadResult{}, err
	}
	pid := t.proc.pid()
	if cfg.Warmup > 0 {
		if _, err := t.load.run(ctx, m, cfg.Conns, cfg.Warmup); err != nil {
			return loadResult{}, err
		}
	}
	if res.PeakReset {
		if err := resetPeakRSS(pid); err != nil {
			return loadResult{}, err
		}
	}
	busy0, ours0, err := cpuCensus(cs)
	if err != nil {
		return loadResult{}, err
	}
	cpu0, err := procCPU(pid)
	if err != nil {
		return loadResult{}, err
	}
	var store0, store1 time.Duration
	if t.store != nil {
		if store0, err = procCPU(t.store.pid()); err != nil {
			return loadResult{}, err
		}
	}
	lr, err := t.load.run(ctx, m, cfg.Conns, cfg.Duration)
	if err != nil {
		return loadResult{}, err
	}
	cpu1, err := procCPU(pid)
	if err != nil {
		return loadResult{}, err
	}
	if t.store != nil {
		if store1, err = procCPU(t.store.pid()); err != nil {
			return loadResult{}, err
		}
	}
	busy1, ours1, err := cpuCensus(cs)
	if err != nil {
		return loadResult{}, err
	}
	other := max((busy1-busy0)-(ours1-ours0), 0)
	capacity := lr.Elapsed * time.Duration(res.Machine.Cores)
	res.otherCPU += other
	res.capacity += capacity
	res.OtherCPU = res.otherCPU.Seconds() / res.capacity.Seconds()
	res.OtherCPUMax = max(res.OtherCPUMax, other.Seconds()/capacity.Seconds())
	_, peak, err := procMem(pid)
	if err != nil {
		return loadResult{}, err
	}
	r := t.res.Mode(m.name)
	r.Requests += lr.Requests
	r.Errors += lr.Errors
	if r.FirstErr == "" && lr.FirstErr != nil {
		r.FirstErr = lr.FirstErr.Error()
	}
	r.Elapsed += lr.Elapsed
	r.CPU += cpu1 - cpu0
	r.StoreCPU += store1 - store0
	r.PeakRSS = max(r.PeakRSS, peak)
	r.Latency.merge(&lr.Latency)
	return lr, t.proc.alive()
}

// measureIdle lets every target sit without traffic for d and records the
// CPU each used meanwhile.
func measureIdle(ctx context.Context, d time.Duration, targets []*target) error {
	before := make([]time.Duration, len(targets))
	for i, t := range targets {
		cpu, err := procCPU(t.proc.pid())
		if err != nil {
			return err
		}
		before[i] = cpu
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
		return fmt.Errorf("idle: %w", ctx.Err())
	}
	var errs []error
	for i, t := range targets {
		cpu, err := procCPU(t.proc.pid())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		t.res.IdleCPU = cpu - before[i]
		if t.res.IdleRSS, _, err = procMem(t.proc.pid()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// cpuCensus returns the CPU time the whole machine has spent busy and the
// part of it the harness and its servers account for.
func cpuCensus(cs *children) (busy, ours time.Duration, err error) {
	if busy, err = machineBusy(); err != nil {
		return 0, 0, err
	}
	pids := []int{os.Getpid()}
	cs.mu.Lock()
	for _, c := range cs.list {
		pids = append(pids, c.pid())
	}
	cs.mu.Unlock()
	for _, pid := range pids {
		cpu, err := procCPU(pid)
		if err != nil {
			return 0, 0, err
		}
		ours += cpu
	}
	return busy, ours, nil
}

// countLogProblems counts the warning and error lines of a server log:
// slog's level=WARN/ERROR (text) or "level":"WARN"/"ERROR" (JSON), and the
// standard library's "http: proxy error", "ReverseProxy read error" and
// "http: panic" lines.
func countLogProblems(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n := 0
	for line := range strings.SplitSeq(string(b), "\n") {
		for _, mark := range []string{"level=WARN", "level=ERROR", `"level":"WARN"`, `"level":"ERROR"`, "http: proxy error", "ReverseProxy read error", "http: panic"} {
			if strings.Contains(line, mark) {
				n++
				break
			}
		}
	}
	return n
}

// keysLabel writes a pool size short: 10, 10k, 1.5k.
func keysLabel(n int) string {
	switch {
	case n >= 1000 && n%1000 == 0:
		return strconv.Itoa(n/1000) + "k"
	case n >= 1000 && n%100 == 0:
		return strconv.FormatFloat(float64(n)/1000, 'f', 1, 64) + "k"
	}
	return strconv.Itoa(n)
}
