//go:build !js

package workers

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/internal/fakeupstream"
	"github.com/keypool/keypool/worker-proxy/internal/testenv"
	"github.com/keypool/keypool/worker-proxy/store/cfkv"
)

const (
	adminKey    = "test-admin-key-fake-0123456789"
	clientToken = "test-client-token-fake-0123456789"
	namespaces  = 48 // KV bindings for the conformance suite, one per Open
)

var (
	outDir   string
	buildErr error
)

// TestMain builds the edge folder and this package's js/wasm test binary
// (the conformance half) into one folder for workerd.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "keypool-workerd-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	outDir = dir
	buildErr = buildAll(dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func buildAll(dir string) error {
	if out, err := exec.Command("go", "run", "../build", "-out", dir).CombinedOutput(); err != nil {
		return fmt.Errorf("edge build: %v\n%s", err, out)
	}
	cmd := exec.Command("go", "test", "-c", "-o", filepath.Join(dir, "test.wasm"), ".")
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("js/wasm test binary: %v\n%s", err, out)
	}
	for _, f := range []string{"kvservice.js", "gotest.js", "fsbuffer.js", "cron.js"} {
		b, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// workerdPath finds the real workerd binary: KEYPOOL_WORKERD, the platform
// package that ../testdata/package.json installs, or workerd on PATH.
func workerdPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("KEYPOOL_WORKERD"); p != "" {
		return p
	}
	if p, _ := filepath.Abs("../testdata/node_modules/@cloudflare/workerd-linux-64/bin/workerd"); isFile(p) {
		return p
	}
	if p, err := exec.LookPath("workerd"); err == nil {
		return p
	}
	testenv.Missing(t, "workerd (cd worker-proxy/edge/testdata && npm ci)")
	return ""
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// startWorkerd writes config (a Cap'n Proto text config) into the build
// folder, runs workerd on it and waits until port answers.
func startWorkerd(t *testing.T, config string, port int) *syncBuffer {
	t.Helper()
	wd := workerdPath(t)
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	name := filepath.Join(outDir, t.Name()+".capnp")
	if err := os.WriteFile(name, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(wd, "serve", name, "--verbose")
	cmd.Dir = outDir
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("workerd output:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return logs
		}
		select {
		case <-exited:
			t.Fatalf("workerd exited:\n%s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("workerd did not listen within 30s:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kvServices declares n KV backends named kv1..kvn.
func kvServices(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "    (name = \"kv%d\", worker = (modules = [(name = \"kvservice.js\", esModule = embed \"kvservice.js\")], compatibilityDate = \"2026-11-17\")),\n", i)
	}
	return b.String()
}

// TestConformanceUnderWorkerd runs the store conformance suite inside
// workerd: cfkv over KV namespace bindings, through kvrest.js.
func TestConformanceUnderWorkerd(t *testing.T) {
	port := freePort(t)
	var bindings []string
	for i := 1; i <= namespaces; i++ {
		bindings = append(bindings, fmt.Sprintf("(name = \"ns%d\", kvNamespace = \"kv%d\")", i, i))
	}
	config := fmt.Sprintf(`using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "gotest", worker = (
      modules = [
        (name = "gotest.js", esModule = embed "gotest.js"),
        (name = "fsbuffer.js", esModule = embed "fsbuffer.js"),
        (name = "wasm_exec.js", esModule = embed "wasm_exec.js"),
        (name = "kvrest.js", esModule = embed "kvrest.js"),
        (name = "fetch.js", esModule = embed "fetch.js"),
        (name = "test.wasm", wasm = embed "test.wasm"),
      ],
      compatibilityDate = "2026-11-17",
      bindings = [%s],
    )),
%s  ],
  sockets = [(name = "http", address = "127.0.0.1:%d", http = (), service = "gotest")],
);
`, strings.Join(bindings, ", "), kvServices(namespaces), port)
	logs := startWorkerd(t, config, port)
	args, _ := json.Marshal([]string{"-test.v", "-test.run", "^TestConformanceOverBinding$", "-test.timeout", "5m"})
	res, err := (&http.Client{Timeout: 6 * time.Minute}).Post(fmt.Sprintf("http://127.0.0.1:%d/", port), "application/json", bytes.NewReader(args))
	if err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	if !strings.Contains(string(out), "\nexit=0\n") || !strings.Contains(string(out), "--- PASS: TestConformanceOverBinding") {
		t.Fatalf("the conformance suite under workerd did not pass:\n%s", out)
	}
	passed := strings.Count(string(out), "--- PASS:")
	t.Logf("conformance under workerd: %d passed, %d skipped", passed, strings.Count(string(out), "--- SKIP:"))
}

// workerConfig runs worker.js with a local KV binding (KEYPOOL_KV) whose
// backend also answers /__dump on kvPort, and lets fetch reach 127.0.0.1.
func workerConfig(port, kvPort int, vars map[string]string) string {
	return workerConfigCron(port, kvPort, 0, vars)
}

// workerConfigCron is workerConfig with, when cronPort is not 0, a driver
// on cronPort whose every request fires the proxy's scheduled() handler.
func workerConfigCron(port, kvPort, cronPort int, vars map[string]string) string {
	cronService, cronSocket := "", ""
	if cronPort != 0 {
		cronService = `    (name = "cron", worker = (modules = [(name = "cron.js", esModule = embed "cron.js")], compatibilityDate = "2026-11-17", bindings = [(name = "PROXY", service = "proxy")])),
`
		cronSocket = fmt.Sprintf(`,
    (name = "cron", address = "127.0.0.1:%d", http = (), service = "cron")`, cronPort)
	}
	var bs []string
	for k, v := range vars {
		bs = append(bs, fmt.Sprintf("(name = %q, text = %q)", k, v))
	}
	return fmt.Sprintf(`using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "proxy", worker = (
      modules = [
        (name = "worker.js", esModule = embed "worker.js"),
        (name = "wasm_exec.js", esModule = embed "wasm_exec.js"),
        (name = "kvrest.js", esModule = embed "kvrest.js"),
        (name = "fetch.js", esModule = embed "fetch.js"),
        (name = "keypool.wasm", wasm = embed "keypool.wasm"),
      ],
      compatibilityDate = "2026-11-17",
      bindings = [(name = "KEYPOOL_KV", kvNamespace = "kv1"), %s],
      globalOutbound = "net",
    )),
    (name = "net", network = (allow = ["public", "private", "local"])),
%s%s  ],
  sockets = [
    (name = "http", address = "127.0.0.1:%d", http = (), service = "proxy"),
    (name = "kvdump", address = "127.0.0.1:%d", http = (), service = "kv1")%s
  ],
);
`, strings.Join(bs, ", "), kvServices(1), cronService, port, kvPort, cronSocket)
}

func do(t *testing.T, method, url, body string, header map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestWorkerEntry runs worker.js under workerd with the KV binding: admin
// API, relay of JSON and SSE, client tokens, and usage counted in the
// isolate reaching KV through ctx.waitUntil after later requests.
func TestWorkerEntry(t *testing.T) {
	up, err := fakeupstream.Start(fakeupstream.Options{StreamChunks: 5, ChunkInterval: 150 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	port, kvPort := freePort(t), freePort(t)
	startWorkerd(t, workerConfig(port, kvPort, map[string]string{
		"ADMIN_KEY": adminKey, "CLIENT_TOKENS": clientToken, "STORE": "cfkv",
		"OPENAI_BASE_URL": up.URL + "/v1", "FLUSH_INTERVAL": "200ms", "SYNC_INTERVAL": "1s",
		"KV_USAGE_FLUSH_INTERVAL": "1s", "LOG_FLUSH_INTERVAL": "0",
	}), port)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	admin := map[string]string{"X-Admin-Key": adminKey, "Content-Type": "application/json"}
	relay := map[string]string{"Authorization": "Bearer " + clientToken, "Content-Type": "application/json"}

	if code, body := do(t, "GET", base+"/admin/status", "", nil); code != http.StatusUnauthorized {
		t.Fatalf("admin without key: %d %s", code, body)
	}
	code, body := do(t, "POST", base+"/admin/keys", `{"provider":"openai","apiKey":"sk-test-fake-workers-0001"}`, admin)
	if code != http.StatusCreated {
		t.Fatalf("add key: %d %s", code, body)
	}
	var added struct{ KeyID string }
	json.Unmarshal([]byte(body), &added)
	if code, body := do(t, "POST", base+"/api/openai/chat/completions", `{"model":"gpt-4o-mini","messages":[]}`, nil); code != http.StatusUnauthorized {
		t.Fatalf("relay without token: %d %s", code, body)
	}
	for i := range 3 {
		code, body := do(t, "POST", base+"/api/openai/chat/completions", `{"model":"gpt-4o-mini","messages":[]}`, relay)
		if code != 200 || !strings.Contains(body, fakeupstream.AnswerText("gpt-4o-mini")) {
			t.Fatalf("relay %d: %d %s", i, code, body)
		}
	}

	// Concurrent requests share the isolate's one Go runtime: each must
	// still get its own answer.
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for i := range 16 {
		wg.Go(func() {
			req, _ := http.NewRequest("POST", base+"/api/openai/chat/completions", strings.NewReader(`{"model":"gpt-4o-mini","messages":[]}`))
			for k, v := range relay {
				req.Header.Set(k, v)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- fmt.Sprintf("concurrent relay %d: %v", i, err)
				return
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 || !strings.Contains(string(b), fakeupstream.AnswerText("gpt-4o-mini")) {
				errs <- fmt.Sprintf("concurrent relay %d: %d %s", i, res.StatusCode, b)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}

	// SSE, chunk by chunk.
	req, _ := http.NewRequest("POST", base+"/v1/chat/completions", strings.NewReader(`{"model":"gpt-4o-mini","stream":true}`))
	for k, v := range relay {
		req.Header.Set(k, v)
	}
	start := time.Now()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var at []time.Duration
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			at = append(at, time.Since(start))
		}
	}
	res.Body.Close()
	if len(at) < 5 || at[len(at)-1]-at[0] < 400*time.Millisecond {
		t.Fatalf("stream not delivered chunk by chunk: %v", at)
	}

	// Counts reach KV after the flush interval, from a later request's
	// waitUntil (no background timers on Workers).
	deadline := time.Now().Add(15 * time.Second)
	for {
		time.Sleep(300 * time.Millisecond)
		do(t, "GET", base+"/healthz", "", nil)
		_, dump := do(t, "GET", fmt.Sprintf("http://127.0.0.1:%d/__dump", kvPort), "", nil)
		if usageIn(dump, added.KeyID) >= 20 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage never reached the KV binding; KV holds:\n%s", dump)
		}
	}
}

// usageIn adds up the request counts of key id in the usage slots of a
// KV dump (cfkv's layout, schema 2: keypool/v2/usage/<slot> holding
// {"instances":{instance:{"keys":{id:{"r":requests,...}}}}}).
func usageIn(dump, id string) int64 {
	var m map[string]struct {
		Value string `json:"value"`
	}
	json.Unmarshal([]byte(dump), &m)
	var n int64
	for k, v := range m {
		if !strings.HasPrefix(k, "keypool/v2/usage/") {
			continue
		}
		if counts, err := cfkv.SlotRequests(v.Value); err == nil {
			n += counts[id]
		}
	}
	return n
}

// TestWorkerCron: with no request after the relays, the Cron Trigger's
// scheduled() alone writes the isolate's usage to the KV binding.
func TestWorkerCron(t *testing.T) {
	up, err := fakeupstream.Start(fakeupstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	port, kvPort, cronPort := freePort(t), freePort(t), freePort(t)
	startWorkerd(t, workerConfigCron(port, kvPort, cronPort, map[string]string{
		"ADMIN_KEY": adminKey, "CLIENT_TOKENS": clientToken, "STORE": "cfkv",
		"OPENAI_BASE_URL": up.URL + "/v1", "FLUSH_INTERVAL": "2s", "SYNC_INTERVAL": "2s",
		"KV_USAGE_FLUSH_INTERVAL": "1s", "LOG_FLUSH_INTERVAL": "0",
	}), port)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	code, body := do(t, "POST", base+"/admin/keys", `{"provider":"openai","apiKey":"sk-test-fake-workers-cron-0001"}`,
		map[string]string{"X-Admin-Key": adminKey, "Content-Type": "application/json"})
	if code != http.StatusCreated {
		t.Fatalf("add key: %d %s", code, body)
	}
	var added struct{ KeyID string }
	json.Unmarshal([]byte(body), &added)
	for i := range 3 {
		if code, body := do(t, "POST", base+"/api/openai/chat/completions", `{"model":"gpt-4o-mini","messages":[]}`,
			map[string]string{"Authorization": "Bearer " + clientToken}); code != 200 {
			t.Fatalf("relay %d: %d %s", i, code, body)
		}
	}
	dump := func() string {
		_, d := do(t, "GET", fmt.Sprintf("http://127.0.0.1:%d/__dump", kvPort), "", nil)
		return d
	}
	if n := usageIn(dump(), added.KeyID); n != 0 {
		t.Fatalf("usage reached KV before the flush interval (%d requests): the test cannot tell the Cron Trigger's work", n)
	}
	time.Sleep(2500 * time.Millisecond) // FLUSH_INTERVAL and SYNC_INTERVAL are due now
	if code, body := do(t, "GET", fmt.Sprintf("http://127.0.0.1:%d/", cronPort), "", nil); code != 200 {
		t.Fatalf("scheduled(): %d %s", code, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for usageIn(dump(), added.KeyID) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the Cron Trigger did not write the usage; KV holds:\n%s", dump())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
