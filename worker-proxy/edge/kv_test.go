package edge

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/internal/fakeupstream"
	"github.com/keypool/keypool/worker-proxy/kvemu"
	"github.com/keypool/keypool/worker-proxy/store/cfkv"
)

const (
	kvAccount = "acc-edge-test-0123456789"
	kvToken   = "cf-edge-test-token-fake-0123456789"
)

func startKV(t *testing.T) (*kvemu.Server, string) {
	t.Helper()
	srv, err := kvemu.Start(kvemu.Options{Tokens: map[string]kvemu.TokenInfo{
		kvToken: {AccountID: kvAccount, CanRead: true, CanWrite: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	ns, err := srv.Emu.CreateNamespace(kvAccount, "keypool-edge")
	if err != nil {
		t.Fatal(err)
	}
	return srv, ns
}

func kvEnv(kv *kvemu.Server, ns, instance string, up *fakeupstream.Server) map[string]string {
	env := upstreamEnv(up)
	for k, v := range map[string]string{
		"STORE": "cfkv", "CF_ACCOUNT_ID": kvAccount, "CF_API_TOKEN": kvToken, "CF_KV_NAMESPACE_ID": ns,
		"CF_API_BASE_URL": kv.URL, "INSTANCE_ID": instance,
		"SYNC_INTERVAL": "200ms", "KV_USAGE_SYNC_INTERVAL": "1s",
		// Usage reaches KV only at shutdown, so the test sees that flush.
		"KV_USAGE_FLUSH_INTERVAL": "10m",
	} {
		env[k] = v
	}
	return env
}

// nativeLoad opens the namespace as a native (container) instance would
// and returns what it holds.
func nativeLoad(t *testing.T, kv *kvemu.Server, ns string) (keys []string, requests map[string]int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := cfkv.Open(ctx, cfkv.Config{AccountID: kvAccount, APIToken: kvToken, NamespaceID: ns, BaseURL: kv.URL,
		InstanceID: "native-reader", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err := st.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	requests = map[string]int64{}
	for _, k := range c.Keys {
		keys = append(keys, k.ID)
	}
	for id, u := range c.Usage {
		requests[id] = u.Requests
	}
	return keys, requests
}

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
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDenoKVShared: two Deno instances and a native one share a namespace
// of the KV emulator through the REST API; a key added on one edge
// instance is served by the other and seen natively, and SIGTERM flushes
// the usage counted on the edge.
func TestDenoKVShared(t *testing.T) {
	up, err := fakeupstream.Start(fakeupstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	kv, ns := startKV(t)
	a := startDeno(t, kvEnv(kv, ns, "edge-a", up))
	b := startDeno(t, kvEnv(kv, ns, "edge-b", up))

	id := a.addKey("openai", "sk-test-fake-edge-kv-0001")
	eventually(t, 10*time.Second, func() string {
		if r := b.admin("GET", "/admin/keys/"+id, nil); r.Status != 200 {
			return "edge instance b does not have the key added on a: " + r.Body
		}
		return ""
	})
	if r := b.do("POST", "/api/openai/chat/completions", chatBody, bearer()); r.Status != 200 {
		t.Fatalf("relay on b with a's key: %d %s", r.Status, r.Body)
	}
	if keys, _ := nativeLoad(t, kv, ns); !strings.Contains(strings.Join(keys, ","), id) {
		t.Fatalf("native instance does not see the key: %v", keys)
	}

	for i := range 3 {
		if r := a.do("POST", "/api/openai/chat/completions", chatBody, bearer()); r.Status != 200 {
			t.Fatalf("relay %d on a: %d %s", i, r.Status, r.Body)
		}
	}
	a.signal(syscall.SIGTERM)
	select {
	case <-a.exited:
	case <-time.After(15 * time.Second):
		t.Fatal("edge instance a did not exit within 15s of SIGTERM")
	}
	if code := a.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if _, req := nativeLoad(t, kv, ns); req[id] < 3 {
		t.Fatalf("usage after a's shutdown flush: %d requests in KV, want at least 3", req[id])
	}
}
