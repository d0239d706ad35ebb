package server

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/provider"
	"github.com/keypool/keypool/worker-proxy/store/boltstore"
)

// waitJob polls a job until it ends.
func waitJob(t *testing.T, s *Server, id string) adminapi.JobStatus {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		w := serve(s, "GET", "/admin/jobs/"+id, "")
		var st adminapi.JobStatus
		if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &st) != nil {
			t.Fatalf("GET job: %d %s", w.Code, w.Body)
		}
		if st.State != adminapi.JobRunning {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("job still running after a minute: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func startJobT(t *testing.T, s *Server, path string, body any) adminapi.JobStatus {
	t.Helper()
	b, _ := json.Marshal(body)
	w := serve(s, "POST", path, string(b))
	var st adminapi.JobStatus
	if w.Code != 202 || json.Unmarshal(w.Body.Bytes(), &st) != nil || st.ID == "" || w.Header().Get("Location") != "/admin/jobs/"+st.ID {
		t.Fatalf("POST %s: %d %.300s", path, w.Code, w.Body)
	}
	return st
}

// An import job of 12,000 lines runs in batches and keeps the checks of a
// bulk import across them; a delete job removes what it imported.
func TestImportAndDeleteJobs(t *testing.T) {
	s, st := newTestServer(t)
	const n = 12000
	secrets := make([]string, n)
	for i := range secrets {
		secrets[i] = fmt.Sprintf("sk-fake-job-%06d-%04d", i, i%9973)
	}
	secrets[7] = "bad key"       // invalid
	secrets[6000] = secrets[100] // repeats a line of an earlier batch
	if w := serve(s, "POST", "/admin/keys", `{"provider":"openai","apiKey":"`+secrets[9]+`"}`); w.Code != 201 {
		t.Fatalf("add: %d %s", w.Code, w.Body)
	}
	job := startJobT(t, s, "/admin/jobs/import", adminapi.BulkAddRequest{Provider: "openai", APIKeys: secrets, Metadata: &adminapi.Metadata{Tags: &[]string{"imported"}}})
	if job.Kind != "import" || job.Total != n || job.Provider != "openai" {
		t.Fatalf("job: %+v", job)
	}
	done := waitJob(t, s, job.ID)
	if done.State != "done" || done.Done != n || done.Counts["added"] != n-3 || done.Counts["duplicate"] != 2 || done.Counts["invalid"] != 1 || done.FinishedAt == nil {
		t.Fatalf("finished import: %+v", done)
	}
	var got []int
	for _, it := range done.Items {
		got = append(got, it.Index)
		if strings.Contains(it.Error+it.MaskedKey, "sk-fake-job") {
			t.Fatalf("job item shows a secret: %+v", it)
		}
	}
	if !slices.Equal(got, []int{7, 9, 6000}) || done.Items[2].Error != "same key as apiKeys[100] of this request" {
		t.Fatalf("items: %+v", done.Items)
	}
	// Every added key is in the pool and in the store, in input order.
	if s.pool.Len() != n-2 {
		t.Fatalf("pool has %d keys, want %d", s.pool.Len(), n-2)
	}
	c, err := st.Load(t.Context())
	if err != nil || len(c.Keys) != n-2 {
		t.Fatalf("store has %d keys (%v), want %d", len(c.Keys), err, n-2)
	}
	var order []string
	for _, e := range s.pool.Entries("openai")[1:] {
		order = append(order, pool.Mask(e.Secret()))
	}
	var want []string
	for i, sec := range secrets {
		if i != 7 && i != 9 && i != 6000 {
			want = append(want, pool.Mask(sec))
		}
	}
	if !slices.Equal(order, want) {
		t.Fatal("imported keys are not in input order")
	}

	ids := []string{"key_0_nothere"}
	for _, e := range s.pool.Entries("openai") {
		ids = append(ids, e.ID())
	}
	ids = append(ids, ids[1]) // named twice
	del := waitJob(t, s, startJobT(t, s, "/admin/jobs/delete", adminapi.DeleteJobRequest{IDs: ids}).ID)
	if del.State != "done" || del.Counts["deleted"] != n-2 || del.Counts["not_found"] != 2 || s.pool.Len() != 0 {
		t.Fatalf("delete job: %+v, pool %d", del, s.pool.Len())
	}
	if c, _ := st.Load(t.Context()); len(c.Keys) != 0 {
		t.Fatalf("store still has %d keys", len(c.Keys))
	}
	// The list names both, newest first, without their items.
	var list adminapi.JobList
	json.Unmarshal(serve(s, "GET", "/admin/jobs", "").Body.Bytes(), &list)
	if len(list.Jobs) != 2 || list.Jobs[0].ID != del.ID || list.Jobs[1].ID != job.ID || len(list.Jobs[1].Items) != 0 || list.Jobs[1].ItemsLeftOut != 3 {
		t.Fatalf("list: %+v", list)
	}
}

// fakeModels answers the key test's GET /v1/models as OpenAI does: 200
// for good keys, 429 with Retry-After for a rate-limited one, 401 for an
// invalid one. It records when each call started and how many ran at once.
type fakeModels struct {
	mu          sync.Mutex
	started     []time.Time
	limitedAt   time.Time // when the 429 went back
	limitedDone bool
	inflight    atomic.Int64
	maxInflight atomic.Int64
	limited     string // the key answered 429 once
	invalid     string
	block       chan struct{} // if set, calls wait for it
}

func (f *fakeModels) RoundTrip(r *http.Request) (*http.Response, error) {
	n := f.inflight.Add(1)
	defer f.inflight.Add(-1)
	for {
		m := f.maxInflight.Load()
		if n <= m || f.maxInflight.CompareAndSwap(m, n) {
			break
		}
	}
	f.mu.Lock()
	f.started = append(f.started, time.Now())
	f.mu.Unlock()
	if f.block != nil {
		select {
		case <-f.block:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	time.Sleep(5 * time.Millisecond)
	key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	answer := func(status int, body string, h http.Header) (*http.Response, error) {
		h.Set("Content-Type", "application/json")
		return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
	}
	switch key {
	case f.limited:
		f.mu.Lock()
		first := !f.limitedDone
		f.limitedDone = true
		f.mu.Unlock()
		if first {
			defer func() { f.mu.Lock(); f.limitedAt = time.Now(); f.mu.Unlock() }()
			return answer(429, `{"error":{"message":"Rate limit reached for requests","type":"requests","param":null,"code":"rate_limit_exceeded"}}`, http.Header{"Retry-After": {"1"}})
		}
	case f.invalid:
		return answer(401, `{"error":{"message":"Incorrect API key provided: sk-fake***0000. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`, http.Header{})
	}
	return answer(200, `{"object":"list","data":[{"id":"gpt-4o-mini","object":"model","created":1,"owned_by":"system"}]}`, http.Header{})
}

func jobServer(t *testing.T, tr http.RoundTripper) *Server {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "keypool.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg, _ := provider.NewRegistry(provider.Defaults()...)
	s, err := New(t.Context(), Config{AdminKey: adminKey, Transport: tr, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, st, reg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// disabledKeys adds n OpenAI keys and disables them, as the relay does
// when the provider rejects them.
func disabledKeys(t *testing.T, s *Server, n int) []string {
	var secrets []string
	for i := range n {
		secrets = append(secrets, fmt.Sprintf("sk-fake-disabled-%04d-test", i))
	}
	b, _ := json.Marshal(adminapi.BulkAddRequest{Provider: "openai", APIKeys: secrets})
	if w := serve(s, "POST", "/admin/keys/bulk", string(b)); w.Code != 201 {
		t.Fatalf("bulk: %d %s", w.Code, w.Body)
	}
	for _, e := range s.pool.Entries("openai") {
		s.pool.Disable(e, "invalid_key: test", time.Now())
	}
	return secrets
}

// "Test all disabled" tests every disabled key, at most Concurrency at a
// time; a rate limit holds the provider's next tests back for its
// Retry-After; keys that pass come back.
func TestTestJobAllDisabled(t *testing.T) {
	f := &fakeModels{}
	s := jobServer(t, f)
	secrets := disabledKeys(t, s, 30)
	f.limited, f.invalid = secrets[4], secrets[5]
	// One active key, which "test all disabled" leaves alone.
	serve(s, "POST", "/admin/keys", `{"provider":"openai","apiKey":"sk-fake-active-key-0001-test"}`)

	job := startJobT(t, s, "/admin/jobs/test", adminapi.TestJobRequest{Concurrency: 3})
	if job.Total != 30 || job.Concurrency != 3 {
		t.Fatalf("job: %+v", job)
	}
	done := waitJob(t, s, job.ID)
	if done.State != "done" || done.Counts["passed"] != 28 || done.Counts["failed"] != 2 || done.Done != 30 {
		t.Fatalf("test job: %+v", done)
	}
	if m := f.maxInflight.Load(); m > 3 {
		t.Fatalf("%d tests ran at once, limit 3", m)
	}
	for _, it := range done.Items {
		if !strings.HasPrefix(it.Error, "rate_limited") && !strings.HasPrefix(it.Error, "invalid_key") || strings.Contains(it.Error, "sk-fake-disabled") {
			t.Errorf("item: %+v", it)
		}
	}
	// After the 429, the provider's tests waited for its Retry-After (1 s):
	// only tests the other workers had begun as it came back (at most
	// two) started sooner.
	f.mu.Lock()
	early := 0
	for _, at := range f.started {
		if d := at.Sub(f.limitedAt); d > 0 && d < 900*time.Millisecond {
			early++
			if d > 300*time.Millisecond {
				t.Errorf("a test started %s after the rate limit, want ≥ 1s", d)
			}
		}
	}
	if early > 2 {
		t.Errorf("%d tests started within a second of the rate limit, want at most the 2 other workers'", early)
	}
	f.mu.Unlock()
	p := getPage(t, s, map[string][]string{"state": {"disabled"}})
	// The invalid key and the rate-limited one (resting now) stay disabled;
	// the 28 that passed join the one active key.
	if p.Matched != 2 || p.States["active"] != 29 {
		t.Fatalf("after the job: %d disabled, states %v", p.Matched, p.States)
	}
}

func TestJobCancelAndLimits(t *testing.T) {
	f := &fakeModels{block: make(chan struct{})}
	s := jobServer(t, f)
	disabledKeys(t, s, 10)
	var running []adminapi.JobStatus
	for range maxRunningJobs {
		running = append(running, startJobT(t, s, "/admin/jobs/test", adminapi.TestJobRequest{Concurrency: 1}))
	}
	if w := serve(s, "POST", "/admin/jobs/test", `{}`); w.Code != 429 || !strings.Contains(w.Body.String(), "at most 4 at once") {
		t.Fatalf("a fifth job: %d %s", w.Code, w.Body)
	}
	w := serve(s, "DELETE", "/admin/jobs/"+running[0].ID, "")
	var st adminapi.JobStatus
	json.Unmarshal(w.Body.Bytes(), &st)
	if w.Code != 200 || st.State != "canceled" || st.Done >= st.Total {
		t.Fatalf("cancel: %d %s", w.Code, w.Body)
	}
	if w := serve(s, "DELETE", "/admin/jobs/"+running[0].ID, ""); w.Code != 409 {
		t.Fatalf("cancel twice: %d %s", w.Code, w.Body)
	}
	close(f.block)
	for _, j := range running[1:] {
		if st := waitJob(t, s, j.ID); st.State != "done" || st.Done != 10 {
			t.Fatalf("job %s: %+v", j.ID, st)
		}
	}
	for _, tc := range []struct{ path, body, want string }{
		{"/admin/jobs/test", `{"concurrency":17}`, "concurrency must be 1 to 16"},
		{"/admin/jobs/test", `{"ids":["a"],"state":"disabled"}`, "not both"},
		{"/admin/jobs/test", `{"state":"asleep"}`, "state must be one of"},
		{"/admin/jobs/test", `{"provider":"nope"}`, "Unknown provider"},
		{"/admin/jobs/delete", `{"ids":[]}`, "ids must hold 1 to 100000"},
		{"/admin/jobs/import", `{"provider":"openai","apiKeys":[]}`, "at least one key"},
		{"/admin/jobs/import", `{"provider":"nope","apiKeys":["sk-fake-0000000001"]}`, "unknown provider"},
		{"/admin/jobs/import", `{"provider":"openai","apiKeys":"sk-fake"}`, ""},
	} {
		w := serve(s, "POST", tc.path, tc.body)
		if w.Code != 400 || !strings.Contains(w.Body.String(), tc.want) || !strings.HasPrefix(w.Body.String(), `{"error":`) {
			t.Errorf("POST %s %s: %d %s", tc.path, tc.body, w.Code, w.Body)
		}
	}
	if w := serve(s, "GET", "/admin/jobs/job_nothere", ""); w.Code != 404 {
		t.Fatalf("unknown job: %d", w.Code)
	}
}

func TestProviderGate(t *testing.T) {
	g := newProviderGate()
	g.pause("openai", time.Now().Add(10*time.Minute), time.Second) // capped at a minute
	g.pause("openai", time.Now().Add(time.Second), time.Second)    // never shortens
	g.mu.Lock()
	left := time.Until(g.until["openai"])
	g.mu.Unlock()
	if left < 50*time.Second || left > maxRateLimitPause {
		t.Fatalf("pause of %s, want about a minute", left)
	}
	if !g.wait(t.Context(), "gemini") {
		t.Fatal("another provider is held back")
	}
}
