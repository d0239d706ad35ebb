package main

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/journal"
	"github.com/keypool/keypool/worker-proxy/kvemu"
	"github.com/keypool/keypool/worker-proxy/store/cfkv"
)

// kvRequests is what KV holds for a key, summed over every instance, as a
// fresh instance reads it.
func kvRequests(t *testing.T, kv *kvemu.Server, ns, id string) int64 {
	t.Helper()
	st, err := cfkv.Open(t.Context(), cfkv.Config{AccountID: kvAccount, NamespaceID: ns, APIToken: kvToken, BaseURL: kv.URL,
		InstanceID: "i-reader", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return c.Usage[id].Requests
}

// kill9 stops the proxy as SIGKILL does: no shutdown, no flush.
func (p *proxy) kill9() {
	p.t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		p.t.Fatal(err)
	}
	<-p.done
}

// On KV, usage counted but not yet written (the write comes every
// KV_USAGE_FLUSH_INTERVAL) survives kill -9 through the journal in
// DATA_DIR, and is not counted twice after the next flush nor after a
// second kill -9.
func TestKVUsageSurvivesKill9(t *testing.T) {
	kv, ns := startKV(t)
	up := startUpstream(t)
	dataDir := t.TempDir()
	env := kvEnv(kv, ns, up, "i-a")
	env["DATA_DIR"] = dataDir
	env["KV_USAGE_FLUSH_INTERVAL"] = "1h" // nothing reaches KV before the kill
	p := startProxy(t, env)
	const limit = 5
	id := p.addKey("openai", "sk-test-journal-e2e-000001", limit)
	relay := func(p *proxy) {
		t.Helper()
		if r := p.do("POST", "/api/openai/chat/completions", `{"model":"m"}`, map[string]string{"Authorization": "Bearer " + testClientToken}); r.Status != 200 {
			t.Fatalf("relay: %d %s", r.Status, r.Body)
		}
	}
	// A fresh instance writes its first counts at its first sync; the
	// next wait KV_USAGE_FLUSH_INTERVAL.
	relay(p)
	eventually(t, 10*time.Second, func() string {
		if got := kvRequests(t, kv, ns, id); got != 1 {
			return fmt.Sprintf("KV holds %d requests, want 1", got)
		}
		return ""
	})
	for range limit - 1 {
		relay(p)
	}
	// The pool hands its counts to the store every FLUSH_INTERVAL; the
	// store puts them in the journal before taking them.
	journalPath := filepath.Join(dataDir, "kv-usage.journal")
	eventually(t, 10*time.Second, func() string {
		recs, err := journal.Read(journalPath)
		if err != nil {
			return err.Error()
		}
		var n int64
		for _, r := range recs {
			for _, e := range r.Entries {
				n += e.Requests
			}
		}
		if n != limit-1 {
			return fmt.Sprintf("the journal holds %d requests, want %d", n, limit-1)
		}
		return ""
	})
	p.kill9()
	if got := kvRequests(t, kv, ns, id); got != 1 {
		t.Fatalf("KV holds %d requests, want the 1 written before the kill", got)
	}

	keyStatus := func(p *proxy) adminapi.KeyStatus {
		var k adminapi.KeyStatus
		p.admin("GET", "/admin/keys/"+id, nil).Decode(t, &k)
		return k
	}
	env["KV_USAGE_FLUSH_INTERVAL"] = "1s"
	p = startProxy(t, env)
	if k := keyStatus(p); k.Requests != limit || k.Available {
		t.Fatalf("after kill -9: %d requests, available %v; want %d and at its limit", k.Requests, k.Available, limit)
	}
	eventually(t, 10*time.Second, func() string {
		if got := kvRequests(t, kv, ns, id); got != limit {
			return fmt.Sprintf("KV holds %d requests, want %d", got, limit)
		}
		return ""
	})
	p.kill9()
	p = startProxy(t, env)
	if k := keyStatus(p); k.Requests != limit {
		t.Fatalf("after the flush and a second kill -9: %d requests, want %d", k.Requests, limit)
	}
	p.stop()
	if got := kvRequests(t, kv, ns, id); got != limit {
		t.Fatalf("KV holds %d requests after a clean stop, want %d", got, limit)
	}
}
