package server

import (
	"net/url"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/failure"
	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/reqlog"
)

// BenchmarkObserve compares what one request's observation costs (metrics
// and a request log record, as finish runs it) with the whole in-process
// relay of a request against a canned upstream, request log on. The ratio
// observe/relay is the observation's share of the relay's own CPU; real
// upstreams only make it smaller.
func BenchmarkObserve(b *testing.B) {
	newServer := func(b *testing.B) *Server {
		s := benchServer(b, 10, cannedTransport{chatBody, "application/json"})
		l := reqlog.New(reqlog.NewRing(reqlog.Bounds{}, nil), "memory", reqlog.Options{})
		b.Cleanup(func() { l.Close() })
		s.reqlog = l
		return s
	}
	b.Run("relay", func(b *testing.B) {
		runRelay(b, newServer(b))
	})
	b.Run("observe", func(b *testing.B) {
		s := newServer(b)
		prov, _ := s.providers.Get("openai")
		e := s.pool.Pick("openai", pool.RoundRobin)
		st := &relayState{prov: prov, strategy: pool.RoundRobin, body: []byte(request), start: time.Now(),
			token: "bench-client-token-0123456789", route: "api", entry: e, tried: []*pool.Entry{e},
			ttfb: time.Millisecond, promptTokens: 9, completionTokens: 6}
		b.ReportAllocs()
		for b.Loop() {
			st.client = nil
			s.observe(st, 200)
		}
	})
}

// The benchmark's observed request is a plain success.
func TestObserveBenchState(t *testing.T) {
	st := &relayState{tried: make([]*pool.Entry, 1)}
	if c := st.attemptClass(0, 200); c != failure.Success {
		t.Fatalf("class %v", c)
	}
	if m := (&relayState{body: []byte(request)}).requestModel(); m != "gpt-4o-mini" {
		t.Fatalf("model %q", m)
	}
	if m := (&relayState{target: mustURL("http://x/v1beta/models/gemini-2.0-flash:streamGenerateContent")}).requestModel(); m != "gemini-2.0-flash" {
		t.Fatalf("gemini model %q", m)
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
