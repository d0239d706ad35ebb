package kvemu_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/cloudflare-go/v6/kv"

	"github.com/keypool/keypool/worker-proxy/kvemu"
)

// TestSDK drives the emulator with the real SDK through every call the
// proxy's KV backend uses.
func TestSDK(t *testing.T) {
	t.Parallel()
	clock := newClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	srv := start(t, kvemu.Options{Tokens: tokens(), Now: clock.Now})
	ctx := context.Background()
	c := sdk(srv, tokRW)

	ns, err := newNamespace(ctx, c, "keypool")
	if err != nil {
		t.Fatal(err)
	}
	if len(ns.ID) != 32 || ns.Title != "keypool" {
		t.Fatalf("namespace = %+v", ns)
	}

	t.Run("namespaces", func(t *testing.T) {
		_, err := newNamespace(ctx, c, "keypool")
		apiError(t, err, 400, kvemu.CodeNamespaceExists)
		if _, err := newNamespace(ctx, c, "other"); err != nil {
			t.Fatal(err)
		}
		var lp kv.NamespaceListParams
		lp.AccountID.Value, lp.AccountID.Present = acct, true
		lp.PerPage.Value, lp.PerPage.Present = 5, true
		var titles []string
		for it := c.ListAutoPaging(ctx, lp); it.Next(); {
			titles = append(titles, it.Current().Title)
		}
		if want := []string{"keypool", "other"}; !reflect.DeepEqual(titles, want) {
			t.Errorf("titles = %v, want %v", titles, want)
		}
		var gp kv.NamespaceGetParams
		gp.AccountID.Value, gp.AccountID.Present = acct, true
		got, err := c.Get(ctx, ns.ID, gp)
		if err != nil || got.ID != ns.ID || got.Title != "keypool" {
			t.Errorf("Get = %+v, %v", got, err)
		}
		_, err = c.Get(ctx, "0f2ac74b498b48028cb68387c421e279", gp)
		apiError(t, err, 404, kvemu.CodeNamespaceNotFound)
	})

	t.Run("value and metadata", func(t *testing.T) {
		key := "keys/user:42 ✓?x=1&y=%done"
		if err := put(ctx, c, ns.ID, key, "hello", `{"v":1,"owner":"a"}`, 0); err != nil {
			t.Fatal(err)
		}
		v, h, err := get(ctx, c, ns.ID, key)
		if err != nil || v != "hello" {
			t.Fatalf("get = %q, %v", v, err)
		}
		if ct := h.Get("Content-Type"); strings.Contains(ct, "json") {
			t.Errorf("value read Content-Type = %q, want raw bytes", ct)
		}
		md, err := metadata(ctx, c, ns.ID, key)
		if want := map[string]any{"v": 1.0, "owner": "a"}; err != nil || !reflect.DeepEqual(md, want) {
			t.Errorf("metadata = %#v, %v; want %v", md, err, want)
		}
		keys, _, err := listPage(ctx, c, ns.ID, "keys/", "", 0)
		if err != nil || len(keys) != 1 || keys[0].Name != key {
			t.Fatalf("list = %+v, %v", keys, err)
		}
		if m, _ := keys[0].Metadata.(map[string]any); m["owner"] != "a" {
			t.Errorf("listed metadata = %#v", keys[0].Metadata)
		}

		// The SDK pitfall the notes describe: a metadata map goes out as
		// one "metadata.<field>" form part per entry, which the API ignores.
		if err := put(ctx, c, ns.ID, "map-meta", "x", map[string]any{"v": 1}, 0); err != nil {
			t.Fatal(err)
		}
		if md, err := metadata(ctx, c, ns.ID, "map-meta"); err != nil || md != nil {
			t.Errorf("metadata written as a map = %#v, %v; want none (lost)", md, err)
		}
	})

	t.Run("missing key", func(t *testing.T) {
		_, _, err := get(ctx, c, ns.ID, "no/such/key")
		e := apiError(t, err, 404, kvemu.CodeKeyNotFound)
		if !strings.Contains(e.Errors[0].Message, "key not found") {
			t.Errorf("message = %q", e.Errors[0].Message)
		}
		_, err = metadata(ctx, c, ns.ID, "no/such/key")
		apiError(t, err, 404, kvemu.CodeKeyNotFound)
	})

	t.Run("bulk write, paginated list, bulk get, bulk delete", func(t *testing.T) {
		const n = 2500
		var bp kv.NamespaceBulkUpdateParams
		bp.AccountID.Value, bp.AccountID.Present = acct, true
		names := make([]string, n)
		for i := range n {
			var b kv.NamespaceBulkUpdateParamsBody
			names[i] = fmt.Sprintf("bulk/%05d", i)
			b.Key.Value, b.Key.Present = names[i], true
			b.Value.Value, b.Value.Present = fmt.Sprintf(`{"i":%d}`, i), true
			if i%2 == 0 {
				b.Metadata.Value, b.Metadata.Present = map[string]any{"even": true}, true
			}
			bp.Body = append(bp.Body, b)
		}
		res, err := c.BulkUpdate(ctx, ns.ID, bp)
		if err != nil || res.SuccessfulKeyCount != n {
			t.Fatalf("BulkUpdate = %+v, %v", res, err)
		}

		var got []string
		cursor, pages := "", 0
		for {
			keys, next, err := listPage(ctx, c, ns.ID, "bulk/", cursor, 1000)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, k := range keys {
				got = append(got, k.Name)
			}
			if next == "" {
				break
			}
			cursor = next
		}
		if pages != 3 || !reflect.DeepEqual(got, names) {
			t.Fatalf("paged list: %d pages, %d keys (first %v), want 3 pages, %d keys in order", pages, len(got), got[:min(3, len(got))], n)
		}
		var lp kv.NamespaceKeyListParams
		lp.AccountID.Value, lp.AccountID.Present = acct, true
		lp.Prefix.Value, lp.Prefix.Present = "bulk/001", true
		lp.Limit.Value, lp.Limit.Present = 10, true
		count := 0
		for it := c.Keys.ListAutoPaging(ctx, ns.ID, lp); it.Next(); {
			count++
		}
		if count != 100 {
			t.Errorf("auto-pager saw %d keys, want 100 in pages of 10", count)
		}
		_, _, err = listPage(ctx, c, ns.ID, "", "", 5)
		apiError(t, err, 400, kvemu.CodeBadLimit)

		var gp kv.NamespaceBulkGetParams
		gp.AccountID.Value, gp.AccountID.Present = acct, true
		gp.Keys.Value, gp.Keys.Present = []string{"bulk/00000", "bulk/00001", "absent"}, true
		gr, err := c.BulkGet(ctx, ns.ID, gp)
		if err != nil {
			t.Fatal(err)
		}
		// The SDK's typed result cannot hold a missing key: one null in
		// "values" makes apijson drop the whole map (internal/apijson/decoder.go
		// newMapDecoder), so decode the raw JSON.
		var text struct {
			Values map[string]*string `json:"values"`
		}
		if err := json.Unmarshal([]byte(gr.JSON.RawJSON()), &text); err != nil {
			t.Fatal(err)
		}
		if v := text.Values; len(v) != 3 || v["bulk/00001"] == nil || *v["bulk/00001"] != `{"i":1}` || v["absent"] != nil {
			t.Errorf("bulk get = %s", gr.JSON.RawJSON())
		}

		gp.Type.Value, gp.Type.Present = kv.NamespaceBulkGetParamsTypeJson, true
		gp.WithMetadata.Value, gp.WithMetadata.Present = true, true
		gr, err = c.BulkGet(ctx, ns.ID, gp)
		if err != nil {
			t.Fatal(err)
		}
		raw := gr.JSON.RawJSON()
		for _, want := range []string{`"bulk/00000":{"value":{"i":0},"metadata":{"even":true}}`, `"bulk/00001":{"value":{"i":1},"metadata":null}`, `"absent":null`} {
			if !strings.Contains(raw, want) {
				t.Errorf("bulk get with metadata = %s, want it to contain %s", raw, want)
			}
		}

		var dp kv.NamespaceBulkDeleteParams
		dp.AccountID.Value, dp.AccountID.Present = acct, true
		dp.Body = names
		dr, err := c.BulkDelete(ctx, ns.ID, dp)
		if err != nil || dr.SuccessfulKeyCount != n {
			t.Fatalf("BulkDelete = %+v, %v", dr, err)
		}
		keys, next, err := listPage(ctx, c, ns.ID, "bulk/", "", 0)
		if err != nil || len(keys) != 0 || next != "" {
			t.Errorf("after bulk delete: %d keys, cursor %q, %v", len(keys), next, err)
		}
	})

	t.Run("auth", func(t *testing.T) {
		_, _, err := get(ctx, sdk(srv, "not-a-token"), ns.ID, "k")
		apiError(t, err, 401, kvemu.CodeAuth)
		_, _, err = get(ctx, sdk(srv, tokOther), ns.ID, "k")
		e := apiError(t, err, 403, kvemu.CodeAuth)
		if !strings.Contains(e.Errors[0].Message, kvemu.PermissionName) {
			t.Errorf("403 message %q does not name the permission", e.Errors[0].Message)
		}
		err = put(ctx, sdk(srv, tokRO), ns.ID, "k", "v", nil, 0)
		e = apiError(t, err, 403, kvemu.CodeAuth)
		if !strings.Contains(e.Errors[0].Message, kvemu.PermissionName+" → Edit") {
			t.Errorf("403 message %q does not name the Edit permission", e.Errors[0].Message)
		}
		if _, _, err := get(ctx, sdk(srv, tokRO), ns.ID, "map-meta"); err != nil {
			t.Errorf("read-only token cannot read: %v", err)
		}
	})

	t.Run("ttl", func(t *testing.T) {
		if err := put(ctx, c, ns.ID, "session", "s", nil, 30); err == nil {
			t.Fatal("expiration_ttl 30 accepted")
		} else {
			apiError(t, err, 400, kvemu.CodeBadExpirationTTL)
		}
		if err := put(ctx, c, ns.ID, "session", "s", nil, 60); err != nil {
			t.Fatal(err)
		}
		_, h, err := get(ctx, c, ns.ID, "session")
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprint(clock.Now().Unix() + 60); h.Get("Expiration") != want {
			t.Errorf("Expiration header = %q, want %s", h.Get("Expiration"), want)
		}
		keys, _, _ := listPage(ctx, c, ns.ID, "session", "", 0)
		if len(keys) != 1 || keys[0].Expiration != float64(clock.Now().Unix()+60) {
			t.Errorf("listed = %+v", keys)
		}
		clock.Add(59 * time.Second)
		if _, _, err := get(ctx, c, ns.ID, "session"); err != nil {
			t.Errorf("expired early: %v", err)
		}
		clock.Add(time.Second)
		_, _, err = get(ctx, c, ns.ID, "session")
		apiError(t, err, 404, kvemu.CodeKeyNotFound)
		if keys, _, _ := listPage(ctx, c, ns.ID, "session", "", 0); len(keys) != 0 {
			t.Errorf("expired key listed: %+v", keys)
		}
	})

	t.Run("delete value and namespace", func(t *testing.T) {
		var dp kv.NamespaceValueDeleteParams
		dp.AccountID.Value, dp.AccountID.Present = acct, true
		if _, err := c.Values.Delete(ctx, ns.ID, "map-meta", dp); err != nil {
			t.Fatal(err)
		}
		_, _, err := get(ctx, c, ns.ID, "map-meta")
		apiError(t, err, 404, kvemu.CodeKeyNotFound)

		var np kv.NamespaceDeleteParams
		np.AccountID.Value, np.AccountID.Present = acct, true
		if _, err := c.Delete(ctx, ns.ID, np); err != nil {
			t.Fatal(err)
		}
		_, _, err = get(ctx, c, ns.ID, "anything")
		apiError(t, err, 404, kvemu.CodeNamespaceNotFound)
	})
}

// TestCounts checks that operations are counted by kind as Cloudflare bills
// them, with REST requests per token.
func TestCounts(t *testing.T) {
	t.Parallel()
	emu := kvemu.New(kvemu.Options{Tokens: tokens()})
	ns, err := emu.CreateNamespace(acct, "counts")
	if err != nil {
		t.Fatal(err)
	}
	p := nsPath(ns)
	steps := []struct {
		method, path, token string
		body                any
		status              int
	}{
		{"PUT", p + "/values/a", tokRW, "1", 200},       // write 1
		{"GET", p + "/values/a", tokRW, nil, 200},       // read 1
		{"GET", p + "/values/missing", tokRW, nil, 404}, // read 1: misses are billed
		{"GET", p + "/metadata/a", tokRO, nil, 200},     // read 1
		{"PUT", p + "/bulk", tokRW, []map[string]any{{"key": "b", "value": "2"}, {"key": "c", "value": "3"}, {"key": "d", "value": "4"}}, 200}, // writes 3
		{"POST", p + "/bulk/get", tokRW, map[string]any{"keys": []string{"a", "b", "c", "zzz"}}, 200},                                          // reads 4
		{"GET", p + "/keys", tokRW, nil, 200},                                              // list 1
		{"GET", p + "/keys?prefix=b", tokRW, nil, 200},                                     // list 1
		{"DELETE", p + "/values/a", tokRW, nil, 200},                                       // delete 1
		{"POST", p + "/bulk/delete", tokRW, []string{"b", "c", "never-existed"}, 200},      // deletes 3
		{"DELETE", p + "/bulk", tokRW, []string{"d"}, 200},                                 // delete 1 (legacy route)
		{"GET", "/client/v4/accounts/" + acct + "/storage/kv/namespaces", tokRW, nil, 200}, // not a KV operation
		{"PUT", p + "/values/x?expiration_ttl=5", tokRW, "v", 400},                         // refused: not billed
		{"GET", nsPath("0f2ac74b498b48028cb68387c421e279") + "/values/a", tokRW, nil, 404}, // unknown namespace: not billed
		{"GET", p + "/values/a", "bogus", nil, 401},                                        // unauthenticated
	}
	for _, s := range steps {
		if r := call(t, emu, s.method, s.path, s.token, s.body); r.Status != s.status {
			t.Fatalf("%s %s = %d %s, want %d", s.method, s.path, r.Status, r.Body, s.status)
		}
	}
	got := emu.Counts()
	want := kvemu.Counts{
		Reads: 7, Writes: 4, Deletes: 5, Lists: 2,
		Requests:        map[string]int64{tokRW: 13, tokRO: 1},
		Unauthenticated: 1,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("counts:\n got %v %v\nwant %v %v", got, got.Requests, want, want.Requests)
	}
	emu.ResetCounts()
	if c := emu.Counts(); c.Ops() != 0 || c.TotalRequests() != 0 {
		t.Errorf("after reset: %v", c)
	}
}

// TestUnreachable closes the server under the SDK, then brings the same data
// back on the same address.
func TestUnreachable(t *testing.T) {
	t.Parallel()
	srv := start(t, kvemu.Options{Tokens: tokens()})
	ctx := context.Background()
	c := sdk(srv, tokRW)
	ns, err := newNamespace(ctx, c, "outage")
	if err != nil {
		t.Fatal(err)
	}
	if err := put(ctx, c, ns.ID, "k", "v", nil, 0); err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr()
	srv.Close()
	_, _, err = get(ctx, c, ns.ID, "k")
	var apiErr *kv.Error
	if err == nil || errors.As(err, &apiErr) {
		t.Fatalf("closed server: err = %v, want a transport error", err)
	}
	srv2, err := srv.Emu.Listen(addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	t.Cleanup(srv2.Close)
	if v, _, err := get(ctx, c, ns.ID, "k"); err != nil || v != "v" {
		t.Errorf("after restart: %q, %v", v, err)
	}
}

// TestKeyEscaping reads keys with reserved characters both escaped and, for
// slashes, left raw as the SDK sends them when a caller forgets to escape.
func TestKeyEscaping(t *testing.T) {
	t.Parallel()
	emu := kvemu.New(kvemu.Options{Tokens: tokens()})
	ns, _ := emu.CreateNamespace(acct, "escaping")
	p := nsPath(ns)
	for _, tc := range []struct{ putPath, key string }{
		{"/values/a%2Fb", "a/b"},
		{"/values/raw/slash", "raw/slash"},
		{"/values/q%3Fx%3D1%26y", "q?x=1&y"},
		{"/values/pct%2525", "pct%25"},
		{"/values/sp%20ace", "sp ace"},
	} {
		if r := call(t, emu, "PUT", p+tc.putPath, tokRW, "v:"+tc.key); r.Status != 200 {
			t.Fatalf("PUT %s = %d %s", tc.putPath, r.Status, r.Body)
		}
		if r := call(t, emu, "GET", p+tc.putPath, tokRW, nil); string(r.Body) != "v:"+tc.key {
			t.Errorf("GET %s = %q", tc.putPath, r.Body)
		}
	}
	r := call(t, emu, "GET", p+"/keys", tokRW, nil)
	for _, k := range []string{`"a/b"`, `"raw/slash"`, `"q?x=1\u0026y"`, `"pct%25"`, `"sp ace"`} {
		if !strings.Contains(string(r.Env.Result), k) {
			t.Errorf("list %s lacks %s", r.Env.Result, k)
		}
	}
	long := strings.Repeat("k", kvemu.MaxKeyBytes+1)
	if r := call(t, emu, "PUT", p+"/values/"+long, tokRW, "v"); r.Status != http.StatusRequestURITooLong || r.code() != kvemu.CodeKeyTooLong {
		t.Errorf("long key: %d %s", r.Status, r.Body)
	}
	big := strings.Repeat("m", kvemu.MaxMetadataBytes)
	r = call(t, emu, "PUT", p+"/bulk", tokRW, []map[string]any{{"key": "m", "value": "v", "metadata": map[string]string{"x": big}}})
	if r.Status != http.StatusRequestEntityTooLarge || r.code() != kvemu.CodePayloadTooLarge {
		t.Errorf("big metadata: %d %s", r.Status, r.Body)
	}
}

func TestSizeLimits(t *testing.T) {
	t.Parallel()
	emu := kvemu.New(kvemu.Options{Tokens: tokens()})
	ns, _ := emu.CreateNamespace(acct, "sizes")
	p := nsPath(ns)
	if r := call(t, emu, "PUT", p+"/values/max", tokRW, strings.Repeat("v", kvemu.MaxValueBytes)); r.Status != 200 {
		t.Errorf("25 MiB value: %d %s", r.Status, r.Body)
	}
	if r := call(t, emu, "PUT", p+"/values/big", tokRW, strings.Repeat("v", kvemu.MaxValueBytes+1)); r.Status != 413 || r.code() != kvemu.CodePayloadTooLarge {
		t.Errorf("value over 25 MiB: %d %s", r.Status, r.Body)
	}
	if r := call(t, emu, "PUT", p+"/values/"+strings.Repeat("k", kvemu.MaxKeyBytes), tokRW, "v"); r.Status != 200 {
		t.Errorf("512-byte key: %d %s", r.Status, r.Body)
	}
	r := call(t, emu, "PUT", p+"/bulk", tokRW, make([]map[string]string, kvemu.MaxBulkPairs+1))
	if r.Status != 400 || r.code() != kvemu.CodeTooManyBulkKeys {
		t.Errorf("10,001 pairs: %d %s", r.Status, r.Body)
	}
	if c := emu.Counts(); c.Writes != 2 {
		t.Errorf("writes = %d, want 2 (refused writes are not billed)", c.Writes)
	}
}

func TestSaveLoad(t *testing.T) {
	t.Parallel()
	emu := kvemu.New(kvemu.Options{Tokens: tokens()})
	ns, _ := emu.CreateNamespace(acct, "persist")
	call(t, emu, "PUT", nsPath(ns)+"/bulk", tokRW, []map[string]any{
		{"key": "a", "value": "AAEC", "base64": true, "metadata": map[string]int{"n": 1}},
		{"key": "b", "value": "gone"},
	})
	call(t, emu, "DELETE", nsPath(ns)+"/values/b", tokRW, nil)
	var buf strings.Builder
	if err := emu.Save(&buf); err != nil {
		t.Fatal(err)
	}
	emu2 := kvemu.New(kvemu.Options{Tokens: tokens()})
	if err := emu2.Load(strings.NewReader(buf.String())); err != nil {
		t.Fatal(err)
	}
	if r := call(t, emu2, "GET", nsPath(ns)+"/values/a", tokRW, nil); r.Status != 200 || string(r.Body) != "\x00\x01\x02" {
		t.Errorf("loaded value: %d %q", r.Status, r.Body)
	}
	if r := call(t, emu2, "GET", nsPath(ns)+"/metadata/a", tokRW, nil); string(r.Env.Result) != `{"n":1}` {
		t.Errorf("loaded metadata: %s", r.Body)
	}
	if r := call(t, emu2, "GET", nsPath(ns)+"/values/b", tokRW, nil); r.Status != 404 {
		t.Errorf("deleted key came back: %d", r.Status)
	}
	if _, err := emu2.CreateNamespace(acct, "persist"); !errors.Is(err, kvemu.ErrNamespaceExists) {
		t.Errorf("CreateNamespace of a loaded title: %v", err)
	}
}
