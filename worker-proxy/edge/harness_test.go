package edge

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/internal/testenv"
)

// Test secrets: obviously fake.
const (
	adminKey    = "test-admin-key-fake-0123456789"
	clientToken = "test-client-token-fake-0123456789"
)

// outDir is the edge folder built once for the package's tests.
var (
	outDir   string
	buildErr error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "keypool-edge-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	outDir = dir
	cmd := exec.Command("go", "run", "./build", "-out", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		buildErr = fmt.Errorf("edge build: %v\n%s", err, out)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func built(t testing.TB) string {
	t.Helper()
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return outDir
}

// denoPath finds the real deno binary: KEYPOOL_DENO, the platform package
// that testdata/package.json installs (not the Node wrapper in .bin, whose
// death would orphan the real process), or deno on PATH.
func denoPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("KEYPOOL_DENO"); p != "" {
		return p
	}
	if p, _ := filepath.Abs("testdata/node_modules/@deno/linux-x64-glibc/deno"); fileExists(p) {
		return p
	}
	if p, err := exec.LookPath("deno"); err == nil {
		return p
	}
	testenv.Missing(t, "deno (cd worker-proxy/edge/testdata && npm ci)")
	return ""
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

// syncBuffer collects a process's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// instance is a running `deno run main.js`.
type instance struct {
	t       testing.TB
	URL     string
	cmd     *exec.Cmd
	logs    *syncBuffer
	exited  chan struct{}
	started time.Time
	ready   time.Duration // process start → banner
}

var bannerURL = regexp.MustCompile(`listening on (http://\S+)`)

// startDeno runs the edge folder under Deno with env (plus PORT=0,
// HOST=127.0.0.1, ADMIN_KEY) and waits for its banner.
func startDeno(t testing.TB, env map[string]string) *instance {
	t.Helper()
	return startDenoScript(t, filepath.Join(built(t), "main.js"), env)
}

// startDenoScript runs script under Deno with env, and waits for its
// "listening on" line.
func startDenoScript(t testing.TB, script string, env map[string]string) *instance {
	t.Helper()
	return startDenoWith(t, []string{"--allow-all"}, script, env)
}

// startDenoWith is startDenoScript with these permission flags instead of
// --allow-all.
func startDenoWith(t testing.TB, flags []string, script string, env map[string]string) *instance {
	t.Helper()
	deno := denoPath(t)
	cmd := exec.Command(deno, append(append([]string{"run"}, flags...), script)...)
	cmd.Env = []string{"HOME=" + t.TempDir(), "DENO_DIR=" + filepath.Join(os.TempDir(), "keypool-edge-deno-cache"), "NO_COLOR=1",
		"PORT=0", "HOST=127.0.0.1", "ADMIN_KEY=" + adminKey, "LOG_FLUSH_INTERVAL=0"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &instance{t: t, cmd: cmd, logs: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = p.logs
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.logs.Write([]byte(sc.Text() + "\n"))
			if m := bannerURL.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urlc <- m[1]:
				default:
				}
			}
		}
	}()
	go func() { cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.signal(syscall.SIGKILL)
		<-p.exited
		if t.Failed() {
			t.Logf("deno output:\n%s", p.logs.String())
		}
	})
	select {
	case u := <-urlc:
		p.URL = u
		p.ready = time.Since(p.started)
	case <-p.exited:
		t.Fatalf("deno exited before listening:\n%s", p.logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("deno did not listen within 30s:\n%s", p.logs.String())
	}
	return p
}

func (p *instance) signal(s os.Signal) {
	if p.cmd.Process != nil {
		p.cmd.Process.Signal(s)
	}
}

// response is a finished HTTP exchange.
type response struct {
	Status int
	Header http.Header
	Body   string
}

func (r response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.Body), &m); err != nil {
		t.Fatalf("not JSON (%d): %q", r.Status, r.Body)
	}
	return m
}

func (p *instance) do(method, path string, body any, header map[string]string) response {
	p.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, p.URL+path, rd)
	if err != nil {
		p.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{res.StatusCode, res.Header, string(b)}
}

func (p *instance) admin(method, path string, body any) response {
	p.t.Helper()
	return p.do(method, path, body, map[string]string{"X-Admin-Key": adminKey})
}

func (p *instance) addKey(provider, secret string) string {
	p.t.Helper()
	r := p.admin("POST", "/admin/keys", map[string]any{"provider": provider, "apiKey": secret})
	if r.Status != http.StatusCreated {
		p.t.Fatalf("add key: %d %s", r.Status, r.Body)
	}
	return r.JSON(p.t)["keyId"].(string)
}

func bearer() map[string]string { return map[string]string{"Authorization": "Bearer " + clientToken} }
