package edge

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/internal/fakeupstream"
)

// TestDenoEarlyRequestWaitsForKeys: main.js listens before Go has started
// (the module compiles meanwhile); a relay that arrives then waits and is
// answered with the keys the store holds, never with "no keys".
func TestDenoEarlyRequestWaitsForKeys(t *testing.T) {
	up, err := fakeupstream.Start(fakeupstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	kv, ns := startKV(t)
	a := startDeno(t, kvEnv(kv, ns, "edge-a", up))
	a.addKey("openai", "sk-test-fake-edge-early-0001")
	a.signal(syscall.SIGTERM) // flushes the key to KV
	select {
	case <-a.exited:
	case <-time.After(15 * time.Second):
		t.Fatal("edge instance a did not exit within 15s of SIGTERM")
	}

	port := freePort(t)
	env := kvEnv(kv, ns, "edge-b", up)
	env["PORT"] = strconv.Itoa(port)
	first := make(chan int, 1)
	var sentEarly atomic.Bool
	var bannerSeen atomic.Bool
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		url := "http://127.0.0.1:" + strconv.Itoa(port) + "/api/openai/chat/completions"
		for {
			select {
			case <-stop:
				return
			default:
			}
			early := !bannerSeen.Load()
			req, _ := http.NewRequest("POST", url, strings.NewReader(chatBody))
			req.Header.Set("Authorization", "Bearer "+clientToken)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				time.Sleep(time.Millisecond)
				continue
			}
			res.Body.Close()
			sentEarly.Store(early)
			first <- res.StatusCode
			return
		}
	}()
	startDeno(t, env)
	bannerSeen.Store(true)
	select {
	case status := <-first:
		if status != http.StatusOK {
			t.Fatalf("the first relay got %d, want 200 (keys loaded before it is answered)", status)
		}
		t.Logf("first relay sent before the banner: %v", sentEarly.Load())
	case <-time.After(15 * time.Second):
		t.Fatal("no answer to the first relay")
	}
}

// TestDenoWithoutSourceImport: main.js reads and compiles keypool.wasm
// itself where it may read files, so a Deno that cannot load
// wasm_module.js (no `import source`, before 2.6) serves too.
func TestDenoWithoutSourceImport(t *testing.T) {
	up, err := fakeupstream.Start(fakeupstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	dir := t.TempDir()
	ents, err := os.ReadDir(built(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if err := os.Symlink(filepath.Join(outDir, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	// What an older Deno makes of the source-phase import: a syntax error.
	os.Remove(filepath.Join(dir, "wasm_module.js"))
	if err := os.WriteFile(filepath.Join(dir, "wasm_module.js"), []byte("import source of this is not JavaScript;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startDenoScript(t, filepath.Join(dir, "main.js"), upstreamEnv(up))
	p.addKey("openai", "sk-test-fake-edge-nosrc-0001")
	if r := p.do("POST", "/api/openai/chat/completions", chatBody, bearer()); r.Status != 200 {
		t.Fatalf("relay: %d %s", r.Status, r.Body)
	}
}

// TestDenoWithoutReadPermission: without read permission main.js raises
// no prompt and compiles keypool.wasm through wasm_module.js (a
// source-phase import, which needs none).
func TestDenoWithoutReadPermission(t *testing.T) {
	up, err := fakeupstream.Start(fakeupstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	p := startDenoWith(t, []string{"--allow-net", "--allow-env"}, filepath.Join(built(t), "main.js"), upstreamEnv(up))
	p.addKey("openai", "sk-test-fake-edge-noread-0001")
	if r := p.do("POST", "/api/openai/chat/completions", chatBody, bearer()); r.Status != 200 {
		t.Fatalf("relay: %d %s", r.Status, r.Body)
	}
	if logs := p.logs.String(); strings.Contains(logs, "Requires read access") || strings.Contains(logs, "PermissionDenied") {
		t.Fatalf("a read was attempted without permission:\n%s", logs)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestDenoStartKeys: with STORE=memory, keys given in OPENAI_KEYS serve
// from the first request (no admin call, nothing kept anywhere else), and
// the log shows them only masked.
func TestDenoStartKeys(t *testing.T) {
	up, err := fakeupstream.Start(fakeupstream.Options{Record: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	const a, b = "sk-test-fake-edge-start-0001", "sk-test-fake-edge-start-0002"
	env := upstreamEnv(up)
	env["OPENAI_KEYS"] = a + "," + b
	p := startDeno(t, env)
	seen := map[string]bool{}
	for range 4 {
		r := p.do("POST", "/api/openai/chat/completions", chatBody, map[string]string{"Authorization": "Bearer " + clientToken})
		if r.Status != http.StatusOK {
			t.Fatalf("relay: %d %s", r.Status, r.Body)
		}
	}
	for _, rec := range up.Requests() {
		seen[rec.Key] = true
	}
	if !seen[a] || !seen[b] || len(seen) != 2 {
		t.Fatalf("upstream saw %d keys (a %v, b %v), want the two start keys", len(seen), seen[a], seen[b])
	}
	logs := p.logs.String()
	if strings.Contains(logs, a) || strings.Contains(logs, b) || !strings.Contains(logs, "keys added from the start list") {
		t.Fatalf("log leaks a start key or does not say it added them:\n%s", logs)
	}
}
