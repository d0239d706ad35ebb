package kvemu_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/cloudflare-go/v6/kv"

	"github.com/keypool/keypool/worker-proxy/kvemu"
)

func TestFaults(t *testing.T) {
	t.Parallel()
	srv := start(t, kvemu.Options{Tokens: tokens()})
	emu := srv.Emu
	ctx := context.Background()
	c := sdk(srv, tokRW)
	ns, err := newNamespace(ctx, c, "faults")
	if err != nil {
		t.Fatal(err)
	}
	if err := put(ctx, c, ns.ID, "k", "v", nil, 0); err != nil {
		t.Fatal(err)
	}

	t.Run("429 with Retry-After, next N requests", func(t *testing.T) {
		emu.InjectFault(kvemu.Fault{Status: 429, RetryAfter: 2500 * time.Millisecond, Count: 2})
		for range 2 {
			_, _, err := get(ctx, c, ns.ID, "k")
			e := apiError(t, err, 429, kvemu.CodeRateLimited)
			if ra := e.Response.Header.Get("Retry-After"); ra != "3" {
				t.Errorf("Retry-After = %q, want 3", ra)
			}
		}
		if _, _, err := get(ctx, c, ns.ID, "k"); err != nil {
			t.Errorf("after Count ran out: %v", err)
		}
	})

	t.Run("daily-limit error", func(t *testing.T) {
		emu.InjectFault(kvemu.Fault{Status: 429, Code: kvemu.CodeDailyLimit, Count: 1})
		err := put(ctx, c, ns.ID, "k", "v2", nil, 0)
		e := apiError(t, err, 429, kvemu.CodeDailyLimit)
		if e.Errors[0].Message != kvemu.MsgDailyLimit {
			t.Errorf("message = %q", e.Errors[0].Message)
		}
	})

	t.Run("5xx filtered by path and method until cleared", func(t *testing.T) {
		emu.InjectFault(kvemu.Fault{Status: 503, Paths: []string{"/bulk"}, Methods: []string{"PUT"}})
		var bp kv.NamespaceBulkUpdateParams
		bp.AccountID.Value, bp.AccountID.Present = acct, true
		var b kv.NamespaceBulkUpdateParamsBody
		b.Key.Value, b.Key.Present = "b", true
		b.Value.Value, b.Value.Present = "v", true
		bp.Body = []kv.NamespaceBulkUpdateParamsBody{b}
		for range 2 {
			_, err := c.BulkUpdate(ctx, ns.ID, bp)
			apiError(t, err, 503, kvemu.CodeInternal)
		}
		if err := put(ctx, c, ns.ID, "k", "v", nil, 0); err != nil {
			t.Errorf("PUT /values hit the /bulk fault: %v", err)
		}
		emu.ClearFaults()
		if _, err := c.BulkUpdate(ctx, ns.ID, bp); err != nil {
			t.Errorf("after ClearFaults: %v", err)
		}
	})

	t.Run("after N matching requests", func(t *testing.T) {
		emu.InjectFault(kvemu.Fault{Status: 503, After: 2, Count: 1, Methods: []string{"PUT"}})
		for i := range 2 {
			if err := put(ctx, c, ns.ID, "k", fmt.Sprint("v", i), nil, 0); err != nil {
				t.Fatalf("write %d, before the fault: %v", i, err)
			}
			if _, _, err := get(ctx, c, ns.ID, "k"); err != nil {
				t.Fatalf("a read does not count towards After: %v", err)
			}
		}
		apiError(t, put(ctx, c, ns.ID, "k", "v2", nil, 0), 503, kvemu.CodeInternal)
		if err := put(ctx, c, ns.ID, "k", "v3", nil, 0); err != nil {
			t.Errorf("after Count ran out: %v", err)
		}
	})

	t.Run("HTML 502 from the edge", func(t *testing.T) {
		emu.InjectFault(kvemu.Fault{Status: 502, HTML: true, Count: 1})
		_, _, err := get(ctx, c, ns.ID, "k")
		// The SDK still reports the status, with no error codes: a caller
		// must not assume Errors[0] exists.
		e := apiError(t, err, 502, 0)
		if len(e.Errors) != 0 {
			t.Errorf("errors = %+v", e.Errors)
		}
	})

	t.Run("latency", func(t *testing.T) {
		emu.InjectFault(kvemu.Fault{Latency: 80 * time.Millisecond, Count: 1})
		begin := time.Now()
		if _, _, err := get(ctx, c, ns.ID, "k"); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(begin); d < 80*time.Millisecond {
			t.Errorf("request took %v, want >= 80ms", d)
		}
		emu.InjectFault(kvemu.Fault{Latency: 10 * time.Second, Count: 1})
		tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		begin = time.Now()
		_, _, err := get(tctx, c, ns.ID, "k")
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(begin) > 2*time.Second {
			t.Errorf("slow request: %v after %v", err, time.Since(begin))
		}
	})

	if c := emu.Counts(); c.Faulted != 7 {
		t.Errorf("Faulted = %d, want 7", c.Faulted)
	}
}

// TestDailyLimits runs the free plan's daily quotas on a fake clock across
// midnight UTC.
func TestDailyLimits(t *testing.T) {
	t.Parallel()
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	clock := newClock(day)
	emu := kvemu.New(kvemu.Options{Tokens: tokens(), Now: clock.Now, Limits: kvemu.FreePlan()})
	ns, _ := emu.CreateNamespace(acct, "daily")
	p := nsPath(ns)
	tick := func() { clock.Add(time.Second) } // 1 request/s stays under 1,200 per 5 minutes

	expectLimited := func(what string, r *resp) {
		t.Helper()
		if r.Status != http.StatusTooManyRequests || r.code() != kvemu.CodeDailyLimit || r.Env.Errors[0].Message != kvemu.MsgDailyLimit {
			t.Fatalf("%s over the daily limit: %d %s", what, r.Status, r.Body)
		}
	}

	// Writes: 1,000 pairs in one bulk request, then nothing more today.
	pairs := make([]map[string]any, 1000)
	keys := make([]string, 1000)
	for i := range pairs {
		keys[i] = fmt.Sprintf("k%04d", i)
		pairs[i] = map[string]any{"key": keys[i], "value": "v"}
	}
	if r := call(t, emu, "PUT", p+"/bulk", tokRW, pairs); r.Status != 200 {
		t.Fatalf("bulk write: %d %s", r.Status, r.Body)
	}
	tick()
	expectLimited("write", call(t, emu, "PUT", p+"/values/one-more", tokRW, "v"))
	tick()
	expectLimited("bulk write", call(t, emu, "PUT", p+"/bulk", tokRW, pairs[:1]))

	// Deletes: a bulk delete over the remaining quota is refused whole.
	tick()
	if r := call(t, emu, "POST", p+"/bulk/delete", tokRW, keys[:999]); r.Status != 200 {
		t.Fatalf("bulk delete: %d %s", r.Status, r.Body)
	}
	tick()
	expectLimited("bulk delete", call(t, emu, "POST", p+"/bulk/delete", tokRW, keys[998:]))

	// Reads: 100,000 as 1,000 bulk gets of 100 keys.
	// Keys deleted above: misses are billed like hits.
	getBody, _ := json.Marshal(map[string]any{"keys": keys[:100]})
	for i := range 1000 {
		tick()
		r := call(t, emu, "POST", p+"/bulk/get", tokRW, getBody)
		if r.Status != 200 {
			t.Fatalf("bulk get %d: %d %s", i, r.Status, r.Body)
		}
	}
	tick()
	expectLimited("read", call(t, emu, "GET", p+"/values/k0001", tokRW, nil))

	// Lists.
	for i := range 1000 {
		tick()
		if r := call(t, emu, "GET", p+"/keys?limit=10", tokRW, nil); r.Status != 200 {
			t.Fatalf("list %d: %d %s", i, r.Status, r.Body)
		}
	}
	tick()
	expectLimited("list", call(t, emu, "GET", p+"/keys", tokRW, nil))

	if r := call(t, emu, "POST", p+"/bulk/delete", tokRW, []string{"x"}); r.Status != 200 {
		t.Fatalf("last delete of the day: %d %s", r.Status, r.Body)
	}
	tick()
	expectLimited("delete", call(t, emu, "DELETE", p+"/values/x", tokRW, nil))

	clock.Set(day.Add(24*time.Hour - time.Second))
	expectLimited("write at 23:59:59", call(t, emu, "PUT", p+"/values/x", tokRW, "v"))
	clock.Set(day.Add(24 * time.Hour))
	for _, tc := range []struct{ method, path string }{
		{"PUT", "/values/x"}, {"GET", "/values/x"}, {"GET", "/keys"}, {"DELETE", "/values/x"},
	} {
		if r := call(t, emu, tc.method, p+tc.path, tokRW, "v"); r.Status != 200 {
			t.Errorf("%s %s after midnight UTC: %d %s", tc.method, tc.path, r.Status, r.Body)
		}
	}
	c := emu.Counts()
	if c.Writes != 1001 || c.Reads != 100_001 || c.Lists != 1001 || c.Deletes != 1001 || c.DailyLimited != 7 {
		t.Errorf("counts: %v", c)
	}
}

// TestRateLimit is the REST API's 1,200 requests per 5 minutes per token.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	clock := newClock(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	emu := kvemu.New(kvemu.Options{Tokens: tokens(), Now: clock.Now, Limits: kvemu.FreePlan()})
	list := "/client/v4/accounts/" + acct + "/storage/kv/namespaces"
	for i := range 1200 {
		if r := call(t, emu, "GET", list, tokRW, nil); r.Status != 200 {
			t.Fatalf("request %d: %d %s", i+1, r.Status, r.Body)
		}
	}
	limited := func(wantRetry string) {
		t.Helper()
		r := call(t, emu, "GET", list, tokRW, nil)
		if r.Status != 429 || r.code() != kvemu.CodeRateLimited || r.Header.Get("Retry-After") != wantRetry {
			t.Fatalf("over the limit: %d Retry-After=%q %s, want 429/971 Retry-After=%s", r.Status, r.Header.Get("Retry-After"), r.Body, wantRetry)
		}
	}
	limited("300")
	if r := call(t, emu, "GET", list, tokRW2, nil); r.Status != 200 {
		t.Errorf("another token was blocked: %d", r.Status)
	}
	clock.Add(2 * time.Minute)
	limited("180")
	clock.Add(3*time.Minute - time.Second)
	limited("1")
	clock.Add(time.Second)
	if r := call(t, emu, "GET", list, tokRW, nil); r.Status != 200 {
		t.Errorf("next window: %d %s", r.Status, r.Body)
	}
	c := emu.Counts()
	if c.RateLimited != 3 || c.Requests[tokRW] != 1204 || c.Requests[tokRW2] != 1 {
		t.Errorf("counts: %v %v", c, c.Requests)
	}
}

// TestStaleReads checks Options.StaleFor: a write is seen only StaleFor after
// it was made, by every kind of read.
func TestStaleReads(t *testing.T) {
	t.Parallel()
	clock := newClock(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	emu := kvemu.New(kvemu.Options{Tokens: tokens(), Now: clock.Now, StaleFor: 60 * time.Second})
	ns, _ := emu.CreateNamespace(acct, "stale")
	p := nsPath(ns)
	read := func() string {
		t.Helper()
		r := call(t, emu, "GET", p+"/values/k", tokRW, nil)
		switch r.Status {
		case 200:
			return string(r.Body)
		case 404:
			return "<missing>"
		}
		t.Fatalf("read: %d %s", r.Status, r.Body)
		return ""
	}
	listed := func() string {
		t.Helper()
		r := call(t, emu, "GET", p+"/keys", tokRW, nil)
		return string(r.Env.Result)
	}
	bulk := func() string {
		t.Helper()
		r := call(t, emu, "POST", p+"/bulk/get", tokRW, map[string]any{"keys": []string{"k"}})
		return string(r.Env.Result)
	}
	check := func(when, value, list, bulkGet string) {
		t.Helper()
		if got := read(); got != value {
			t.Errorf("%s: value read = %q, want %q", when, got, value)
		}
		if got := listed(); got != list {
			t.Errorf("%s: list = %s, want %s", when, got, list)
		}
		if got := bulk(); got != bulkGet {
			t.Errorf("%s: bulk get = %s, want %s", when, got, bulkGet)
		}
	}

	call(t, emu, "PUT", p+"/values/k", tokRW, "v1")
	check("just written", "<missing>", `[]`, `{"values":{"k":null}}`)
	clock.Add(59 * time.Second)
	check("59s later", "<missing>", `[]`, `{"values":{"k":null}}`)
	clock.Add(time.Second)
	check("60s later", "v1", `[{"name":"k"}]`, `{"values":{"k":"v1"}}`)

	call(t, emu, "PUT", p+"/values/k", tokRW, "v2")
	clock.Add(30 * time.Second)
	call(t, emu, "PUT", p+"/values/k", tokRW, "v3")
	check("v2 30s old, v3 new", "v1", `[{"name":"k"}]`, `{"values":{"k":"v1"}}`)
	clock.Add(30 * time.Second)
	check("v2 60s old", "v2", `[{"name":"k"}]`, `{"values":{"k":"v2"}}`)
	clock.Add(30 * time.Second)
	check("v3 60s old", "v3", `[{"name":"k"}]`, `{"values":{"k":"v3"}}`)

	call(t, emu, "DELETE", p+"/values/k", tokRW, nil)
	check("just deleted", "v3", `[{"name":"k"}]`, `{"values":{"k":"v3"}}`)
	clock.Add(60 * time.Second)
	check("deleted 60s ago", "<missing>", `[]`, `{"values":{"k":null}}`)
}

// TestErrorsAreEnvelopes checks the status, code and content type of
// failures the backend must tell apart.
func TestErrorsAreEnvelopes(t *testing.T) {
	t.Parallel()
	emu := kvemu.New(kvemu.Options{Tokens: tokens()})
	ns, _ := emu.CreateNamespace(acct, "errors")
	p := nsPath(ns)
	for _, tc := range []struct {
		name, method, path, token string
		body                      any
		status, code              int
	}{
		{"no token", "GET", p + "/keys", "", nil, 401, kvemu.CodeAuth},
		{"other account", "GET", p + "/keys", tokOther, nil, 403, kvemu.CodeAuth},
		{"read-only writes", "PUT", p + "/values/k", tokRO, "v", 403, kvemu.CodeAuth},
		{"read-only bulk gets", "POST", p + "/bulk/get", tokRO, map[string]any{"keys": []string{"k"}}, 200, 0},
		{"unknown route", "GET", p + "/nope", tokRW, nil, 404, kvemu.CodeNoRoute},
		{"wrong method", "POST", p + "/keys", tokRW, nil, 405, kvemu.CodeMethodNotAllowed},
		{"unknown namespace", "GET", nsPath("nope") + "/keys", tokRW, nil, 404, kvemu.CodeNamespaceNotFound},
		{"missing key", "GET", p + "/values/nope", tokRW, nil, 404, kvemu.CodeKeyNotFound},
		{"empty title", "POST", "/client/v4/accounts/" + acct + "/storage/kv/namespaces", tokRW, map[string]string{"title": ""}, 400, kvemu.CodeMissingTitle},
		{"duplicate title", "POST", "/client/v4/accounts/" + acct + "/storage/kv/namespaces", tokRW, map[string]string{"title": "errors"}, 400, kvemu.CodeNamespaceExists},
		{"per_page too big", "GET", "/client/v4/accounts/" + acct + "/storage/kv/namespaces?per_page=1000", tokRW, nil, 400, kvemu.CodeBadPerPage},
		{"bad cursor", "GET", p + "/keys?cursor=!!", tokRW, nil, 400, kvemu.CodeBadCursor},
		{"expiration in the past", "PUT", p + "/values/k?expiration=1000", tokRW, "v", 400, kvemu.CodeBadExpiration},
		{"bad metadata", "PUT", p + "/bulk", tokRW, `[{"key":"k","value":"v","metadata":{]`, 400, kvemu.CodeInvalidRequest},
		{"too many bulk get keys", "POST", p + "/bulk/get", tokRW, map[string]any{"keys": make([]string, 101)}, 400, kvemu.CodeTooManyBulkKeys},
		{"bad base64", "PUT", p + "/bulk", tokRW, []map[string]any{{"key": "k", "value": "***", "base64": true}}, 400, kvemu.CodeMalformedValue},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, emu, tc.method, tc.path, tc.token, tc.body)
			if r.Status != tc.status || r.code() != tc.code {
				t.Errorf("%d %s, want %d code %d", r.Status, r.Body, tc.status, tc.code)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if !strings.HasPrefix(string(r.Body), `{"success":`) || r.Env.Success != (tc.status == 200) || r.Env.Messages == nil {
				t.Errorf("envelope = %s", r.Body)
			}
		})
	}
}
