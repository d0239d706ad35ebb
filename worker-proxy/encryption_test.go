package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keypool/keypool/worker-proxy/kvemu"
	"github.com/keypool/keypool/worker-proxy/seal"
)

func keyID(t *testing.T, k string) string {
	t.Helper()
	pk, err := seal.ParseKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pk.ID()
}

// relayUses sends one relay request and checks the upstream got secret.
func relayUses(t *testing.T, p *proxy, up *upstream, secret string) {
	t.Helper()
	r := p.do("POST", "/api/openai/chat/completions", `{"model":"m"}`, map[string]string{"Authorization": "Bearer " + testClientToken, "Content-Type": "application/json"})
	if r.Status != http.StatusOK {
		t.Fatalf("relay: %d %s", r.Status, r.Body)
	}
	if got := keyOf(up.last(t)); got != secret {
		t.Fatalf("upstream got key %q, want the plaintext secret", pool4(got))
	}
}

func pool4(s string) string {
	if len(s) > 12 {
		return s[:12] + "…"
	}
	return s
}

// fileHolds reports whether the bolt file in dir holds s.
func fileHolds(t *testing.T, dir, s string) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "keypool.db"))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(b, []byte(s))
}

// startFails runs the proxy expecting it to refuse to start; it returns
// the combined output.
func startFails(t *testing.T, dir string, env ...string) string {
	t.Helper()
	cmd := exec(t, append([]string{"DATA_DIR=" + dir, "ADMIN_KEY=" + testAdminKey}, env...)...)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the proxy started; want a refusal. Output:\n%s", out)
	}
	return string(out)
}

func TestEncryptionAtRest(t *testing.T) {
	up := startUpstream(t)
	dir := t.TempDir()
	k1, k2 := seal.GenerateKey(), seal.GenerateKey()
	id1, id2 := keyID(t, k1), keyID(t, k2)
	const secret = "sk-test-fake-sealed-at-rest-0001"

	p := startProxy(t, upstreamEnv(up, map[string]string{"DATA_DIR": dir, "ENCRYPTION_KEY": k1}))
	p.addKey("openai", secret, 0)
	relayUses(t, p, up, secret)
	p.stop()
	if fileHolds(t, dir, secret) || !fileHolds(t, dir, "kpseal1:"+id1+":") {
		t.Fatal("keypool.db holds the plaintext secret, or no value sealed with ENCRYPTION_KEY")
	}

	t.Run("refuses without the key or with another", func(t *testing.T) {
		for name, env := range map[string][]string{
			"no key":    nil,
			"other key": {"ENCRYPTION_KEY=" + k2},
		} {
			out := startFails(t, dir, env...)
			if !strings.Contains(out, id1) || !strings.Contains(out, "ENCRYPTION_KEY") {
				t.Errorf("%s: the refusal does not name key id %s and ENCRYPTION_KEY:\n%s", name, id1, out)
			}
			if strings.Contains(out, secret) || strings.Contains(out, k1) || strings.Contains(out, k2) {
				t.Fatalf("%s: the output holds a secret", name)
			}
		}
		out := startFails(t, dir, "ENCRYPTION_KEY=too-short-test-key")
		if !strings.Contains(out, "configuration error") || !strings.Contains(out, "ENCRYPTION_KEY") {
			t.Errorf("weak key: no clear configuration error:\n%s", out)
		}
	})

	t.Run("rotation", func(t *testing.T) {
		env := []string{"DATA_DIR=" + dir, "ENCRYPTION_KEY=" + k2, "ENCRYPTION_KEY_PREVIOUS=" + k1}
		for _, want := range []string{
			"1 keys in the store: 1 re-sealed with key id " + id2 + " (1 from key id " + id1 + "), 0 already",
			"1 keys in the store: 0 re-sealed with key id " + id2 + ", 1 already", // a re-run does nothing
		} {
			cmd := exec(t, env...)
			cmd.Args = append(cmd.Args, "rotate-encryption-key")
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), want) {
				t.Fatalf("rotate-encryption-key: %v\n%s\nwant %q", err, out, want)
			}
			if strings.Contains(string(out), k1) || strings.Contains(string(out), k2) || strings.Contains(string(out), secret) {
				t.Fatal("rotate-encryption-key printed a secret")
			}
		}
		if fileHolds(t, dir, secret) || !fileHolds(t, dir, "kpseal1:"+id2+":") {
			t.Fatal("after rotation keypool.db holds plaintext or no value sealed with the new key")
		}
		// The old key alone no longer opens the store; the new one does.
		if out := startFails(t, dir, "ENCRYPTION_KEY="+k1); !strings.Contains(out, id2) {
			t.Errorf("old key: refusal does not name the new key id %s:\n%s", id2, out)
		}
		p := startProxy(t, upstreamEnv(up, map[string]string{"DATA_DIR": dir, "ENCRYPTION_KEY": k2}))
		relayUses(t, p, up, secret)
		p.stop()
	})

	t.Run("rotation with the old key in a file", func(t *testing.T) {
		keyFile := filepath.Join(t.TempDir(), "old.key")
		if err := os.WriteFile(keyFile, []byte(k2+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec(t, "DATA_DIR="+dir, "ENCRYPTION_KEY="+k1)
		cmd.Args = append(cmd.Args, "rotate-encryption-key", "-old-key-file", keyFile)
		out, err := cmd.CombinedOutput()
		if want := "1 re-sealed with key id " + id1 + " (1 from key id " + id2 + ")"; err != nil || !strings.Contains(string(out), want) {
			t.Fatalf("rotate-encryption-key -old-key-file: %v\n%s\nwant %q", err, out, want)
		}
		cmd = exec(t, "DATA_DIR="+dir, "ENCRYPTION_KEY="+k2)
		cmd.Args = append(cmd.Args, "rotate-encryption-key")
		out, err = cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), id1) || !strings.Contains(string(out), "nothing was changed") {
			t.Fatalf("rotation without the old key: %v\n%s", err, out)
		}
	})
}

// A store written without ENCRYPTION_KEY is sealed at the first start
// with one; the keys keep working.
func TestEncryptionMigratesPlaintext(t *testing.T) {
	up := startUpstream(t)
	dir := t.TempDir()
	k1 := seal.GenerateKey()
	const secret = "sk-test-fake-migrated-0002"
	p := startProxy(t, upstreamEnv(up, map[string]string{"DATA_DIR": dir}))
	p.addKey("openai", secret, 0)
	p.stop()
	if !fileHolds(t, dir, secret) {
		t.Fatal("without ENCRYPTION_KEY the secret is not in the file: the check cannot see it")
	}
	p = startProxy(t, upstreamEnv(up, map[string]string{"DATA_DIR": dir, "ENCRYPTION_KEY": k1}))
	relayUses(t, p, up, secret)
	if !strings.Contains(p.stderr.String(), "sealed plaintext secrets") {
		t.Errorf("migration not logged:\n%s", p.stderr)
	}
	p.stop()
	if !fileHolds(t, dir, "kpseal1:"+keyID(t, k1)+":") {
		t.Fatal("the key was not sealed in keypool.db")
	}
	p.assertNoSecretsLogged(secret, k1)
}

func TestNewEncryptionKeySubcommand(t *testing.T) {
	cmd := exec(t)
	cmd.Args = append(cmd.Args, "new-encryption-key")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatal(err, stderr.String())
	}
	k, ok := strings.CutPrefix(strings.TrimSpace(stdout.String()), "ENCRYPTION_KEY=")
	if !ok {
		t.Fatalf("output %q", stdout.String())
	}
	if !strings.Contains(stderr.String(), keyID(t, k)) {
		t.Errorf("key id not reported: %s", stderr.String())
	}
}

// kvContents returns everything the emulator stores, values decoded.
func kvContents(t *testing.T, kv *kvemu.Server) string {
	t.Helper()
	var dump bytes.Buffer
	if err := kv.Emu.Save(&dump); err != nil {
		t.Fatal(err)
	}
	var tree any
	if err := json.Unmarshal(dump.Bytes(), &tree); err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	var walk func(name string, v any)
	walk = func(name string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				walk(k, x)
			}
		case []any:
			for _, x := range v {
				walk(name, x)
			}
		case string:
			if b, err := base64.StdEncoding.DecodeString(v); err == nil && name == "value" {
				all.Write(b)
			} else {
				all.WriteString(v)
			}
		}
		all.WriteByte('\n')
	}
	walk("", tree)
	return all.String()
}

// With STORE=cfkv the KV values hold only sealed secrets, and the
// rotation subcommand works through KV too.
func TestEncryptionAtRestKV(t *testing.T) {
	up := startUpstream(t)
	kv, ns := startKV(t)
	k1, k2 := seal.GenerateKey(), seal.GenerateKey()
	id1, id2 := keyID(t, k1), keyID(t, k2)
	const secret = "sk-test-fake-sealed-in-kv-0003"

	env := kvEnv(kv, ns, up, "i-a")
	env["ENCRYPTION_KEY"] = k1
	p := startProxy(t, env)
	p.addKey("openai", secret, 0)
	p.stop()
	if c := kvContents(t, kv); strings.Contains(c, secret) || !strings.Contains(c, "kpseal1:"+id1+":") {
		t.Fatal("KV holds the plaintext secret, or no value sealed with ENCRYPTION_KEY")
	}

	cmd := exec(t, "STORE=cfkv", "CF_ACCOUNT_ID="+kvAccount, "CF_API_TOKEN="+kvToken, "CF_KV_NAMESPACE_ID="+ns,
		"CF_API_BASE_URL="+kv.URL, "ENCRYPTION_KEY="+k2, "ENCRYPTION_KEY_PREVIOUS="+k1)
	cmd.Args = append(cmd.Args, "rotate-encryption-key")
	out, err := cmd.CombinedOutput()
	if want := "1 re-sealed with key id " + id2 + " (1 from key id " + id1 + ")"; err != nil || !strings.Contains(string(out), want) {
		t.Fatalf("rotate-encryption-key on KV: %v\n%s\nwant %q", err, out, want)
	}
	if c := kvContents(t, kv); strings.Contains(c, secret) || strings.Contains(c, "kpseal1:"+id1+":") || !strings.Contains(c, "kpseal1:"+id2+":") {
		t.Fatal("after rotation KV holds plaintext, the old sealing, or no value sealed with the new key")
	}
	env = kvEnv(kv, ns, up, "i-b")
	env["ENCRYPTION_KEY"] = k2
	p = startProxy(t, env)
	relayUses(t, p, up, secret)
	p.stop()
	p.assertNoSecretsLogged(secret, k1, k2)
}
