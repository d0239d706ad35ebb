package main

import (
	"fmt"
	osexec "os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/kvemu"
)

const (
	kvAccount = "acc-e2e-0123456789"
	kvToken   = "cf-e2e-token-0123456789abcdef"
	kvRead    = "cf-e2e-readonly-token-0123456"
)

func startKV(t *testing.T) (*kvemu.Server, string) {
	t.Helper()
	srv, err := kvemu.Start(kvemu.Options{Tokens: map[string]kvemu.TokenInfo{
		kvToken: {AccountID: kvAccount, CanRead: true, CanWrite: true},
		kvRead:  {AccountID: kvAccount, CanRead: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	ns, err := srv.Emu.CreateNamespace(kvAccount, "keypool-e2e")
	if err != nil {
		t.Fatal(err)
	}
	return srv, ns
}

func kvEnv(kv *kvemu.Server, ns string, up *upstream, instance string) map[string]string {
	return upstreamEnv(up, map[string]string{
		"STORE": "cfkv", "CF_ACCOUNT_ID": kvAccount, "CF_API_TOKEN": kvToken, "CF_KV_NAMESPACE_ID": ns,
		"CF_API_BASE_URL": kv.URL, "INSTANCE_ID": instance,
		"SYNC_INTERVAL": "200ms", "KV_USAGE_FLUSH_INTERVAL": "1s", "KV_USAGE_SYNC_INTERVAL": "1s",
	})
}

// eventually polls f until it returns "" or the deadline passes.
func eventually(t *testing.T, within time.Duration, f func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		msg := f()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", within, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestTwoInstancesShareKV(t *testing.T) {
	kv, ns := startKV(t)
	up := startUpstream(t)
	a := startProxy(t, kvEnv(kv, ns, up, "i-a"))
	b := startProxy(t, kvEnv(kv, ns, up, "i-b"))

	// A key added through A is served by B within the sync bound.
	secret := "AIzaSyA-shared-through-kv-01"
	id := a.addKey("gemini", secret, 0)
	eventually(t, 5*time.Second, func() string {
		r := b.do("POST", "/api/gemini/models/x:generateContent", `{}`, map[string]string{"x-goog-api-key": testClientToken})
		if r.Status != 200 {
			return fmt.Sprintf("B answers %d %s", r.Status, r.Body)
		}
		return ""
	})
	if k := keyOf(up.last(t)); k != secret {
		t.Fatalf("B sent key %q", k)
	}
	// Usage counted on B reaches A. B (it has a journal) writes its first
	// usage record at its first pool flush, later ones at its stretched
	// interval (minutes: cfkv keeps the instances' usage writes within the
	// day's budget), and all it has at its stop. Which of the 5 requests
	// the first write holds depends on when the pool flushed, so A sees
	// some soon and all 5 once B stops.
	for range 4 {
		b.do("POST", "/api/gemini/models/x:generateContent", `{}`, map[string]string{"x-goog-api-key": testClientToken})
	}
	requestsOnA := func() int64 {
		var k adminapi.KeyStatus
		a.admin("GET", "/admin/keys/"+id, nil).Decode(t, &k)
		return k.Requests
	}
	eventually(t, 15*time.Second, func() string {
		if n := requestsOnA(); n < 1 {
			return fmt.Sprintf("A counts %d requests, B served 5", n)
		}
		return ""
	})
	b.stop()
	b.assertNoSecretsLogged(secret)
	eventually(t, 15*time.Second, func() string {
		if n := requestsOnA(); n != 5 {
			return fmt.Sprintf("A counts %d requests after B stopped, B served 5", n)
		}
		return ""
	})
	b = startProxy(t, kvEnv(kv, ns, up, "i-b"))
	// An edit through B reaches A; then A's edit based on the old
	// revision... A has synced, so it edits on top: no conflict.
	if r := b.admin("PUT", "/admin/keys/"+id, `{"metadata":{"description":"from B"}}`); r.Status != 200 {
		t.Fatalf("edit on B: %d %s", r.Status, r.Body)
	}
	eventually(t, 5*time.Second, func() string {
		var k adminapi.KeyStatus
		a.admin("GET", "/admin/keys/"+id, nil).Decode(t, &k)
		if k.Description != "from B" {
			return "A still shows " + k.Description
		}
		return ""
	})
	// A client token created on A works on B.
	var tok adminapi.CreateTokenResponse
	a.admin("POST", "/admin/tokens", map[string]string{"name": "shared"}).Decode(t, &tok)
	eventually(t, 5*time.Second, func() string {
		if r := b.do("GET", "/api/gemini/models", nil, map[string]string{"x-goog-api-key": tok.Token}); r.Status != 200 {
			return fmt.Sprintf("B refuses A's token: %d", r.Status)
		}
		return ""
	})
	// Deleted on B: gone on A.
	b.admin("DELETE", "/admin/keys/"+id, nil)
	eventually(t, 5*time.Second, func() string {
		if r := a.admin("GET", "/admin/keys/"+id, nil); r.Status != 404 {
			return fmt.Sprintf("A still has the key: %d", r.Status)
		}
		return ""
	})
	a.assertNoSecretsLogged(secret, tok.Token)
	b.assertNoSecretsLogged(secret, tok.Token)
}

func TestKVConcurrentEditIsRefused(t *testing.T) {
	kv, ns := startKV(t)
	up := startUpstream(t)
	env := kvEnv(kv, ns, up, "i-a")
	env["SYNC_INTERVAL"] = "1h" // neither instance syncs during the test
	a := startProxy(t, env)
	id := a.addKey("openai", "sk-conflict-test-key-000001", 0)
	envB := kvEnv(kv, ns, up, "i-b")
	envB["SYNC_INTERVAL"] = "1h"
	b := startProxy(t, envB) // loads the key at revision 1
	if r := a.admin("PUT", "/admin/keys/"+id, `{"maxRequests":10}`); r.Status != 200 {
		t.Fatalf("edit on A: %d %s", r.Status, r.Body)
	}
	// B edits the revision it loaded, which A has replaced: refused, not lost.
	r := b.admin("PUT", "/admin/keys/"+id, `{"maxRequests":20}`)
	if r.Status != 409 || !strings.Contains(r.JSON(t)["error"].(string), "changed elsewhere") {
		t.Fatalf("stale edit on B: %d %s", r.Status, r.Body)
	}
	var k adminapi.KeyStatus
	a.admin("GET", "/admin/keys/"+id, nil).Decode(t, &k)
	if k.MaxRequests != 10 {
		t.Fatalf("A's edit was lost: maxRequests %d", k.MaxRequests)
	}
}

func TestKVDegraded(t *testing.T) {
	kv, ns := startKV(t)
	up := startUpstream(t)
	p := startProxy(t, kvEnv(kv, ns, up, "i-a"))
	id := p.addKey("openai", "sk-degraded-test-key-000001", 0)

	kv.Emu.InjectFault(kvemu.Fault{Status: 503})
	// The relay keeps serving from memory.
	for range 3 {
		if r := p.do("POST", "/api/openai/chat/completions", `{"model":"m"}`, map[string]string{"Authorization": "Bearer " + testClientToken}); r.Status != 200 {
			t.Fatalf("relay while KV is down: %d %s", r.Status, r.Body)
		}
	}
	// Admin writes answer 503 and change nothing.
	r := p.admin("POST", "/admin/keys", map[string]any{"provider": "openai", "apiKey": "sk-degraded-test-key-000002"})
	if r.Status != 503 || !strings.Contains(r.JSON(t)["error"].(string), "nothing was changed") {
		t.Fatalf("admin write while KV is down: %d %s", r.Status, r.Body)
	}
	var st adminapi.StatusResponse
	eventually(t, 5*time.Second, func() string {
		p.admin("GET", "/admin/status", nil).Decode(t, &st)
		if st.Store.OK || st.Store.Since == nil || !strings.Contains(st.Store.Detail, "503") {
			return fmt.Sprintf("store health %+v", st.Store)
		}
		return ""
	})
	if st.TotalKeys != 1 {
		t.Fatalf("a refused write added a key: %d", st.TotalKeys)
	}
	if r := p.do("GET", "/readyz", nil, nil); r.Status != 200 || strings.TrimSpace(string(r.Body)) != `{"status":"degraded"}` {
		t.Fatalf("/readyz without the admin key: %d %s", r.Status, r.Body)
	}
	if !strings.Contains(p.admin("GET", "/readyz", nil).JSON(t)["store"].(map[string]any)["detail"].(string), "503") {
		t.Fatal("/readyz does not say the store is degraded")
	}

	// Back up: writes work again and the counts made meanwhile reach KV.
	kv.Emu.ClearFaults()
	eventually(t, 10*time.Second, func() string {
		if r := p.admin("POST", "/admin/keys", map[string]any{"provider": "openai", "apiKey": "sk-degraded-test-key-000003"}); r.Status != 201 {
			return fmt.Sprintf("admin write after recovery: %d %s", r.Status, r.Body)
		}
		return ""
	})
	eventually(t, 10*time.Second, func() string {
		p.admin("GET", "/admin/status", nil).Decode(t, &st)
		if !st.Store.OK {
			return fmt.Sprintf("store still degraded: %+v", st.Store)
		}
		return ""
	})
	// A fresh instance sees the 3 requests served while KV was down.
	b := startProxy(t, kvEnv(kv, ns, up, "i-b"))
	eventually(t, 10*time.Second, func() string {
		var k adminapi.KeyStatus
		b.admin("GET", "/admin/keys/"+id, nil).Decode(t, &k)
		if k.Requests != 3 {
			return fmt.Sprintf("KV holds %d requests for the key, want 3", k.Requests)
		}
		return ""
	})
}

func TestKVDailyLimitIsNamed(t *testing.T) {
	kv, ns := startKV(t)
	up := startUpstream(t)
	p := startProxy(t, kvEnv(kv, ns, up, "i-a"))
	kv.Emu.InjectFault(kvemu.Fault{Status: 429, Code: kvemu.CodeDailyLimit, Methods: []string{"PUT", "POST"}})
	if r := p.admin("POST", "/admin/keys", map[string]any{"provider": "openai", "apiKey": "sk-daily-limit-key-0000001"}); r.Status != 503 {
		t.Fatalf("write over the daily limit: %d %s", r.Status, r.Body)
	}
	var st adminapi.StatusResponse
	p.admin("GET", "/admin/status", nil).Decode(t, &st)
	if st.Store.OK || !strings.Contains(st.Store.Detail, "10048") || !strings.Contains(st.Store.Detail, "00:00 UTC") {
		t.Fatalf("daily limit not named: %+v", st.Store)
	}
}

func TestKVSetupSubcommand(t *testing.T) {
	kv, _ := startKV(t)
	run := func(token string, args ...string) (int, string, string) {
		cmd := osexec.Command(proxyBin, append([]string{"kv-setup"}, args...)...)
		cmd.Env = []string{"CF_API_TOKEN=" + token, "CF_ACCOUNT_ID=" + kvAccount, "CF_API_BASE_URL=" + kv.URL}
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		cmd.Run()
		return cmd.ProcessState.ExitCode(), out.String(), errb.String()
	}
	nsLine := regexp.MustCompile(`(?m)^CF_KV_NAMESPACE_ID=(\S+)$`)
	code, out, errs := run(kvToken, "-title", "my-pool")
	m := nsLine.FindStringSubmatch(out)
	if code != 0 || m == nil || !strings.Contains(errs, "created") || !strings.Contains(out, "STORE=cfkv") {
		t.Fatalf("first run: %d\n%s\n%s", code, out, errs)
	}
	code, out2, errs := run(kvToken, "-title", "my-pool")
	if m2 := nsLine.FindStringSubmatch(out2); code != 0 || m2 == nil || m2[1] != m[1] || !strings.Contains(errs, "found") {
		t.Fatalf("second run made another namespace or failed: %d\n%s\n%s", code, out2, errs)
	}
	if strings.Contains(out+out2+errs, kvToken) {
		t.Fatal("kv-setup printed the token")
	}
	code, _, errs = run("wrong-token-0123456789")
	if code != 1 || !strings.Contains(errs, "401") {
		t.Fatalf("bad token: %d %s", code, errs)
	}
	code, _, errs = run(kvRead, "-title", "another")
	if code != 1 || !strings.Contains(errs, "Workers KV Storage") || !strings.Contains(errs, "Edit") {
		t.Fatalf("token without the permission: %d %s", code, errs)
	}
}
