// Package metrics exposes the proxy's Prometheus metrics (GET /metrics):
// requests by provider, status class and strategy, upstream attempts and
// failovers by failure class, latency and time-to-first-byte histograms,
// tokens by provider and model, requests per client token, keys by state
// per provider, the store's health and, for small pools, per-key counts.
//
// No label carries a secret, and every label's values are bounded:
// providers and failure classes are configured sets; client token names
// and models are capped (MaxTokenLabels, MaxModelLabels; later values count
// under "other"); key ids appear only while the pool holds at most
// MaxKeyLabels keys.
//
// The Prometheus side lives in prom.go; the edge build (GOOS=js) has none
// and does not serve /metrics (edge_js.go).
package metrics

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
	"time"
)

// Other is the label value that stands for every value past a cap.
const Other = "other"

// Defaults of Options.
const (
	DefaultMaxTokenLabels = 100
	DefaultMaxModelLabels = 200
	DefaultMaxKeyLabels   = 100
)

// Request is one finished relayed request, as the relay reports it.
type Request struct {
	Provider string
	Strategy string
	// Token is the client token's name; "" for an anonymous caller.
	Token string
	Model string
	// Status is what the client got (499: the client went away).
	Status int
	// Attempts are the upstream attempts' classes in order: "success" or a
	// failure class. Every one but the last led to a failover.
	Attempts []string
	Latency  time.Duration
	// TTFB is the time to the response's first byte; 0 when none was sent.
	TTFB                           time.Duration
	PromptTokens, CompletionTokens int64
}

// KeyStates is one provider's keys by state; the states are exclusive and
// add up to the provider's keys.
type KeyStates struct {
	Provider string
	// Counts by state: "active", "cooling", "disabled", "inactive",
	// "exhausted" (the states of GET /admin/status).
	Counts map[string]int
}

// KeyCounts is one key's request counts.
type KeyCounts struct {
	Provider, ID       string
	Requests, Failures int64
}

// Source reads the proxy's state at scrape time; any func may be nil.
type Source struct {
	// Keys returns every provider's keys by state.
	Keys func() []KeyStates
	// PerKey returns each key's counts; called only while KeyCount is at
	// most MaxKeyLabels.
	PerKey   func() []KeyCounts
	KeyCount func() int
	// Store returns the store backend's name and whether it is healthy.
	Store func() (backend string, ok bool)
}

// BearerIs reports whether r carries secret as "Authorization: Bearer",
// comparing in constant time. An empty secret matches nothing.
func BearerIs(r *http.Request, secret string) bool {
	if secret == "" {
		return false
	}
	v := r.Header.Get("Authorization")
	if len(v) < 7 || !strings.EqualFold(v[:7], "bearer ") {
		return false
	}
	a, b := sha256.Sum256([]byte(strings.TrimSpace(v[7:]))), sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// KeyStateNames are the states of keypool_keys, each always reported.
var KeyStateNames = []string{"active", "cooling", "disabled", "inactive", "exhausted"}

// Options configures New. Zero values take the defaults.
type Options struct {
	MaxTokenLabels int // distinct client token names; default 100
	MaxModelLabels int // distinct models; default 200
	MaxKeyLabels   int // per-key series only up to this many keys; default 100
	// ExtraCollectors are registered too (the request log's and alerts'
	// own counters).
	ExtraCollectors []Collector
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// StatusClass returns "2xx" for 200–299 and so on; "other" outside 100–599.
func StatusClass(status int) string {
	if status < 100 || status > 599 {
		return Other
	}
	return statusClasses[status/100-1]
}

var statusClasses = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// Totals are one provider's relayed requests so far and those answered
// 5xx.
type Totals struct{ Requests, ServerErrors int64 }

// unauthorized answers a caller /metrics does not accept: 401, JSON.
func unauthorized(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
	w.WriteHeader(http.StatusUnauthorized)
	w.Write([]byte(`{"error":"Invalid or missing metrics token (send Authorization: Bearer <METRICS_TOKEN>, or the admin key in X-Admin-Key when METRICS_TOKEN is unset)"}` + "\n"))
}
