// Package alerts sends webhook alerts about the key pool: a key disabled,
// a provider's servable keys below a threshold, a provider with none left,
// a high rate of 5xx answers, and the recovery from each.
//
// A [Notifier] compares snapshots of the pool ([ProviderState]), taken off
// the relay's path every check interval, with the previous ones, so the
// relay never waits for an alert. Each condition sends at most one message
// per Interval (de-duplicated per instance: several proxy instances each
// send their own); sends are queued, retried with backoff, and never
// carry a secret — keys appear by id and masked, webhook URLs and the
// Telegram bot token never reach a message, a log line or an API answer.
//
// Formats: generic JSON (the [Alert] object), Slack-compatible
// ({"text": …}; Mattermost, Rocket.Chat and Discord's /slack endpoint read
// it too) and Telegram's bot API (sendMessage).
package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
)

// Kinds of alert.
const (
	KindKeyDisabled = "key_disabled"
	KindPoolLow     = "pool_low"
	KindPoolEmpty   = "pool_empty"
	KindErrorRate   = "error_rate"
	KindRecovered   = "recovered"
	KindTest        = "test"
)

// Alert is one message, as the generic JSON format sends it.
type Alert = adminapi.Alert

// KeyRef names a key without its secret.
type KeyRef = adminapi.AlertKey

// ProviderState is one provider's pool as a check sees it.
type ProviderState struct {
	Provider  string
	Total     int // keys
	Available int // keys that can serve now
	// Disabled are the keys the provider rejected (disabled), with reasons
	// already free of secrets.
	Disabled []KeyRef
	// Requests and ServerErrors are running totals of the relayed requests
	// and those answered 5xx.
	Requests, ServerErrors int64
}

// Threshold is ALERT_MIN_AVAILABLE: a count of keys, or a percentage of
// the provider's keys.
type Threshold struct {
	N       int
	Percent bool
}

// ParseThreshold reads "3" or "20%".
func ParseThreshold(s string) (Threshold, error) {
	s = strings.TrimSpace(s)
	p := strings.HasSuffix(s, "%")
	n, err := strconv.Atoi(strings.TrimSuffix(s, "%"))
	if err != nil || n < 0 || p && n > 100 {
		return Threshold{}, fmt.Errorf("%q is not a key count like 2 or a percentage like 20%%", s)
	}
	return Threshold{N: n, Percent: p}, nil
}

func (t Threshold) String() string {
	if t.Percent {
		return strconv.Itoa(t.N) + "%"
	}
	return strconv.Itoa(t.N)
}

// below reports whether available of total keys is under the threshold.
func (t Threshold) below(available, total int) bool {
	if t.Percent {
		return available*100 < t.N*total
	}
	return available < t.N
}

// Destination is one place alerts go.
type Destination struct {
	// Format is "json", "slack" or "telegram".
	Format string
	// URL is the webhook (json, slack) or the Telegram API base (default
	// https://api.telegram.org).
	URL string
	// BotToken and ChatID are Telegram's.
	BotToken, ChatID string
}

// String names d without its secrets: the format and the URL's host.
func (d Destination) String() string {
	if d.Format == "telegram" {
		return "telegram chat " + d.ChatID
	}
	host := "?"
	if u, err := url.Parse(d.URL); err == nil {
		host = u.Scheme + "://" + u.Host + "/…"
	}
	return d.Format + " " + host
}

// ParseWebhooks reads ALERT_WEBHOOK_URL: comma-separated URLs, each
// optionally prefixed "slack=" or "json="; without a prefix, URLs on
// hooks.slack.com are Slack's, others generic JSON.
func ParseWebhooks(v string) ([]Destination, error) {
	var out []Destination
	for i, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		format := ""
		if f, rest, ok := strings.Cut(part, "="); ok && (f == "slack" || f == "json") {
			format, part = f, rest
		}
		u, err := url.Parse(part)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("webhook #%d is not an http(s) URL", i+1)
		}
		if format == "" {
			format = "json"
			if u.Hostname() == "hooks.slack.com" {
				format = "slack"
			}
		}
		out = append(out, Destination{Format: format, URL: part})
	}
	return out, nil
}

// Config configures a Notifier. Zero values take the defaults.
type Config struct {
	Destinations []Destination
	// MinAvailable: a provider below it gets KindPoolLow. Default 1 key
	// (so only KindPoolEmpty fires); zero N turns KindPoolLow off.
	MinAvailable *Threshold
	// Interval: one message per condition per Interval. Default 10m.
	Interval time.Duration
	// ErrorRate: a provider whose share of 5xx answers over ErrorWindow
	// reaches it, with at least ErrorMinRequests requests, gets
	// KindErrorRate. Default 0.5; negative turns it off. ErrorWindow
	// default 5m, ErrorMinRequests default 20.
	ErrorRate        float64
	ErrorWindow      time.Duration
	ErrorMinRequests int64
	// Retries after a failed send, with Backoff doubling from its value.
	// Defaults 3 and 2s.
	Retries int
	Backoff time.Duration
	// Timeout bounds one send. Default 10s.
	Timeout time.Duration
	Client  *http.Client
	Logger  *slog.Logger
	Now     func() time.Time
}

// Notifier watches pool snapshots and sends alerts.
type Notifier struct {
	cfg Config
	q   chan Alert

	mu       sync.Mutex
	checked  bool
	level    map[string]string    // provider → "", KindPoolLow or KindPoolEmpty
	erroring map[string]bool      // provider → in KindErrorRate
	disabled map[string]bool      // key id → disabled at the last check
	samples  map[string][]sample  // provider → request totals over ErrorWindow
	lastSent map[string]time.Time // condition → last message
	recent   []Sent               // newest last, at most maxRecent
	sent     atomic.Int64
	failed   atomic.Int64
	dropped  atomic.Int64
}

type sample struct {
	at               time.Time
	requests, errors int64
}

// Sent is an alert and how its sending went.
type Sent = adminapi.AlertSent

// Result is one destination's answer to one alert.
type Result = adminapi.AlertResult

const maxRecent = 20

// New returns a Notifier; Run sends its alerts.
func New(cfg Config) *Notifier {
	if cfg.MinAvailable == nil {
		cfg.MinAvailable = &Threshold{N: 1}
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Minute
	}
	if cfg.ErrorRate == 0 {
		cfg.ErrorRate = 0.5
	}
	if cfg.ErrorWindow <= 0 {
		cfg.ErrorWindow = 5 * time.Minute
	}
	if cfg.ErrorMinRequests <= 0 {
		cfg.ErrorMinRequests = 20
	}
	if cfg.Retries == 0 {
		cfg.Retries = 3
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 2 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: cfg.Timeout}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Notifier{cfg: cfg, q: make(chan Alert, 256),
		level: map[string]string{}, erroring: map[string]bool{}, disabled: map[string]bool{},
		samples: map[string][]sample{}, lastSent: map[string]time.Time{}}
}

// Config returns the configuration in effect, defaults filled in.
func (n *Notifier) Config() Config { return n.cfg }

// Check compares a snapshot of every provider with the last one and queues
// the alerts it calls for.
func (n *Notifier) Check(states []ProviderState) {
	now := n.cfg.Now()
	n.mu.Lock()
	var out []Alert
	first := !n.checked
	n.checked = true
	seen := map[string]bool{}
	for _, p := range states {
		seen[p.Provider] = true
		out = append(out, n.checkPool(p, now)...)
		out = append(out, n.checkErrors(p, now)...)
		// Keys disabled since the last check; those disabled before the
		// first check are old news.
		var fresh []KeyRef
		for _, k := range p.Disabled {
			if !n.disabled[k.ID] && !first {
				fresh = append(fresh, k)
			}
		}
		if len(fresh) > 0 {
			if a, ok := n.gate(KindKeyDisabled+"/"+p.Provider+"/"+fresh[0].ID, now, keyDisabled(p, fresh, now)); ok {
				out = append(out, a)
			}
		}
	}
	n.disabled = map[string]bool{}
	for _, p := range states {
		for _, k := range p.Disabled {
			n.disabled[k.ID] = true
		}
	}
	for prov := range n.level {
		if !seen[prov] {
			delete(n.level, prov)
		}
	}
	n.mu.Unlock()
	for _, a := range out {
		n.enqueue(a)
	}
}

// gate lets a through unless its condition sent within Interval.
func (n *Notifier) gate(cond string, now time.Time, a Alert) (Alert, bool) {
	if last, ok := n.lastSent[cond]; ok && now.Sub(last) < n.cfg.Interval {
		return a, false
	}
	n.lastSent[cond] = now
	return a, true
}

func (n *Notifier) checkPool(p ProviderState, now time.Time) []Alert {
	if p.Total == 0 {
		delete(n.level, p.Provider)
		return nil
	}
	level := ""
	switch {
	case p.Available == 0:
		level = KindPoolEmpty
	case n.cfg.MinAvailable.N > 0 && n.cfg.MinAvailable.below(p.Available, p.Total):
		level = KindPoolLow
	}
	prev := n.level[p.Provider]
	n.level[p.Provider] = level
	if level == prev {
		return nil
	}
	base := Alert{Provider: p.Provider, At: now, Available: p.Available, Total: p.Total}
	switch level {
	case KindPoolEmpty:
		base.Kind, base.Severity = KindPoolEmpty, "critical"
		base.Title = p.Provider + ": no key can serve"
		base.Text = fmt.Sprintf("None of the %d %s keys can serve (cooling, disabled, inactive or used up); requests get 503 no_available_keys.", p.Total, p.Provider)
	case KindPoolLow:
		base.Kind, base.Severity = KindPoolLow, "warning"
		base.Title = fmt.Sprintf("%s: only %d of %d keys can serve", p.Provider, p.Available, p.Total)
		base.Text = fmt.Sprintf("%d of %d %s keys can serve, below ALERT_MIN_AVAILABLE=%s.", p.Available, p.Total, p.Provider, n.cfg.MinAvailable)
	default:
		base.Kind, base.Severity, base.Resolves = KindRecovered, "info", prev
		base.Title = fmt.Sprintf("%s: recovered, %d of %d keys can serve", p.Provider, p.Available, p.Total)
		base.Text = base.Title + "."
		// A recovery is news only if its problem was reported.
		if _, reported := n.lastSent[prev+"/"+p.Provider]; !reported {
			return nil
		}
		if a, ok := n.gate(KindRecovered+"/"+prev+"/"+p.Provider, now, base); ok {
			return []Alert{a}
		}
		return nil
	}
	if a, ok := n.gate(level+"/"+p.Provider, now, base); ok {
		return []Alert{a}
	}
	return nil
}

func (n *Notifier) checkErrors(p ProviderState, now time.Time) []Alert {
	if n.cfg.ErrorRate < 0 {
		return nil
	}
	s := append(n.samples[p.Provider], sample{at: now, requests: p.Requests, errors: p.ServerErrors})
	cut := 0
	for cut < len(s)-1 && now.Sub(s[cut+1].at) >= n.cfg.ErrorWindow {
		cut++
	}
	s = s[cut:]
	n.samples[p.Provider] = s
	reqs, errs := s[len(s)-1].requests-s[0].requests, s[len(s)-1].errors-s[0].errors
	if reqs < 0 || errs < 0 { // counters restarted
		n.samples[p.Provider] = s[len(s)-1:]
		return nil
	}
	was := n.erroring[p.Provider]
	rate := 0.0
	if reqs > 0 {
		rate = float64(errs) / float64(reqs)
	}
	now2 := reqs >= n.cfg.ErrorMinRequests && rate >= n.cfg.ErrorRate
	if !was && now2 {
		n.erroring[p.Provider] = true
		a := Alert{Kind: KindErrorRate, Severity: "warning", Provider: p.Provider, At: now, Available: p.Available, Total: p.Total, ErrorRate: rate,
			Title: fmt.Sprintf("%s: %.0f%% of requests fail with 5xx", p.Provider, rate*100),
			Text:  fmt.Sprintf("%d of the last %d %s requests (over %s) ended in 5xx; ALERT_ERROR_RATE is %.0f%%.", errs, reqs, p.Provider, n.cfg.ErrorWindow, n.cfg.ErrorRate*100)}
		if a, ok := n.gate(KindErrorRate+"/"+p.Provider, now, a); ok {
			return []Alert{a}
		}
		return nil
	}
	if was && !now2 && rate < n.cfg.ErrorRate/2 {
		n.erroring[p.Provider] = false
		a := Alert{Kind: KindRecovered, Resolves: KindErrorRate, Severity: "info", Provider: p.Provider, At: now, Available: p.Available, Total: p.Total, ErrorRate: rate,
			Title: fmt.Sprintf("%s: error rate back to %.0f%%", p.Provider, rate*100)}
		a.Text = a.Title + "."
		if a, ok := n.gate(KindRecovered+"/"+KindErrorRate+"/"+p.Provider, now, a); ok {
			return []Alert{a}
		}
	}
	return nil
}

// maxListedKeys is how many keys one key_disabled message names.
const maxListedKeys = 5

func keyDisabled(p ProviderState, keys []KeyRef, now time.Time) Alert {
	a := Alert{Kind: KindKeyDisabled, Severity: "warning", Provider: p.Provider, At: now, Available: p.Available, Total: p.Total}
	sort.Slice(keys, func(i, j int) bool { return keys[i].ID < keys[j].ID })
	if len(keys) == 1 {
		k := keys[0]
		a.Title = fmt.Sprintf("%s: key %s (%s) disabled", p.Provider, k.ID, k.Masked)
		a.Text = fmt.Sprintf("Reason: %s. %d of %d %s keys can serve.", k.Reason, p.Available, p.Total, p.Provider)
	} else {
		a.Title = fmt.Sprintf("%s: %d keys disabled", p.Provider, len(keys))
		var b strings.Builder
		for i, k := range keys {
			if i == maxListedKeys {
				fmt.Fprintf(&b, "…and %d more. ", len(keys)-maxListedKeys)
				break
			}
			fmt.Fprintf(&b, "%s (%s): %s. ", k.ID, k.Masked, k.Reason)
		}
		fmt.Fprintf(&b, "%d of %d %s keys can serve.", p.Available, p.Total, p.Provider)
		a.Text = b.String()
	}
	a.Keys = keys[:min(len(keys), maxListedKeys)]
	return a
}

func (n *Notifier) enqueue(a Alert) {
	select {
	case n.q <- a:
	default:
		n.dropped.Add(1)
		n.cfg.Logger.Warn("alert queue full; alert dropped", "kind", a.Kind, "provider", a.Provider)
	}
}

// Run sends queued alerts, and checks snapshot() every interval, until
// ctx ends.
func (n *Notifier) Run(ctx context.Context, interval time.Duration, snapshot func() []ProviderState) {
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case a := <-n.q:
				n.record(Sent{Alert: a, Results: n.send(ctx, a, n.cfg.Retries)})
			}
		}
	})
	if snapshot != nil && interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		n.Check(snapshot())
	loop:
		for {
			select {
			case <-ctx.Done():
				break loop
			case <-t.C:
				n.Check(snapshot())
			}
		}
	}
	wg.Wait()
}

func (n *Notifier) record(s Sent) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.recent = append(n.recent, s)
	if len(n.recent) > maxRecent {
		n.recent = n.recent[len(n.recent)-maxRecent:]
	}
}

// Recent returns the last alerts sent, newest first.
func (n *Notifier) Recent() []Sent {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]Sent, 0, len(n.recent))
	for i := len(n.recent) - 1; i >= 0; i-- {
		out = append(out, n.recent[i])
	}
	return out
}

// Stats counts messages sent and failed (per destination) and alerts
// dropped on a full queue.
func (n *Notifier) Stats() (sent, failed, dropped int64) {
	return n.sent.Load(), n.failed.Load(), n.dropped.Load()
}

// Test sends a test alert to every destination now, with one retry, and
// reports each result.
func (n *Notifier) Test(ctx context.Context) []Result {
	a := Alert{Kind: KindTest, Severity: "info", At: n.cfg.Now(),
		Title: "API Key Pool: test alert",
		Text:  "This destination receives the proxy's alerts (POST /admin/alerts/test)."}
	res := n.send(ctx, a, 1)
	n.record(Sent{Alert: a, Results: res})
	return res
}

// send delivers a to every destination, each retried up to retries times.
func (n *Notifier) send(ctx context.Context, a Alert, retries int) []Result {
	out := make([]Result, len(n.cfg.Destinations))
	var wg sync.WaitGroup
	for i, d := range n.cfg.Destinations {
		wg.Go(func() {
			r := Result{Destination: d.String()}
			backoff := n.cfg.Backoff
			for attempt := 0; ; attempt++ {
				r.Attempts = attempt + 1
				r.Status, r.Error = n.post(ctx, d, a)
				r.OK = r.Error == ""
				if r.OK || attempt >= retries || ctx.Err() != nil || r.Status >= 400 && r.Status < 500 && r.Status != 429 {
					break
				}
				select {
				case <-ctx.Done():
				case <-time.After(backoff):
				}
				backoff *= 2
			}
			if r.OK {
				n.sent.Add(1)
			} else {
				n.failed.Add(1)
				n.cfg.Logger.Warn("alert not delivered", "destination", r.Destination, "kind", a.Kind, "status", r.Status, "err", r.Error, "attempts", r.Attempts)
			}
			out[i] = r
		})
	}
	wg.Wait()
	return out
}

// post sends one message; it returns the status and an error text free of
// the destination's URL and token.
func (n *Notifier) post(ctx context.Context, d Destination, a Alert) (int, string) {
	target, body := d.URL, []byte(nil)
	var err error
	switch d.Format {
	case "slack":
		body, err = json.Marshal(map[string]string{"text": "*" + a.Title + "*\n" + a.Text})
	case "telegram":
		base := strings.TrimRight(d.URL, "/")
		if base == "" {
			base = "https://api.telegram.org"
		}
		target = base + "/bot" + d.BotToken + "/sendMessage"
		body, err = json.Marshal(map[string]any{"chat_id": d.ChatID, "text": a.Title + "\n" + a.Text, "disable_web_page_preview": true})
	default:
		body, err = json.Marshal(a)
	}
	if err != nil {
		return 0, "encode: " + err.Error()
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, "bad destination URL"
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "keypool-alerts/1")
	res, err := n.cfg.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL holds the webhook's secret path or the bot token
		}
		return 0, scrub(err.Error(), d)
	}
	defer res.Body.Close()
	io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	if res.StatusCode >= 300 {
		return res.StatusCode, "HTTP " + strconv.Itoa(res.StatusCode)
	}
	return res.StatusCode, ""
}

// scrub removes d's URL and token from an error text.
func scrub(s string, d Destination) string {
	for _, secret := range []string{d.URL, d.BotToken} {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "…")
		}
	}
	return s
}
