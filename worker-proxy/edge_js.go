//go:build js

// The edge build: this package compiled with GOOS=js GOARCH=wasm and
// served by Deno or Cloudflare Workers through worker-proxy/edge/bridge
// (`go run ./worker-proxy/edge/build -out DIR` writes the folder). The same
// environment variables and HTTP API as the binary; STORE is memory
// (default here, nothing kept) or cfkv; bolt needs files and locks the
// edge does not have, and redis needs TCP. main.go is left out of this
// build.

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
	"strings"
	"sync"
	"time"

	"github.com/keypool/keypool/worker-proxy/alerts"
	"github.com/keypool/keypool/worker-proxy/edge/bridge"
	"github.com/keypool/keypool/worker-proxy/edge/memstore"
	"github.com/keypool/keypool/worker-proxy/logbatch"
	"github.com/keypool/keypool/worker-proxy/reqlog"
	"github.com/keypool/keypool/worker-proxy/server"
	"github.com/keypool/keypool/worker-proxy/store"
	"github.com/keypool/keypool/worker-proxy/store/cfkv"
	"github.com/keypool/keypool/worker-proxy/store/sealed"
)

func main() {
	app, err := startEdge(os.Getenv, os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "configuration error:\n%v\n", err)
		bridge.Fail(err)
	}
	bridge.Export(app)
}

// edgeHost is set by the JavaScript entry: "deno" (goroutines run in the
// background) or "workers" (work happens only inside a request, so the
// flush and sync loops become App.Tick).
func edgeHost(getenv func(string) string) string { return or(getenv("KEYPOOL_EDGE_HOST"), "deno") }

func startEdge(getenv func(string) string, stdout, stderr io.Writer) (bridge.App, error) {
	memory := false
	switch s := strings.ToLower(getenv("STORE")); s {
	case "", "memory", "mem":
		memory = true
	case "bolt", "embedded", "file":
		return bridge.App{}, errors.New("STORE: bolt (the file database) is not available in the edge build: use STORE=cfkv (Cloudflare KV, shared with containers) or STORE=memory")
	case "redis":
		return bridge.App{}, errors.New("STORE: redis needs TCP connections, which the edge build cannot open (only fetch()): use STORE=cfkv or STORE=memory")
	}
	env := getenv
	if memory { // LoadConfig knows the binary's stores; memory is the edge's own
		env = func(k string) string {
			if k == "STORE" {
				return "bolt"
			}
			return getenv(k)
		}
	}
	cfg, err := LoadConfig(env)
	if err != nil {
		return bridge.App{}, err
	}
	if memory {
		cfg.Store = "memory"
	}
	logs := logbatch.New(stderr, cfg.LogFlush)
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	var h slog.Handler = slog.NewTextHandler(logs, opts)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(logs, opts)
	}
	log := slog.New(h)
	host := edgeHost(getenv)
	// No file system here: the admin key cannot be generated and kept in
	// DATA_DIR, so it must be set.
	adminKey, generated := cfg.AdminKey, false
	if adminKey == "" {
		return bridge.App{}, fmt.Errorf("ADMIN_KEY: required in the edge build (at least %d characters): there is no data directory to keep a generated one", server.MinSecretLen)
	}
	if cfg.ProvidersFile != "" {
		return bridge.App{}, errors.New("PROVIDERS_FILE: files cannot be read in the edge build; set the providers' *_BASE_URL variables instead")
	}
	providers, err := cfg.Providers()
	if err != nil {
		return bridge.App{}, err
	}
	transport := bridge.FetchTransport()
	ctx := context.Background()
	var st store.Store
	if memory {
		log.Warn("STORE=memory: keys, client tokens and usage live only in this process and are LOST when it stops (and each instance has its own); use STORE=cfkv to keep them, or give the keys in OPENAI_KEYS, GEMINI_KEYS, ... (<PROVIDER>_KEYS), which every start adds")
		st = memstore.New()
	} else {
		id := cfg.InstanceID
		if id == "" {
			id = cfkv.RandomInstanceID()
		}
		st, err = cfkv.Open(ctx, cfkv.Config{
			AccountID: cfg.CFAccountID, APIToken: cfg.CFAPIToken, NamespaceID: cfg.CFNamespaceID,
			BaseURL: cfg.CFBaseURL, InstanceID: id, Logger: log,
			UsageFlushInterval: cfg.KVUsageFlush, UsageSyncInterval: cfg.KVUsageSync,
			HTTPClient: &http.Client{Transport: transport}, Now: wallNow,
		})
		if err != nil {
			return bridge.App{}, err
		}
	}
	st = sealed.Wrap(st, cfg.Keyring, log)
	var notifier *alerts.Notifier
	if len(cfg.AlertDestinations) > 0 {
		rate := cfg.AlertErrorRate
		if rate == 0 {
			rate = -1 // off
		}
		th := cfg.AlertMinAvailable
		notifier = alerts.New(alerts.Config{Destinations: cfg.AlertDestinations, MinAvailable: &th,
			Interval: cfg.AlertInterval, ErrorRate: rate, Logger: log,
			Client: &http.Client{Transport: transport, Timeout: 10 * time.Second}})
	}
	srv, err := server.New(ctx, server.Config{
		AdminKey: adminKey, ClientTokens: cfg.ClientTokens, AllowAnonymous: cfg.AllowAnonymous,
		AllowedOrigins: cfg.AllowedOrigins, MaxBodyBytes: cfg.MaxBodyBytes,
		MaxBodyMemory: cfg.MaxBodyMemory, BodyReadTimeout: cfg.BodyReadTimeout,
		UpstreamTimeout: cfg.UpstreamTimeout, Logger: log, StoreName: cfg.Store, Pprof: cfg.Pprof,
		Policy: cfg.FailurePolicy, MaxRetries: serverRetries(cfg.MaxRetries),
		RetryBudget: cfg.RetryBudget, FirstByteTimeout: cfg.FirstByteTimeout,
		DefaultCooldown: cfg.DefaultCooldown, MaxCooldown: cfg.MaxCooldown,
		PassiveFailures: cfg.PassiveFailures, PassiveCooldown: cfg.PassiveCooldown,
		MetricsToken: cfg.MetricsToken, MetricsMaxKeyLabels: cfg.MetricsMaxKeyLabels,
		RequestLog: edgeRequestLog(cfg, log), Alerts: notifier,
		Transport: transport,
	}, st, providers)
	if err != nil {
		st.Close()
		return bridge.App{}, err
	}
	if err := addStartKeys(ctx, srv, readStartKeys(getenv, providers), log); err != nil {
		st.Close()
		return bridge.App{}, err
	}
	log.Info("proxy started", "host", host, "store", cfg.Store, "keys", srv.Pool().Len(), "anonymousRelay", cfg.AllowAnonymous)

	app := bridge.App{Handler: srv}
	app.Banner = func(h string, port int) {
		ip := net.ParseIP(h)
		if ip == nil {
			ip = net.IPv4zero
		}
		printBanner(stdout, cfg, &net.TCPAddr{IP: ip, Port: port}, adminKey, generated)
		if !cfg.AllowAnonymous && len(cfg.ClientTokens) == 0 {
			log.Info("relay needs a client token: set CLIENT_TOKENS or create one with POST /admin/tokens")
		}
	}
	var once sync.Once
	finalFlush := func(ctx context.Context) error {
		var err error
		once.Do(func() {
			flushNow(srv)
			err = st.Close()
			logs.Flush()
		})
		return err
	}
	if host == "workers" {
		t := &ticker{srv: srv, flushEvery: cfg.FlushInterval, syncEvery: cfg.SyncInterval}
		app.Tick = t.tick
		app.Shutdown = finalFlush
		return app, nil
	}
	bg, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { srv.RunFlusher(bg, cfg.FlushInterval) })
	wg.Go(func() { srv.RunRetester(bg, cfg.RetestInterval, cfg.RetestBatch) })
	wg.Go(func() { srv.RunSync(bg, cfg.SyncInterval) })
	app.Tick = func(context.Context) error { flushNow(srv); return nil }
	app.Shutdown = func(ctx context.Context) error {
		log.Info("shutting down")
		stop()
		wg.Wait() // RunFlusher's last round flushes
		var err error
		once.Do(func() {
			err = st.Close()
			log.Info("proxy stopped; usage flushed")
			logs.Flush()
		})
		return err
	}
	return app, nil
}

// flushNow writes queued key changes and usage once: RunFlusher with a
// context already done does exactly its final round.
func flushNow(srv *server.Server) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	srv.RunFlusher(ctx, time.Hour)
}

// wallNow is the time without its monotonic reading: Workers' monotonic
// clock (performance.now) does not advance between requests the way the
// wall clock does, so intervals there are measured on the wall clock.
func wallNow() time.Time { return time.Now().Round(0) }

// ticker runs the flush and sync rounds that are due, for hosts that give
// a program time only while a request (or a Cron Trigger) is being served.
type ticker struct {
	srv                   *server.Server
	flushEvery, syncEvery time.Duration
	mu                    sync.Mutex
	lastFlush, lastSync   time.Time
}

func (t *ticker) tick(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := wallNow()
	if t.lastFlush.IsZero() {
		t.lastFlush, t.lastSync = now, now
	}
	if now.Sub(t.lastFlush) >= t.flushEvery {
		t.lastFlush = now
		flushNow(t.srv)
	}
	if now.Sub(t.lastSync) >= t.syncEvery {
		t.lastSync = now
		if _, err := t.srv.SyncOnce(ctx); err != nil {
			return fmt.Errorf("sync with the shared store: %w", err)
		}
	}
	return nil
}

// openStore opens the edge's stores (encryption.go's key rotation uses it).
func openStore(ctx context.Context, cfg Config, log *slog.Logger) (store.Store, error) {
	if cfg.Store == "memory" {
		return memstore.New(), nil
	}
	return cfkv.Open(ctx, cfkv.Config{
		AccountID: cfg.CFAccountID, APIToken: cfg.CFAPIToken, NamespaceID: cfg.CFNamespaceID,
		BaseURL: cfg.CFBaseURL, InstanceID: cfg.InstanceID, Logger: log,
		UsageFlushInterval: cfg.KVUsageFlush, UsageSyncInterval: cfg.KVUsageSync,
		HTTPClient: &http.Client{Transport: bridge.FetchTransport()},
	})
}

// edgeRequestLog is the edge's request log: an in-memory ring per isolate
// (KV's write budget cannot take a record per request), or nil when
// REQUEST_LOG_MAX is 0.
func edgeRequestLog(cfg Config, log *slog.Logger) *reqlog.Log {
	if cfg.RequestLogMax == 0 {
		return nil
	}
	b := reqlog.Bounds{MaxAge: time.Duration(cfg.RequestLogDays) * 24 * time.Hour, Max: max(cfg.RequestLogMax, 0)}
	return reqlog.New(reqlog.NewRing(b, nil), "memory", reqlog.Options{Logger: log})
}
