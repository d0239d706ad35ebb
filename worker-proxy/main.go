//go:build !js

// Command worker-proxy is the API Key Pool proxy: it holds many AI-provider
// API keys, picks one per request and relays the call. Configuration comes
// from the environment; see README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/keypool/keypool/worker-proxy/alerts"
	"github.com/keypool/keypool/worker-proxy/deploy"
	"github.com/keypool/keypool/worker-proxy/logbatch"
	"github.com/keypool/keypool/worker-proxy/reqlog"
	"github.com/keypool/keypool/worker-proxy/reqlog/boltlog"
	"github.com/keypool/keypool/worker-proxy/reqlog/redislog"
	"github.com/keypool/keypool/worker-proxy/server"
	"github.com/keypool/keypool/worker-proxy/store"
	"github.com/keypool/keypool/worker-proxy/store/boltstore"
	"github.com/keypool/keypool/worker-proxy/store/cfkv"
	"github.com/keypool/keypool/worker-proxy/store/redisstore"
	"github.com/keypool/keypool/worker-proxy/store/sealed"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "kv-setup":
			os.Exit(kvSetup(os.Args[2:], os.Getenv, os.Stdout, os.Stderr))
		case "rotate-encryption-key":
			os.Exit(rotateEncryptionKey(os.Args[2:], os.Getenv, os.Stdout, os.Stderr))
		case "new-encryption-key":
			os.Exit(newEncryptionKey(os.Stdout, os.Stderr))
		case "healthcheck":
			os.Exit(healthcheck(os.Getenv, os.Stderr))
		case "deploy":
			os.Exit(deploy.Run(context.Background(), os.Args[2:], os.Getenv, os.Stdout, os.Stderr))
		}
	}
	runtime.MemProfileRate = memProfileRate(os.Getenv) // before the keys are loaded
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Getenv, os.Stdout, os.Stderr))
}

// memProfileRate is the runtime.MemProfileRate for a proxy started with
// getenv: Go's default when PPROF serves the profiler, else 0. Sampling
// allocations for a heap profile nobody can fetch keeps the samples'
// records (about 1.5 MB at 100,000 keys) for nothing. Set in main, not in
// run: tests call run in their own process, where writing it would race.
func memProfileRate(getenv func(string) string) int {
	if on, err := strconv.ParseBool(getenv("PPROF")); err == nil && on {
		return runtime.MemProfileRate
	}
	return 0
}

// run starts the proxy and serves until ctx ends; it returns the exit code.
// The banner (listen address, a newly generated admin key) goes to stdout,
// logs to stderr.
func run(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := LoadConfig(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "configuration error:\n%v\n", err)
		return 2
	}
	logs := logbatch.New(stderr, cfg.LogFlush)
	defer logs.Flush()
	var h slog.Handler
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(logs, opts)
	} else {
		h = slog.NewTextHandler(logs, opts)
	}
	log := slog.New(h)
	if err := serve(ctx, cfg, getenv, log, stdout); err != nil {
		log.Error("proxy stopped", "err", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, cfg Config, getenv func(string) string, log *slog.Logger, stdout io.Writer) error {
	secureDataDir(cfg.DataDir, log)
	adminKey, generated, err := resolveAdminKey(cfg)
	if err != nil {
		return err
	}
	providers, err := cfg.Providers()
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	live, _ := st.(store.Live)             // Redis: shared live, beyond what the wrapper passes on
	st = sealed.Wrap(st, cfg.Keyring, log) // API keys sealed at rest with ENCRYPTION_KEY
	defer st.Close()

	// With STORE=redis, the request log and the alerts' de-duplication
	// share the pool's Redis through a client of their own.
	var rc redis.UniversalClient
	if cfg.Store == "redis" {
		if rc, err = redisstore.NewClient(cfg.RedisURL); err != nil {
			return err
		}
		defer rc.Close()
	}
	requests, err := openRequestLog(cfg, rc, log)
	if err != nil {
		return err
	}
	var collectors []prometheus.Collector
	if requests != nil {
		defer requests.Close() // after the server drained: writes what waits
		collectors = append(collectors, requestLogCollectors(requests)...)
	}
	var notifier *alerts.Notifier
	if len(cfg.AlertDestinations) > 0 {
		rate := cfg.AlertErrorRate
		if rate == 0 {
			rate = -1 // off
		}
		th := cfg.AlertMinAvailable
		ac := alerts.Config{Destinations: cfg.AlertDestinations, MinAvailable: &th,
			Interval: cfg.AlertInterval, ErrorRate: rate, Logger: log}
		if rc != nil {
			ac.Claim = redisClaim(rc, cfg.RedisPrefix)
		}
		notifier = alerts.New(ac)
	}
	srv, err := server.New(ctx, server.Config{
		AdminKey: adminKey, ClientTokens: cfg.ClientTokens, AllowAnonymous: cfg.AllowAnonymous,
		AllowedOrigins: cfg.AllowedOrigins, MaxBodyBytes: cfg.MaxBodyBytes,
		MaxBodyMemory: cfg.MaxBodyMemory, BodyReadTimeout: cfg.BodyReadTimeout,
		UpstreamTimeout: cfg.UpstreamTimeout, Logger: log, StoreName: cfg.Store, Pprof: cfg.Pprof, StickySessions: cfg.StickySessions, KeyProxies: cfg.KeyProxies,
		Policy: cfg.FailurePolicy, MaxRetries: serverRetries(cfg.MaxRetries),
		RetryBudget: cfg.RetryBudget, FirstByteTimeout: cfg.FirstByteTimeout,
		DefaultCooldown: cfg.DefaultCooldown, MaxCooldown: cfg.MaxCooldown,
		PassiveFailures: cfg.PassiveFailures, PassiveCooldown: cfg.PassiveCooldown,
		MetricsToken: cfg.MetricsToken, MetricsMaxKeyLabels: cfg.MetricsMaxKeyLabels,
		MetricsCollectors: collectors, RequestLog: requests, Alerts: notifier,
		Live: live,
	}, st, providers)
	if err != nil {
		return err
	}
	if err := addStartKeys(ctx, srv, readStartKeys(getenv, providers), log); err != nil {
		return err
	}
	// Loading the keys leaves garbage about the size of the pool (decoded
	// copies, the store's read buffers): give it back to the system now
	// rather than over the next minutes.
	debug.FreeOSMemory()
	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr(), err)
	}
	hs := &http.Server{
		Handler: srv,
		// A body's own deadline (BODY_READ_TIMEOUT) starts where this ends.
		ReadHeaderTimeout: 15 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	flushCtx, stopFlush := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { srv.RunFlusher(flushCtx, cfg.FlushInterval) })
	wg.Go(func() { srv.RunRetester(flushCtx, cfg.RetestInterval, cfg.RetestBatch) })
	wg.Go(func() { srv.RunSync(flushCtx, cfg.SyncInterval) })
	wg.Go(func() { srv.RunAlerts(flushCtx, cfg.AlertCheck) })

	printBanner(stdout, cfg, ln.Addr().(*net.TCPAddr), adminKey, generated)
	log.Info("proxy started", "addr", ln.Addr().String(), "store", cfg.Store, "keys", srv.Pool().Len(), "anonymousRelay", cfg.AllowAnonymous)
	if !cfg.AllowAnonymous && len(cfg.ClientTokens) == 0 {
		log.Info("relay needs a client token: set CLIENT_TOKENS or create one with POST /admin/tokens")
	}

	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
		log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		err = hs.Shutdown(sctx)
		cancel()
		if err != nil {
			hs.Close()
		}
	}
	stopFlush()
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, context.DeadlineExceeded) {
		err = nil
	}
	log.Info("proxy stopped; usage flushed")
	return err
}

func openStore(ctx context.Context, cfg Config, log *slog.Logger) (store.Store, error) {
	switch cfg.Store {
	case "bolt":
		return boltstore.Open(filepath.Join(cfg.DataDir, "keypool.db"))
	case "cfkv":
		id := cfg.InstanceID
		if id == "" {
			id = stableInstanceID(cfg.DataDir)
		}
		return cfkv.Open(ctx, cfkv.Config{
			AccountID: cfg.CFAccountID, APIToken: cfg.CFAPIToken, NamespaceID: cfg.CFNamespaceID,
			BaseURL: cfg.CFBaseURL, InstanceID: id, Logger: log,
			UsageFlushInterval: cfg.KVUsageFlush, UsageSyncInterval: cfg.KVUsageSync,
			JournalPath: filepath.Join(cfg.DataDir, "kv-usage.journal"),
		})
	case "redis":
		return redisstore.Open(ctx, redisstore.Config{URL: cfg.RedisURL, Prefix: cfg.RedisPrefix, Logger: log})
	}
	return nil, fmt.Errorf("unknown store %q", cfg.Store)
}

// openRequestLog opens the request log: DATA_DIR/requests.db with the bolt
// store, else an in-memory ring (Cloudflare KV's write budget cannot take
// a record per request). Nil when REQUEST_LOG_MAX is 0.
func openRequestLog(cfg Config, rc redis.UniversalClient, log *slog.Logger) (*reqlog.Log, error) {
	if cfg.RequestLogMax == 0 {
		return nil, nil
	}
	b := reqlog.Bounds{MaxAge: time.Duration(cfg.RequestLogDays) * 24 * time.Hour, Max: max(cfg.RequestLogMax, 0)}
	opts := reqlog.Options{Logger: log}
	switch {
	case cfg.Store == "bolt":
		st, err := boltlog.Open(filepath.Join(cfg.DataDir, "requests.db"), b, nil)
		if err != nil {
			return nil, err
		}
		return reqlog.New(st, "bolt", opts), nil
	case rc != nil:
		return reqlog.New(redislog.New(rc, cfg.RedisPrefix+"requests", b, nil), "redis", opts), nil
	}
	return reqlog.New(reqlog.NewRing(b, nil), "memory", opts), nil
}

// redisClaim lets one instance send each alert condition: it claims cond
// by setting prefix+"alert:"+cond, if absent, for ttl.
func redisClaim(c redis.UniversalClient, prefix string) func(context.Context, string, time.Duration) (bool, error) {
	return func(ctx context.Context, cond string, ttl time.Duration) (bool, error) {
		return c.SetNX(ctx, prefix+"alert:"+cond, "1", ttl).Result()
	}
}

// requestLogCollectors export the request log's own counters.
func requestLogCollectors(l *reqlog.Log) []prometheus.Collector {
	counter := func(result string, f func(reqlog.Stats) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "keypool_request_log_records_total",
			Help:        "Request log records by result: written, dropped (the write queue was full) or failed (a batch write failed).",
			ConstLabels: prometheus.Labels{"result": result},
		}, func() float64 { return float64(f(l.Stats())) })
	}
	return []prometheus.Collector{
		counter("written", func(s reqlog.Stats) int64 { return s.Written }),
		counter("dropped", func(s reqlog.Stats) int64 { return s.Dropped }),
		counter("failed", func(s reqlog.Stats) int64 { return s.Failed }),
	}
}

// stableInstanceID keeps an instance id in DATA_DIR/instance.id, so a
// restarted instance continues its own usage record; where the directory
// cannot be written, a new id each start.
func stableInstanceID(dir string) string {
	path := filepath.Join(dir, "instance.id")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b))
	}
	id := cfkv.RandomInstanceID()
	if os.MkdirAll(dir, 0o700) == nil {
		os.WriteFile(path, []byte(id+"\n"), 0o600)
	}
	return id
}

// ourDataFiles are files the proxy keeps in DATA_DIR; a directory holding
// one of them (or nothing) is the proxy's own.
var ourDataFiles = []string{"keypool.db", adminKeyFile, "instance.id", "requests.db"}

// secureDataDir creates DATA_DIR and makes it 0700, and an admin.key in it
// 0600, even when they exist with looser bits: they hold the key database
// and the admin key. A directory that holds other files and none of the
// proxy's is left as it is (DATA_DIR may name a shared directory by
// mistake), and so is anything this user may not change; the log says so.
func secureDataDir(dir string, log *slog.Logger) {
	if runtime.GOOS == "windows" {
		return
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		log.Warn("cannot create the data directory", "dir", dir, "err", err)
		return
	}
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 && !slices.ContainsFunc(ents, func(e os.DirEntry) bool {
		return slices.Contains(ourDataFiles, e.Name())
	}) {
		if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o077 != 0 {
			log.Warn("DATA_DIR holds other files, so its permissions are left as they are; give the proxy a directory of its own", "dir", dir, "mode", fi.Mode().Perm().String())
		}
		return
	}
	tighten(dir, 0o700, log)
	tighten(filepath.Join(dir, adminKeyFile), 0o600, log)
}

// tighten removes from path's permissions every bit beyond perm.
func tighten(path string, perm os.FileMode, log *slog.Logger) {
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&^perm == 0 {
		return
	}
	if err := os.Chmod(path, fi.Mode().Perm()&perm); err != nil {
		log.Warn("cannot restrict permissions; others on this machine may read secrets", "path", path, "mode", fi.Mode().Perm().String(), "err", err)
		return
	}
	log.Info("restricted permissions to the owner", "path", path, "was", fi.Mode().Perm().String(), "now", (fi.Mode().Perm() & perm).String())
}
