package cfkv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/kvemu"
)

// location is a Cloudflare location in front of the emulator, as one
// instance sees KV: a value or a key listing it read is served from its
// cache for ttl (KV's propagation delay between locations), and its own
// writes are seen at once (a value written here replaces the cached
// one). Every location sees the others' writes only when its cache of
// that name (or listing) expires, so two locations can disagree, as they
// do in KV: what the emulator's StaleFor, one delay for every reader,
// cannot show.
type location struct {
	base http.RoundTripper
	now  func() time.Time
	ttl  time.Duration

	mu     sync.Mutex
	values map[string]cachedValue // key name → value (nil: absent)
	lists  map[string]cachedList  // list URL → answer
}

type cachedValue struct {
	at    time.Time
	value *string
}

type cachedList struct {
	at   time.Time
	body []byte
}

func newLocation(now func() time.Time, ttl time.Duration) *location {
	return &location{base: http.DefaultTransport, now: now, ttl: ttl, values: map[string]cachedValue{}, lists: map[string]cachedList{}}
}

func (l *location) client() *http.Client { return &http.Client{Transport: l} }

func (l *location) fresh(at time.Time) bool { return l.now().Sub(at) < l.ttl }

func answer(req *http.Request, body []byte) *http.Response {
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)), Request: req, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
}

func (l *location) RoundTrip(req *http.Request) (*http.Response, error) {
	path := req.URL.Path
	switch {
	case req.Method == http.MethodGet && strings.HasSuffix(path, "/keys"):
		l.mu.Lock()
		c, ok := l.lists[req.URL.String()]
		l.mu.Unlock()
		if ok && l.fresh(c.at) {
			return answer(req, c.body), nil
		}
		resp, err := l.base.RoundTrip(req)
		if err != nil || resp.StatusCode != 200 {
			return resp, err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		l.mu.Lock()
		l.lists[req.URL.String()] = cachedList{at: l.now(), body: body}
		l.mu.Unlock()
		return answer(req, body), nil
	case req.Method == http.MethodPost && strings.HasSuffix(path, "/bulk/get"):
		raw, _ := io.ReadAll(req.Body)
		var q struct {
			Keys []string `json:"keys"`
			Type string   `json:"type"`
		}
		json.Unmarshal(raw, &q)
		out := map[string]*string{}
		var miss []string
		l.mu.Lock()
		for _, k := range q.Keys {
			if c, ok := l.values[k]; ok && l.fresh(c.at) {
				out[k] = c.value
			} else {
				miss = append(miss, k)
			}
		}
		l.mu.Unlock()
		if len(miss) > 0 {
			body, _ := json.Marshal(map[string]any{"keys": miss, "type": "text"})
			r2 := req.Clone(req.Context())
			r2.Body, r2.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
			resp, err := l.base.RoundTrip(r2)
			if err != nil || resp.StatusCode != 200 {
				return resp, err
			}
			var got struct {
				Result struct {
					Values map[string]*string `json:"values"`
				} `json:"result"`
			}
			json.NewDecoder(resp.Body).Decode(&got)
			resp.Body.Close()
			l.mu.Lock()
			for _, k := range miss {
				out[k] = got.Result.Values[k]
				l.values[k] = cachedValue{at: l.now(), value: got.Result.Values[k]}
			}
			l.mu.Unlock()
		}
		values := map[string]any{}
		for k, v := range out {
			switch {
			case v == nil:
				values[k] = nil
			case q.Type == "json":
				values[k] = json.RawMessage(*v)
			default:
				values[k] = *v
			}
		}
		body, _ := json.Marshal(map[string]any{"success": true, "errors": []any{}, "messages": []any{}, "result": map[string]any{"values": values}})
		return answer(req, body), nil
	case req.Method == http.MethodPut && strings.HasSuffix(path, "/bulk"):
		raw, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(raw))
		resp, err := l.base.RoundTrip(req)
		if err == nil && resp.StatusCode == 200 {
			var pairs []struct {
				Key   string `json:"key"`
				Value string `json:"value"`
			}
			json.Unmarshal(raw, &pairs)
			l.mu.Lock()
			for _, p := range pairs {
				v := p.Value
				l.values[p.Key] = cachedValue{at: l.now(), value: &v}
			}
			l.mu.Unlock()
		}
		return resp, err
	case req.Method == http.MethodPost && strings.HasSuffix(path, "/bulk/delete"):
		raw, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(raw))
		resp, err := l.base.RoundTrip(req)
		if err == nil && resp.StatusCode == 200 {
			var names []string
			json.Unmarshal(raw, &names)
			l.mu.Lock()
			for _, n := range names {
				l.values[n] = cachedValue{at: l.now()}
			}
			l.mu.Unlock()
		}
		return resp, err
	}
	return l.base.RoundTrip(req)
}

// TestSnapshotRaceLocations: the race of TestSnapshotRaceTwoWriters with
// each instance at its own location. Writer B has listed the namespace
// (its location caches the listing) just before writer A, elsewhere,
// adds a key; B then writes a key of another shard, and lives on, syncing
// every 30 s: when B settles its snapshot, its listing must be fresh
// enough to show A's key, or every start after would trust a snapshot
// without it. Starts come every 10 s, each at a new location.
func TestSnapshotRaceLocations(t *testing.T) {
	for _, gap := range []time.Duration{5 * time.Second, 30 * time.Second, 55 * time.Second} {
		t.Run(fmt.Sprintf("gap_%s", gap), func(t *testing.T) {
			clock := &testClock{t: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)}
			srv, ns := emulator(t, kvemu.Options{Now: clock.Now})
			at := func(inst string) Config {
				c := clockConfig(srv, ns, inst, clock)
				c.HTTPClient = newLocation(clock.Now, propagation).client()
				return c
			}
			ids := idsInShards("key_loc", 3)
			a := open(t, at("i-writer-a"))
			if err := a.PutKeys(t.Context(), testKey(ids[0], 1)); err != nil {
				t.Fatal(err)
			}
			clock.Add(time.Hour)
			if _, err := a.Sync(t.Context()); err != nil {
				t.Fatal(err)
			}
			clock.Add(time.Hour)
			b := open(t, at("i-writer-b")) // trusts the settled snapshot
			// A edits a key; B sees the new rev once its location's copy
			// of "rev" expires, and lists: its location caches the listing.
			clock.Add(propagation + 10*time.Second)
			if err := a.PutKeys(t.Context(), testKey(ids[0], 2)); err != nil {
				t.Fatal(err)
			}
			clock.Add(5 * time.Second)
			before := srv.Emu.Counts().Lists
			if _, err := b.Sync(t.Context()); err != nil {
				t.Fatal(err)
			}
			if srv.Emu.Counts().Lists != before+1 {
				t.Fatal("B did not list after A's edit")
			}
			clock.Add(5 * time.Second)
			tA := clock.Now()
			if err := a.PutKeys(t.Context(), testKey(ids[1], 1)); err != nil {
				t.Fatal(err)
			}
			clock.Add(gap)
			tB := clock.Now()
			if err := b.PutKeys(t.Context(), testKey(ids[2], 1)); err != nil {
				t.Fatal(err)
			}
			for step := time.Duration(0); step <= 10*time.Minute; step += 10 * time.Second {
				clock.Add(10 * time.Second)
				if step%(30*time.Second) == 0 {
					if _, err := b.Sync(t.Context()); err != nil {
						t.Fatal(err)
					}
				}
				s, c, _ := startCost(t, srv, at(fmt.Sprintf("i-start-%d", step/time.Second)))
				s.Close()
				if now := clock.Now(); now.Sub(tA) >= propagation && now.Sub(tB) >= propagation {
					got := keyIDs(c)
					for _, id := range ids {
						if _, ok := got[id]; !ok {
							t.Fatalf("a start %s after the writes misses %s: holds %v", now.Sub(tB), id, got)
						}
					}
				}
			}
		})
	}
}
