package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proxyBin is the proxy binary built once for all tests in this package.
var proxyBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "keypool-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	proxyBin = filepath.Join(dir, "worker-proxy")
	args := []string{"build", "-o", proxyBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := osexec.Command("go", append(args, ".")...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the proxy:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
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

// proxy is a running proxy binary.
type proxy struct {
	t        *testing.T
	cmd      *osexec.Cmd
	URL      string
	AdminKey string
	DataDir  string
	stdout   *syncBuffer
	stderr   *syncBuffer
	done     chan struct{}
	exitErr  error
}

const (
	testAdminKey    = "test-admin-key-0123456789abcdef"
	testClientToken = "kp-test-client-token-0123456789"
)

// startProxy runs the binary with env on top of a minimal environment and
// waits until it listens. The data directory defaults to a temp dir.
func startProxy(t *testing.T, env map[string]string) *proxy {
	t.Helper()
	full := map[string]string{
		"HOST": "127.0.0.1", "PORT": "0", "DATA_DIR": t.TempDir(),
		"ADMIN_KEY": testAdminKey, "CLIENT_TOKENS": testClientToken,
		"FLUSH_INTERVAL": "200ms", "SHUTDOWN_TIMEOUT": "5s",
		// Log lines at once, so a test reading the log sees every line;
		// TestLogLinesBatched runs the default.
		"LOG_FLUSH_INTERVAL": "0",
		"PATH":               os.Getenv("PATH"),
	}
	for k, v := range env {
		if v == "" {
			delete(full, k)
		} else {
			full[k] = v
		}
	}
	p := &proxy{t: t, DataDir: full["DATA_DIR"], AdminKey: full["ADMIN_KEY"], stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = osexec.Command(proxyBin)
	for k, v := range full {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	pr, pw := io.Pipe()
	p.cmd.Stdout = io.MultiWriter(p.stdout, pw)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.exitErr = p.cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	listening := regexp.MustCompile(`listening on (http://\S+)`)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		close(found)
	}()
	select {
	case u, ok := <-found:
		if !ok {
			t.Fatalf("proxy exited before listening: %v\nstdout:\n%s\nstderr:\n%s", p.exitErr, p.stdout, p.stderr)
		}
		p.URL = u
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		t.Fatalf("proxy did not start\nstderr:\n%s", p.stderr)
	}
	if p.AdminKey == "" {
		b, err := os.ReadFile(filepath.Join(p.DataDir, "admin.key"))
		if err != nil {
			t.Fatal(err)
		}
		p.AdminKey = strings.TrimSpace(string(b))
	}
	t.Cleanup(func() { p.stop() })
	return p
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proxy) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.exitErr != nil {
			p.t.Errorf("proxy exited with %v\nstderr:\n%s", p.exitErr, p.stderr)
		}
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		p.t.Errorf("proxy did not stop on SIGTERM")
	}
}

// response is a decoded answer.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

func (r response) Decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %T: %v: %s", v, err, r.Body)
	}
}

// do sends a request; body is JSON-encoded unless it is a string or []byte.
func (p *proxy) do(method, path string, body any, header map[string]string) response {
	p.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			p.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, p.URL+path, rd)
	if err != nil {
		p.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		p.t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// admin sends an admin request with the admin key.
func (p *proxy) admin(method, path string, body any) response {
	p.t.Helper()
	return p.do(method, path, body, map[string]string{"X-Admin-Key": p.AdminKey})
}

// addKey adds a key and returns its id.
func (p *proxy) addKey(provider, secret string, maxRequests int) string {
	p.t.Helper()
	r := p.admin("POST", "/admin/keys", map[string]any{"provider": provider, "apiKey": secret, "maxRequests": maxRequests})
	if r.Status != http.StatusCreated {
		p.t.Fatalf("add key: %d %s", r.Status, r.Body)
	}
	return r.JSON(p.t)["keyId"].(string)
}

// upstreamRequest is what the fake upstream received.
type upstreamRequest struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
}

// upstream is a recording fake provider on 127.0.0.1. Its handler answers
// like the provider; tests can replace it.
type upstream struct {
	mu      sync.Mutex
	reqs    []upstreamRequest
	handler http.HandlerFunc
	URL     string
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	u.reqs = append(u.reqs, upstreamRequest{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
	h := u.handler
	u.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(body))
	h(w, r)
}

func (u *upstream) requests() []upstreamRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]upstreamRequest(nil), u.reqs...)
}

func (u *upstream) last(t *testing.T) upstreamRequest {
	t.Helper()
	rs := u.requests()
	if len(rs) == 0 {
		t.Fatal("upstream got no request")
	}
	return rs[len(rs)-1]
}

func (u *upstream) setHandler(h http.HandlerFunc) {
	u.mu.Lock()
	u.handler = h
	u.mu.Unlock()
}

// keyOf returns the pool key an upstream request carried.
func keyOf(r upstreamRequest) string {
	if k := r.Header.Get("X-Goog-Api-Key"); k != "" {
		return k
	}
	if k := r.Header.Get("X-Api-Key"); k != "" {
		return k
	}
	if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
		return a[7:]
	}
	if i := strings.Index(r.RawQuery, "key="); i >= 0 {
		return strings.SplitN(r.RawQuery[i+4:], "&", 2)[0]
	}
	return ""
}

// exec returns a command running the proxy binary with exactly env (and
// PATH), on a free port in a temp data dir.
func exec(t *testing.T, env ...string) *osexec.Cmd {
	cmd := osexec.Command(proxyBin)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOST=127.0.0.1", "PORT=0", "DATA_DIR=" + t.TempDir()}, env...)
	return cmd
}

// assertNoSecretsLogged fails if any secret appears in what the proxy has
// logged so far (stop it first to check every line). Lines written to the
// pipe may take a moment to reach p.stderr, so an empty log is given up to
// 5 s.
func (p *proxy) assertNoSecretsLogged(secrets ...string) {
	p.t.Helper()
	log := p.stderr.String()
	for deadline := time.Now().Add(5 * time.Second); log == "" && time.Now().Before(deadline); log = p.stderr.String() {
		time.Sleep(20 * time.Millisecond)
	}
	if log == "" {
		p.t.Fatal("the proxy logged nothing")
	}
	for _, s := range append(secrets, testClientToken, testAdminKey) {
		if strings.Contains(log, s) {
			p.t.Fatalf("secret %s appears in the log", s[:4])
		}
	}
}
