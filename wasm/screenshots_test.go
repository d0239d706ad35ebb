//go:build !js

package main

import (
	"bytes"
	"fmt"
	"image/png"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/adminclient"
	"github.com/keypool/keypool/worker-proxy/provider"
	"github.com/keypool/keypool/worker-proxy/server"
	"github.com/keypool/keypool/worker-proxy/store/boltstore"
)

// TestReadmeScreenshots makes the README's screenshots:
//
//	KEYPOOL_SCREENSHOTS=web/screenshots go test ./wasm -run TestReadmeScreenshots
//
// (a relative directory is taken from the module root). The built site is
// served as Pages serves it; behind it runs the proxy's real server in
// process on its embedded store, with a fake upstream and a simulated
// clock, so an hour of traffic (failovers, rate limits, a revoked key, a
// bad request now and then) is relayed in a few seconds and the chart has
// something to show. Skipped unless KEYPOOL_SCREENSHOTS is set.
func TestReadmeScreenshots(t *testing.T) {
	out := os.Getenv("KEYPOOL_SCREENSHOTS")
	if out == "" {
		t.Skip("set KEYPOOL_SCREENSHOTS=DIR to make the README's screenshots")
	}
	chrome := chromiumPath()
	if chrome == "" {
		missing(t, "chromium")
	}
	if !filepath.IsAbs(out) {
		out = filepath.Join(moduleRoot(t), out)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	env := setupE2E(t)
	siteOrigin := servePages(t, env.site, sitePrefix)

	clock := &simClock{}
	clock.off.Store(int64(-60 * time.Minute))
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "keypool.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg, _ := provider.NewRegistry(provider.Defaults()...)
	up := &fakeUpstream{clock: clock}
	srv, err := server.New(t.Context(), server.Config{
		AdminKey: e2eAdminKey, ClientTokens: []string{e2eClientToken}, AllowedOrigins: []string{siteOrigin},
		Transport: up, Now: clock.Now, StoreName: "bolt",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, st, reg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	admin := adminclient.New(ts.URL, e2eAdminKey)
	ctx := t.Context()

	type demoKey struct {
		provider, secret, desc string
		max                    int64
		tags                   []string
	}
	for _, k := range []demoKey{
		{"gemini", "AIzaSy-DEMO-not-a-real-key-0001", "team A", 0, []string{"prod"}},
		{"gemini", "AIzaSy-DEMO-not-a-real-key-0002", "team A", 0, []string{"prod"}},
		{"gemini", "AIzaSy-DEMO-not-a-real-key-0003", "team B", 0, []string{"prod", "eu"}},
		{"gemini", "AIzaSy-DEMO-revoked-key-0004", "old project", 0, []string{"legacy"}},
		{"gemini", "AIzaSy-DEMO-busy-key-00000005", "free tier", 0, []string{"free"}},
		{"gemini", "AIzaSy-DEMO-not-a-real-key-0006", "staging", 0, []string{"staging"}},
		{"openai", "sk-DEMO-not-a-real-key-00000001", "shared", 300, []string{"prod"}},
		{"openai", "sk-DEMO-not-a-real-key-00000002", "shared", 150, []string{"prod"}},
		{"openai", "sk-DEMO-not-a-real-key-00000003", "batch jobs", 0, []string{"batch"}},
		{"openai", "sk-DEMO-paused-key-000000000004", "paused by hand", 0, []string{"batch"}},
		{"anthropic", "sk-ant-DEMO-not-a-real-key-0001", "research", 0, []string{"prod"}},
		{"anthropic", "sk-ant-DEMO-not-a-real-key-0002", "research", 200, []string{"prod"}},
	} {
		req := adminapi.AddKeyRequest{Provider: k.provider, APIKey: k.secret, Metadata: &adminapi.Metadata{Description: &k.desc, Tags: &k.tags}}
		if k.max > 0 {
			req.MaxRequests = &k.max
		}
		r, err := admin.AddKey(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(k.secret, "paused") {
			if _, err := admin.UpdateKey(ctx, r.KeyID, adminapi.UpdateKeyRequest{IsActive: ptr(false)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := admin.CreateToken(ctx, "laptop"); err != nil {
		t.Fatal(err)
	}

	// An hour of traffic, a minute at a time.
	start := time.Now()
	relay := func(prov, model string) {
		path, hdr, body := adminclient.PlaygroundRequest(prov, model, "", e2eClientToken, "hello")
		if _, err := admin.Relay(ctx, "POST", path, hdr, body); err != nil {
			t.Fatal(err)
		}
	}
	for m := 59; m >= 0; m-- {
		clock.off.Store(int64(-time.Duration(m) * time.Minute))
		wave := math.Sin(float64(m) / 9)
		for range 9 + int(6*wave) {
			relay("gemini", "gemini-2.5-flash")
		}
		for range 4 + int(3*math.Cos(float64(m)/6)) {
			relay("openai", "gpt-4o-mini")
		}
		if m%9 == 4 {
			relay("openai", "bad-model") // the upstream answers 400: a client error, passed through
		}
		for range 1 + (m%11)/4 {
			relay("anthropic", "claude-sonnet-4-5")
		}
	}
	clock.off.Store(0)
	t.Logf("an hour of traffic relayed in %v (%d upstream calls)", time.Since(start).Round(time.Millisecond), up.calls.Load())

	browser := newBrowser(t, chrome, t.TempDir())
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(browser, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	wait := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(browser, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	save := func(name string) {
		t.Helper()
		b, err := chromedp.Run(browser, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(out, name)
		if err := writeSmallPNG(p, b); err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(p)
		t.Logf("screenshot %s: %d bytes", p, fi.Size())
	}
	chartReady := `(() => { const c = document.getElementById("traffic-chart"); return !!c && +c.dataset.total > 0 && !document.getElementById("app-wasm-loader") })()`

	run("viewport", chromedp.EmulateViewport(1280, 800))
	run("first load", chromedp.Navigate(siteOrigin+sitePrefix+"/"))
	wait("boot", `!document.getElementById("app-wasm-loader")`)
	conn := fmt.Sprintf(`(sessionStorage.setItem("keypool.conn", JSON.stringify({url: %q, key: %q})), localStorage.setItem("keypool.lang", JSON.stringify("en")), true)`, ts.URL, e2eAdminKey)
	if _, err := chromedp.Run(browser, chromedp.Evaluate[bool](conn)); err != nil {
		t.Fatal(err)
	}
	run("reload", chromedp.Reload())
	wait("overview with traffic", chartReady)
	save("overview.png")

	theme := func(want string) {
		t.Helper()
		for i := 0; i < 3; i++ {
			if got, _ := chromedp.Run(browser, chromedp.Evaluate[string](`document.documentElement.dataset.theme || ""`)); got == want {
				return
			}
			run("theme", chromedp.Click(chromedp.ID("theme")))
		}
		wait("theme "+want, `(document.documentElement.dataset.theme || "") === "`+want+`"`)
	}
	revoked := ""
	if st, err := admin.ProviderStatus(ctx, "gemini"); err == nil {
		for _, k := range st.Keys {
			if k.State == adminapi.StateDisabled {
				revoked = k.ID
			}
		}
	}
	if revoked == "" {
		t.Fatal("no disabled key to show in the detail drawer")
	}
	theme("dark")
	wait("dark overview", chartReady)
	save("overview-dark.png")
	theme("light")

	run("keys", chromedp.Click(chromedp.ID("tab-keys")))
	wait("keys table", `document.querySelectorAll("#keys-table tbody tr").length === 12`)
	save("keys.png")
	run("detail", chromedp.Click(chromedp.ID("open-"+revoked)))
	wait("drawer", `!!document.getElementById("detail-why")`)
	save("key-detail.png")
	run("close", chromedp.Click(chromedp.ID("detail-close")))
	run("bulk import", chromedp.Click(chromedp.ID("bulk-open")),
		chromedp.SendKeys(chromedp.ID("bulk-text"), "# pasted from a .env file and a JSON list\nGEMINI_API_KEY=AIzaSy-DEMO-not-a-real-key-0001\n[\"AIzaSy-DEMO-not-a-real-key-0007\", \"AIzaSy-DEMO-not-a-real-key-0007\"]\nsee the team wiki\n"),
		chromedp.SendKeys(chromedp.ID("bulk-tags"), "imported"))
	wait("found", `document.getElementById("bulk-found").innerText.startsWith("2 keys found")`)
	save("bulk-import.png")
	run("close", chromedp.Click(chromedp.ID("panel-close")))

	run("中文", chromedp.Click(chromedp.ID("lang")))
	theme("dark")
	wait("Chinese keys", `document.querySelector("h1").innerText === "KeyPool 管理后台"`)
	save("keys-zh-dark.png")
	theme("light")
	run("overview", chromedp.Click(chromedp.ID("tab-overview")))
	wait("Chinese overview", `document.querySelector("h1").innerText === "KeyPool 管理后台" && `+chartReady)
	save("overview-zh.png")
	run("English", chromedp.Click(chromedp.ID("lang")))

	run("phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(1)))
	wait("overview at phone width", chartReady+` && document.documentElement.scrollWidth <= window.innerWidth + 1`)
	save("phone.png")
	run("phone keys", chromedp.Click(chromedp.ID("menu")), chromedp.Click(chromedp.ID("tab-keys")))
	wait("cards", `document.querySelectorAll("#keys-table tbody tr").length === 12 && document.documentElement.scrollWidth <= window.innerWidth + 1`)
	run("中文", chromedp.Click(chromedp.ID("menu")), chromedp.Click(chromedp.ID("lang")))
	theme("dark")
	run("close the menu", chromedp.Click(chromedp.ID("menu")))
	wait("Chinese", `document.querySelector("h1").innerText === "KeyPool 管理后台"`)
	if _, err := chromedp.Run(browser, chromedp.Evaluate[bool](`(window.scrollTo(0, document.getElementById("keys-table").getBoundingClientRect().top + window.scrollY - 8), true)`)); err != nil {
		t.Fatal(err)
	}
	save("phone-keys-zh-dark.png")
	if _, err := chromedp.Run(browser, chromedp.Evaluate[bool](`(window.scrollTo(0, 0), true)`)); err != nil {
		t.Fatal(err)
	}
	run("drawer", chromedp.Click(chromedp.ID("open-"+revoked)))
	wait("drawer", `!!document.getElementById("detail-why")`)
	save("phone-detail-zh-dark.png")
}

// simClock is the time now plus an offset the test moves.
type simClock struct{ off atomic.Int64 }

func (c *simClock) Now() time.Time { return time.Now().Add(time.Duration(c.off.Load())) }

// fakeUpstream answers like the providers would: a key with "revoked" in
// it gets 401, one with "busy" 429 in the last minutes, model "bad-model"
// 400, every 23rd call 500 (the proxy fails over); the rest 200.
type fakeUpstream struct {
	clock *simClock
	calls atomic.Int64
}

func (f *fakeUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	n := f.calls.Add(1)
	if r.Body != nil {
		defer r.Body.Close()
	}
	body, _ := io.ReadAll(r.Body)
	key := r.Header.Get("X-Goog-Api-Key") + r.Header.Get("X-Api-Key") + strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	answer := func(status int, b string, hdr ...string) (*http.Response, error) {
		h := http.Header{"Content-Type": {"application/json"}}
		for i := 0; i+1 < len(hdr); i += 2 {
			h.Set(hdr[i], hdr[i+1])
		}
		return &http.Response{StatusCode: status, Status: http.StatusText(status), Header: h, Body: io.NopCloser(strings.NewReader(b)),
			ContentLength: int64(len(b)), Request: r, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}, nil
	}
	switch {
	case strings.Contains(key, "revoked"):
		return answer(401, `{"error":{"code":401,"message":"API key not valid","status":"UNAUTHENTICATED"}}`)
	case strings.Contains(key, "busy") && f.clock.off.Load() > int64(-3*time.Minute):
		return answer(429, `{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED"}}`, "Retry-After", "1800")
	case bytes.Contains(body, []byte("bad-model")):
		return answer(400, `{"error":{"message":"The model bad-model does not exist","type":"invalid_request_error"}}`)
	case n%23 == 0:
		return answer(500, `{"error":{"message":"internal error"}}`)
	}
	switch {
	case strings.Contains(r.URL.Path, "generateContent"):
		return answer(200, `{"candidates":[{"content":{"parts":[{"text":"hi"}],"role":"model"}}]}`)
	case strings.Contains(r.URL.Path, "messages"):
		return answer(200, `{"content":[{"type":"text","text":"hi"}]}`)
	}
	return answer(200, `{"choices":[{"message":{"role":"assistant","content":"hi"}}]}`)
}

// writeSmallPNG re-encodes a screenshot with the best compression.
func writeSmallPNG(path string, b []byte) error {
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&buf, img); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}
