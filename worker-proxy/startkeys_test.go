package main

import (
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/internal/redistest"
	"github.com/keypool/keypool/worker-proxy/provider"
)

func TestReadStartKeys(t *testing.T) {
	reg, err := provider.NewRegistry(append(provider.Defaults(), &provider.Provider{Name: "my-llm", Base: &url.URL{Scheme: "http", Host: "127.0.0.1:1"}})...)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"OPENAI_KEYS": " sk-test-one-000000001,sk-test-two-000000001\n\tsk-test-three-0000001 ;; ",
		"MY_LLM_KEYS": "x-test-custom-00000001",
		"GEMINI_KEYS": " , ",
	}
	got := readStartKeys(func(k string) string { return env[k] }, reg)
	want := map[string][]string{
		"openai": {"sk-test-one-000000001", "sk-test-two-000000001", "sk-test-three-0000001"},
		"my-llm": {"x-test-custom-00000001"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %v", got, want)
	}
	for _, sk := range got {
		if strings.Join(sk.secrets, "|") != strings.Join(want[sk.provider], "|") || sk.variable != adminapi.StartKeysVariable(sk.provider) {
			t.Errorf("%s (%s): %q, want %q", sk.provider, sk.variable, sk.secrets, want[sk.provider])
		}
	}
	if v := adminapi.StartKeysVariable("my-llm"); v != "MY_LLM_KEYS" {
		t.Errorf("StartKeysVariable(my-llm) = %s", v)
	}
}

// Keys given in OPENAI_KEYS serve from the first request, are written to
// the store, keep what the dashboard changed across restarts, and never
// reach the log unmasked; an invalid entry stops the start naming the
// variable, not the key.
func TestStartKeysFromEnvironment(t *testing.T) {
	up := startUpstream(t)
	dir := t.TempDir()
	const a, b, c = "sk-test-fake-start-key-0001", "sk-test-fake-start-key-0002", "sk-test-fake-start-key-0003"
	p := startProxy(t, upstreamEnv(up, map[string]string{"DATA_DIR": dir, "OPENAI_KEYS": a + "," + b}))
	relayUses(t, p, up, a)
	keys := func(p *proxy) map[string]adminapi.KeyStatus {
		m := map[string]adminapi.KeyStatus{}
		for _, k := range providerStatusOf(t, p, "openai").Keys {
			m[k.ID] = k
		}
		return m
	}
	first := keys(p)
	if len(first) != 2 {
		t.Fatalf("%d keys after the start, want 2", len(first))
	}
	var disabled string
	for id := range first {
		disabled = id
		break
	}
	if r := p.admin("PUT", "/admin/keys/"+disabled, map[string]any{"isActive": false}); r.Status != http.StatusOK {
		t.Fatalf("disable: %d %s", r.Status, r.Body)
	}
	p.stop()
	p.assertNoSecretsLogged(a, b)

	p = startProxy(t, upstreamEnv(up, map[string]string{"DATA_DIR": dir, "OPENAI_KEYS": a + " " + b + " " + c}))
	second := keys(p)
	if len(second) != 3 {
		t.Fatalf("%d keys after the second start, want 3", len(second))
	}
	if second[disabled].IsActive {
		t.Fatal("a start key disabled in the dashboard came back enabled")
	}
	p.stop()
	p.assertNoSecretsLogged(a, b, c)

	out := startFails(t, t.TempDir(), "OPENAI_KEYS="+a+",sk-test-fake-bad\x7fkey-01")
	if !strings.Contains(out, "OPENAI_KEYS") || !strings.Contains(out, "key #2 of 2") || strings.Contains(out, "sk-test-fake") {
		t.Fatalf("invalid start key: output %q; want OPENAI_KEYS and key #2 of 2 named, no key", out)
	}
}

// Two proxies start at the same moment on one Redis with overlapping start
// keys: Redis holds each secret once, under its fingerprint id, and both
// proxies see all of them.
func TestStartKeysTwoInstancesOnRedis(t *testing.T) {
	const a, b, c = "sk-test-fake-redis-start-01", "sk-test-fake-redis-start-02", "sk-test-fake-redis-start-03"
	f := startRedis(t, redistest.Options{}, nil)
	envs := []map[string]string{
		{"OPENAI_KEYS": a + "," + b},
		{"OPENAI_KEYS": b + "," + c + "," + a},
	}
	ps := make([]*proxy, len(envs))
	var wg sync.WaitGroup
	for i, extra := range envs {
		env := maps.Clone(f.env)
		maps.Copy(env, extra)
		wg.Go(func() { ps[i] = startProxy(t, env) })
	}
	wg.Wait()
	for i, p := range ps {
		var ids []string
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			ids = ids[:0]
			for _, k := range providerStatusOf(t, p, "openai").Keys {
				ids = append(ids, k.ID)
			}
			if len(ids) >= 3 || time.Now().After(deadline) {
				break
			}
		}
		slices.Sort(ids)
		if len(ids) != 3 || ids[0] == ids[1] || ids[1] == ids[2] || !adminapi.IsStartKey(ids[0]) {
			t.Fatalf("proxy %d sees keys %v; want the 3 start keys once each", i, ids)
		}
	}
	// A third proxy, with no start keys, loads what Redis holds.
	if n := len(providerStatusOf(t, startProxy(t, f.env), "openai").Keys); n != 3 {
		t.Fatalf("Redis holds %d openai keys, want 3", n)
	}
}
