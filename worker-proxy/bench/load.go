package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/bits"
	"net"
	"net/http"
	"sync"
	"time"
)

// loader drives one target: a fixed pool of keep-alive connections shared
// by a fixed number of request loops.
type loader struct {
	base   string // target base URL, http://127.0.0.1:port
	token  string // client token
	chunks int    // text chunks expected in a streamed answer
	client *http.Client
}

// newLoader returns a loader for the target at base that holds at most
// conns connections to it.
func newLoader(base, token string, conns, chunks int) *loader {
	tr := &http.Transport{
		Proxy:               nil, // loopback only, whatever the environment says
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     5 * time.Minute,
		DisableCompression:  true,
	}
	return &loader{base: base, token: token, chunks: chunks, client: &http.Client{Transport: tr, Timeout: requestTimeout}}
}

// requestTimeout bounds one request, streams included.
const requestTimeout = 30 * time.Second

// close drops the loader's idle connections.
func (l *loader) close() { l.client.CloseIdleConnections() }

// loadResult is what one run of the loader measured.
type loadResult struct {
	Requests int64         // answers that passed their check
	Errors   int64         // failed requests and answers that failed their check
	FirstErr error         // one of the errors, to show
	Elapsed  time.Duration // from the first request to the end of the last
	Latency  histogram     // latencies of the passed requests
}

// run sends requests of mode m from conns loops for d: a loop starts
// requests until d has passed and always finishes the one it started, so
// no request is cut off by the clock. It returns early, with ctx's error,
// if ctx ends.
func (l *loader) run(ctx context.Context, m *mode, conns int, d time.Duration) (loadResult, error) {
	results := make([]loadResult, conns)
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for i := range results {
		wg.Go(func() {
			r := &results[i]
			br := newBodyReader()
			for ctx.Err() == nil && time.Now().Before(end) {
				t0 := time.Now()
				if err := l.do(ctx, m, br); err != nil {
					if ctx.Err() != nil {
						return
					}
					r.Errors++
					if r.FirstErr == nil {
						r.FirstErr = err
					}
					continue
				}
				r.Latency.add(time.Since(t0))
				r.Requests++
			}
		})
	}
	wg.Wait()
	total := loadResult{Elapsed: time.Since(start)}
	for i := range results {
		total.merge(&results[i])
	}
	return total, ctx.Err()
}

// do sends one request and checks its answer.
func (l *loader) do(ctx context.Context, m *mode, br *bodyReader) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.base+m.path, bytes.NewReader(m.body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header["Content-Type"] = []string{"application/json"}
	setClientToken(req.Header, m.provider, l.token)
	res, err := l.client.Do(req)
	if err != nil {
		return err
	}
	br.Reset(res.Body)
	err = m.check(res, br, l.chunks)
	if err != nil {
		// Drain what is left so the connection can be reused, up to a
		// bound; a broken stream closes it anyway.
		io.CopyN(io.Discard, res.Body, 64<<10)
	}
	res.Body.Close()
	br.Reset(nil)
	return err
}

// merge adds o's counts and latencies to r; the elapsed time stays r's.
func (r *loadResult) merge(o *loadResult) {
	r.Requests += o.Requests
	r.Errors += o.Errors
	if r.FirstErr == nil {
		r.FirstErr = o.FirstErr
	}
	r.Latency.merge(&o.Latency)
}

// histogram counts durations in log-linear buckets: exact below 128 ns,
// then 64 buckets per power of two (under 1.6 % relative error). It needs
// no allocation per sample and merges by addition.
type histogram struct {
	counts [histBuckets]uint64
	n      uint64
}

const (
	histSub     = 64 // buckets per power of two
	histBuckets = 2*histSub + 57*histSub
)

func histIndex(v int64) int {
	if v < 2*histSub {
		return int(max(v, 0))
	}
	e := bits.Len64(uint64(v)) - 7 // v >> e is in [64, 128)
	return 2*histSub + (e-1)*histSub + int(v>>e) - histSub
}

// histValue is the middle of bucket i.
func histValue(i int) int64 {
	if i < 2*histSub {
		return int64(i)
	}
	e := (i-2*histSub)/histSub + 1
	m := int64((i-2*histSub)%histSub + histSub)
	return m<<e + (int64(1)<<e)/2
}

func (h *histogram) add(d time.Duration) {
	h.counts[histIndex(int64(d))]++
	h.n++
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// quantile returns the q-quantile (0 < q ≤ 1) of the durations added, or 0
// if there are none.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(histValue(i))
		}
	}
	return 0 // unreachable: the counts sum to n
}
