//go:build !js

package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/adminclient"
	"github.com/keypool/keypool/worker-proxy/provider"
	"github.com/keypool/keypool/worker-proxy/reqlog"
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
	rlog := reqlog.New(reqlog.NewRing(reqlog.Bounds{}, clock.Now), "memory", reqlog.Options{BatchDelay: 10 * time.Millisecond, Now: clock.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(func() { rlog.Close() })
	srv, err := server.New(t.Context(), server.Config{
		AdminKey: e2eAdminKey, ClientTokens: []string{e2eClientToken}, AllowedOrigins: []string{siteOrigin},
		Transport: up, Now: clock.Now, StoreName: "bolt", RequestLog: rlog,
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
		project                string
	}
	for _, k := range []demoKey{
		{"gemini", "AIzaSy-DEMO-not-a-real-key-0001", "team A", 0, []string{"prod"}, "100000000001"},
		{"gemini", "AIzaSy-DEMO-not-a-real-key-0002", "team A", 0, []string{"prod"}, "100000000001"},
		{"gemini", "AIzaSy-DEMO-not-a-real-key-0003", "team B", 0, []string{"prod", "eu"}, "100000000002"},
		{"gemini", "AIzaSy-DEMO-revoked-key-0004", "old project", 0, []string{"legacy"}, ""},
		{"gemini", "AIzaSy-DEMO-busy-key-00000005", "free tier", 0, []string{"free"}, ""},
		{"gemini", "AIzaSy-DEMO-not-a-real-key-0006", "staging", 0, []string{"staging"}, ""},
		{"openai", "sk-DEMO-not-a-real-key-00000001", "shared", 300, []string{"prod"}, ""},
		{"openai", "sk-DEMO-not-a-real-key-00000002", "shared", 150, []string{"prod"}, ""},
		{"openai", "sk-DEMO-not-a-real-key-00000003", "batch jobs", 0, []string{"batch"}, ""},
		{"openai", "sk-DEMO-paused-key-000000000004", "paused by hand", 0, []string{"batch"}, ""},
		{"anthropic", "sk-ant-DEMO-not-a-real-key-0001", "research", 0, []string{"prod"}, ""},
		{"anthropic", "sk-ant-DEMO-not-a-real-key-0002", "research", 200, []string{"prod"}, ""},
	} {
		req := adminapi.AddKeyRequest{Provider: k.provider, APIKey: k.secret, Metadata: &adminapi.Metadata{Description: &k.desc, Tags: &k.tags}}
		if k.project != "" {
			req.Project = &k.project
		}
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

	// Gemini's daily quota, counted per project and model, runs out for
	// gemini-2.5-pro on team A's project: both its keys rest for that
	// model (and serve the others).
	resting := ""
	for i := 0; resting == ""; i++ {
		st, err := admin.ProviderStatus(ctx, "gemini")
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range st.Keys {
			if k.MaskedKey == "AIza…0001" && len(k.ModelCooldowns) > 0 {
				resting = k.ID
			}
		}
		if i == 10 {
			t.Fatal("team A's keys never met their daily quota")
		}
		relay("gemini", "gemini-2.5-pro")
	}
	nkeys := 0
	if st, err := admin.Status(ctx); err == nil {
		nkeys = st.TotalKeys
	}

	browser := newBrowser(t, chrome, t.TempDir())
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(browser, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	wait := func(what, expr string) {
		t.Helper()
		if err := pollJS(browser, expr, 20*time.Second, 0); err != nil {
			body, _ := chromedp.Run(browser, chromedp.Evaluate[string](`document.body.innerText`))
			t.Fatalf("%s: %v\npage text:\n%s", what, err, body)
		}
	}
	js := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(browser, chromedp.Evaluate[bool](`(() => { `+expr+`; return true })()`)); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// click clicks an element by id whether or not it is on screen (the
	// tabs sit in the phone menu).
	click := func(id string) { t.Helper(); js("click "+id, fmt.Sprintf(`document.getElementById(%q).click()`, id)) }
	var total int64
	count := 0
	save := func(name string) {
		t.Helper()
		// A tab switch refreshes: the shot waits for the answers, so the
		// header says "updated", not "Refreshing…".
		wait("idle", `(() => { const m = document.querySelector("main"); return !m || m.getAttribute("aria-busy") !== "true" || !!document.getElementById("connect-form") })()`)
		js("settle", `document.activeElement && document.activeElement.blur()`)
		b, err := chromedp.Run(browser, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(out, name)
		if err := writeSmallPNG(p, b); err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(p)
		total += fi.Size()
		count++
		t.Logf("screenshot %s: %d bytes", name, fi.Size())
	}
	chartReady := `(() => { const c = document.getElementById("traffic-chart"); return !!c && +c.dataset.total > 0 && !document.getElementById("app-wasm-loader") })()`
	top := func() { js("top", `window.scrollTo(0, 0)`) }

	// Every screen in light and dark, desktop (1280×800) and phone
	// (390×844) width, English and Chinese: 64 PNGs of 256 colours, about
	// 1.9 MB in all.
	phoneNow := false
	screens := map[string]func(){
		"overview": func() {
			click("tab-overview")
			wait("overview", chartReady+` && !!document.getElementById("tile-resting")`)
			top()
		},
		"keys": func() {
			click("tab-keys")
			wait("keys table", fmt.Sprintf(`document.querySelectorAll("#keys-table tbody tr").length === %d && !!document.querySelector(".badge.resting")`, nkeys))
			top()
			if phoneNow { // the cards, below the toolbar and filters
				js("scroll to the table", `window.scrollTo(0, document.getElementById("keys-table").getBoundingClientRect().top + window.scrollY - 8)`)
			}
		},
		"key-detail": func() {
			click("tab-keys")
			wait("keys table", `!!document.getElementById("open-`+resting+`")`)
			top()
			click("open-" + resting)
			wait("drawer", `!!document.getElementById("detail-rests") && !!document.getElementById("detail-project")`)
		},
		"bulk-import": func() {
			click("tab-keys")
			wait("keys table", `!!document.getElementById("bulk-open")`)
			top()
			click("bulk-open")
			wait("bulk form", `!!document.getElementById("bulk-text")`)
			run("paste", typeInto("bulk-text", "# pasted from a .env file and a JSON list\nGEMINI_API_KEY=AIzaSy-DEMO-not-a-real-key-0001\n[\"AIzaSy-DEMO-not-a-real-key-0007\", \"AIzaSy-DEMO-not-a-real-key-0007\"]\nsee the team wiki\n"),
				typeInto("bulk-tags", "imported"))
			wait("found", `document.getElementById("bulk-found").innerText.includes("2")`)
		},
		"tokens": func() {
			click("tab-tokens")
			wait("tokens", `document.querySelectorAll("#tokens-table tbody tr").length >= 2`)
			top()
		},
		"requests": func() {
			click("tab-requests")
			wait("requests", `document.querySelectorAll("#req-table tbody tr").length > 10`)
			top()
		},
		"connect": func() { // last: it disconnects; the next reload connects again
			click("disconnect")
			wait("connect screen", `!!document.getElementById("connect-form")`)
			top()
		},
		"playground": func() {
			click("tab-playground")
			wait("playground", `!!document.getElementById("play-form")`)
			run("prompt", typeInto("play-token", e2eClientToken), typeInto("play-model", "gemini-2.5-flash"), typeInto("play-prompt", "Say hello in one word."))
			click("play-send")
			wait("answer", `!!document.getElementById("play-meta")`)
			top()
		},
	}
	after := map[string]func(){
		"key-detail":  func() { click("detail-close") },
		"bulk-import": func() { click("panel-close") },
	}
	all := []string{"overview", "keys", "key-detail", "bulk-import", "tokens", "requests", "playground", "connect"}
	run("viewport", chromedp.EmulateViewport(1280, 800))
	run("first load", chromedp.Navigate(siteOrigin+sitePrefix+"/"))
	wait("boot", `!document.getElementById("app-wasm-loader")`)
	for _, lang := range []string{"en", "zh"} {
		for _, phone := range []bool{false, true} {
			for _, theme := range []string{"light", "dark"} {
				phoneNow = phone
				if phone {
					run("phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(1)))
				} else {
					run("desktop", chromedp.EmulateViewport(1280, 800))
				}
				js("settings", fmt.Sprintf(`sessionStorage.setItem("keypool.conn", JSON.stringify({url: %q, key: %q})); sessionStorage.removeItem("keypool.tab"); localStorage.setItem("keypool.lang", JSON.stringify(%q)); localStorage.setItem("keypool.theme", JSON.stringify(%q))`, ts.URL, e2eAdminKey, lang, theme))
				run("reload", chromedp.Reload())
				wait("overview", chartReady+fmt.Sprintf(` && document.documentElement.lang === %q && (document.documentElement.dataset.theme || "") === %q`, map[string]string{"en": "en", "zh": "zh-CN"}[lang], theme))
				for _, name := range all {
					screens[name]()
					if phone {
						wait("nothing wider than the phone", `document.documentElement.scrollWidth <= window.innerWidth + 1`)
					}
					file := name
					if lang == "zh" {
						file += "-zh"
					}
					if theme == "dark" {
						file += "-dark"
					}
					if phone {
						file += "-phone"
					}
					save(file + ".png")
					if f := after[name]; f != nil {
						f()
					}
				}
			}
		}
	}
	t.Logf("%d screenshots, %d bytes in all", count, total)
}

// simClock is the time now plus an offset the test moves.
type simClock struct{ off atomic.Int64 }

func (c *simClock) Now() time.Time { return time.Now().Add(time.Duration(c.off.Load())) }

// fakeUpstream answers like the providers would: a key with "revoked" in
// it gets Gemini's 403 for a suspended project (its ErrorInfo names the
// project, which the proxy learns), one with "busy" 429 in the last
// minutes, team A's first key Gemini's daily per-project quota 429 for
// gemini-2.5-pro in the last minute, model "bad-model" 400, every 23rd
// call 500 (the proxy fails over); the rest 200.
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
		return answer(403, geminiSuspended)
	case strings.HasSuffix(key, "key-0001") && strings.Contains(r.URL.Path, "/gemini-2.5-pro:") && f.clock.off.Load() == 0:
		return answer(429, geminiDailyQuota)
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

// Gemini's real answers (worker-proxy/internal/fakeupstream/gemini.go,
// shared/notes/provider-errors.md).
const (
	geminiSuspended = `{"error":{"code":403,"message":"Permission denied: Consumer 'api_key:AIzaSy...' has been suspended.","status":"PERMISSION_DENIED","details":[` +
		`{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"CONSUMER_SUSPENDED","domain":"googleapis.com","metadata":{"consumer":"projects/100000000009","service":"generativelanguage.googleapis.com","containerInfo":"api_key:AIzaSy..."}},` +
		`{"@type":"type.googleapis.com/google.rpc.LocalizedMessage","locale":"en-US","message":"Permission denied: Consumer 'api_key:AIzaSy...' has been suspended."}]}}`
	geminiDailyQuota = `{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, head to: https://ai.dev/rate-limit. \n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_requests_per_model_per_day, limit: 250, model: gemini-2.5-pro\nPlease retry in 10h50m43.651927829s.","status":"RESOURCE_EXHAUSTED","details":[` +
		`{"@type":"type.googleapis.com/google.rpc.Help","links":[{"description":"Learn more about Gemini API quotas","url":"https://ai.google.dev/gemini-api/docs/rate-limits"}]},` +
		`{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_requests_per_model_per_day","quotaId":"GenerateRequestsPerDayPerProjectPerModel","quotaDimensions":{"location":"global","model":"gemini-2.5-pro"},"quotaValue":"250"}]},` +
		`{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"39043s"}]}}`
)

// writeSmallPNG re-encodes a screenshot with the best compression, as a
// 256-colour paletted image (see quantize): screenshots of flat UI colours
// lose nothing visible and shrink to a third or less.
func writeSmallPNG(path string, b []byte) error {
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&buf, quantize(img)); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// quantize maps img to at most 256 colours, without dithering (dither
// noise compresses badly): colours are counted in 5-bit-per-channel boxes,
// the 256 fullest boxes give the palette (each its pixels' mean), and every
// pixel takes the nearest palette colour.
func quantize(img image.Image) *image.Paletted {
	bounds := img.Bounds()
	type box struct{ r, g, b, n int }
	boxes := map[uint16]*box{}
	rgb := func(c color.Color) (int, int, int) {
		r, g, b, _ := c.RGBA()
		return int(r >> 8), int(g >> 8), int(b >> 8)
	}
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			r, g, b := rgb(img.At(x, y))
			k := uint16(r>>3)<<10 | uint16(g>>3)<<5 | uint16(b>>3)
			bx := boxes[k]
			if bx == nil {
				bx = &box{}
				boxes[k] = bx
			}
			bx.r, bx.g, bx.b, bx.n = bx.r+r, bx.g+g, bx.b+b, bx.n+1
		}
	}
	list := make([]*box, 0, len(boxes))
	for _, bx := range boxes {
		list = append(list, bx)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].n > list[j].n })
	pal := make(color.Palette, 0, 256)
	for _, bx := range list[:min(256, len(list))] {
		pal = append(pal, color.RGBA{uint8(bx.r / bx.n), uint8(bx.g / bx.n), uint8(bx.b / bx.n), 255})
	}
	out := image.NewPaletted(bounds, pal)
	nearest := map[[3]int]uint8{}
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			r, g, b := rgb(img.At(x, y))
			c := [3]int{r, g, b}
			i, ok := nearest[c]
			if !ok {
				best := -1
				for j, p := range pal {
					pr, pg, pb := rgb(p)
					// Weighted as the eye weighs them.
					d := 3*(r-pr)*(r-pr) + 4*(g-pg)*(g-pg) + 2*(b-pb)*(b-pb)
					if best < 0 || d < best {
						best, i = d, uint8(j)
					}
				}
				nearest[c] = i
			}
			out.SetColorIndex(x, y, i)
		}
	}
	return out
}
