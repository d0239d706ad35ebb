// Package server is the proxy's HTTP face: the admin API under /admin/, the
// relay under /api/{provider}/, health checks, and CORS for the dashboard.
package server

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/alerts"
	"github.com/keypool/keypool/worker-proxy/failure"
	"github.com/keypool/keypool/worker-proxy/jobs"
	"github.com/keypool/keypool/worker-proxy/limits"
	"github.com/keypool/keypool/worker-proxy/metrics"
	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/provider"
	"github.com/keypool/keypool/worker-proxy/reqlog"
	"github.com/keypool/keypool/worker-proxy/store"
	"github.com/keypool/keypool/worker-proxy/tokenusage"
	"github.com/keypool/keypool/worker-proxy/traffic"
)

// Config configures a Server. Zero values take the documented defaults.
type Config struct {
	// AdminKey guards /admin/; at least MinSecretLen characters. Required.
	AdminKey string
	// ClientTokens are accepted on the relay besides those created through
	// the admin API; each at least MinSecretLen characters.
	ClientTokens []string
	// AllowAnonymous lets relay callers in without a client token.
	AllowAnonymous bool
	// AllowedOrigins are the browser origins (scheme://host[:port]) whose
	// pages may call the proxy; "*" allows any. Default none.
	AllowedOrigins []string
	// MaxBodyBytes caps a relayed request body; larger ones get 413.
	// Default 32 MiB.
	MaxBodyBytes int64
	// MaxBodyMemory caps the bytes of request bodies held at once, from
	// their first byte until their request ends; a body that would pass it
	// gets 503 with Retry-After. Default 256 MiB, and never below
	// MaxBodyBytes.
	MaxBodyMemory int64
	// BodyReadTimeout bounds the wait for a request's whole body, from the
	// end of its headers; a body late past it gets 408 and its connection
	// is closed. Default 60s.
	BodyReadTimeout time.Duration
	// UpstreamTimeout bounds the wait for an upstream's response headers.
	// Default 5 minutes.
	UpstreamTimeout time.Duration
	// Transport sends upstream requests. Default: a tuned http.Transport.
	Transport http.RoundTripper

	// Policy says what each failure class does. Default failure.DefaultPolicy().
	Policy failure.Policy
	// MaxRetries bounds the retries of one request on other keys after
	// upstream trouble (5xx, timeouts, connection errors, a 429 naming no
	// quota). Refusals about the key (failure.Verdict.AboutKey) do not
	// count: the pool and RetryBudget bound those. Default 3; negative
	// means none.
	MaxRetries int
	// RetryBudget bounds the time after which no retry starts. Default 2m.
	RetryBudget time.Duration
	// FirstByteTimeout bounds the wait for a stream's first data; a stream
	// that sends nothing in time fails over. Default 60s.
	FirstByteTimeout time.Duration
	// DefaultCooldown rests a rate-limited key when the upstream does not
	// say for how long. Default 60s. MaxCooldown caps what it says, except
	// for daily quotas. Default 1h.
	DefaultCooldown time.Duration
	MaxCooldown     time.Duration
	// PassiveFailures consecutive upstream failures rest a key for
	// PassiveCooldown. Defaults 3 and 10s.
	PassiveFailures int
	PassiveCooldown time.Duration
	// StormWindow is how recent failures must be to count as one storm.
	// Default 10s.
	StormWindow time.Duration
	// Logger receives one line per relayed request. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// StoreName names the backend in status ("bolt", "cfkv").
	StoreName string
	// MetricsToken, when set, is the bearer token GET /metrics needs;
	// unset, the admin key opens it.
	MetricsToken string
	// MetricsMaxKeyLabels: per-key metrics only while the pool holds at
	// most this many keys. Default 100.
	MetricsMaxKeyLabels int
	// MetricsCollectors are exported on /metrics too.
	MetricsCollectors []metrics.Collector
	// RequestLog receives one record per relayed request and answers GET
	// /admin/requests. Nil: no request log.
	RequestLog *reqlog.Log
	// Alerts sends webhook alerts (RunAlerts) and answers /admin/alerts.
	// Nil: no alerts.
	Alerts *alerts.Notifier
	// StickySessions sends a conversation back to the key that served it,
	// for the provider's prompt cache: "header" (default) for requests
	// naming it in X-KeyPool-Session; "on" also names a conversation
	// without the header by its system prompt and first user message;
	// "off" never.
	StickySessions string
	// KeyProxies are proxy URLs assigned, by a hash of the key id, to keys
	// that name no proxy of their own; empty: those go direct.
	KeyProxies []string
	// Pprof serves Go's profiler under /admin/debug/pprof/, behind the
	// admin key. Default off.
	Pprof bool
	// Live, when the store is shared live between instances (Redis), is
	// that store unwrapped: the server then syncs as soon as it says
	// something changed, shares rests through it, writes key state
	// changes at once, and counts limited keys' requests through it.
	Live store.Live
}

// Server serves the admin API and the relay over one pool and store.
type Server struct {
	cfg       Config
	log       *slog.Logger
	store     store.Store
	pool      *pool.Pool
	providers *provider.Registry
	tokens    *tokens
	admin     adminAuth
	proxy     *httputil.ReverseProxy
	handler   http.Handler
	origins   map[string]bool
	anyOrigin bool

	policy     failure.Policy
	classifier *failure.Classifier
	storms     *storms
	persistQ   chan string    // ids of keys whose state changed, to write off the request path
	kick       chan struct{}  // with a Live store: write persistQ now
	restQ      chan restShare // with a Live store: rests to share
	bodies     *bodyBudget
	traffic    *traffic.Counter
	limiter    *limits.Limiter // client token budgets
	usage      usageCounts     // requests and tokens by provider, model, client token
	metrics    *metrics.Metrics
	reqlog     *reqlog.Log
	alerts     *alerts.Notifier
	aliases    *aliases
	sticky     *sticky // nil when StickySessions is off
	outProxies proxyTransports

	jobs      *jobs.Manager
	adminMu   sync.Mutex // serializes admin writes
	disableMu sync.Mutex // the relay disables a key and learns it did in one step
}

// New loads the store's contents into memory and returns a Server.
func New(ctx context.Context, cfg Config, st store.Store, providers *provider.Registry) (*Server, error) {
	if len(cfg.AdminKey) < MinSecretLen {
		return nil, fmt.Errorf("admin key must be at least %d characters", MinSecretLen)
	}
	for i, t := range cfg.ClientTokens {
		if len(t) < MinSecretLen {
			return nil, fmt.Errorf("client token #%d is shorter than %d characters", i+1, MinSecretLen)
		}
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 32 << 20
	}
	if cfg.MaxBodyMemory <= 0 {
		cfg.MaxBodyMemory = 256 << 20
	}
	cfg.MaxBodyMemory = max(cfg.MaxBodyMemory, cfg.MaxBodyBytes)
	cfg.BodyReadTimeout = cmp.Or(cfg.BodyReadTimeout, 60*time.Second)
	if cfg.UpstreamTimeout <= 0 {
		cfg.UpstreamTimeout = 5 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Transport == nil {
		cfg.Transport = defaultTransport(cfg.UpstreamTimeout)
	}
	if cfg.Policy == nil {
		cfg.Policy = failure.DefaultPolicy()
	}
	switch {
	case cfg.MaxRetries == 0:
		cfg.MaxRetries = 3
	case cfg.MaxRetries < 0:
		cfg.MaxRetries = 0
	}
	cfg.RetryBudget = cmp.Or(cfg.RetryBudget, 2*time.Minute)
	cfg.FirstByteTimeout = cmp.Or(cfg.FirstByteTimeout, 60*time.Second)
	cfg.DefaultCooldown = cmp.Or(cfg.DefaultCooldown, 60*time.Second)
	cfg.MaxCooldown = cmp.Or(cfg.MaxCooldown, time.Hour)
	cfg.PassiveFailures = cmp.Or(cfg.PassiveFailures, 3)
	cfg.PassiveCooldown = cmp.Or(cfg.PassiveCooldown, 10*time.Second)
	cfg.StormWindow = cmp.Or(cfg.StormWindow, 10*time.Second)
	s := &Server{
		cfg: cfg, log: cfg.Logger, store: st, providers: providers,
		pool: pool.New(cfg.Now), tokens: newTokens(), traffic: traffic.New(cfg.Now),
		jobs:       jobs.NewManager(maxRunningJobs, keptJobs, cfg.Now),
		admin:      adminAuth{sum: sha256.Sum256([]byte(cfg.AdminKey))},
		origins:    map[string]bool{},
		policy:     cfg.Policy,
		classifier: &failure.Classifier{Now: cfg.Now, DefaultCooldown: cfg.DefaultCooldown, MaxCooldown: cfg.MaxCooldown},
		storms:     newStorms(cfg.StormWindow),
		persistQ:   make(chan string, 4096),
		kick:       make(chan struct{}, 1),
		restQ:      make(chan restShare, 4096),
		bodies:     &bodyBudget{limit: cfg.MaxBodyMemory},
		limiter:    limits.New(cfg.Now),
		usage: usageCounts{since: cfg.Now(), providers: tokenusage.NewTally(0),
			models: tokenusage.NewTally(adminapi.MaxUsageModels), tokens: tokenusage.NewTally(0)},
	}
	for _, o := range cfg.AllowedOrigins {
		if o == "*" {
			s.anyOrigin = true
			continue
		}
		s.origins[strings.TrimRight(o, "/")] = true
	}
	c, err := st.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("load store: %w", err)
	}
	if cfg.Live != nil {
		s.pool.SetLimiter(liveLimiter{cfg.Live})
		// Client token windows too are shared, when the store can.
		if sh, ok := cfg.Live.(limits.Shared); ok {
			s.limiter.Share(sh)
		}
		cfg.Live.Counted(s.pool.CountedElsewhere)
	}
	s.pool.Load(c.Keys, c.Usage)
	s.setTokens(c.Tokens)
	switch cfg.StickySessions {
	case "off":
	case "on":
		s.sticky = newSticky()
		s.sticky.bodies = true
	default:
		s.sticky = newSticky()
	}
	if err := s.loadAliases(ctx); err != nil {
		return nil, err
	}
	s.metrics = s.newMetrics()
	s.reqlog, s.alerts = cfg.RequestLog, cfg.Alerts
	s.proxy = s.newReverseProxy()
	s.handler = s.routes()
	return s, nil
}

// setTokens replaces the accepted client tokens with CLIENT_TOKENS and
// the stored ones.
func (s *Server) setTokens(stored []pool.ClientToken) {
	m := map[[32]byte]tokenRef{}
	for i, t := range s.cfg.ClientTokens {
		sum, _ := hashToken(t)
		m[sum] = tokenRef{id: fmt.Sprintf("env_%d", i+1), name: fmt.Sprintf("CLIENT_TOKENS #%d", i+1), masked: pool.Mask(t), source: adminapi.TokenSourceEnv}
	}
	for _, t := range stored {
		b, err := hex.DecodeString(t.Hash)
		if err != nil || len(b) != 32 {
			s.log.Warn("skipping client token with a malformed hash", "id", t.ID)
			continue
		}
		m[[32]byte(b)] = tokenRef{id: t.ID, name: t.Name, masked: t.Masked, source: adminapi.TokenSourceAdmin, token: t}
	}
	s.tokens.mu.Lock()
	s.tokens.byHash.Store(&m)
	s.tokens.mu.Unlock()
}

// Pool returns the in-memory pool the server picks from.
func (s *Server) Pool() *pool.Pool { return s.pool }

// NewTransport returns the upstream transport: HTTP/2 where offered, a deep
// idle pool per host so bursts reuse connections, and no transparent
// proxyFromEnvironment returns http.ProxyFromEnvironment when one of its
// variables is set (HTTPS_PROXY, HTTP_PROXY, in either case), else nil:
// without a proxy configured, no request pays for the per-request lookup.
func proxyFromEnvironment(getenv func(string) string) func(*http.Request) (*url.URL, error) {
	for _, v := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"} {
		if getenv(v) != "" {
			return http.ProxyFromEnvironment
		}
	}
	return nil
}

// decompression so bodies pass through as the upstream sent them.
func NewTransport(headerTimeout time.Duration) *http.Transport {
	return &http.Transport{
		Proxy:                 proxyFromEnvironment(os.Getenv),
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: headerTimeout,
		DisableCompression:    true,
	}
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/healthz", methods{"GET": func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}})
	mux.Handle("/readyz", methods{"GET": s.handleReady})
	mux.Handle("/metrics", methods{"GET": s.metrics.Handler(s.metricsAllowed).ServeHTTP})
	mux.Handle("/admin/keys", s.requireAdmin(methods{"POST": s.handleAddKey}))
	mux.Handle("/admin/keys/bulk", s.requireAdmin(methods{"POST": s.handleBulkAdd}))
	mux.Handle("/admin/keys/bulk-delete", s.requireAdmin(methods{"POST": s.handleBulkDelete}))
	mux.Handle("/admin/keys/bulk-test", s.requireAdmin(methods{"POST": s.handleBulkTest}))
	mux.Handle("/admin/jobs", s.requireAdmin(methods{"GET": s.handleListJobs}))
	mux.Handle("/admin/jobs/import", s.requireAdmin(methods{"POST": s.handleImportJob}))
	mux.Handle("/admin/jobs/delete", s.requireAdmin(methods{"POST": s.handleDeleteJob}))
	mux.Handle("/admin/jobs/test", s.requireAdmin(methods{"POST": s.handleTestJob}))
	mux.Handle("/admin/jobs/{id}", s.requireAdmin(methods{"GET": s.handleGetJob, "DELETE": s.handleCancelJob}))
	mux.Handle("/admin/keys/{id}/test", s.requireAdmin(methods{"POST": s.handleTestKey}))
	mux.Handle("/admin/keys/{id}", s.requireAdmin(methods{"GET": s.handleGetKey, "PUT": s.handleUpdateKey, "DELETE": s.handleDeleteKey}))
	mux.Handle("/admin/status", s.requireAdmin(methods{"GET": s.handleStatus}))
	mux.Handle("/admin/summary", s.requireAdmin(methods{"GET": s.handleSummary}))
	mux.Handle("/admin/traffic", s.requireAdmin(methods{"GET": s.handleTraffic}))
	mux.Handle("/admin/requests", s.requireAdmin(methods{"GET": s.handleRequests}))
	mux.Handle("/admin/alerts", s.requireAdmin(methods{"GET": s.handleAlerts}))
	mux.Handle("/admin/alerts/test", s.requireAdmin(methods{"POST": s.handleAlertTest}))
	mux.Handle("/admin/reset", s.requireAdmin(methods{"POST": s.handleReset}))
	mux.Handle("/admin/tokens", s.requireAdmin(methods{"GET": s.handleListTokens, "POST": s.handleCreateToken}))
	mux.Handle("/admin/tokens/{id}", s.requireAdmin(methods{"PUT": s.handleUpdateToken, "DELETE": s.handleDeleteToken}))
	mux.Handle("/admin/usage", s.requireAdmin(methods{"GET": s.handleUsage}))
	mux.Handle("/admin/aliases", s.requireAdmin(methods{"GET": s.handleListAliases}))
	mux.Handle("/admin/aliases/{name}", s.requireAdmin(methods{"PUT": s.handlePutAlias, "DELETE": s.handleDeleteAlias}))
	if s.cfg.Pprof {
		handlePprof(mux, s.requireAdmin) // pprof.go; not in js builds
	}
	mux.Handle("/api/{provider}/{rest...}", http.HandlerFunc(s.handleRelay))
	mux.Handle("/v1/{rest...}", http.HandlerFunc(s.handleFrontDoor))
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "Not found: "+truncate(r.URL.Path, 100))
	}))
	return s.guardBodies(s.cors(s.recoverer(s.checkPaths(mux))))
}

// ServeHTTP serves every route.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// requireAdmin answers 401 unless the request carries the admin key.
func (s *Server) requireAdmin(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.admin.ok(r) {
			msg := "Invalid or missing admin key (send it in the X-Admin-Key header)"
			if k := r.Header.Get("X-Admin-Key"); k != "" && s.tokens.has(k) {
				msg = "This is a client token, for the relay; the admin API needs the admin key (X-Admin-Key)"
			}
			writeError(w, http.StatusUnauthorized, msg)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// recoverer turns a panic in a handler into a JSON 500, logging no request
// data. http.ErrAbortHandler passes through: it aborts a broken stream.
func (s *Server) recoverer(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("handler panic", "path", r.URL.Path, "panic", fmt.Sprint(v))
				writeError(w, http.StatusInternalServerError, "Internal error")
			}
		}()
		h.ServeHTTP(w, r)
	})
}

// cors answers browsers from the allowed origins, preflight included.
func (s *Server) cors(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Add("Vary", "Origin")
		allowed := s.anyOrigin || s.origins[origin]
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if !allowed {
			if preflight {
				writeJSON(w, http.StatusForbidden, map[string]string{
					"error":  "Origin not allowed",
					"origin": truncate(origin, 200),
					"hint":   "Add this origin to ALLOWED_ORIGINS (comma-separated) and restart the proxy",
				})
				return
			}
			h.ServeHTTP(w, r)
			return
		}
		hd := w.Header()
		hd.Set("Access-Control-Allow-Origin", origin)
		hd.Set("Access-Control-Expose-Headers", "X-KeyPool-Key-Id, Retry-After, X-Request-Id")
		if preflight {
			hd.Add("Vary", "Access-Control-Request-Method")
			hd.Add("Vary", "Access-Control-Request-Headers")
			hd.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS")
			hd.Set("Access-Control-Allow-Headers", "X-Admin-Key, Content-Type, Authorization, X-Goog-Api-Key, X-Api-Key, Anthropic-Version")
			hd.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// handleReady answers 200 while the proxy can serve: with a degraded
// store it still serves from memory, so it stays ready and says so:
// {"status":"ready"} or {"status":"degraded"}. Only a caller with the
// admin key also gets the key count and the store's health.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	h := s.storeHealth()
	status := "ready"
	if !h.OK {
		status = "degraded"
	}
	if r.Header.Get("X-Admin-Key") == "" || !s.admin.ok(r) {
		writeJSON(w, http.StatusOK, map[string]string{"status": status})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": status, "keys": s.pool.Len(), "store": h})
}

// FlushUsage writes the counters gathered since the last flush to the store.
func (s *Server) FlushUsage(ctx context.Context) error {
	return s.pool.Flush(func(d []pool.UsageDelta) error { return s.store.AddUsage(ctx, d) })
}

// persist queues a key's changed state (disabled, re-enabled) for the
// store; the request path never waits for it.
func (s *Server) persist(k pool.Key) {
	select {
	case s.persistQ <- k.ID:
	default:
		s.log.Warn("key state queue full; change kept in memory only", "key", k.ID)
	}
	if s.cfg.Live != nil {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// requeue queues a key's state again after a failed write, for the next
// flush interval (not at once: the store is failing).
func (s *Server) requeue(k pool.Key) {
	select {
	case s.persistQ <- k.ID:
	default:
		s.log.Warn("key state queue full; change kept in memory only", "key", k.ID)
	}
}

// writeQueued writes the queued key changes, the latest per key, and only
// for keys still in the pool.
func (s *Server) writeQueued(ctx context.Context) {
	latest := map[string]bool{}
	for {
		select {
		case id := <-s.persistQ:
			latest[id] = true
			continue
		default:
		}
		break
	}
	if len(latest) == 0 {
		return
	}
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	var keys []pool.Key
	for id := range latest {
		if e, ok := s.pool.Entry(id); ok {
			keys = append(keys, e.Key()) // the current state, not a stale one
		}
	}
	if err := s.store.PutKeys(ctx, keys...); err != nil {
		if errors.Is(err, store.ErrConflict) {
			// Someone else changed one of these keys: write the others,
			// and let the next sync bring the other writer's version.
			for _, k := range keys {
				if err := s.store.PutKeys(ctx, k); err != nil && !errors.Is(err, store.ErrConflict) {
					s.requeue(k)
				}
			}
			return
		}
		s.log.Warn("saving key states failed; will retry", "err", err, "keys", len(keys))
		for _, k := range keys {
			s.requeue(k)
		}
	}
}

// RunFlusher flushes usage and key state changes every interval until ctx
// ends, then once more.
func (s *Server) RunFlusher(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.kick:
			s.writeQueued(ctx)
		case <-t.C:
			s.writeQueued(ctx)
			if err := s.FlushUsage(ctx); err != nil {
				s.log.Warn("flushing usage failed; will retry", "err", err)
			}
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			s.writeQueued(fctx)
			if err := s.FlushUsage(fctx); err != nil {
				s.log.Error("final usage flush failed", "err", err)
			}
			cancel()
			return
		}
	}
}

// storeError answers a failed store call: 503 while the store is
// unavailable, else 500. Details go to the log, not the client.
func (s *Server) storeError(w http.ResponseWriter, op string, err error) {
	if errors.Is(err, store.ErrConflict) {
		s.log.Warn("store conflict", "op", op, "err", err)
		writeError(w, http.StatusConflict, "The key was changed elsewhere (another proxy instance) since this one loaded it; nothing was changed. Reload and try again")
		return
	}
	if errors.Is(err, store.ErrUnavailable) {
		s.log.Warn("store unavailable", "op", op, "err", err)
		w.Header().Set("Retry-After", "30")
		writeError(w, http.StatusServiceUnavailable, "Storage is temporarily unavailable; nothing was changed. Try again later")
		return
	}
	s.log.Error("store failed", "op", op, "err", err)
	writeError(w, http.StatusInternalServerError, "Internal error: storage failed; nothing was changed")
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
