//go:build !js

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/adminclient"
)

// browserPage drives one page of the dashboard in Chromium.
type browserPage struct {
	t   *testing.T
	ctx context.Context
	tag string // names failure screenshots
}

func (p *browserPage) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, steps...); err != nil {
		shot(p.t, p.ctx, p.tag+"-failure")
		p.t.Fatalf("%s: %v", what, err)
	}
}

// wait polls a boolean expression in the page.
func (p *browserPage) wait(what, expr string) {
	p.t.Helper()
	if err := pollJS(p.ctx, expr, 30*time.Second, 0); err != nil {
		body, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.body.innerText`))
		shot(p.t, p.ctx, p.tag+"-failure")
		p.t.Fatalf("%s: %v\npage text:\n%s", what, err, body)
	}
}

func (p *browserPage) str(expr string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		p.t.Fatalf("%s: %v", expr, err)
	}
	return s
}

func (p *browserPage) num(expr string) int {
	p.t.Helper()
	n, err := chromedp.Run(p.ctx, chromedp.Evaluate[int](expr))
	if err != nil {
		p.t.Fatalf("%s: %v", expr, err)
	}
	return n
}

func textOfID(id string) string {
	return fmt.Sprintf(`((document.getElementById(%q)||{}).innerText||"")`, id)
}

// selectIndex picks a <select>'s option by position, as a person does,
// and fires its change event.
func selectIndex(id string, i int) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(() => { const el = document.getElementById(%q); el.selectedIndex = %d; return el.dispatchEvent(new Event("change", {bubbles: true})) })()`, id, i)))
		return err
	})
}

// selectText picks the option showing text.
func selectText(id, text string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(() => { const el = document.getElementById(%q); const i = [...el.options].findIndex(o => o.text === %q); if (i < 0) throw new Error("no option " + %q); el.selectedIndex = i; return el.dispatchEvent(new Event("change", {bubbles: true})) })()`, id, text, text)))
		return err
	})
}

// typeInto replaces an input's value and fires one input event.
func typeInto(id, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(() => { const el = document.getElementById(%q); el.value = %q; return el.dispatchEvent(new Event("input", {bubbles: true})) })()`, id, value)))
		return err
	})
}

// openConnected boots the dashboard already connected to proxyURL (as
// after an earlier visit: the connection is in session storage).
func openConnected(p *browserPage, siteOrigin, proxyURL string) {
	p.t.Helper()
	p.do("first load", chromedp.Navigate(siteOrigin+sitePrefix+"/"))
	p.wait("boot", `!document.getElementById("app-wasm-loader")`)
	p.str(fmt.Sprintf(`sessionStorage.setItem("keypool.conn", JSON.stringify({url: %q, key: %q})) || ""`, proxyURL, e2eAdminKey))
	p.do("reload", chromedp.Reload())
	p.wait("overview", `!document.getElementById("app-wasm-loader") && !!document.getElementById("overview")`)
}

// keyState is what the proxy holds, by key id.
func keyState(t *testing.T, c *adminclient.Client) map[string]adminapi.KeyStatus {
	t.Helper()
	st, err := c.ProviderStatus(t.Context(), "gemini")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]adminapi.KeyStatus{}
	for _, k := range st.Keys {
		out[k.ID] = k
	}
	return out
}

// rowKeySecret is the secret of the e2e row test's key i.
func rowKeySecret(i int) string { return fmt.Sprintf("AIzaSyFakeE2eRow%012d", i) }

// TestRowActionsInChromium reproduces, in Chromium, the defects where a
// row's buttons and checkbox acted on the key the row showed before a
// page change, search, filter or sort; where "Select all matching" took
// more keys than matched; and where choosing "All" again in the State
// filter matched nothing. Every change is checked through the admin API
// (and, for Test, by which key the fake upstream saw).
func TestRowActionsInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	chrome := chromiumPath()
	if chrome == "" {
		missing(t, "chromium")
	}
	env := setupE2E(t)
	siteOrigin := servePages(t, env.site, sitePrefix)
	var (
		mu     sync.Mutex
		tested []string // secrets the upstream saw, in order
	)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("x-goog-api-key")
		if key == "" {
			key = r.URL.Query().Get("key")
		}
		mu.Lock()
		tested = append(tested, key)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if strings.Contains(key, "Revoked") { // Gemini's answer to an invalid key
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}`)
			return
		}
		io.WriteString(w, `{"models":[{"name":"models/gemini-2.5-flash"}]}`)
	}))
	t.Cleanup(upstream.Close)
	proxyURL := startProxy(t, env.proxyBin, "ALLOWED_ORIGINS="+siteOrigin, "GEMINI_BASE_URL="+upstream.URL+"/v1beta", "RETEST_INTERVAL=0")
	admin := adminclient.New(proxyURL, e2eAdminKey)

	// 120 keys: key i is tagged canary when i%3 == 0, else backup, and
	// described "key NNN".
	const n = 120
	secretOf := map[string]string{} // description → secret
	for i := range n {
		tag, desc := "backup", fmt.Sprintf("key %03d", i)
		if i%3 == 0 {
			tag = "canary"
		}
		tags := []string{tag}
		if _, err := admin.AddKey(t.Context(), adminapi.AddKeyRequest{Provider: "gemini", APIKey: rowKeySecret(i),
			Metadata: &adminapi.Metadata{Description: &desc, Tags: &tags}}); err != nil {
			t.Fatal(err)
		}
		secretOf[desc] = rowKeySecret(i)
	}

	p := &browserPage{t: t, ctx: newBrowser(t, chrome, t.TempDir()), tag: "rows"}
	openConnected(p, siteOrigin, proxyURL)
	count := textOfID("keys-count")
	rowIDs := `[...document.querySelectorAll("#keys-table tbody tr")].map(r => r.id.slice(4)).join(",")`
	rowsNow := func() []string { return strings.Split(p.str(rowIDs), ",") }
	p.do("keys tab", chromedp.Click(chromedp.ID("tab-keys")))
	p.wait("table", count+`.startsWith("120 of 120")`)

	// Page 2, first row: Test reaches the upstream with that row's key.
	page1 := rowsNow()
	p.do("page 2", chromedp.Click(chromedp.ID("page-next")))
	p.wait("page 2 shown", textOfID("page-info")+` === "Page 2 of 3"`)
	page2 := rowsNow()
	if page2[0] == page1[0] {
		t.Fatal("page 2 shows page 1")
	}
	rowKey := keyState(t, admin)[page2[0]]
	p.do("test page 2's first row", chromedp.Click(chromedp.ID("test-"+page2[0])))
	p.wait("test result on that row", textOfID("msg-"+page2[0])+`.startsWith("OK")`)
	mu.Lock()
	saw := slices.Clone(tested)
	mu.Unlock()
	if len(saw) != 1 || saw[0] != secretOf[rowKey.Description] {
		t.Fatalf("Test on page 2's first row (%s) sent keys %q to the upstream, want only that row's", rowKey.Description, saw)
	}

	// Page 2, first row: Edit changes that key only.
	before := keyState(t, admin)
	p.do("edit page 2's first row", chromedp.Click(chromedp.ID("edit-"+page2[0])))
	p.wait("edit form on that row", `!!document.querySelector("#row-`+page2[0]+` #e-desc")`)
	p.do("save", typeInto("e-desc", "edited on page 2"), chromedp.Click(chromedp.ID("e-save")))
	p.wait("edited", textOfID("row-"+page2[0])+`.includes("edited on page 2")`)
	after := keyState(t, admin)
	for id, k := range after {
		if changed := k.Description != before[id].Description; changed != (id == page2[0]) {
			t.Fatalf("after editing %s, key %s description %q (was %q)", page2[0], id, k.Description, before[id].Description)
		}
	}

	// A search leaving one row: its Delete asks there and deletes that key.
	p.do("search", typeInto("f-text", "key 077"))
	p.wait("one row", count+`.startsWith("1 of 120")`)
	target := rowsNow()[0]
	if keyState(t, admin)[target].Description != "key 077" {
		t.Fatalf("the searched row shows %s", target)
	}
	p.do("ask to delete", chromedp.Click(chromedp.ID("del-"+target)))
	p.wait("confirmation on that row", `!!document.querySelector("#row-`+target+` #del-yes-`+target+`") && document.querySelectorAll(".confirm").length === 1`)
	p.do("delete", chromedp.Click(chromedp.ID("del-yes-"+target)))
	p.wait("deleted", count+`.startsWith("0 of 119")`)
	after = keyState(t, admin)
	if _, still := after[target]; still || len(after) != n-1 {
		t.Fatalf("deleting the searched row: %d keys left, target still there: %v", len(after), still)
	}
	p.do("clear search", typeInto("f-text", ""))
	p.wait("all back", count+`.startsWith("119 of 119")`)

	// State filter, then "All" again: every key.
	p.do("state disabled", selectText("f-state", "disabled"))
	p.wait("no disabled keys", count+`.startsWith("0 of 119")`)
	p.do("state All", selectIndex("f-state", 0))
	p.wait("All again shows every key", count+`.startsWith("119 of 119")`)

	// Tag filter and a sort, then tick five rows and disable them.
	p.do("tag backup, sorted by last use", selectText("f-tag", "backup"), selectText("f-sort", "Last used"))
	p.wait("backup keys", count+`.startsWith("79 of 119")`)
	ticked := rowsNow()[:5]
	for _, id := range ticked {
		p.do("tick "+id, chromedp.Click(chromedp.ID("sel-"+id)))
	}
	p.wait("5 selected", textOfID("selection-count")+` === "5 selected"`)
	p.do("disable", chromedp.Click(chromedp.ID("sel-disable")))
	p.wait("disabled", textOfID("notice")+`.includes("5 keys disabled, 0 failed")`)
	var off []string
	for id, k := range keyState(t, admin) {
		if !k.IsActive {
			off = append(off, id)
		}
		if k.IsActive == slices.Contains(ticked, id) {
			t.Errorf("key %s (%v) active=%v; ticked %v", id, k.Tags, k.IsActive, ticked)
		}
	}
	if len(off) != 5 {
		t.Fatalf("%d keys disabled, want the 5 ticked", len(off))
	}
	p.do("clear selection and dismiss the notice", chromedp.Click(chromedp.ID("sel-none")), chromedp.Click(chromedp.ID("notice-close")))
	p.wait("notice dismissed", `document.getElementById("notice").classList.contains("empty")`)

	// Select all matching a filter and delete: exactly the filtered keys.
	p.do("tag canary", selectText("f-tag", "canary"))
	p.wait("canary keys", count+`.startsWith("40 of 119")`)
	p.do("select all matching", chromedp.Click(chromedp.ID("sel-all")))
	p.wait("40 selected", textOfID("selection-count")+` === "40 selected"`)
	p.do("ask to delete them", chromedp.Click(chromedp.ID("sel-delete")))
	p.wait("confirmation names the count", textOfID("selection")+`.includes("Delete 40 keys?")`)
	before = keyState(t, admin)
	p.do("delete them", chromedp.Click(chromedp.ID("sel-delete-yes")))
	p.wait("deleted", textOfID("notice")+`.includes("40 keys deleted")`)
	after = keyState(t, admin)
	var gone []string
	for id, k := range before {
		_, kept := after[id]
		if !kept {
			gone = append(gone, id)
		}
		if kept == slices.Contains(k.Tags, "canary") {
			t.Errorf("key %s (%v) kept=%v after deleting all canary keys", id, k.Tags, kept)
		}
	}
	if sort.Strings(gone); len(gone) != 40 || len(after) != 79 {
		t.Fatalf("deleted %d keys, %d left; want 40 and 79", len(gone), len(after))
	}
	shot(t, p.ctx, "rows")
	// A success notice goes by itself (NoticeTTL).
	p.wait("notice faded", `document.getElementById("notice").classList.contains("empty")`)

	// Add from the top of the page while a filter hides the new key: the
	// table clears the filter, turns to the key's page and highlights it.
	p.do("tag backup", selectText("f-tag", "backup"), selectIndex("f-sort", 0))
	p.wait("backup keys", count+`.startsWith("79 of 79")`)
	p.do("open the add panel", chromedp.Click(chromedp.ID("add-open")))
	p.wait("add form above the table", `(() => { const f = document.getElementById("add-form"), t = document.getElementById("keys-table"); return !!f && f.getBoundingClientRect().top < t.getBoundingClientRect().top && document.activeElement.id === "add-key" })()`)
	p.do("add", typeInto("add-key", "AIzaSyFakeE2eRevealed0000001"), typeInto("add-desc", "revealed"), chromedp.Click(chromedp.ID("add-submit")))
	p.wait("new key shown and highlighted", `(() => { const r = document.querySelector("#keys-table tr.fresh"); if (!r || !r.innerText.includes("revealed")) return false; const b = r.getBoundingClientRect(); return b.top >= 0 && b.bottom <= innerHeight })()`)
	p.wait("filter cleared, last page", count+`.startsWith("80 of 80") && document.getElementById("f-tag").selectedIndex === 0 && `+textOfID("page-info")+` === "Page 2 of 2"`)
	p.do("close the panel", chromedp.Click(chromedp.ID("panel-close")))
	p.wait("panel closed", `!document.getElementById("add-form") && document.activeElement.id === "add-open"`)

	// Two keys the provider rejects: re-test them all, then remove them
	// all, each after a confirmation naming the count.
	var rejected []string
	for i := range 2 {
		r, err := admin.AddKey(t.Context(), adminapi.AddKeyRequest{Provider: "gemini", APIKey: fmt.Sprintf("AIzaSyFakeE2eRevoked%09d", i)})
		if err != nil {
			t.Fatal(err)
		}
		admin.TestKey(t.Context(), r.KeyID)
		rejected = append(rejected, r.KeyID)
	}
	sort.Strings(rejected)
	mu.Lock()
	tested = nil
	mu.Unlock()
	p.do("refresh", chromedp.Click(chromedp.ID("refresh")))
	p.wait("sweep buttons count them", textOfID("sweep-retest")+` === "Re-test all disabled (2)" && `+textOfID("sweep-remove")+` === "Remove all invalid keys (2)"`)
	p.do("re-test all disabled", chromedp.Click(chromedp.ID("sweep-retest")))
	p.wait("confirmation", textOfID("keys-toolbar")+`.includes("Test the 2 disabled keys again?")`)
	p.do("yes", chromedp.Click(chromedp.ID("sweep-yes")))
	p.wait("re-tested", textOfID("notice")+`.includes("0 keys passed the test, 2 failed.")`)
	mu.Lock()
	saw = slices.Clone(tested)
	mu.Unlock()
	if sort.Strings(saw); len(saw) != 2 || !strings.Contains(saw[0], "Revoked") || !strings.Contains(saw[1], "Revoked") {
		t.Fatalf("re-test sent %q upstream, want the two rejected keys", saw)
	}
	p.do("remove all invalid", chromedp.Click(chromedp.ID("sweep-remove")))
	p.wait("confirmation", textOfID("keys-toolbar")+`.includes("Delete the 2 keys the providers rejected?")`)
	p.do("yes", chromedp.Click(chromedp.ID("sweep-yes")))
	p.wait("removed", textOfID("notice")+`.includes("2 keys deleted")`)
	after = keyState(t, admin)
	for _, id := range rejected {
		if _, ok := after[id]; ok {
			t.Errorf("rejected key %s still there", id)
		}
	}
	if len(after) != 80 {
		t.Fatalf("%d keys left, want 80", len(after))
	}
}

// TestNothingWiderThanAPhone opens every page at 390 px, with the content
// that made pages wide (a long one-line upstream error in the
// Playground, a long failure reason, an open edit row), and measures that
// nothing is wider than the screen.
func TestNothingWiderThanAPhone(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	chrome := chromiumPath()
	if chrome == "" {
		missing(t, "chromium")
	}
	env := setupE2E(t)
	siteOrigin := servePages(t, env.site, sitePrefix)
	longErr := `{"error":{"code":400,"message":"` + strings.Repeat("Invalid JSON payload received. Unknown name \\\"contents_typo\\\": Cannot find field. ", 12) + `","status":"INVALID_ARGUMENT"}}`
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, ":generateContent") {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, longErr)
			return
		}
		io.WriteString(w, `{"models":[{"name":"models/gemini-2.5-flash"}]}`)
	}))
	t.Cleanup(upstream.Close)
	proxyURL := startProxy(t, env.proxyBin, "ALLOWED_ORIGINS="+siteOrigin, "GEMINI_BASE_URL="+upstream.URL+"/v1beta", "RETEST_INTERVAL=0")
	admin := adminclient.New(proxyURL, e2eAdminKey)
	var ids []string
	for i := range 3 {
		desc := strings.Repeat("a long description without any break ", 4)
		tags := []string{"phone", fmt.Sprintf("t%d", i)}
		r, err := admin.AddKey(t.Context(), adminapi.AddKeyRequest{Provider: "gemini", APIKey: fmt.Sprintf("AIzaSyFakeE2ePhone%011d", i),
			Metadata: &adminapi.Metadata{Description: &desc, Tags: &tags}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.KeyID)
	}

	p := &browserPage{t: t, ctx: newBrowser(t, chrome, t.TempDir()), tag: "phone"}
	p.do("phone", chromedp.EmulateViewport(390, 844))
	p.do("connect screen", chromedp.Navigate(siteOrigin+sitePrefix+"/"))
	p.wait("boot", `!document.getElementById("app-wasm-loader") && !!document.getElementById("proxy-url")`)
	fits := func(page string) {
		t.Helper()
		// Let layout settle (fonts, the chart) before measuring.
		p.wait(page+" laid out", `new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`)
		w := p.num(`Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)`)
		if w > 390 {
			wide := p.str(`[...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > 391 || (e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX === "visible")).slice(0, 5).map(e => e.tagName + "#" + e.id + "." + e.className + " " + Math.round(e.getBoundingClientRect().right)).join("; ")`)
			shot(t, p.ctx, "phone-"+page)
			t.Errorf("%s is %d px wide at 390 px; too wide: %s", page, w, wide)
		}
	}
	fits("connect")
	// A wrong key: the error shows on the connect screen.
	p.do("wrong key", typeInto("proxy-url", proxyURL), typeInto("admin-key", "wrong-key-fake-0000000000000"), chromedp.Click(chromedp.ID("connect")))
	p.wait("error", textOfID("connect-error")+` !== ""`)
	fits("connect error")

	openConnected(p, siteOrigin, proxyURL)
	fits("overview")
	// One header row with a menu; the menu opens the tabs.
	if hh := p.num(`Math.round(document.querySelector("header.top").getBoundingClientRect().height)`); hh > 56 {
		t.Errorf("the phone header is %d px high: not one row", hh)
	}
	p.do("keys", chromedp.Click(chromedp.ID("menu")), chromedp.Click(chromedp.ID("tab-keys")))
	p.wait("keys", textOfID("keys-count")+`.startsWith("3 of 3")`)
	fits("keys")
	// Rows are cards with their actions on the screen.
	p.wait("rows as cards", `getComputedStyle(document.querySelector("#keys-table thead")).display === "none" && (() => { const r = document.getElementById("test-`+ids[0]+`").getBoundingClientRect(); return r.width > 0 && r.right <= 390 })()`)
	p.do("edit a row", chromedp.Click(chromedp.ID("edit-"+ids[0])))
	p.wait("edit row", `!!document.getElementById("e-save")`)
	fits("keys while editing")
	// The row goes back to a card before the next click: a click aimed
	// while the edit form still stood there can land elsewhere.
	p.do("cancel", chromedp.Click(chromedp.ID("e-cancel")))
	p.wait("edit closed", `!document.getElementById("e-save") && !!document.getElementById("del-`+ids[1]+`")`)
	p.do("delete", chromedp.Click(chromedp.ID("del-"+ids[1])))
	p.wait("confirmation", `!!document.getElementById("del-yes-`+ids[1]+`")`)
	fits("keys with a confirmation")
	p.do("tokens", chromedp.Click(chromedp.ID("menu")), chromedp.Click(chromedp.ID("tab-tokens")))
	p.wait("tokens", `!!document.getElementById("tokens-table")`)
	p.do("create token", typeInto("tok-name", "phone"), chromedp.Click(chromedp.ID("tok-create")))
	p.wait("token shown", textOfID("new-token-value")+`.startsWith("kp-")`)
	fits("tokens")
	p.do("playground", chromedp.Click(chromedp.ID("menu")), chromedp.Click(chromedp.ID("tab-playground")))
	p.wait("playground", `!!document.getElementById("play-form")`)
	fits("playground")
	p.do("send", typeInto("play-token", e2eClientToken), typeInto("play-prompt", "ping"), chromedp.Click(chromedp.ID("play-send")))
	p.wait("upstream error shown", textOfID("play-result")+`.includes("Invalid JSON payload")`)
	fits("playground with an upstream error")
}

// TestKeyDetailInChromium opens the key detail drawer after a search and
// a page change, reads why a key is out without hovering (also at phone
// width), and acts from the drawer: each action must hit the key it
// shows, checked through the admin API.
func TestKeyDetailInChromium(t *testing.T) {
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
		if strings.Contains(r.Header.Get("x-goog-api-key"), "Revoked") {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}`)
			return
		}
		io.WriteString(w, `{"models":[{"name":"models/gemini-2.5-flash"}]}`)
	}))
	t.Cleanup(upstream.Close)
	proxyURL := startProxy(t, env.proxyBin, "ALLOWED_ORIGINS="+siteOrigin, "GEMINI_BASE_URL="+upstream.URL+"/v1beta", "RETEST_INTERVAL=0")
	admin := adminclient.New(proxyURL, e2eAdminKey)
	var ids []string
	for i := range 70 {
		secret := fmt.Sprintf("AIzaSyFakeE2eDetailGood%07d", i)
		if i%10 == 5 {
			secret = fmt.Sprintf("AIzaSyFakeE2eDetailRevoked%04d", i)
		}
		r, err := admin.AddKey(t.Context(), adminapi.AddKeyRequest{Provider: "gemini", APIKey: secret})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.KeyID)
	}
	revoked := ids[55]
	if _, err := admin.TestKey(t.Context(), revoked); err != nil {
		t.Fatal(err)
	}
	keys := keyState(t, admin)

	p := &browserPage{t: t, ctx: newBrowser(t, chrome, t.TempDir()), tag: "detail"}
	openConnected(p, siteOrigin, proxyURL)
	p.do("keys tab", chromedp.Click(chromedp.ID("tab-keys")))
	p.wait("table", textOfID("keys-count")+`.startsWith("70 of 70")`)

	// Search the revoked key (it is on page 2), open its drawer.
	search := func(id string) {
		t.Helper()
		p.do("search", typeInto("f-text", strings.TrimPrefix(keys[id].MaskedKey, "AIza")))
		p.wait("one row", `document.querySelectorAll("#keys-table tbody tr").length === 1 && !!document.getElementById("row-`+id+`")`)
	}
	p.do("page 2", chromedp.Click(chromedp.ID("page-next")))
	search(revoked)
	p.do("open the drawer", chromedp.Click(chromedp.ID("open-"+revoked)))
	p.wait("why, in words", textOfID("detail-why")+`.includes("rejected by the provider") && `+textOfID("detail-why")+`.includes("400 API_KEY_INVALID: API key not valid.")`)
	p.wait("last error once", textOfID("detail-last-error")+`.startsWith("400 · in a key test") && !`+textOfID("detail-last-error")+`.includes("400 400") && !!document.getElementById("detail-disabled-at")`)
	if c := p.str(`getComputedStyle(document.querySelector("#detail-last-error .errmsg")).color`); c != "rgb(207, 34, 46)" {
		t.Errorf("the last error is not styled as an error: color %s", c)
	}
	shot(t, p.ctx, "detail")
	p.do("phone width", chromedp.EmulateViewport(390, 844))
	p.wait("drawer on the screen", `(() => { const r = document.getElementById("key-detail").getBoundingClientRect(); return r.left >= 0 && r.right <= 390 && document.documentElement.scrollWidth <= 390 })()`)
	shot(t, p.ctx, "detail-phone")
	p.do("Escape closes", chromedp.Click(chromedp.ID("detail-close")))
	p.wait("closed", `!document.getElementById("detail-close")`)
	p.do("desktop", chromedp.EmulateViewport(1280, 900))

	// Another search: disable that key from its drawer.
	good := ids[12]
	search(good)
	p.do("open", chromedp.Click(chromedp.ID("open-"+good)))
	p.wait("drawer of that key", textOfID("detail-title")+`.includes(`+fmt.Sprintf("%q", keys[good].MaskedKey)+`)`)
	p.do("disable from the drawer", chromedp.Click(chromedp.ID("detail-toggle")))
	p.wait("disabled", textOfID("detail-why")+`.includes("Turned off by an operator")`)
	for id, k := range keyState(t, admin) {
		if want := id != good; k.IsActive != want {
			t.Errorf("key %s active=%v after disabling %s from the drawer", id, k.IsActive, good)
		}
	}

	// Clear the search, page 2, delete its first row from the drawer.
	p.do("clear search", typeInto("f-text", ""))
	p.wait("all", textOfID("keys-count")+`.startsWith("70 of 70")`)
	p.do("page 2", chromedp.Click(chromedp.ID("page-next")))
	p.wait("page 2", textOfID("page-info")+` === "Page 2 of 2"`)
	first := strings.TrimPrefix(p.str(`document.querySelector("#keys-table tbody tr").id`), "row-")
	p.do("open", chromedp.Click(chromedp.ID("open-"+first)))
	p.do("delete", chromedp.Click(chromedp.ID("detail-delete")))
	p.do("confirm", chromedp.Click(chromedp.ID("detail-del-yes-"+first)))
	p.wait("row gone", `!document.getElementById("row-`+first+`") && !document.getElementById("detail-close")`)
	left := keyState(t, admin)
	if _, ok := left[first]; ok || len(left) != 69 {
		t.Fatalf("after deleting %s from the drawer: %d keys left, still there: %v", first, len(left), ok)
	}
}
