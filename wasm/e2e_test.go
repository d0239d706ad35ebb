//go:build !js

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/keypool/keypool/wasm/pages"
	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/adminclient"
	"github.com/keypool/keypool/worker-proxy/pool"
)

const (
	e2eAdminKey = "e2e-admin-key-0123456789abcdef"
	sitePrefix  = "/keypool" // served the way GitHub Pages serves a project page

	e2eClientToken = "kp-e2e-client-token-0123456789"
)

// chromiumPath finds a Chromium or Chrome for the dashboard tests, in this
// order (.ci/run looks the same way): $CHROMIUM_PATH; Debian's real chromium
// binary (not the wrapper script); $CHROME_BIN, which GitHub's Ubuntu runners
// set to their preinstalled Chrome; then google-chrome, google-chrome-stable,
// chromium and chromium-browser on PATH.
func chromiumPath() string {
	for _, p := range []string{os.Getenv("CHROMIUM_PATH"), "/usr/lib/chromium/chromium", os.Getenv("CHROME_BIN")} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	for _, name := range []string{"google-chrome", "google-chrome-stable", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	b, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(b)))
}

// servePages serves dir under prefix from 127.0.0.1 the way GitHub Pages
// does (package pages).
func servePages(t *testing.T, dir, prefix string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: pages.Handler(dir, prefix)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// startProxy runs the proxy binary on 127.0.0.1 with its embedded store.
func startProxy(t *testing.T, bin string, env ...string) string {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append([]string{"HOST=127.0.0.1", "PORT=0", "DATA_DIR=" + t.TempDir(), "ADMIN_KEY=" + e2eAdminKey,
		"CLIENT_TOKENS=" + e2eClientToken, "FLUSH_INTERVAL=200ms", "SHUTDOWN_TIMEOUT=5s", "LOG_LEVEL=warn",
		"PATH=" + os.Getenv("PATH")}, env...)
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); pw.Close(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
	})
	found := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`listening on (http://\S+)`)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case u := <-found:
		return u
	case <-done:
		t.Fatalf("proxy exited: %s", stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("proxy did not start")
	}
	return ""
}

// missing skips, or fails under KEYPOOL_REQUIRE_ALL=1 (as .ci/run sets).
// It mirrors worker-proxy/internal/testenv.Missing, which Go's internal
// package rule keeps out of reach from wasm/.
func missing(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("KEYPOOL_REQUIRE_ALL") == "1" {
		t.Fatalf("%s is missing and KEYPOOL_REQUIRE_ALL=1 forbids skipping", what)
	}
	t.Skipf("%s is missing; skipping (set KEYPOOL_REQUIRE_ALL=1 to fail instead)", what)
}

func artifactDir(t *testing.T) string {
	if d := os.Getenv("KEYPOOL_ARTIFACTS"); d != "" {
		os.MkdirAll(d, 0o755)
		return d
	}
	return t.TempDir()
}

// TestDashboardInChromium builds the Pages site, serves it under a project
// subpath, runs the real proxy, and drives the dashboard in headless
// Chromium, checking every change against the proxy through the admin API.
func TestDashboardInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	chrome := chromiumPath()
	if chrome == "" {
		missing(t, "chromium")
	}
	env := setupE2E(t)
	tmp := t.TempDir()
	siteOrigin := servePages(t, env.site, sitePrefix)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, ":generateContent") {
			io.WriteString(w, `{"candidates":[{"content":{"parts":[{"text":"pong from the fake Gemini"}],"role":"model"}}]}`)
			return
		}
		io.WriteString(w, `{"models":[{"name":"models/gemini-2.5-flash"}]}`)
	}))
	t.Cleanup(upstream.Close)
	proxyURL := startProxy(t, env.proxyBin, "ALLOWED_ORIGINS="+siteOrigin, "GEMINI_BASE_URL="+upstream.URL+"/v1beta", "RETEST_INTERVAL=0")
	closedURL := startProxy(t, env.proxyBin) // allows no browser origin
	admin := adminclient.New(proxyURL, e2eAdminKey)
	ctx := newBrowser(t, chrome, tmp)
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			shot(t, ctx, "failure")
			t.Fatalf("%s: %v", what, err)
		}
	}
	// waitJS polls a boolean expression in the page.
	waitJS := func(what, expr string) {
		t.Helper()
		if err := pollJS(ctx, expr, 20*time.Second, 0); err != nil {
			body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
			shot(t, ctx, "failure")
			t.Fatalf("%s: %v\npage text:\n%s", what, err, body)
		}
	}
	textOf := func(id string) string {
		return fmt.Sprintf(`((document.getElementById(%q)||{}).innerText||"")`, id)
	}

	// clear empties an input; the next SendKeys fires input events with
	// the whole new value.
	clear := func(id string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(() => { const el = document.getElementById(%q); el.value = ""; return el.dispatchEvent(new Event("input", {bubbles: true})) })()`, id)))
			return err
		})
	}

	// choose sets a <select> and fires its change event.
	choose := func(id, value string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(() => { const el = document.getElementById(%q); el.value = %q; return el.dispatchEvent(new Event("change", {bubbles: true})) })()`, id, value)))
			return err
		})
	}

	browserStart := time.Now()
	do("browser start", chromedp.Navigate("about:blank"))
	t.Logf("browser start: %v", time.Since(browserStart).Round(time.Millisecond))

	// A deep client route under the prefix is served by 404.html and boots.
	navStart := time.Now()
	do("navigate", chromedp.Navigate(siteOrigin+sitePrefix+"/"))
	waitJS("wasm loaded", `!document.getElementById("app-wasm-loader") && !!document.getElementById("proxy-url")`)
	t.Logf("navigation to usable connect screen: %v", time.Since(navStart).Round(time.Millisecond))

	// CORS: a proxy that does not list this origin. The message names it.
	do("connect to closed proxy",
		chromedp.SendKeys(chromedp.ID("proxy-url"), closedURL),
		chromedp.SendKeys(chromedp.ID("admin-key"), e2eAdminKey),
		chromedp.Click(chromedp.ID("connect")),
	)
	waitJS("CORS advice", textOf("connect-error")+`.includes("ALLOWED_ORIGINS=`+siteOrigin+`")`)

	// Wrong key on the right proxy.
	do("wrong key",
		clear("proxy-url"), chromedp.SendKeys(chromedp.ID("proxy-url"), proxyURL),
		clear("admin-key"), chromedp.SendKeys(chromedp.ID("admin-key"), "wrong-key-0000000000000000"),
		chromedp.Click(chromedp.ID("connect")),
	)
	waitJS("wrong key message", textOf("connect-error")+`.includes("401")`)

	// Connect.
	connectStart := time.Now()
	do("connect",
		clear("admin-key"), chromedp.SendKeys(chromedp.ID("admin-key"), e2eAdminKey),
		chromedp.Click(chromedp.ID("connect")),
		chromedp.WaitVisible(chromedp.ID("overview")),
	)
	t.Logf("connect to overview: %v", time.Since(connectStart).Round(time.Millisecond))
	if s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`sessionStorage.getItem("keypool.conn") || ""`)); !strings.Contains(s, proxyURL) {
		t.Errorf("connection not in session storage: %q", s)
	}
	if s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`localStorage.getItem("keypool.conn") || ""`)); s != "" {
		t.Errorf("admin key in local storage without opting in: %q", s)
	}

	// A key the pool core rejects: the error shows in the form.
	do("add a bad key",
		chromedp.Click(chromedp.ID("tab-keys")),
		chromedp.Click(chromedp.ID("add-open")), // at the top of the page
		chromedp.WaitVisible(chromedp.ID("add-form")),
		chromedp.SendKeys(chromedp.ID("add-key"), "bad key"),
		chromedp.Click(chromedp.ID("add-submit")),
	)
	waitJS("error in the add form", textOf("add-msg")+` === "API key must not contain spaces or control characters."`)

	// Add a key.
	const secret = "AIzaSyE2eDashboardKey000000001"
	do("add key",
		clear("add-key"),
		chromedp.SendKeys(chromedp.ID("add-key"), secret),
		chromedp.SendKeys(chromedp.ID("add-max"), "500"),
		chromedp.SendKeys(chromedp.ID("add-desc"), "e2e key"),
		chromedp.SendKeys(chromedp.ID("add-tags"), "ci, e2e"),
		chromedp.Click(chromedp.ID("add-submit")),
	)
	masked := pool.Mask(secret)
	waitJS("key in table", textOf("keys-table")+`.includes(`+fmt.Sprintf("%q", masked)+`)`)
	st, err := admin.ProviderStatus(t.Context(), "gemini")
	if err != nil || len(st.Keys) != 1 {
		t.Fatalf("proxy after add: %v %+v", err, st)
	}
	k := st.Keys[0]
	if k.MaskedKey != masked || k.Description != "e2e key" || k.MaxRequests != 500 || strings.Join(k.Tags, ",") != "ci,e2e" {
		t.Fatalf("added key: %+v", k)
	}
	// The row shows what the proxy holds (decoded in the browser's fast path).
	waitJS("row content", fmt.Sprintf(`(() => { const r = %s; return r.includes("0 / 500") && r.includes("e2e key") && r.includes("ci") && r.includes("active") && r.includes("never") })()`, textOf("row-"+k.ID)))
	if html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`)); strings.Contains(html, secret) {
		t.Fatal("the secret is still in the page after adding")
	}
	if v, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("add-key").value`)); v != "" {
		t.Fatal("the add form still holds the secret")
	}

	// Test the key: the fake upstream lists models.
	do("test key", chromedp.Click(chromedp.ID("test-"+k.ID)))
	waitJS("test result", textOf("msg-"+k.ID)+`.startsWith("OK")`)

	// Bulk import: one new, one duplicate, one invalid, one the provider
	// will reject later.
	do("bulk import",
		chromedp.Click(chromedp.ID("bulk-open")),
		chromedp.WaitVisible(chromedp.ID("bulk-form")),
		// Pasted text of any shape: a .env line, a JSON array, a stray line.
		chromedp.SendKeys(chromedp.ID("bulk-text"), "GEMINI_API_KEY=AIzaSyE2eBulkKey00000000000002\n[\""+secret+"\", \"AIzaSyE2eBadKey000000000000003\"]\nhas space\n"),
		chromedp.SendKeys(chromedp.ID("bulk-tags"), "bulk"),
	)
	waitJS("keys found before importing", textOf("bulk-found")+` === "3 keys found. No key on lines 3."`)
	do("import", chromedp.Click(chromedp.ID("bulk-submit")))
	waitJS("bulk result", textOf("bulk-summary")+` === "2 added, 1 duplicates, 1 invalid"`)
	waitJS("problems first", `document.querySelector("#bulk-result ul").id === "bulk-problems"`)
	waitJS("bulk keys in table", textOf("keys-count")+`.startsWith("3 of 3")`)
	if st, _ := admin.ProviderStatus(t.Context(), "gemini"); st == nil || st.TotalKeys != 3 {
		t.Fatalf("proxy after bulk import: %+v", st)
	} else {
		tagged := 0
		for _, k := range st.Keys {
			if strings.Join(k.Tags, ",") == "bulk" {
				tagged++
			}
		}
		if tagged != 2 {
			t.Fatalf("bulk tags on %d keys, want the 2 imported: %+v", tagged, st.Keys)
		}
	}

	// Edit: turn the key off, new weight and description.
	do("edit key",
		chromedp.Click(chromedp.ID("edit-"+k.ID)),
		chromedp.WaitVisible(chromedp.ID("e-save")),
		chromedp.Click(chromedp.ID("e-active")),
		clear("e-weight"), chromedp.SendKeys(chromedp.ID("e-weight"), "9"),
		clear("e-desc"), chromedp.SendKeys(chromedp.ID("e-desc"), "edited in e2e"),
		chromedp.Click(chromedp.ID("e-save")),
	)
	waitJS("edited row", textOf("row-"+k.ID)+`.includes("edited in e2e")`)
	if got, err := admin.GetKey(t.Context(), k.ID); err != nil || got.IsActive || got.Weight != 9 || got.Description != "edited in e2e" {
		t.Fatalf("proxy after edit: %v %+v", err, got)
	}

	// Filter by text.
	do("filter", chromedp.SendKeys(chromedp.ID("f-text"), "edited"))
	waitJS("filtered", textOf("keys-count")+`.startsWith("1 of 3")`)
	do("unfilter", clear("f-text"))
	waitJS("unfiltered", textOf("keys-count")+`.startsWith("3 of 3")`)

	// Bulk action on a selection: disable the two imported keys.
	var others []string
	if st, _ := admin.ProviderStatus(t.Context(), "gemini"); st != nil {
		for _, o := range st.Keys {
			if o.ID != k.ID {
				others = append(others, o.ID)
			}
		}
	}
	if len(others) != 2 {
		t.Fatalf("imported keys: %v", others)
	}
	do("bulk disable", chromedp.Click(chromedp.ID("sel-"+others[0])), chromedp.Click(chromedp.ID("sel-"+others[1])),
		chromedp.Click(chromedp.ID("sel-disable")))
	waitJS("bulk disabled", textOf("notice")+`.includes("2 keys disabled, 0 failed")`)
	for _, id := range others {
		if got, err := admin.GetKey(t.Context(), id); err != nil || got.IsActive {
			t.Fatalf("%s after bulk disable: %v %+v", id, err, got)
		}
	}
	shot(t, ctx, "keys")

	// A reload keeps the session (session storage) and the tab, and boots again.
	do("reload", chromedp.Reload())
	waitJS("reconnected after reload, on the Keys tab", `!document.getElementById("app-wasm-loader") && (document.getElementById("tab-keys") || {getAttribute: () => ""}).getAttribute("aria-current") === "page"`)
	waitJS("table after reload", textOf("keys-count")+`.startsWith("3 of 3")`)

	// Language switch.
	do("switch language", chromedp.Click(chromedp.ID("lang")))
	waitJS("Chinese UI", `document.querySelector("h1").innerText === "KeyPool 管理后台"`)
	shot(t, ctx, "keys-zh")
	do("switch back", chromedp.Click(chromedp.ID("lang")))
	waitJS("English UI", `document.querySelector("h1").innerText === "KeyPool admin"`)

	// Delete with confirmation. The confirmation takes the focus (on
	// Cancel); Escape closes it and gives the focus back.
	active := func(id string) string {
		return fmt.Sprintf(`document.activeElement && document.activeElement.id === %q`, id)
	}
	do("ask to delete", chromedp.Click(chromedp.ID("del-"+k.ID)))
	waitJS("focus on Cancel", active("del-no-"+k.ID))
	do("Escape", chromedp.KeyEvent(kb.Escape))
	waitJS("confirmation closed, focus back", `!document.getElementById(`+fmt.Sprintf("%q", "del-yes-"+k.ID)+`) && `+active("del-"+k.ID))
	do("delete key",
		chromedp.Click(chromedp.ID("del-"+k.ID)),
		chromedp.Click(chromedp.ID("del-yes-"+k.ID)),
	)
	waitJS("row gone", `!document.getElementById(`+fmt.Sprintf("%q", "row-"+k.ID)+`)`)
	if _, err := admin.GetKey(t.Context(), k.ID); adminclient.StatusOf(err) != 404 {
		t.Fatalf("proxy after delete: %v", err)
	}

	// Tokens: create (shown once), listed masked, revoke.
	do("create token",
		chromedp.Click(chromedp.ID("tab-tokens")),
		chromedp.WaitVisible(chromedp.ID("token-form")),
		chromedp.SendKeys(chromedp.ID("tok-name"), "e2e laptop"),
		chromedp.Click(chromedp.CSS("#tok-limits summary")),
		chromedp.WaitVisible(chromedp.ID("tok-rpm")),
		chromedp.SendKeys(chromedp.ID("tok-rpm"), "30"),
		chromedp.SendKeys(chromedp.ID("tok-models"), "gpt-4o*, gemini-*"),
		chromedp.Click(chromedp.ID("tok-create")),
	)
	waitJS("token shown", textOf("new-token-value")+`.startsWith("kp-")`)
	tokText, _ := chromedp.Run(ctx, chromedp.Evaluate[string](textOf("new-token-value")))
	toks, err := admin.Tokens(t.Context())
	var created *adminapi.Token
	for i := range toks {
		if toks[i].Name == "e2e laptop" {
			created = &toks[i]
		}
	}
	if err != nil || created == nil || created.Masked != pool.Mask(tokText) {
		t.Fatalf("proxy tokens: %v %+v (shown %q)", err, toks, tokText)
	}
	if created.Limits.RPM != 30 || len(created.Models) != 2 || created.Models[1] != "gemini-*" {
		t.Fatalf("token created without the form's limits: %+v", created)
	}
	waitJS("token listed", textOf("tok-"+created.ID)+`.includes(`+fmt.Sprintf("%q", created.Masked)+`)`)
	waitJS("limits and usage listed", textOf("tok-"+created.ID)+`.includes("30 rpm") && `+textOf("tok-"+created.ID)+`.includes("0 requests (0 refused)")`)
	waitJS("sources in words", textOf("tokens-table")+`.includes("from CLIENT_TOKENS") && `+textOf("tokens-table")+`.includes("when the proxy starts") && !`+textOf("tokens-table")+`.includes("never")`)
	// Copy: the button hands the token to the clipboard API (stubbed: a
	// headless browser has no clipboard to read back).
	do("copy token",
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`Object.defineProperty(navigator, "clipboard", {configurable: true, value: {writeText: s => { window.copiedText = s; return Promise.resolve() }}}) === navigator`))
			return err
		}),
		chromedp.Click(chromedp.ID("new-token-copy")))
	waitJS("copied", textOf("new-token-copied")+` === "Copied." && window.copiedText === `+fmt.Sprintf("%q", tokText))
	shot(t, ctx, "tokens")
	do("revoke token", chromedp.Click(chromedp.ID("revoke-"+created.ID)), chromedp.Click(chromedp.ID("revoke-yes-"+created.ID)))
	waitJS("token gone", `!document.getElementById(`+fmt.Sprintf("%q", "tok-"+created.ID)+`) && !document.getElementById("new-token")`)
	if toks, _ := admin.Tokens(t.Context()); len(toks) != 1 { // the CLIENT_TOKENS one stays
		t.Fatalf("proxy tokens after revoke: %+v", toks)
	}

	// Playground: one prompt through the relay with a client token; the
	// answer and the (masked) key that served it are shown.
	if _, err := admin.UpdateKey(t.Context(), others[0], adminapi.UpdateKeyRequest{IsActive: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	do("playground",
		chromedp.Click(chromedp.ID("tab-playground")),
		chromedp.WaitVisible(chromedp.ID("play-form")),
		choose("play-provider", "gemini"),
		choose("play-strategy", "leastUsed"),
		chromedp.SendKeys(chromedp.ID("play-token"), e2eClientToken),
		chromedp.SendKeys(chromedp.ID("play-prompt"), "ping"),
		chromedp.Click(chromedp.ID("play-send")),
	)
	waitJS("playground answer", textOf("play-answer")+` === "pong from the fake Gemini"`)
	waitJS("serving key shown", textOf("play-meta")+`.includes("Status 200") && `+textOf("play-meta")+`.includes(`+fmt.Sprintf("%q", others[0])+`)`)
	if served, _ := admin.GetKey(t.Context(), others[0]); served != nil {
		waitJS("serving key masked", textOf("play-meta")+`.includes(`+fmt.Sprintf("%q", served.MaskedKey)+`)`)
	}
	if got, err := admin.GetKey(t.Context(), others[0]); err != nil || got.Requests != 1 || got.Successes != 1 {
		t.Fatalf("serving key after the playground: %v %+v", err, got)
	}
	shot(t, ctx, "playground")

	// The overview's requests-over-time chart counts the relayed request,
	// as GET /admin/traffic does.
	do("overview", chromedp.Click(chromedp.ID("tab-overview")))
	relayed := func(minutes int) int64 {
		t.Helper()
		tr, err := admin.Traffic(t.Context(), minutes)
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, p := range tr.Providers {
			for _, b := range p.Buckets {
				n += b.Requests
			}
		}
		return n
	}
	chart := `document.getElementById("traffic-chart")`
	waitJS("traffic chart with the relayed request", fmt.Sprintf(`(() => { const c = %s; return !!c && c.namespaceURI === "http://www.w3.org/2000/svg" && c.dataset.range === "60" && +c.dataset.total >= 1 && !!c.querySelector('path.line[data-provider="gemini"]') })()`, chart))
	if got, _ := chromedp.Run(ctx, chromedp.Evaluate[string](chart+`.dataset.total`)); got != fmt.Sprint(relayed(60)) || got == "0" {
		t.Fatalf("chart total %s, proxy counted %d", got, relayed(60))
	}
	waitJS("legend", textOf("traffic-legend-gemini")+`.includes("gemini: `+fmt.Sprint(relayed(60))+` requests")`)
	// The tiles count the same requests in the same window; the chart is
	// as wide as its card, starts where this fresh proxy began counting,
	// and shows the current minute as a dot.
	waitJS("tiles agree with the chart", `document.querySelector("#tile-requests .n").innerText === `+chart+`.dataset.total`)
	waitJS("chart as wide as its card", fmt.Sprintf(`(() => { const c = %s, card = document.getElementById("traffic"); return +c.dataset.width === card.clientWidth && Math.abs(c.getBoundingClientRect().width - card.clientWidth) < 2 && card.clientWidth > 900 })()`, chart))
	waitJS("fresh proxy: the chart starts near its start", chart+`.dataset.points === "6" && !!`+chart+`.querySelector("circle.partial")`)
	do("6 h range", chromedp.Click(chromedp.ID("range-6h")))
	waitJS("6 h chart", fmt.Sprintf(`(() => { const c = %s; return c.dataset.range === "360" && c.dataset.total === "%d" && document.getElementById("range-6h").getAttribute("aria-pressed") === "true" })()`, chart, relayed(360)))
	do("1 h range", chromedp.Click(chromedp.ID("range-1h")))
	waitJS("1 h chart", chart+`.dataset.range === "60"`)

	// Reset usage from the overview.
	do("reset", chromedp.Click(chromedp.ID("reset-gemini")), chromedp.Click(chromedp.ID("reset-yes-gemini")))
	waitJS("reset done", textOf("notice")+`.includes("keys of gemini reset")`)
	waitJS("SVG chart drawn", `(() => { const c = document.getElementById("overview-chart"); return !!c && c.namespaceURI === "http://www.w3.org/2000/svg" && c.querySelectorAll("rect.seg-available").length > 0 && c.getBBox().width > 0 })()`)
	shot(t, ctx, "overview")

	// Phone width: the page must not scroll sideways (tables scroll in
	// their own box).
	// Dark mode: the switch goes system → dark → light.
	do("dark", chromedp.Click(chromedp.ID("theme")))
	waitJS("dark page", `document.documentElement.dataset.theme === "dark" && getComputedStyle(document.body).backgroundColor === "rgb(13, 17, 23)"`)
	shot(t, ctx, "overview-dark")
	do("light", chromedp.Click(chromedp.ID("theme")))
	waitJS("light page", `document.documentElement.dataset.theme === "light" && getComputedStyle(document.body).backgroundColor === "rgb(245, 247, 250)"`)
	if s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`localStorage.getItem("keypool.theme") || ""`)); s != `"light"` {
		t.Errorf("theme not remembered: %q", s)
	}

	// Auto-refresh every 10 s: a key added behind the dashboard's back
	// shows up, and the header says how long ago it refreshed.
	do("keys", chromedp.Click(chromedp.ID("tab-keys")))
	waitJS("keys", textOf("keys-count")+`.startsWith("2 of 2")`)
	do("auto-refresh", choose("auto-refresh", "10"))
	if _, err := admin.AddKey(t.Context(), adminapi.AddKeyRequest{Provider: "gemini", APIKey: "AIzaSyFakeE2eAutoRefresh00001"}); err != nil {
		t.Fatal(err)
	}
	waitJS("refreshed by itself", textOf("keys-count")+`.startsWith("3 of 3") && /^updated \d+ s ago$/.test(`+textOf("updated")+`)`)
	do("auto-refresh off", choose("auto-refresh", "0"))

	// Sortable headers: Last used sorts (on the proxy) by last use, the
	// latest first, then the other way; aria-sort says which. (The usage
	// counts were reset above: all ties.)
	do("sort by last use", chromedp.Click(chromedp.ID("sort-lastUsed")))
	waitJS("sorted, latest first", `document.getElementById("sort-lastUsed").closest("th").getAttribute("aria-sort") === "descending" && document.querySelector("#keys-table tbody tr").id === "row-`+others[0]+`"`)
	do("again", chromedp.Click(chromedp.ID("sort-lastUsed")))
	waitJS("never used first", `document.getElementById("sort-lastUsed").closest("th").getAttribute("aria-sort") === "ascending" && document.querySelector("#keys-table tbody tr:last-child").id === "row-`+others[0]+`"`)

	do("phone width", chromedp.EmulateViewport(390, 844), chromedp.Click(chromedp.ID("menu")), chromedp.Click(chromedp.ID("tab-keys")))
	waitJS("keys at phone width", `!!document.getElementById("keys-table")`)
	waitJS("no sideways scrolling", `document.documentElement.scrollWidth <= window.innerWidth + 1`)
	shot(t, ctx, "phone")
	t.Logf("whole browser session: %v", time.Since(browserStart).Round(time.Millisecond))
}

type e2eEnv struct {
	site, proxyBin string
	err            error
}

var (
	e2eOnce sync.Once
	e2e     e2eEnv
)

// setupE2E builds the Pages site (prefix /keypool) and the proxy binary
// once for all browser tests.
func setupE2E(t *testing.T) *e2eEnv {
	t.Helper()
	e2eOnce.Do(func() {
		dir, err := os.MkdirTemp("", "keypool-e2e-")
		if err != nil {
			e2e.err = err
			return
		}
		e2e.site, e2e.proxyBin = filepath.Join(dir, "site"), filepath.Join(dir, "worker-proxy")
		root := moduleRoot(t)
		start := time.Now()
		for _, args := range [][]string{{"run", "./wasm/build", "-out", e2e.site, "-prefix", sitePrefix}, {"build", "-o", e2e.proxyBin, "./worker-proxy"}} {
			cmd := exec.Command("go", args...)
			cmd.Dir = root
			out, err := cmd.CombinedOutput()
			if err != nil {
				e2e.err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
				return
			}
			t.Logf("go %s: %s", args[0], strings.TrimSpace(string(out)))
		}
		t.Logf("builds: %v", time.Since(start).Round(time.Millisecond))
	})
	if e2e.err != nil {
		t.Fatal(e2e.err)
	}
	return &e2e
}

// newBrowser starts headless Chromium with a fresh profile; the returned
// context ends it when the test ends.
// pollJS waits until expr is true in the page, up to timeout (polling
// every interval, 0 = chromedp's default). A page that navigates or
// reloads meanwhile (go-app boots in its 404.html, then in the app page)
// destroys the context the poll runs in; the poll starts again in the new
// one rather than fail.
func pollJS(ctx context.Context, expr string, timeout, interval time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		opts := []chromedp.PollOption{chromedp.WithPollingTimeout(time.Until(deadline))}
		if interval > 0 {
			opts = append(opts, chromedp.WithPollingInterval(interval))
		}
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, opts...))
		if err == nil || time.Now().After(deadline) || !transientContextError(err) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// transientContextError reports an error of a poll whose page went away
// under it.
func transientContextError(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "Cannot find context with specified id") ||
		strings.Contains(msg, "Execution context was destroyed") ||
		strings.Contains(msg, "Inspected target navigated or closed")
}

func newBrowser(t *testing.T, chrome, tmp string) context.Context {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.UserDataDir(filepath.Join(tmp, "profile")),
		chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	return ctx
}

func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(artifactDir(t), "dashboard-"+name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	t.Logf("screenshot: %s", p)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if e2e.site != "" {
		os.RemoveAll(filepath.Dir(e2e.site))
	}
	os.Exit(code)
}

// TestTenThousandKeysInChromium measures, with the proxy holding 10,000
// keys, the time from navigation to a usable keys table (the Keys table
// asks for one page: it never downloads every key), a search and the next
// page; then filters, searches, sorts and pages, and acts on a row, on a
// ticked selection and on "all matching", checking through the admin API
// which keys changed. Timings are logged, not asserted (see the README);
// only a gross regression (10 s) fails.
func TestTenThousandKeysInChromium(t *testing.T) {
	p, admin, n, counter := keysAtScale(t, 10_000)
	fromActions := counter.len()
	count := textOfID("keys-count")
	matchOf := func(k adminapi.KeyStatus) bool {
		return slices.Contains(k.Tags, "canary") && strings.Contains(k.MaskedKey, "…9")
	}

	// Filter (tag canary: 1,000), search "…9" (100 of them), sort by
	// creation reversed (a header click), page 2.
	p.do("tag canary", selectText("f-tag", "canary"))
	p.wait("canary", count+`.startsWith("1000 of 10000")`)
	p.do("search", typeInto("f-text", "…9"))
	p.wait("canary …9", count+`.startsWith("100 of 10000")`)
	p.do("newest first", chromedp.Click(chromedp.ID("sort-provider")))
	p.wait("sorted", `document.querySelector("th.c-provider").getAttribute("aria-sort") === "descending"`)
	p.do("page 2", chromedp.Click(chromedp.ID("page-next")))
	p.wait("page 2", textOfID("page-info")+` === "Page 2 of 2"`)
	rows := strings.Split(p.str(`[...document.querySelectorAll("#keys-table tbody tr")].map(r => r.id.slice(4)).join(",")`), ",")
	before := keyState(t, admin)
	if len(rows) != 50 {
		t.Fatalf("%d rows on page 2", len(rows))
	}
	var prev adminapi.KeyStatus
	for i, id := range rows {
		k := before[id]
		if !matchOf(k) {
			t.Fatalf("row %s (%s, %v) does not match the filter", id, k.MaskedKey, k.Tags)
		}
		if i > 0 && *k.CreatedAt > *prev.CreatedAt {
			t.Fatalf("rows not newest first: %s after %s", *k.CreatedAt, *prev.CreatedAt)
		}
		prev = k
	}

	// A row: Edit its description; only that key changes.
	p.do("edit row", chromedp.Click(chromedp.ID("edit-"+rows[0])))
	p.wait("edit form", `!!document.querySelector("#row-`+rows[0]+` #e-desc")`)
	p.do("save", typeInto("e-desc", "edited at 10k"), chromedp.Click(chromedp.ID("e-save")))
	p.wait("edited", textOfID("row-"+rows[0])+`.includes("edited at 10k")`)
	after := keyState(t, admin)
	for id, k := range after {
		if changed := k.Description != before[id].Description; changed != (id == rows[0]) {
			t.Fatalf("after editing %s, key %s description %q", rows[0], id, k.Description)
		}
	}
	// A selection: tick three rows, disable them; only they go off.
	ticked := rows[1:4]
	for _, id := range ticked {
		p.do("tick", chromedp.Click(chromedp.ID("sel-"+id)))
	}
	p.wait("3 selected", textOfID("selection-count")+` === "3 selected"`)
	p.do("disable", chromedp.Click(chromedp.ID("sel-disable")))
	p.wait("disabled", textOfID("notice")+`.includes("3 keys disabled, 0 failed")`)
	for id, k := range keyState(t, admin) {
		if k.IsActive == slices.Contains(ticked, id) {
			t.Fatalf("key %s active=%v; ticked %v", id, k.IsActive, ticked)
		}
	}
	p.do("clear selection", chromedp.Click(chromedp.ID("sel-none")))
	// All matching: the 100 keys of the filter, and no other, are deleted.
	p.do("select all matching", chromedp.Click(chromedp.ID("sel-all")))
	p.wait("100 selected", textOfID("selection-count")+` === "100 selected"`)
	p.do("ask", chromedp.Click(chromedp.ID("sel-delete")))
	p.wait("confirmation names the count", textOfID("selection")+`.includes("Delete 100 keys?")`)
	before = keyState(t, admin)
	p.do("delete", chromedp.Click(chromedp.ID("sel-delete-yes")))
	p.wait("deleted", textOfID("notice")+`.includes("100 keys deleted")`)
	after = keyState(t, admin)
	for id, k := range before {
		if _, kept := after[id]; kept == matchOf(k) {
			t.Fatalf("key %s (%s, %v) kept=%v", id, k.MaskedKey, k.Tags, kept)
		}
	}
	if len(after) != n-100 {
		t.Fatalf("%d keys left, want %d", len(after), n-100)
	}
	p.wait("table empty for the filter", count+`.startsWith("0 of")`)
	checkNoFullStatus(t, counter.since(fromActions), "10k actions")
	shot(t, p.ctx, "10k")
}

// TestHundredThousandKeysInChromium is the measurement at 100,000 keys
// (KEYPOOL_E2E_100K=1: importing them takes a while): the Keys tab's, and
// the tour of every tab keysAtScale makes, where no admin answer may carry
// every key.
func TestHundredThousandKeysInChromium(t *testing.T) {
	if os.Getenv("KEYPOOL_E2E_100K") != "1" {
		t.Skip("set KEYPOOL_E2E_100K=1")
	}
	p, admin, n, counter := keysAtScale(t, 100_000)
	// "All matching" at scale: the 10,000 canary keys are deleted; their
	// ids come as ids only (one page of 10,000), not as keys.
	from := counter.len()
	count := textOfID("keys-count")
	p.do("tag canary", selectText("f-tag", "canary"))
	p.wait("canary", count+`.startsWith("10000 of 100000")`)
	p.do("select all matching", chromedp.Click(chromedp.ID("sel-all")))
	p.wait("all selected", textOfID("selection-count")+` === "10000 selected"`)
	p.do("ask", chromedp.Click(chromedp.ID("sel-delete")))
	p.wait("confirmation", textOfID("selection")+`.includes("Delete 10000 keys?")`)
	start := time.Now()
	p.do("delete", chromedp.Click(chromedp.ID("sel-delete-yes")))
	p.wait("deleted", textOfID("notice")+`.includes("10000 keys deleted")`)
	t.Logf("100k: deleting all 10,000 matching keys took %v (ids collected, one job, progress polled)", time.Since(start).Round(time.Millisecond))
	if page, err := admin.StatusPage(t.Context(), adminapi.StatusQuery{Tag: "canary", Limit: 1}); err != nil || page.Matched != 0 || page.TotalKeys != n-10_000 {
		t.Fatalf("after deleting the canaries: %+v %v", page, err)
	}
	checkNoFullStatus(t, counter.since(from), "100k all matching")
}

// adminCounter is a reverse proxy in front of the real proxy that
// records every request the dashboard makes and the size of its answer.
// It asks the proxy for uncompressed answers, so the sizes are the JSON's.
type adminCounter struct {
	mu      sync.Mutex
	answers []adminAnswer
}

type adminAnswer struct {
	method, uri string
	bytes       int
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	http.ResponseWriter
	n int
}

func (w *countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n += n
	return n, err
}

func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// countAdmin starts an adminCounter in front of target and returns its URL.
func countAdmin(t *testing.T, target string) (string, *adminCounter) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(u)
		r.Out.Host = r.In.Host
		r.Out.Header.Del("Accept-Encoding")
	}}
	c := &adminCounter{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &countingWriter{ResponseWriter: w}
		rp.ServeHTTP(cw, r)
		c.mu.Lock()
		c.answers = append(c.answers, adminAnswer{r.Method, r.URL.RequestURI(), cw.n})
		c.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return srv.URL, c
}

// since returns the answers recorded from index i on.
func (c *adminCounter) since(i int) []adminAnswer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.answers[min(i, len(c.answers)):])
}

func (c *adminCounter) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.answers)
}

// maxAdminAnswer is the largest admin answer the dashboard may get at any
// pool size: every key of 10,000 is ~5 MB, a 1,000-key page ~0.5 MB.
const maxAdminAnswer = 1 << 20

// checkNoFullStatus fails on a request for the whole status (GET
// /admin/status without paging) and on an answer over maxAdminAnswer, and
// logs the requests per path, their bytes and the largest.
func checkNoFullStatus(t *testing.T, answers []adminAnswer, what string) {
	t.Helper()
	type stat struct{ n, bytes, max int }
	per := map[string]*stat{}
	var largest adminAnswer
	asked := 0
	for _, a := range answers {
		path, query, _ := strings.Cut(a.uri, "?")
		if a.method == "OPTIONS" { // CORS preflights
			continue
		}
		asked++
		v, _ := url.ParseQuery(query)
		if path == "/admin/status" && !adminapi.IsPaged(v) {
			t.Errorf("%s: asked for the whole status: %s %s (%d bytes)", what, a.method, a.uri, a.bytes)
		}
		if a.bytes > maxAdminAnswer {
			t.Errorf("%s: %s %s answered %d bytes (over %d)", what, a.method, a.uri, a.bytes, maxAdminAnswer)
		}
		if strings.HasPrefix(path, "/admin/keys/") {
			path = "/admin/keys/{id}"
		}
		s := per[a.method+" "+path]
		if s == nil {
			s = &stat{}
			per[a.method+" "+path] = s
		}
		s.n++
		s.bytes += a.bytes
		s.max = max(s.max, a.bytes)
		if a.bytes > largest.bytes {
			largest = a
		}
	}
	var lines []string
	for k, s := range per {
		lines = append(lines, fmt.Sprintf("%s ×%d %d B (max %d B)", k, s.n, s.bytes, s.max))
	}
	slices.Sort(lines)
	t.Logf("%s: %d requests: %s; largest answer %d B (%s %.80s)", what, asked, strings.Join(lines, "; "), largest.bytes, largest.method, largest.uri)
}

// keysAtScale starts a proxy holding n gemini keys (every tenth tagged
// canary, the others backup), opens the dashboard on the Keys tab and logs
// how long the usable table, a search and the next page take; then it
// reloads on the Overview (logging how long until its numbers show) and
// goes through every tab (the key drawer, a playground prompt), checking
// from the proxy's side that no answer carried every key. The dashboard
// talks to the proxy through an adminCounter.
func keysAtScale(t *testing.T, n int) (*browserPage, *adminclient.Client, int, *adminCounter) {
	if testing.Short() {
		t.Skip("short mode")
	}
	chrome := chromiumPath()
	if chrome == "" {
		missing(t, "chromium")
	}
	env := setupE2E(t)
	siteOrigin := servePages(t, env.site, sitePrefix)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"candidates":[{"content":{"parts":[{"text":"pong at scale"}],"role":"model"}}]}`)
	}))
	t.Cleanup(upstream.Close)
	realURL := startProxy(t, env.proxyBin, "ALLOWED_ORIGINS="+siteOrigin, "RETEST_INTERVAL=0", "GEMINI_BASE_URL="+upstream.URL+"/v1beta")
	admin := adminclient.New(realURL, e2eAdminKey)
	proxyURL, counter := countAdmin(t, realURL) // what the dashboard talks to
	groups := map[string][]string{}
	for i := range n {
		tag := "backup"
		if i%10 == 0 {
			tag = "canary"
		}
		groups[tag] = append(groups[tag], fmt.Sprintf("AIzaSyFakeScale%014d", i))
	}
	for _, tag := range []string{"canary", "backup"} {
		tags := []string{tag}
		keys := groups[tag]
		for lo := 0; lo < len(keys); lo += 20_000 {
			chunk := keys[lo:min(lo+20_000, len(keys))]
			if r, err := admin.BulkAdd(t.Context(), adminapi.BulkAddRequest{Provider: "gemini", APIKeys: chunk, Metadata: &adminapi.Metadata{Tags: &tags}}); err != nil || r.Added != len(chunk) {
				t.Fatalf("bulk add: %v", err)
			}
		}
	}
	p := &browserPage{t: t, ctx: newBrowser(t, chrome, t.TempDir()), tag: fmt.Sprintf("%dk", n/1000)}
	wait := func(what, expr string) time.Duration {
		t.Helper()
		start := time.Now()
		if err := pollJS(p.ctx, expr, 60*time.Second, 10*time.Millisecond); err != nil {
			shot(t, p.ctx, p.tag+"-failure")
			t.Fatalf("%s: %v", what, err)
		}
		return time.Since(start)
	}
	count := textOfID("keys-count")
	total := fmt.Sprintf("%d of %d", n, n)
	table := count + `.startsWith(` + fmt.Sprintf("%q", total) + `) && document.querySelectorAll("#keys-table tbody tr").length === 50`

	// An operator who was on the Keys tab: connection and tab are in
	// session storage, so a reload opens the Keys tab.
	p.do("first load", chromedp.Navigate(siteOrigin+sitePrefix+"/"))
	wait("boot", `!document.getElementById("app-wasm-loader")`)
	p.str(fmt.Sprintf(`sessionStorage.setItem("keypool.conn", JSON.stringify({url: %q, key: %q})) || sessionStorage.setItem("keypool.tab", JSON.stringify("keys")) || ""`, proxyURL, e2eAdminKey))
	start := time.Now()
	p.do("reload", chromedp.Reload())
	// The poll notes the page's own clock (ms since its navigation began)
	// the first time it sees the table: the Go-side figure adds the old
	// page's unload and chromedp's round trips to it.
	wait("keys table", `(`+table+`) && (window.kpUsableAt = window.kpUsableAt || performance.now()) > 0`)
	usable := time.Since(start)
	inPage := p.num(`Math.round(window.kpUsableAt)`)
	if perf, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`JSON.stringify(performance.getEntriesByType("resource").filter(e => /app.wasm|app.js|wasm_exec|admin.(status|summary)/.test(e.name)).map(e => [e.name.replace(/^.*\//, "").slice(0, 60), Math.round(e.startTime), Math.round(e.responseEnd), e.transferSize, e.decodedBodySize]))`)); err == nil {
		t.Logf("resources [name, start ms, end ms, transfer, size] since navigation: %s", perf)
	}
	if full := p.num(`performance.getEntriesByType("resource").filter(e => /admin\/status(\?provider=[a-z]+)?$/.test(e.name)).length`); full != 0 {
		t.Errorf("the Keys tab downloaded the whole status %d times", full)
	}
	// Only a gross regression fails (a shared 2-core machine swings this
	// by seconds); KEYPOOL_STRICT_BUDGET=1 (a quiet machine) holds 3 s.
	limit := 10 * time.Second
	if os.Getenv("KEYPOOL_STRICT_BUDGET") == "1" {
		limit = 3 * time.Second
	}
	if usable > limit {
		t.Errorf("keys table usable after %v, over %v", usable, limit)
	}

	fstart := time.Now()
	p.do("search", chromedp.SendKeys(chromedp.ID("f-text"), "za…9999"))
	typed := time.Since(fstart)
	wait("searched", count+`.startsWith("`+fmt.Sprint(n/10_000)+` of")`)
	search := time.Since(fstart)
	if perf, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`JSON.stringify(performance.getEntriesByType("resource").filter(e => /[?&]q=/.test(e.name)).map(e => Math.round(e.responseEnd - e.startTime)))`)); err == nil {
		t.Logf("search requests (ms each, from the browser): %s", perf)
	}
	p.do("clear search", typeInto("f-text", ""))
	wait("all again", table)
	pstart := time.Now()
	p.do("next page", chromedp.Click(chromedp.ID("page-next")))
	wait("page 2", textOfID("page-info")+` === "Page 2 of `+fmt.Sprint(n/50)+`"`)
	page := time.Since(pstart)
	if perf, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`(() => { const e = performance.getEntriesByType("resource").filter(e => /cursor=/.test(e.name)).pop(); return e ? String(Math.round(e.responseEnd - e.startTime)) : "" })()`)); err == nil {
		t.Logf("next page request: %s ms", perf)
	}
	t.Logf("%d keys: navigation → usable keys table %d ms by the page's clock (%v from the reload command); search typed in %v, answered %v after the last key; next page %v",
		n, inPage, usable.Round(time.Millisecond), typed.Round(time.Millisecond), (search - typed).Round(time.Millisecond), page.Round(time.Millisecond))
	p.do("page 1", chromedp.Click(chromedp.ID("page-prev")))
	wait("page 1", textOfID("page-info")+` === "Page 1 of `+fmt.Sprint(n/50)+`"`)
	checkNoFullStatus(t, counter.since(0), p.tag+" Keys tab")
	// For scale: the whole status, which the overview downloaded before
	// GET /admin/summary (asked from here, not by the dashboard).
	if req, err := http.NewRequestWithContext(t.Context(), "GET", realURL+"/admin/status", nil); err == nil {
		req.Header.Set("X-Admin-Key", e2eAdminKey)
		fstart := time.Now()
		if resp, err := http.DefaultClient.Do(req); err == nil {
			size, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			sum := 0
			for _, a := range counter.since(0) {
				if a.method == "GET" && a.uri == "/admin/summary" {
					sum = a.bytes
				}
			}
			t.Logf("%d keys: the whole status is %d bytes (%v to fetch from Go); the summary %d bytes", n, size, time.Since(fstart).Round(time.Millisecond), sum)
		}
	}

	// The Overview after a reload: how long until its numbers show.
	fromOverview := counter.len()
	p.str(`sessionStorage.setItem("keypool.tab", JSON.stringify("overview")) || ""`)
	totalText := fmtThousands(n)
	overview := `((document.querySelector("#tile-total .n")||{}).innerText||"") === "` + totalText + `" && !!document.getElementById("overview-chart") && ` + textOfID("ov-gemini") + `.includes("` + totalText + `")`
	start = time.Now()
	p.do("reload on the overview", chromedp.Reload())
	wait("overview", overview)
	ovUsable := time.Since(start)
	wait("traffic chart", `!!document.querySelector("#traffic-chart[data-total]")`)
	ovChart := time.Since(start)
	if perf, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`JSON.stringify(performance.getEntriesByType("resource").filter(e => /admin\//.test(e.name)).map(e => [e.name.replace(/^.*\/admin\//, "").slice(0, 40), Math.round(e.startTime), Math.round(e.responseEnd)]))`)); err == nil {
		t.Logf("overview admin requests [name, start ms, end ms] since navigation: %s", perf)
	}
	t.Logf("%d keys: navigation → usable overview (tiles, provider table, key chart) %v; requests chart %v", n, ovUsable.Round(time.Millisecond), ovChart.Round(time.Millisecond))

	// Every tab: Keys (and a key's drawer), Tokens, Requests, Playground
	// (a prompt: the masked key that served it), back to the Overview and
	// Keys; the Refresh button on each.
	refresh := func(what string) {
		p.do(what+" refresh", chromedp.Click(chromedp.ID("refresh")))
		wait(what+" refreshed", `document.querySelector("main").getAttribute("aria-busy") === "false"`)
	}
	refresh("overview")
	p.do("keys tab", chromedp.Click(chromedp.ID("tab-keys")))
	wait("keys table", table)
	first := p.str(`document.querySelector("#keys-table tbody tr").id.slice(4)`)
	p.do("open drawer", chromedp.Click(chromedp.ID("open-"+first)))
	wait("drawer", `!!document.getElementById("detail-close") && `+textOfID("detail-state")+` !== ""`)
	p.do("close drawer", chromedp.Click(chromedp.ID("detail-close")))
	refresh("keys")
	wait("keys table again", table)
	p.do("tokens tab", chromedp.Click(chromedp.ID("tab-tokens")))
	wait("tokens", `!!document.getElementById("token-form")`)
	refresh("tokens")
	p.do("requests tab", chromedp.Click(chromedp.ID("tab-requests")))
	wait("requests", `!!document.getElementById("req-form")`)
	refresh("requests")
	p.do("playground tab", chromedp.Click(chromedp.ID("tab-playground")))
	wait("playground", `!!document.getElementById("play-form")`)
	p.do("prompt", typeInto("play-token", e2eClientToken), typeInto("play-prompt", "ping"), chromedp.Click(chromedp.ID("play-send")))
	wait("answer", textOfID("play-answer")+` === "pong at scale" && `+textOfID("play-meta")+`.includes("AIza")`)
	refresh("playground")
	p.do("overview tab", chromedp.Click(chromedp.ID("tab-overview")))
	wait("overview again", overview)
	p.do("keys tab again", chromedp.Click(chromedp.ID("tab-keys")))
	wait("keys table, page 1", table+` && `+textOfID("page-info")+` === "Page 1 of `+fmt.Sprint(n/50)+`"`)
	checkNoFullStatus(t, counter.since(fromOverview), p.tag+" every tab")
	return p, admin, n, counter
}

// fmtThousands writes n as the dashboard does in English: 100,000.
func fmtThousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func ptr[T any](v T) *T { return &v }
