package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/kvemu"
)

// proxyPackage is the proxy's main package, built by import path so the
// build works from any directory of the module.
const proxyPackage = "github.com/keypool/keypool/worker-proxy"

// buildProxy builds the proxy binary into dir, with the race detector if
// race, and returns its path.
func buildProxy(ctx context.Context, dir string, race bool) (string, error) {
	bin := filepath.Join(dir, "worker-proxy")
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.CommandContext(ctx, "go", append(args, proxyPackage)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s (run the harness inside the repository, or pass -proxy-bin): %w\n%s", proxyPackage, err, out.String())
	}
	return bin, nil
}

// binaryGoVersion returns the Go version a binary was built with.
func binaryGoVersion(path string) string {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	return bi.GoVersion
}

// secrets are the credentials of one run, random so that nothing depends
// on fixed strings.
type secrets struct {
	adminKey    string // the proxies' ADMIN_KEY
	clientToken string // the relay token every target accepts
	openaiKey   string // the baseline's upstream keys
	geminiKey   string
}

func newSecrets() secrets {
	r := func(prefix string) string { return prefix + rand.Text() }
	return secrets{adminKey: r("bench-admin-"), clientToken: r("kp-bench-"), openaiKey: r("sk-bench-"), geminiKey: r("AIza-bench-")}
}

// baseEnv is the environment every child starts from: no proxy settings
// (all traffic stays on loopback), only what a Go program needs and the
// runtime settings the user chose for the whole run.
func baseEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "GOMAXPROCS", "GOGC", "GOMEMLIMIT", "GODEBUG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// proxySpec is one run of the real proxy.
type proxySpec struct {
	name     string
	keys     int      // keys in the pool, split evenly between OpenAI and Gemini
	logLevel string   // LOG_LEVEL
	modes    []string // the modes it runs
	store    string   // storeBolt (the embedded file) or storeRedis
	// limited gives every key a maxRequests far above the run's load, so
	// the limit is checked (and, on Redis, counted exactly) on every
	// request without ever being reached.
	limited bool
	// versus names the target whose CPU per request this one is compared
	// with in the stores table ("" for none).
	versus string
}

// The stores a proxy run uses.
const (
	storeBolt  = "bolt"
	storeRedis = "redis"
	storeKV    = "cfkv"
)

// benchMaxRequests is a limited key's maxRequests: unreachable in a run.
const benchMaxRequests = 1 << 40

// started is a proxy restarted over its imported keys, and what its start
// cost.
type started struct {
	proc *child
	wall time.Duration // exec to the "listening on" line: keys loaded, serving
	cpu  time.Duration // the process's CPU time by then
}

// startProxy starts the proxy binary on a fresh embedded store in dir,
// relaying to upstream, imports spec.keys keys through the admin API, half
// for OpenAI and half for Gemini, then stops it and starts it again over
// the same data file, timing that start: the process it returns holds its
// keys as one restarted in production does, without the import's garbage.
func startProxy(ctx context.Context, cs *children, bin, dir, upstream, redisURL string, kv *kvNamespace, spec proxySpec, sec secrets) (started, error) {
	data := filepath.Join(dir, spec.name+"-data")
	env := append(baseEnv(),
		"HOST=127.0.0.1", "PORT=0", "DATA_DIR="+data,
		"ADMIN_KEY="+sec.adminKey, "CLIENT_TOKENS="+sec.clientToken,
		"OPENAI_BASE_URL="+upstream+"/v1", "GEMINI_BASE_URL="+upstream+"/v1beta",
		"ANTHROPIC_BASE_URL="+upstream+"/v1",
		"LOG_LEVEL="+spec.logLevel, "SHUTDOWN_TIMEOUT=5s",
	)
	if spec.store == storeRedis {
		env = append(env, "STORE=redis", "REDIS_URL="+redisURL, "REDIS_PREFIX="+spec.name+":")
	}
	if spec.store == storeKV {
		env = append(env, "STORE=cfkv", "CF_API_BASE_URL="+kv.url, "CF_ACCOUNT_ID="+kvAccount,
			"CF_API_TOKEN="+kv.token, "CF_KV_NAMESPACE_ID="+kv.namespace)
	}
	var maxRequests int64
	if spec.limited {
		maxRequests = benchMaxRequests
	}
	c, err := cs.start(ctx, spec.name+"-import", bin, nil, env, filepath.Join(dir, spec.name+"-import.log"))
	if err != nil {
		return started{}, err
	}
	for p, n := range map[string]int{"openai": spec.keys - spec.keys/2, "gemini": spec.keys / 2} {
		if err := importKeys(ctx, c.URL, sec.adminKey, p, n, maxRequests); err != nil {
			return started{}, fmt.Errorf("%s: %w", spec.name, err)
		}
	}
	if err := cs.stop(c, 30*time.Second); err != nil {
		return started{}, err
	}
	t0 := time.Now()
	c, err = cs.start(ctx, spec.name, bin, nil, env, filepath.Join(dir, spec.name+".log"))
	if err != nil {
		return started{}, err
	}
	st := started{proc: c, wall: time.Since(t0)}
	if st.cpu, err = procCPU(c.pid()); err != nil {
		return started{}, err
	}
	return st, nil
}

// kvAccount is the account of the harness's KV emulator.
const kvAccount = "0123456789abcdef0123456789abcdef"

// kvNamespace is a namespace on the KV emulator the harness runs.
type kvNamespace struct{ url, token, namespace string }

// startKV starts the KV emulator on 127.0.0.1 inside the harness, with one
// namespace; it serves until the harness exits.
func startKV(sec secrets) (*kvNamespace, error) {
	token := "kv-" + sec.adminKey
	srv, err := kvemu.Start(kvemu.Options{Tokens: map[string]kvemu.TokenInfo{
		token: {AccountID: kvAccount, CanRead: true, CanWrite: true},
	}})
	if err != nil {
		return nil, fmt.Errorf("KV emulator: %w", err)
	}
	ns, err := srv.Emu.CreateNamespace(kvAccount, "keypool-bench")
	if err != nil {
		return nil, fmt.Errorf("KV emulator namespace: %w", err)
	}
	return &kvNamespace{url: srv.URL, token: token, namespace: ns}, nil
}

// importKeys adds n fresh keys of provider through POST /admin/keys/bulk,
// with maxRequests (0: no limit).
func importKeys(ctx context.Context, base, adminKey, provider string, n int, maxRequests int64) error {
	const batch = 50000 // the proxy's limit per bulk request
	prefix := map[string]string{"openai": "sk-proj-", "gemini": "AIzaSy"}[provider] + rand.Text()[:12] + "-"
	for first := 0; first < n; first += batch {
		req := adminapi.BulkAddRequest{Provider: provider}
		if maxRequests > 0 {
			req.MaxRequests = &maxRequests
		}
		for i := first; i < min(n, first+batch); i++ {
			var b [8]byte
			rand.Read(b[:])
			req.APIKeys = append(req.APIKeys, fmt.Sprintf("%s%06d-%s", prefix, i, hex.EncodeToString(b[:])))
		}
		var resp adminapi.BulkAddResponse
		if err := adminCall(ctx, base, adminKey, "/admin/keys/bulk", req, &resp, http.StatusCreated); err != nil {
			return fmt.Errorf("import %d %s keys: %w", len(req.APIKeys), provider, err)
		}
		if resp.Added != len(req.APIKeys) {
			return fmt.Errorf("import %d %s keys: %s", len(req.APIKeys), provider, resp.Message)
		}
	}
	return nil
}

// adminCall POSTs body as JSON to the admin API and decodes the answer,
// which must have status want, into out.
func adminCall(ctx context.Context, base, adminKey, path string, body, out any, want int) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Admin-Key", adminKey)
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	defer client.CloseIdleConnections()
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	defer res.Body.Close()
	rb, err := io.ReadAll(res.Body)
	if err != nil {
		return fmt.Errorf("POST %s: read answer: %w", path, err)
	}
	if res.StatusCode != want {
		return fmt.Errorf("POST %s: status %d, want %d: %s", path, res.StatusCode, want, truncate(string(rb), 300))
	}
	if err := json.Unmarshal(rb, out); err != nil {
		return fmt.Errorf("POST %s: decode answer: %w", path, err)
	}
	return nil
}
