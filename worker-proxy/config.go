package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/keypool/keypool/worker-proxy/alerts"
	"github.com/keypool/keypool/worker-proxy/failure"
	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/provider"
	"github.com/keypool/keypool/worker-proxy/seal"
	"github.com/keypool/keypool/worker-proxy/server"
)

// Config is the proxy's configuration, read from the environment. Each
// field's comment names its variable and default.
type Config struct {
	Host string // HOST: interface to listen on; default all
	Port string // PORT: default 8080; 0 picks a free port

	AdminKey       string   // ADMIN_KEY: ≥ 16 characters; unset: generated into DATA_DIR/admin.key
	ClientTokens   []string // CLIENT_TOKENS: comma-separated relay tokens, each ≥ 16 characters, no quotes, semicolons or spaces
	AllowAnonymous bool     // ALLOW_ANONYMOUS_RELAY: relay without a client token; default false
	AllowedOrigins []string // ALLOWED_ORIGINS: comma-separated browser origins, or *

	Store   string // STORE: bolt (default; the embedded file database), cfkv (Cloudflare KV) or redis
	DataDir string // DATA_DIR: default ./data

	// ENCRYPTION_KEY: 32 random bytes (base64 or hex) sealing API keys at
	// rest; ENCRYPTION_KEY_PREVIOUS: comma-separated older keys still read
	// during a rotation. Nil (unset): API keys are stored in plaintext.
	Keyring *seal.Keyring

	CFAccountID   string        // CF_ACCOUNT_ID: for STORE=cfkv
	CFAPIToken    string        // CF_API_TOKEN: permission Account → Workers KV Storage → Edit
	CFNamespaceID string        // CF_KV_NAMESPACE_ID
	CFBaseURL     string        // CF_API_BASE_URL: default https://api.cloudflare.com (the emulator's in tests)
	InstanceID    string        // INSTANCE_ID: names this instance's usage record in KV; default kept in DATA_DIR/instance.id
	KVUsageFlush  time.Duration // KV_USAGE_FLUSH_INTERVAL: this instance writes its usage to KV at most this often; default 10m
	KVUsageSync   time.Duration // KV_USAGE_SYNC_INTERVAL: other instances' usage is read this often; default 10m

	RedisURL    string // REDIS_URL: for STORE=redis; redis://, rediss://, redis+cluster://, redis+sentinel://
	RedisPrefix string // REDIS_PREFIX: starts every Redis key of this pool; default keypool:

	GeminiBase    string // GEMINI_BASE_URL: default https://generativelanguage.googleapis.com/v1beta
	GeminiKeyIn   string // GEMINI_KEY_IN: header (x-goog-api-key, default) or query (?key=)
	OpenAIBase    string // OPENAI_BASE_URL: default https://api.openai.com/v1
	AnthropicBase string // ANTHROPIC_BASE_URL: default https://api.anthropic.com/v1
	ProvidersFile string // PROVIDERS_FILE: JSON file of more (OpenAI-compatible) providers

	MaxBodyBytes    int64         // MAX_BODY_BYTES: default 33554432 (32 MiB)
	MaxBodyMemory   int64         // MAX_BODY_MEMORY: request bodies held at once; default 268435456 (256 MiB), at least MAX_BODY_BYTES
	BodyReadTimeout time.Duration // BODY_READ_TIMEOUT: a request's whole body must arrive within it; default 60s
	UpstreamTimeout time.Duration // UPSTREAM_TIMEOUT: wait for response headers; default 5m
	FlushInterval   time.Duration // FLUSH_INTERVAL: usage counters to the store; default 5s
	SyncInterval    time.Duration // SYNC_INTERVAL: how often a shared store (cfkv) is checked for others' changes; default 30s
	ShutdownTimeout time.Duration // SHUTDOWN_TIMEOUT: drain on SIGTERM; default 30s

	MaxRetries       int            // MAX_RETRIES: retries on other keys after upstream trouble (refusals about the key are free); default 3 (0 = none)
	RetryBudget      time.Duration  // RETRY_BUDGET: no retry starts after this long; default 2m
	FirstByteTimeout time.Duration  // FIRST_BYTE_TIMEOUT: a stream silent this long fails over; default 60s
	DefaultCooldown  time.Duration  // DEFAULT_COOLDOWN: rest after a 429 that names no time; default 60s
	MaxCooldown      time.Duration  // MAX_COOLDOWN: cap on upstream-named rests (daily quotas exempt); default 1h
	PassiveFailures  int            // PASSIVE_FAILURES: consecutive upstream failures that rest a key; default 3
	PassiveCooldown  time.Duration  // PASSIVE_COOLDOWN: that rest; default 10s
	FailurePolicy    failure.Policy // FAILURE_POLICY: class=action overrides, e.g. "upstream=retry,client=none"
	RetestInterval   time.Duration  // RETEST_INTERVAL: re-test disabled keys this often; default 30m (0 = never)
	RetestBatch      int            // RETEST_BATCH: keys per re-test round; default 5

	MetricsToken        string // METRICS_TOKEN: bearer token for GET /metrics (≥ 16 characters); unset: the admin key opens it
	MetricsMaxKeyLabels int    // METRICS_MAX_KEY_LABELS: per-key metrics only while the pool holds at most this many keys; default 100

	// REQUEST_LOG_DAYS: request log records are kept this many days;
	// default 7. REQUEST_LOG_MAX: at most this many records; default 100000
	// in DATA_DIR/requests.db (STORE=bolt), 10000 in memory (other stores);
	// 0 turns the request log off.
	RequestLogDays int
	RequestLogMax  int // -1: the store's default

	// Alerts (see README "Operations"): ALERT_WEBHOOK_URL, comma-separated
	// webhooks (prefix slack= or json=; hooks.slack.com is Slack's);
	// ALERT_TELEGRAM_BOT_TOKEN and ALERT_TELEGRAM_CHAT_ID for Telegram
	// (ALERT_TELEGRAM_API_URL: default https://api.telegram.org). No
	// destination: no alerts.
	AlertDestinations []alerts.Destination
	AlertMinAvailable alerts.Threshold // ALERT_MIN_AVAILABLE: keys (2) or percent (20%); default 1
	AlertInterval     time.Duration    // ALERT_INTERVAL: one message per condition per interval; default 10m
	AlertErrorRate    float64          // ALERT_ERROR_RATE: share of 5xx over 5 minutes (0.5 or 50%); default 0.5; 0 off
	AlertCheck        time.Duration    // ALERT_CHECK_INTERVAL: how often the pool is checked; default 15s

	Pprof bool // PPROF: serve Go's profiler at /admin/debug/pprof/ (admin key required); default false

	KeyProxies     []string // KEY_PROXIES: comma-separated proxy URLs, assigned by key id hash to keys without their own proxy
	StickySessions string   // STICKY_SESSIONS: on (header or prompt hash), header (default: X-KeyPool-Session only), off

	LogLevel  slog.Level // LOG_LEVEL: debug, info (default), warn, error
	LogFormat string     // LOG_FORMAT: text (default) or json
	// LOG_FLUSH_INTERVAL: log lines are written out together at most this
	// late (one system call per batch, not per request); 0 writes each line
	// at once; default 200ms, at most 10s.
	LogFlush time.Duration
}

// LoadConfig reads the configuration through getenv and checks it.
func LoadConfig(getenv func(string) string) (Config, error) {
	c := Config{
		Host: getenv("HOST"), Port: or(getenv("PORT"), "8080"),
		AdminKey:       getenv("ADMIN_KEY"),
		AllowedOrigins: splitList(getenv("ALLOWED_ORIGINS")),
		Store:          strings.ToLower(or(getenv("STORE"), "bolt")),
		DataDir:        or(getenv("DATA_DIR"), "./data"),
		GeminiBase:     getenv("GEMINI_BASE_URL"),
		GeminiKeyIn:    strings.ToLower(or(getenv("GEMINI_KEY_IN"), "header")),
		OpenAIBase:     getenv("OPENAI_BASE_URL"),
		AnthropicBase:  getenv("ANTHROPIC_BASE_URL"),
		ProvidersFile:  getenv("PROVIDERS_FILE"),
		LogFormat:      strings.ToLower(or(getenv("LOG_FORMAT"), "text")),
	}
	var errs []error
	bad := func(name, format string, args ...any) { errs = append(errs, configError(name, format, args)) }
	c.Keyring = loadKeyring(getenv, bad)
	if p, err := strconv.Atoi(c.Port); err != nil || p < 0 || p > 65535 {
		bad("PORT", "%q is not a port number", c.Port)
	}
	if c.AdminKey != "" && len(c.AdminKey) < server.MinSecretLen {
		bad("ADMIN_KEY", "too weak: it must be at least %d characters (unset it to have a strong one generated)", server.MinSecretLen)
	}
	var tokenErrs []error
	c.ClientTokens, tokenErrs = parseTokens(getenv("CLIENT_TOKENS"))
	for _, err := range tokenErrs {
		bad("CLIENT_TOKENS", "%v", err)
	}
	for i, t := range c.ClientTokens {
		if c.AdminKey != "" && t == c.AdminKey {
			bad("CLIENT_TOKENS", "token #%d is the admin key; a client token must differ from ADMIN_KEY", i+1)
		}
	}
	c.MetricsToken = getenv("METRICS_TOKEN")
	if c.MetricsToken != "" && len(c.MetricsToken) < server.MinSecretLen {
		bad("METRICS_TOKEN", "too weak: it must be at least %d characters", server.MinSecretLen)
	}
	for i, raw := range strings.Split(getenv("KEY_PROXIES"), ",") {
		if raw = strings.TrimSpace(raw); raw == "" {
			continue
		}
		if err := pool.ValidateProxy(raw); err != nil {
			// Never echo the URL: it may hold a password.
			bad("KEY_PROXIES", "entry %d: %s", i+1, strings.TrimPrefix(err.Error(), pool.ErrInvalid.Error()+": "))
			continue
		}
		c.KeyProxies = append(c.KeyProxies, raw)
	}
	switch c.StickySessions = strings.ToLower(strings.TrimSpace(getenv("STICKY_SESSIONS"))); c.StickySessions {
	case "":
		c.StickySessions = "header"
	case "on", "header", "off":
	default:
		bad("STICKY_SESSIONS", "%q is not on, header or off", c.StickySessions)
	}
	if v := getenv("PPROF"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad("PPROF", "%q is not true or false", v)
		}
		c.Pprof = b
	}
	if v := getenv("ALLOW_ANONYMOUS_RELAY"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad("ALLOW_ANONYMOUS_RELAY", "%q is not true or false", v)
		}
		c.AllowAnonymous = b
	}
	for _, o := range c.AllowedOrigins {
		if o != "*" && !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			bad("ALLOWED_ORIGINS", "%q is not an origin like https://user.github.io", o)
		}
	}
	switch c.Store {
	case "bolt", "embedded", "file":
		c.Store = "bolt"
	case "cfkv", "kv", "cloudflare":
		c.Store = "cfkv"
		c.CFAccountID, c.CFAPIToken, c.CFNamespaceID = getenv("CF_ACCOUNT_ID"), getenv("CF_API_TOKEN"), getenv("CF_KV_NAMESPACE_ID")
		c.CFBaseURL, c.InstanceID = getenv("CF_API_BASE_URL"), getenv("INSTANCE_ID")
		for _, v := range []struct{ name, val string }{{"CF_ACCOUNT_ID", c.CFAccountID}, {"CF_API_TOKEN", c.CFAPIToken}, {"CF_KV_NAMESPACE_ID", c.CFNamespaceID}} {
			if v.val == "" {
				bad(v.name, "required with STORE=cfkv (run `worker-proxy kv-setup` to create the namespace)")
			}
		}
		if c.CFBaseURL != "" {
			if _, err := provider.ParseBase(c.CFBaseURL); err != nil {
				bad("CF_API_BASE_URL", "%v", err)
			}
		}
	case "redis":
		c.RedisURL, c.RedisPrefix = getenv("REDIS_URL"), or(getenv("REDIS_PREFIX"), redisDefaultPrefix)
		if c.RedisURL == "" {
			bad("REDIS_URL", "required with STORE=redis (like redis://:password@host:6379/0)")
		} else if err := checkRedisURL(c.RedisURL); err != nil {
			bad("REDIS_URL", "%v", err)
		}
		if strings.ContainsAny(c.RedisPrefix, "{}") {
			bad("REDIS_PREFIX", "%q must not contain braces", c.RedisPrefix)
		}
	default:
		bad("STORE", "unknown store %q (available: bolt, cfkv, redis)", c.Store)
	}
	if c.GeminiKeyIn != "header" && c.GeminiKeyIn != "query" {
		bad("GEMINI_KEY_IN", "%q is not header or query", c.GeminiKeyIn)
	}
	for _, v := range []struct{ name, val string }{{"GEMINI_BASE_URL", c.GeminiBase}, {"OPENAI_BASE_URL", c.OpenAIBase}, {"ANTHROPIC_BASE_URL", c.AnthropicBase}} {
		if v.val == "" {
			continue
		}
		if _, err := provider.ParseBase(v.val); err != nil {
			bad(v.name, "%v", err)
		}
	}
	if c.ProvidersFile != "" {
		if _, err := c.Providers(); err != nil {
			bad("PROVIDERS_FILE", "%v", err)
		}
	}
	c.MaxBodyBytes = 32 << 20
	if v := getenv("MAX_BODY_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1024 {
			bad("MAX_BODY_BYTES", "%q is not a byte count of at least 1024", v)
		}
		c.MaxBodyBytes = n
	}
	c.MaxBodyMemory = max(256<<20, c.MaxBodyBytes)
	if v := getenv("MAX_BODY_MEMORY"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < c.MaxBodyBytes {
			bad("MAX_BODY_MEMORY", "%q is not a byte count of at least MAX_BODY_BYTES (%d)", v, c.MaxBodyBytes)
		}
		c.MaxBodyMemory = n
	}
	dur := func(name string, def time.Duration, min time.Duration) time.Duration {
		return envDuration(getenv, bad, name, def, min)
	}
	c.UpstreamTimeout = dur("UPSTREAM_TIMEOUT", 5*time.Minute, time.Second)
	c.BodyReadTimeout = dur("BODY_READ_TIMEOUT", time.Minute, 100*time.Millisecond)
	c.FlushInterval = dur("FLUSH_INTERVAL", 5*time.Second, 100*time.Millisecond)
	c.SyncInterval = dur("SYNC_INTERVAL", 30*time.Second, 100*time.Millisecond)
	c.ShutdownTimeout = dur("SHUTDOWN_TIMEOUT", 30*time.Second, 0)
	if c.LogFlush = dur("LOG_FLUSH_INTERVAL", 200*time.Millisecond, 0); c.LogFlush > 10*time.Second {
		bad("LOG_FLUSH_INTERVAL", "%s is longer than 10s: log lines would arrive too late to follow", c.LogFlush)
	}
	c.RetryBudget = dur("RETRY_BUDGET", 2*time.Minute, 0)
	c.FirstByteTimeout = dur("FIRST_BYTE_TIMEOUT", 60*time.Second, 100*time.Millisecond)
	c.DefaultCooldown = dur("DEFAULT_COOLDOWN", 60*time.Second, time.Second)
	c.MaxCooldown = dur("MAX_COOLDOWN", time.Hour, time.Second)
	c.PassiveCooldown = dur("PASSIVE_COOLDOWN", 10*time.Second, 0)
	c.RetestInterval = dur("RETEST_INTERVAL", 30*time.Minute, 0)
	c.KVUsageFlush = dur("KV_USAGE_FLUSH_INTERVAL", 10*time.Minute, time.Second)
	c.KVUsageSync = dur("KV_USAGE_SYNC_INTERVAL", 10*time.Minute, time.Second)
	num := func(name string, def, min int) int { return envInt(getenv, bad, name, def, min) }
	c.MaxRetries = num("MAX_RETRIES", 3, 0)
	c.PassiveFailures = num("PASSIVE_FAILURES", 3, 1)
	c.RetestBatch = num("RETEST_BATCH", 5, 1)
	c.MetricsMaxKeyLabels = num("METRICS_MAX_KEY_LABELS", 100, 1)
	c.RequestLogDays = num("REQUEST_LOG_DAYS", 7, 1)
	c.RequestLogMax = num("REQUEST_LOG_MAX", -1, 0)
	c.FailurePolicy = failure.DefaultPolicy()
	if v := getenv("FAILURE_POLICY"); v != "" {
		p, err := failure.ParsePolicy(v)
		if err != nil {
			bad("FAILURE_POLICY", "%v", err)
		}
		c.FailurePolicy = p
	}
	if v := getenv("LOG_LEVEL"); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			bad("LOG_LEVEL", "%q is not debug, info, warn or error", v)
		}
	}
	c.loadAlerts(getenv, bad, dur)
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("LOG_FORMAT", "%q is not text or json", c.LogFormat)
	}
	return c, errors.Join(errs...)
}

// configError is the error for the variable name (not inlined, as
// envDuration).
//
//go:noinline
func configError(name, format string, args []any) error {
	return fmt.Errorf("%s: "+format, append([]any{name}, args...)...)
}

// envDuration reads the duration variable name: def when unset, an error
// through bad when it is not a duration of at least min. Not inlined: the
// edge build compiles each function it runs at start, and LoadConfig with
// a copy of this at every call site was the largest function in the wasm.
//
//go:noinline
func envDuration(getenv func(string) string, bad func(string, string, ...any), name string, def, min time.Duration) time.Duration {
	v := getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < min {
		bad(name, "%q is not a duration of at least %s (like 30s or 5m)", v, min)
	}
	return d
}

// envInt reads the whole-number variable name: def when unset, an error
// through bad when it is not a number of at least min (not inlined, as
// envDuration).
//
//go:noinline
func envInt(getenv func(string) string, bad func(string, string, ...any), name string, def, min int) int {
	v := getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min {
		bad(name, "%q is not a whole number of at least %d", v, min)
	}
	return n
}

// loadAlerts reads the ALERT_* variables. Errors name the variable, never
// a webhook URL or the bot token.
func (c *Config) loadAlerts(getenv func(string) string, bad func(string, string, ...any), dur func(string, time.Duration, time.Duration) time.Duration) {
	var err error
	if c.AlertDestinations, err = alerts.ParseWebhooks(getenv("ALERT_WEBHOOK_URL")); err != nil {
		bad("ALERT_WEBHOOK_URL", "%v", err)
	}
	tok, chat := getenv("ALERT_TELEGRAM_BOT_TOKEN"), getenv("ALERT_TELEGRAM_CHAT_ID")
	switch {
	case tok != "" && chat != "":
		api := getenv("ALERT_TELEGRAM_API_URL")
		if api != "" {
			if _, err := provider.ParseBase(api); err != nil {
				bad("ALERT_TELEGRAM_API_URL", "%v", err)
			}
		}
		c.AlertDestinations = append(c.AlertDestinations, alerts.Destination{Format: "telegram", URL: api, BotToken: tok, ChatID: chat})
	case tok != "" || chat != "":
		bad("ALERT_TELEGRAM_BOT_TOKEN", "Telegram alerts need both ALERT_TELEGRAM_BOT_TOKEN and ALERT_TELEGRAM_CHAT_ID")
	}
	c.AlertMinAvailable = alerts.Threshold{N: 1}
	if v := getenv("ALERT_MIN_AVAILABLE"); v != "" {
		if c.AlertMinAvailable, err = alerts.ParseThreshold(v); err != nil {
			bad("ALERT_MIN_AVAILABLE", "%v", err)
		}
	}
	c.AlertInterval = dur("ALERT_INTERVAL", 10*time.Minute, time.Second)
	c.AlertCheck = dur("ALERT_CHECK_INTERVAL", 15*time.Second, 100*time.Millisecond)
	c.AlertErrorRate = 0.5
	if v := strings.TrimSpace(getenv("ALERT_ERROR_RATE")); v != "" {
		pct := strings.HasSuffix(v, "%")
		f, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
		if pct {
			f /= 100
		}
		if err != nil || f < 0 || f > 1 {
			bad("ALERT_ERROR_RATE", "%q is not a share like 0.5 or 50%%", v)
		}
		c.AlertErrorRate = f
	}
}

// Addr is the listen address.
func (c Config) Addr() string { return net.JoinHostPort(c.Host, c.Port) }

// Providers builds the provider registry: the built-ins, the providers
// file on top, and the *_BASE_URL variables on top of that.
func (c Config) Providers() (*provider.Registry, error) {
	ps := provider.Defaults()
	if c.ProvidersFile != "" {
		var err error
		if ps, err = provider.LoadFile(c.ProvidersFile, ps); err != nil {
			return nil, err
		}
	}
	for _, p := range ps {
		var raw string
		switch p.Name {
		case "gemini":
			raw = c.GeminiBase
			if c.GeminiKeyIn == "query" {
				p.Auth = provider.Auth{Query: "key"}
			}
		case "openai":
			raw = c.OpenAIBase
		case "anthropic":
			raw = c.AnthropicBase
		}
		if raw == "" {
			continue
		}
		u, err := provider.ParseBase(raw)
		if err != nil {
			return nil, err
		}
		p.Base = u
	}
	reg, err := provider.NewRegistry(ps...)
	if err != nil || c.ProvidersFile == "" {
		return reg, err
	}
	aliases, err := provider.LoadAliases(c.ProvidersFile)
	if err != nil {
		return nil, err
	}
	return reg, reg.SetFileAliases(aliases)
}

// adminKeyFile is where a generated admin key is kept, in DATA_DIR.
const adminKeyFile = "admin.key"

// resolveAdminKey returns the admin key: ADMIN_KEY if set, else the one
// kept in DATA_DIR, else a new one written there (generated reports that).
func resolveAdminKey(c Config) (key string, generated bool, err error) {
	if c.AdminKey != "" {
		return c.AdminKey, false, nil
	}
	path := filepath.Join(c.DataDir, adminKeyFile)
	b, err := os.ReadFile(path)
	if err == nil {
		k := strings.TrimSpace(string(b))
		if len(k) < server.MinSecretLen {
			return "", false, fmt.Errorf("%s holds a key shorter than %d characters; delete it to have a new one generated", path, server.MinSecretLen)
		}
		return k, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", false, fmt.Errorf("read admin key: %w", err)
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return "", false, fmt.Errorf("create data directory: %w", err)
	}
	k := pool.NewAdminKey()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", false, fmt.Errorf("write admin key: %w", err)
	}
	if _, err := f.WriteString(k + "\n"); err != nil {
		f.Close()
		return "", false, fmt.Errorf("write admin key: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", false, fmt.Errorf("write admin key: %w", err)
	}
	return k, true, nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// parseTokens reads CLIENT_TOKENS: tokens separated by commas, spaces
// around each ignored. A token holding a quote, a semicolon, whitespace or
// a control character is refused, by its number and position in the
// variable and never its value: it is a list written in another format
// ("a; b", quoted), which would otherwise be taken as one token. Tokens
// shorter than server.MinSecretLen are refused too.
func parseTokens(v string) ([]string, []error) {
	var out []string
	var errs []error
	start := 0
	for part := range strings.SplitSeq(v, ",") {
		at := start
		start += len(part) + 1
		t := strings.TrimSpace(part)
		if t == "" {
			continue
		}
		at += strings.Index(part, t)
		n := len(out) + len(errs) + 1
		where := fmt.Sprintf("token #%d (characters %d–%d)", n, at+1, at+len(t))
		if i := strings.IndexFunc(t, func(r rune) bool {
			return r == '"' || r == '\'' || r == '`' || r == ';' || unicode.IsSpace(r) || unicode.IsControl(r)
		}); i >= 0 {
			what := "whitespace"
			switch r, _ := utf8.DecodeRuneInString(t[i:]); {
			case r == ';':
				what = "a semicolon"
			case r == '"' || r == '\'' || r == '`':
				what = "a quote"
			case unicode.IsControl(r) && !unicode.IsSpace(r):
				what = "a control character"
			}
			errs = append(errs, fmt.Errorf("%s holds %s at character %d: separate tokens with commas only, without quotes (CLIENT_TOKENS=token1,token2)", where, what, at+i+1))
			continue
		}
		if len(t) < server.MinSecretLen {
			errs = append(errs, fmt.Errorf("%s is shorter than %d characters", where, server.MinSecretLen))
			continue
		}
		out = append(out, t)
	}
	return out, errs
}

func splitList(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if p := strings.TrimSpace(part); p != "" {
			out = append(out, p)
		}
	}
	return out
}
