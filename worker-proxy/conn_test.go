package main

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// CLIENT_TOKENS is a comma-separated list; a list in another format is
// refused with the position of the bad token, never its value.
func TestClientTokensFormat(t *testing.T) {
	const a, b = "kp-test-token-aaaaaaaaaaaa", "kp-test-token-bbbbbbbbbbbb"
	for _, tc := range []struct {
		name, value string
		want        []string // tokens, if accepted
		errs        []string // parts of the error, if refused
	}{
		{"commas and spaces", " " + a + " ,  " + b + ",", []string{a, b}, nil},
		{"semicolon", a + ";" + b, nil, []string{"token #1 (characters 1–53)", "a semicolon at character 27"}},
		{"quoted", `"` + a + `","` + b + `"`, nil, []string{"token #1 (characters 1–28)", "a quote at character 1", "token #2 (characters 30–57)"}},
		{"spaces between", a + " " + b, nil, []string{"token #1", "whitespace at character 27"}},
		{"second bad", a + ", x'" + b, nil, []string{"token #2 (characters 29–56)", "a quote at character 30"}},
		{"the admin key", testAdminKey, nil, []string{"token #1 is the admin key"}},
		{"short", a + ",short-token", nil, []string{"token #2 (characters 28–38) is shorter than 16"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"CLIENT_TOKENS": tc.value, "ADMIN_KEY": testAdminKey}
			cfg, err := LoadConfig(func(k string) string { return env[k] })
			if tc.errs == nil {
				if err != nil || strings.Join(cfg.ClientTokens, "|") != strings.Join(tc.want, "|") {
					t.Fatalf("got %q, %v; want %q", cfg.ClientTokens, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted as %d token(s)", len(cfg.ClientTokens))
			}
			for _, want := range tc.errs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			for _, secret := range []string{a, b, testAdminKey} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error shows a token: %q", err)
				}
			}
		})
	}
}

// The banner says what the proxy really listens on and how to reach it.
func TestBannerSaysWhereItListens(t *testing.T) {
	for _, tc := range []struct {
		ip      string
		origins []string
		want    []string
		not     string
	}{
		{"::", nil, []string{"listening on all interfaces, port 8080: http://127.0.0.1:8080 from this machine", "admin API: http://127.0.0.1:8080/admin/status", "set ALLOWED_ORIGINS"}, "loopback"},
		{"0.0.0.0", []string{"https://user.github.io"}, []string{"all interfaces", "dashboard: open https://user.github.io and connect it to http://127.0.0.1:8080"}, "loopback"},
		{"127.0.0.1", nil, []string{"listening on http://127.0.0.1:8080 (loopback only: other machines cannot connect"}, "all interfaces"},
		{"192.0.2.10", nil, []string{"listening on http://192.0.2.10:8080 (this address only)", "relay:     http://192.0.2.10:8080/api/"}, "127.0.0.1:8080"},
	} {
		var b strings.Builder
		printBanner(&b, Config{AllowedOrigins: tc.origins, AdminKey: testAdminKey}, &net.TCPAddr{IP: net.ParseIP(tc.ip), Port: 8080}, testAdminKey, false)
		for _, want := range tc.want {
			if !strings.Contains(b.String(), want) {
				t.Errorf("%s: banner lacks %q:\n%s", tc.ip, want, b.String())
			}
		}
		if strings.Contains(b.String(), tc.not) {
			t.Errorf("%s: banner says %q:\n%s", tc.ip, tc.not, b.String())
		}
	}
}

// DATA_DIR becomes 0700 and admin.key 0600 even when they exist with
// looser bits.
func TestDataDirPermissionsTightened(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755) // whatever the umask
	key := filepath.Join(dir, "admin.key")
	if err := os.WriteFile(key, []byte(testAdminKey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(key, 0o644)
	p := startProxy(t, map[string]string{"DATA_DIR": dir, "ADMIN_KEY": ""})
	if r := p.admin("GET", "/admin/status", nil); r.Status != 200 {
		t.Fatalf("admin key from the file: %d %s", r.Status, r.Body)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, key: 0o600, filepath.Join(dir, "keypool.db"): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", filepath.Base(path), got, want)
		}
	}
	p.assertNoSecretsLogged()
}

// A DATA_DIR that holds others' files and none of the proxy's is left as
// it is (it was named by mistake), with a warning.
func TestSharedDataDirLeftAlone(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	secureDataDir(dir, slog.New(slog.NewTextHandler(&log, nil)))
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o755 || !strings.Contains(log.String(), "holds other files") {
		t.Fatalf("mode %v, log %q", fi.Mode().Perm(), log.String())
	}
}

// The healthcheck subcommand asks the address HOST names.
func TestHealthcheckFollowsHost(t *testing.T) {
	p := startProxy(t, map[string]string{"HOST": "127.0.0.2"})
	u, _ := url.Parse(p.URL)
	cmd := osexec.Command(proxyBin, "healthcheck")
	cmd.Env = []string{"HOST=127.0.0.2", "PORT=" + u.Port(), "PATH=" + os.Getenv("PATH")}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("healthcheck with HOST=127.0.0.2: %v %s", err, out)
	}
}

// BODY_READ_TIMEOUT reaches the server: a stalled body is cut at it.
func TestBodyReadTimeoutSetting(t *testing.T) {
	p := startProxy(t, map[string]string{"BODY_READ_TIMEOUT": "300ms"})
	u, _ := url.Parse(p.URL)
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second)) // a safety net only
	io.WriteString(c, "POST /api/openai/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+testClientToken+"\r\nContent-Length: 1000\r\n\r\n{")
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	if res.StatusCode != http.StatusRequestTimeout || !res.Close {
		t.Fatalf("stalled body: %d close=%v", res.StatusCode, res.Close)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("connection left open")
	}
}
