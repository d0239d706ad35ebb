//go:build !js

package metrics

import (
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// Collector is what Options.ExtraCollectors holds: a Prometheus collector.
type Collector = prometheus.Collector

// Metrics holds the proxy's metrics. Observe is safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	requests       *prometheus.CounterVec
	clientRequests *prometheus.CounterVec
	attempts       *prometheus.CounterVec
	failovers      *prometheus.CounterVec
	latency        *prometheus.HistogramVec
	ttfb           *prometheus.HistogramVec
	tokens         *prometheus.CounterVec

	tokenNames, models *capped

	// The series the relay updates, by label values, so a request looks
	// each up in one map instead of through WithLabelValues (which checks
	// and hashes every value). Each is created when first needed, as
	// WithLabelValues would: a series appears once it has counted.
	reqSeries      children[reqLabels, reqCounters]
	ttfbSeries     children[string, prometheus.Observer]
	attemptSeries  children[[2]string, prometheus.Counter] // provider, class
	failoverSeries children[[2]string, prometheus.Counter] // provider, class
	tokenSeries    children[[3]string, prometheus.Counter] // provider, model, type
}

// reqLabels are the labels of the series every request updates.
type reqLabels struct{ provider, strategy, class, token string }

// reqCounters are the series every request updates.
type reqCounters struct {
	requests, client prometheus.Counter
	latency          prometheus.Observer
}

// children maps label values to their series. It only grows (its keys
// are bounded label values), and a lookup takes no lock.
type children[K comparable, V any] struct{ m sync.Map }

// get returns k's series, made by create the first time. (Two callers may
// both create it: WithLabelValues returns the same series to both.)
func (c *children[K, V]) get(k K, create func() V) V {
	if v, ok := c.m.Load(k); ok {
		return v.(V)
	}
	v, _ := c.m.LoadOrStore(k, create())
	return v.(V)
}

// latencyBuckets suit both quick calls and long generations.
var latencyBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// New registers the metrics, Go's and the process's, and a collector that
// reads src at each scrape.
func New(src Source, o Options) *Metrics {
	if o.MaxTokenLabels <= 0 {
		o.MaxTokenLabels = DefaultMaxTokenLabels
	}
	if o.MaxModelLabels <= 0 {
		o.MaxModelLabels = DefaultMaxModelLabels
	}
	if o.MaxKeyLabels <= 0 {
		o.MaxKeyLabels = DefaultMaxKeyLabels
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keypool_requests_total",
			Help: "Relayed client requests by provider, strategy and the status class the client got (499, the client went away, counts as 4xx).",
		}, []string{"provider", "strategy", "status_class"}),
		clientRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keypool_client_requests_total",
			Help: "Relayed requests by client token name (\"anonymous\" without one; \"other\" past the label cap).",
		}, []string{"token"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keypool_upstream_attempts_total",
			Help: "Upstream attempts by provider and outcome class (success or a failure class).",
		}, []string{"provider", "class"}),
		failovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keypool_failovers_total",
			Help: "Failed upstream attempts that were retried on another key, by provider and failure class.",
		}, []string{"provider", "class"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keypool_request_duration_seconds",
			Help:    "Time from a relayed request's arrival to the end of its response, by provider.",
			Buckets: latencyBuckets,
		}, []string{"provider"}),
		ttfb: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keypool_time_to_first_byte_seconds",
			Help:    "Time from a relayed request's arrival to its response's first byte (a stream's first data), by provider.",
			Buckets: latencyBuckets,
		}, []string{"provider"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keypool_tokens_total",
			Help: "Tokens the upstreams reported, by provider, model (\"other\" past the label cap) and type (prompt or completion).",
		}, []string{"provider", "model", "type"}),
		tokenNames: newCapped(o.MaxTokenLabels),
		models:     newCapped(o.MaxModelLabels),
	}
	m.reg.MustRegister(m.requests, m.clientRequests, m.attempts, m.failovers, m.latency, m.ttfb, m.tokens,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&stateCollector{src: src, maxKeys: o.MaxKeyLabels})
	for _, c := range o.ExtraCollectors {
		m.reg.MustRegister(c)
	}
	return m
}

// Registry returns the registry behind /metrics.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Observe counts one finished request. It keeps no reference to r.
func (m *Metrics) Observe(r Request) {
	tok := "anonymous"
	if r.Token != "" {
		tok = m.tokenNames.get(r.Token)
	}
	rl := reqLabels{provider: r.Provider, strategy: r.Strategy, class: StatusClass(r.Status), token: tok}
	rc := m.reqSeries.get(rl, func() reqCounters {
		return reqCounters{
			requests: m.requests.WithLabelValues(rl.provider, rl.strategy, rl.class),
			client:   m.clientRequests.WithLabelValues(rl.token),
			latency:  m.latency.WithLabelValues(rl.provider),
		}
	})
	rc.requests.Inc()
	rc.client.Inc()
	for i, c := range r.Attempts {
		k := [2]string{r.Provider, c}
		m.attemptSeries.get(k, func() prometheus.Counter { return m.attempts.WithLabelValues(k[0], k[1]) }).Inc()
		if i < len(r.Attempts)-1 {
			m.failoverSeries.get(k, func() prometheus.Counter { return m.failovers.WithLabelValues(k[0], k[1]) }).Inc()
		}
	}
	rc.latency.Observe(r.Latency.Seconds())
	if r.TTFB > 0 {
		m.ttfbSeries.get(r.Provider, func() prometheus.Observer { return m.ttfb.WithLabelValues(r.Provider) }).Observe(r.TTFB.Seconds())
	}
	if r.PromptTokens > 0 || r.CompletionTokens > 0 {
		model := m.models.get(cmpOr(r.Model, "unknown"))
		m.addTokens(r.Provider, model, "prompt", r.PromptTokens)
		m.addTokens(r.Provider, model, "completion", r.CompletionTokens)
	}
}

func (m *Metrics) addTokens(provider, model, typ string, n int64) {
	if n <= 0 {
		return
	}
	k := [3]string{provider, model, typ}
	m.tokenSeries.get(k, func() prometheus.Counter { return m.tokens.WithLabelValues(k[0], k[1], k[2]) }).Add(float64(n))
}

// Handler serves the metrics in the Prometheus text format to callers that
// allowed accepts; others get 401 with a JSON error.
func (m *Metrics) Handler(allowed func(*http.Request) bool) http.Handler {
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowed(r) {
			unauthorized(w)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// capped maps label values to themselves until max distinct ones were
// seen, and later ones to Other.
type capped struct {
	max  int
	mu   sync.RWMutex
	seen map[string]struct{}
}

func newCapped(n int) *capped { return &capped{max: n, seen: map[string]struct{}{}} }

func (c *capped) get(v string) string {
	c.mu.RLock()
	_, ok := c.seen[v]
	full := len(c.seen) >= c.max
	c.mu.RUnlock()
	if ok {
		return v
	}
	if full {
		return Other
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.seen[v]; ok {
		return v
	}
	if len(c.seen) >= c.max {
		return Other
	}
	c.seen[v] = struct{}{}
	return v
}

// stateCollector reads the pool's and the store's state at scrape time,
// so the relay pays nothing for these metrics.
type stateCollector struct {
	src     Source
	maxKeys int
}

var (
	keysDesc = prometheus.NewDesc("keypool_keys",
		"Keys by provider and state (active, cooling, disabled, inactive, exhausted; exclusive).",
		[]string{"provider", "state"}, nil)
	storeDesc = prometheus.NewDesc("keypool_store_up",
		"1 while the store answers, 0 while it is degraded (the proxy serves from memory).",
		[]string{"backend"}, nil)
	keyReqDesc = prometheus.NewDesc("keypool_key_requests_total",
		"Requests per key (persisted count; reset with /admin/reset), only while the pool holds at most METRICS_MAX_KEY_LABELS keys.",
		[]string{"provider", "key_id"}, nil)
	keyFailDesc = prometheus.NewDesc("keypool_key_failures_total",
		"Failed requests per key, only while the pool holds at most METRICS_MAX_KEY_LABELS keys.",
		[]string{"provider", "key_id"}, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- keysDesc
	ch <- storeDesc
	ch <- keyReqDesc
	ch <- keyFailDesc
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	if c.src.Keys != nil {
		for _, p := range c.src.Keys() {
			for _, s := range KeyStateNames {
				ch <- prometheus.MustNewConstMetric(keysDesc, prometheus.GaugeValue, float64(p.Counts[s]), p.Provider, s)
			}
		}
	}
	if c.src.Store != nil {
		backend, ok := c.src.Store()
		v := 0.0
		if ok {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(storeDesc, prometheus.GaugeValue, v, backend)
	}
	if c.src.PerKey != nil && c.src.KeyCount != nil && c.src.KeyCount() <= c.maxKeys {
		for _, k := range c.src.PerKey() {
			ch <- prometheus.MustNewConstMetric(keyReqDesc, prometheus.CounterValue, float64(k.Requests), k.Provider, k.ID)
			ch <- prometheus.MustNewConstMetric(keyFailDesc, prometheus.CounterValue, float64(k.Failures), k.Provider, k.ID)
		}
	}
}

// RequestTotals sums keypool_requests_total per provider. It reads the
// counters (no scrape needed); for periodic checks, not the relay.
func (m *Metrics) RequestTotals() map[string]Totals {
	out := map[string]Totals{}
	ch := make(chan prometheus.Metric, 64)
	go func() { m.requests.Collect(ch); close(ch) }()
	for pm := range ch {
		var d dto.Metric
		if pm.Write(&d) != nil || d.Counter == nil {
			continue
		}
		var prov, class string
		for _, l := range d.Label {
			switch l.GetName() {
			case "provider":
				prov = l.GetValue()
			case "status_class":
				class = l.GetValue()
			}
		}
		t := out[prov]
		n := int64(d.Counter.GetValue())
		t.Requests += n
		if class == "5xx" {
			t.ServerErrors += n
		}
		out[prov] = t
	}
	return out
}
