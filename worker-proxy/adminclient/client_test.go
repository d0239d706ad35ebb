//go:build !js

package adminclient_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/adminclient"
	"github.com/keypool/keypool/worker-proxy/limits"
	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/provider"
	"github.com/keypool/keypool/worker-proxy/server"
	"github.com/keypool/keypool/worker-proxy/store/boltstore"
)

const adminKey = "adminclient-test-admin-key-0123456789"

// startServer runs the real admin API in process over a bbolt store.
func startServer(t *testing.T, origins ...string) *httptest.Server {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "keypool.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg, _ := provider.NewRegistry(provider.Defaults()...)
	s, err := server.New(t.Context(), server.Config{
		AdminKey: adminKey, AllowedOrigins: origins,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, st, reg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts
}

func ptr[T any](v T) *T { return &v }

func TestKeysLifecycle(t *testing.T) {
	ts := startServer(t)
	c := adminclient.New(ts.URL+"/", adminKey)
	ctx := t.Context()

	const secret = "AIzaSyLifecycleKey00000000001"
	add, err := c.AddKey(ctx, adminapi.AddKeyRequest{
		Provider: "gemini", APIKey: secret, MaxRequests: ptr(int64(100)),
		Metadata: &adminapi.Metadata{Description: ptr("first"), Tags: &[]string{"prod"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if add.KeyID == "" || add.Key == nil || add.Key.MaskedKey != pool.Mask(secret) {
		t.Fatalf("add: %+v", add)
	}
	// A duplicate is 409 with the server's message.
	_, err = c.AddKey(ctx, adminapi.AddKeyRequest{Provider: "gemini", APIKey: secret})
	if adminclient.StatusOf(err) != 409 || adminclient.KindOf(err) != adminclient.KindHTTP {
		t.Fatalf("duplicate: %v", err)
	}
	if e := err.(*adminclient.Error); e.Message == "" {
		t.Fatalf("no server message: %#v", e)
	}

	bulk, err := c.BulkAdd(ctx, adminapi.BulkAddRequest{Provider: "gemini", APIKeys: []string{
		"AIzaSyBulkKey0000000000000001", secret, "has space", "AIzaSyBulkKey0000000000000002",
	}})
	if err != nil {
		t.Fatal(err)
	}
	if bulk.Added != 2 || bulk.Duplicates != 1 || bulk.Invalid != 1 || len(bulk.Results) != 4 {
		t.Fatalf("bulk: %+v", bulk)
	}

	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.TotalKeys != 3 || !st.Store.OK {
		t.Fatalf("status: total %d store %+v", st.TotalKeys, st.Store)
	}
	ps, err := c.ProviderStatus(ctx, "gemini")
	if err != nil || ps.TotalKeys != 3 || len(ps.Keys) != 3 {
		t.Fatalf("provider status: %v %+v", err, ps)
	}

	up, err := c.UpdateKey(ctx, add.KeyID, adminapi.UpdateKeyRequest{IsActive: ptr(false), Weight: ptr(5)})
	if err != nil {
		t.Fatal(err)
	}
	if up.Key.IsActive || up.Key.Weight != 5 || up.Key.State != adminapi.StateInactive {
		t.Fatalf("update: %+v", up.Key)
	}
	got, err := c.GetKey(ctx, add.KeyID)
	if err != nil || got.Description != "first" {
		t.Fatalf("get: %v %+v", err, got)
	}

	rs, err := c.Reset(ctx, "gemini")
	if err != nil || rs.KeysReset != 3 {
		t.Fatalf("reset: %v %+v", err, rs)
	}

	if _, err := c.DeleteKey(ctx, add.KeyID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetKey(ctx, add.KeyID); adminclient.StatusOf(err) != 404 {
		t.Fatalf("after delete: %v", err)
	}
	var ids []string
	for _, r := range bulk.Results {
		if r.Status == adminapi.BulkAdded {
			ids = append(ids, r.KeyID)
		}
	}
	bd, err := c.BulkDelete(ctx, append(ids, "key_missing"))
	if err != nil || bd.Deleted != 2 || len(bd.NotFound) != 1 {
		t.Fatalf("bulk delete: %v %+v", err, bd)
	}
}

func TestTokens(t *testing.T) {
	ts := startServer(t)
	c := adminclient.New(ts.URL, adminKey)
	ctx := t.Context()
	tok, err := c.CreateToken(ctx, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	if tok.Token == "" || tok.Masked != pool.Mask(tok.Token) {
		t.Fatalf("create: %+v", tok)
	}
	list, err := c.Tokens(ctx)
	if err != nil || len(list) != 1 || list[0].ID != tok.ID || list[0].Masked != tok.Masked {
		t.Fatalf("list: %v %+v", err, list)
	}
	if err := c.RevokeToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.RevokeToken(ctx, tok.ID); adminclient.StatusOf(err) != 404 {
		t.Fatalf("second revoke: %v", err)
	}
	list, err = c.Tokens(ctx)
	if err != nil || len(list) != 0 {
		t.Fatalf("after revoke: %v %+v", err, list)
	}
}

func TestTestKeyUnreachableUpstreamIsAResult(t *testing.T) {
	ts := startServer(t)
	c := adminclient.New(ts.URL, adminKey)
	// Unknown key id: 404 from the API.
	if _, err := c.TestKey(t.Context(), "key_nope"); adminclient.StatusOf(err) != 404 {
		t.Fatalf("test unknown: %v", err)
	}
}

func TestErrorKinds(t *testing.T) {
	ts := startServer(t, "http://allowed.example")
	ctx := t.Context()

	_, err := adminclient.New(ts.URL, "wrong-admin-key-000000000000").Status(ctx)
	if adminclient.KindOf(err) != adminclient.KindUnauthorized || adminclient.StatusOf(err) != 401 {
		t.Fatalf("wrong key: %v", err)
	}

	dead := httptest.NewServer(nil)
	deadURL := dead.URL
	dead.Close()
	_, err = adminclient.New(deadURL, adminKey).Status(ctx)
	if adminclient.KindOf(err) != adminclient.KindUnreachable {
		t.Fatalf("unreachable: %v", err)
	}

	c := adminclient.New(ts.URL, adminKey)
	c.Doer = &adminclient.HTTPDoer{Origin: "http://other.example"}
	_, err = c.Status(ctx)
	if adminclient.KindOf(err) != adminclient.KindCORS {
		t.Fatalf("cors: %v", err)
	}
	c.Doer = &adminclient.HTTPDoer{Origin: "http://allowed.example"}
	if _, err := c.Status(ctx); err != nil {
		t.Fatalf("allowed origin: %v", err)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := adminclient.New(ts.URL, adminKey).Status(cctx); adminclient.KindOf(err) != adminclient.KindUnreachable {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestNormalizeURL(t *testing.T) {
	for in, want := range map[string]string{
		" http://h:1/ ":    "http://h:1",
		"127.0.0.1:8080":   "http://127.0.0.1:8080",
		"https://x.dev///": "https://x.dev",
		"":                 "",
	} {
		if got := adminclient.NormalizeURL(in); got != want {
			t.Errorf("NormalizeURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPlaygroundRequestAndAnswerText(t *testing.T) {
	path, h, body := adminclient.PlaygroundRequest("gemini", "gemini-2.5-flash", "leastUsed", "kp-tok", "hi")
	if path != "/api/gemini/models/gemini-2.5-flash:generateContent?strategy=leastUsed" || h["x-goog-api-key"] != "kp-tok" || !strings.Contains(string(body), `"text":"hi"`) {
		t.Errorf("gemini: %s %v %s", path, h, body)
	}
	path, h, _ = adminclient.PlaygroundRequest("openai", "gpt-4o-mini", "", "kp-tok", "hi")
	if path != "/api/openai/chat/completions" || h["Authorization"] != "Bearer kp-tok" {
		t.Errorf("openai: %s %v", path, h)
	}
	path, h, _ = adminclient.PlaygroundRequest("anthropic", "claude-sonnet-4-5", "", "kp-tok", "hi")
	if path != "/api/anthropic/messages" || h["x-api-key"] != "kp-tok" {
		t.Errorf("anthropic: %s %v", path, h)
	}
	for body, want := range map[string]string{
		`{"candidates":[{"content":{"parts":[{"text":"a"},{"text":"b"}]}}]}`: "ab",
		`{"choices":[{"message":{"content":"c"}}]}`:                          "c",
		`{"content":[{"type":"text","text":"d"}]}`:                           "d",
		`{"error":"No available API keys"}`:                                  "No available API keys",
		`{"error":{"message":"bad key"}}`:                                    "bad key",
	} {
		if got := adminclient.AnswerText("x", []byte(body)); got != want {
			t.Errorf("AnswerText(%s) = %q, want %q", body, got, want)
		}
	}
}

// Traffic reports the relayed requests per provider and minute; the
// range is checked by the server.
func TestTraffic(t *testing.T) {
	ts := startServer(t)
	c := adminclient.New(ts.URL, adminKey)
	ctx := t.Context()
	tok, err := c.CreateToken(ctx, "traffic")
	if err != nil {
		t.Fatal(err)
	}
	empty, err := c.Traffic(ctx, 5)
	if err != nil || empty.BucketSeconds != 60 || empty.Start == "" || empty.Since == "" || len(empty.Providers) != 0 {
		t.Fatalf("before any request: %v %+v", err, empty)
	}
	// No gemini key: the proxy answers 503, counted as an unserved error.
	path, hdr, body := adminclient.PlaygroundRequest("gemini", "gemini-2.5-flash", "", tok.Token, "hi")
	if r, err := c.Relay(ctx, "POST", path, hdr, body); err != nil || r.Status != 503 {
		t.Fatalf("relay: %v %+v", err, r)
	}
	got, err := c.Traffic(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Providers) != 1 || got.Providers[0].Provider != "gemini" || len(got.Providers[0].Buckets) != 5 {
		t.Fatalf("traffic: %+v", got)
	}
	var sum adminapi.TrafficBucket
	for _, b := range got.Providers[0].Buckets {
		sum.Add(b)
	}
	if sum != (adminapi.TrafficBucket{Requests: 1, Errors: 1, Unserved: 1}) {
		t.Fatalf("gemini over 5 minutes: %+v, want 1 unserved request", sum)
	}
	start, err := time.Parse(adminapi.TimeLayout, got.Start)
	if err != nil || time.Since(start) < 4*time.Minute || time.Since(start) > 5*time.Minute+time.Second {
		t.Fatalf("start %q for 5 minutes: %v", got.Start, err)
	}
	for _, n := range []int{0, 1441} {
		if _, err := c.Traffic(ctx, n); adminclient.StatusOf(err) != 400 || adminclient.KindOf(err) != adminclient.KindHTTP {
			t.Errorf("minutes=%d: %v, want a 400", n, err)
		}
	}
}

func TestStatusPage(t *testing.T) {
	ts := startServer(t)
	c := adminclient.New(ts.URL, adminKey)
	ctx := t.Context()
	var secrets []string
	for i := range 25 {
		secrets = append(secrets, "AIzaSyFakePagingKey"+strings.Repeat("0", 6)+string(rune('a'+i)))
	}
	if _, err := c.BulkAdd(ctx, adminapi.BulkAddRequest{Provider: "gemini", APIKeys: secrets, Metadata: &adminapi.Metadata{Tags: &[]string{"batch"}}}); err != nil {
		t.Fatal(err)
	}
	q := adminapi.StatusQuery{Provider: "gemini", Limit: 10, Tag: "batch"}
	seen := map[string]bool{}
	for pages := 1; ; pages++ {
		p, err := c.StatusPage(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if p.TotalKeys != 25 || p.Matched != 25 || p.States[adminapi.StateActive] != 25 {
			t.Fatalf("page %d: totals %d, matched %d, states %v", pages, p.TotalKeys, p.Matched, p.States)
		}
		for _, k := range p.Keys {
			if seen[k.ID] {
				t.Fatalf("%s on two pages", k.ID)
			}
			seen[k.ID] = true
		}
		if p.NextCursor == "" {
			if pages != 3 {
				t.Fatalf("%d pages, want 3", pages)
			}
			break
		}
		q.Cursor = p.NextCursor
	}
	if len(seen) != 25 {
		t.Fatalf("saw %d keys, want 25", len(seen))
	}
	p, err := c.StatusPage(ctx, adminapi.StatusQuery{Q: "000Y"})
	if err != nil || len(p.Keys) != 1 || p.Keys[0].MaskedKey != pool.Mask(secrets[24]) {
		t.Fatalf("search: %+v %v", p, err)
	}
	if _, err := c.StatusPage(ctx, adminapi.StatusQuery{Sort: "price"}); adminclient.StatusOf(err) != 400 {
		t.Fatalf("bad sort: %v", err)
	}
	ids, err := c.StatusPage(ctx, adminapi.StatusQuery{Fields: adminapi.FieldsID, Limit: adminapi.MaxIDPageLimit, Tag: "batch"})
	if err != nil || len(ids.IDs) != 25 || len(ids.Keys) != 0 || !seen[ids.IDs[0]] {
		t.Fatalf("ids only: %+v %v", ids, err)
	}
}

func TestJobs(t *testing.T) {
	ts := startServer(t)
	c := adminclient.New(ts.URL, adminKey)
	ctx := t.Context()
	var secrets []string
	for i := range 300 {
		secrets = append(secrets, "sk-fake-client-job-"+strings.Repeat("0", 3)+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	job, err := c.ImportJob(ctx, adminapi.BulkAddRequest{Provider: "openai", APIKeys: secrets})
	if err != nil || job.Kind != adminapi.JobImport || job.Total != 300 {
		t.Fatalf("import job: %+v %v", job, err)
	}
	wait := func(id string) *adminapi.JobStatus {
		for range 500 {
			st, err := c.Job(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if st.State != adminapi.JobRunning {
				return st
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatal("job did not finish")
		return nil
	}
	if st := wait(job.ID); st.State != adminapi.JobDone || st.Counts[adminapi.BulkAdded] != 300 {
		t.Fatalf("import: %+v", st)
	}
	page, err := c.StatusPage(ctx, adminapi.StatusQuery{Provider: "openai", Limit: 1000})
	if err != nil || len(page.Keys) != 300 {
		t.Fatalf("page: %d keys, %v", len(page.Keys), err)
	}
	var ids []string
	for _, k := range page.Keys {
		ids = append(ids, k.ID)
	}
	del, err := c.DeleteJob(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	if st := wait(del.ID); st.Counts["deleted"] != 300 {
		t.Fatalf("delete: %+v", st)
	}
	// Nothing disabled: "test all disabled" has nothing to do.
	tj, err := c.TestJob(ctx, adminapi.TestJobRequest{})
	if err != nil || tj.Total != 0 {
		t.Fatalf("test job: %+v %v", tj, err)
	}
	wait(tj.ID)
	jobs, err := c.Jobs(ctx)
	if err != nil || len(jobs) != 3 || jobs[0].ID != tj.ID {
		t.Fatalf("jobs: %+v %v", jobs, err)
	}
	if _, err := c.CancelJob(ctx, tj.ID); adminclient.StatusOf(err) != 409 {
		t.Fatalf("cancel a finished job: %v", err)
	}
}

func TestTokenSettingsAndUsage(t *testing.T) {
	ts := startServer(t)
	c := adminclient.New(ts.URL, adminKey)
	ctx := t.Context()
	tok, err := c.CreateTokenWith(ctx, adminapi.CreateTokenRequest{Name: "limited", Limits: &limits.Limits{RPM: 10}, Models: []string{"gpt-*"}})
	if err != nil || tok.Settings == nil || tok.Settings.Limits.RPM != 10 || len(tok.Settings.Models) != 1 {
		t.Fatalf("create: %v %+v", err, tok)
	}
	up, err := c.UpdateToken(ctx, tok.ID, adminapi.UpdateTokenRequest{Limits: &limits.Limits{TPD: 500}, Providers: &[]string{"openai"}})
	if err != nil || up.Limits != (limits.Limits{TPD: 500}) || len(up.Providers) != 1 || len(up.Models) != 1 {
		t.Fatalf("update: %v %+v", err, up)
	}
	if _, err := c.UpdateToken(ctx, tok.ID, adminapi.UpdateTokenRequest{Limits: &limits.Limits{RPM: -1}}); adminclient.StatusOf(err) != 400 {
		t.Fatalf("bad update: %v", err)
	}
	u, err := c.Usage(ctx)
	if err != nil || u.Since == "" || u.Providers == nil || u.Models == nil || u.Tokens == nil {
		t.Fatalf("usage: %v %+v", err, u)
	}
}

func TestSummary(t *testing.T) {
	ts := startServer(t)
	c := adminclient.New(ts.URL, adminKey)
	ctx := t.Context()
	if _, err := c.BulkAdd(ctx, adminapi.BulkAddRequest{Provider: "gemini", APIKeys: []string{"AIzaSyFakeSummaryKey000001", "AIzaSyFakeSummaryKey000002", "AIzaSyFakeSummaryKey000003"},
		Metadata: &adminapi.Metadata{Tags: &[]string{"batch"}}, Project: ptr("123")}); err != nil {
		t.Fatal(err)
	}
	add, err := c.AddKey(ctx, adminapi.AddKeyRequest{Provider: "openai", APIKey: "sk-fake-summary-test-0001", IsActive: ptr(false)})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := c.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var g, o *adminapi.ProviderSummary
	for i := range sum.Providers {
		switch sum.Providers[i].Provider {
		case "gemini":
			g = &sum.Providers[i]
		case "openai":
			o = &sum.Providers[i]
		}
	}
	if sum.TotalKeys != 4 || g == nil || o == nil || g.TotalKeys != 3 || g.States[adminapi.StateActive] != 3 || g.Projects != 1 ||
		len(g.ProjectKeys) != 1 || g.ProjectKeys[0] != (adminapi.NameCount{Name: "123", Keys: 3}) ||
		len(g.Tags) != 1 || g.Tags[0] != (adminapi.NameCount{Name: "batch", Keys: 3}) ||
		o.States[adminapi.StateInactive] != 1 || o.KeysWithoutProject != 1 || !sum.Store.OK {
		t.Fatalf("summary %+v", sum)
	}
	if _, err := c.DeleteKey(ctx, add.KeyID); err != nil {
		t.Fatal(err)
	}
	if sum, err = c.Summary(ctx); err != nil || sum.TotalKeys != 3 {
		t.Fatalf("after delete: %+v %v", sum, err)
	}
	if _, err := adminclient.New(ts.URL, "wrong-admin-key-test").Summary(ctx); adminclient.StatusOf(err) != 401 {
		t.Fatalf("wrong key: %v", err)
	}
}
