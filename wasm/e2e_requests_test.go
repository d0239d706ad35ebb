//go:build !js

package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/adminclient"
	"github.com/keypool/keypool/worker-proxy/pool"
)

// TestRequestsInChromium relays requests through the real proxy, then
// reads them in the Requests tab: filtered by status, narrowed to one key
// from a row's key link and from the key's drawer, paged with "Older
// requests"; the alert settings show the webhook without its path, and
// "Send a test alert" reaches the local webhook.
func TestRequestsInChromium(t *testing.T) {
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
		if strings.Contains(r.Header.Get("x-goog-api-key"), "Busy") {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}`)
			return
		}
		io.WriteString(w, `{"candidates":[{"content":{"parts":[{"text":"pong"}],"role":"model"}}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":1}}`)
	}))
	t.Cleanup(upstream.Close)
	hooks := make(chan string, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hooks <- string(b)
	}))
	t.Cleanup(hook.Close)
	proxyURL := startProxy(t, env.proxyBin, "ALLOWED_ORIGINS="+siteOrigin, "GEMINI_BASE_URL="+upstream.URL+"/v1beta",
		"RETEST_INTERVAL=0", "ALERT_WEBHOOK_URL=json="+hook.URL+"/secret-fake-hook-path", "MAX_RETRIES=0")
	admin := adminclient.New(proxyURL, e2eAdminKey)
	const good, busy = "AIzaSyFakeE2eRequestsGood0001", "AIzaSyFakeE2eRequestsBusy0002"
	ids := map[string]string{}
	for _, s := range []string{good, busy} {
		r, err := admin.AddKey(t.Context(), adminapi.AddKeyRequest{Provider: "gemini", APIKey: s})
		if err != nil {
			t.Fatal(err)
		}
		ids[s] = r.KeyID
	}
	// 60 requests; the busy key's answer 503 (until passive health rests it).
	for range 60 {
		req, _ := http.NewRequest("POST", proxyURL+"/api/gemini/models/gemini-2.5-flash:generateContent", strings.NewReader(`{"contents":[{"parts":[{"text":"ping"}]}]}`))
		req.Header.Set("x-goog-api-key", e2eClientToken)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	// What the API holds, to compare the screen with (the log writes in
	// batches within a second).
	count := func(q adminclient.RequestQuery) int {
		t.Helper()
		q.Limit = 500
		r, err := admin.Requests(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		return len(r.Records)
	}
	for deadline := time.Now().Add(10 * time.Second); count(adminclient.RequestQuery{}) < 60; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests in the log, want 60", count(adminclient.RequestQuery{}))
		}
	}
	failed, viaGood, viaBusy := count(adminclient.RequestQuery{Status: "5xx"}), count(adminclient.RequestQuery{KeyID: ids[good]}), count(adminclient.RequestQuery{KeyID: ids[busy]})
	if failed == 0 || viaBusy != failed || viaGood+viaBusy != 60 {
		t.Fatalf("the log: %d 5xx, %d via the good key, %d via the busy one", failed, viaGood, viaBusy)
	}
	rows := func(n int, cond string) string {
		return fmt.Sprintf(`document.querySelectorAll("#req-table tbody tr").length === %d && [...document.querySelectorAll("#req-table tbody tr")].every(r => %s)`, n, cond)
	}
	p := &browserPage{t: t, ctx: newBrowser(t, chrome, t.TempDir()), tag: "requests"}
	openConnected(p, siteOrigin, proxyURL)
	p.do("requests tab", chromedp.Click(chromedp.ID("tab-requests")))
	p.wait("first page", `document.querySelectorAll("#req-table tbody tr").length === 50 && `+textOfID("req-info")+`.includes("DATA_DIR/requests.db")`)
	if html := p.str(`document.documentElement.outerHTML`); strings.Contains(html, good) || strings.Contains(html, busy) || strings.Contains(html, "secret-fake-hook-path") || strings.Contains(html, e2eClientToken) {
		t.Fatal("a secret is in the page")
	}
	p.wait("row content", rows(50, `r.innerText.includes("CLIENT_TOKENS #1") && r.innerText.includes("gemini / gemini-2.5-flash")`))
	p.do("older", chromedp.Click(chromedp.ID("req-more")))
	p.wait("all 60", `document.querySelectorAll("#req-table tbody tr").length === 60 && !document.getElementById("req-more")`)

	// Only 5xx.
	p.do("status 5xx", selectIndex("req-status", 3), chromedp.Click(chromedp.ID("req-apply")))
	p.wait("the failures", rows(failed, `r.innerText.includes("503 upstream")`))

	// A row's key link narrows to that key.
	p.do("clear", chromedp.Click(chromedp.ID("req-clear")))
	p.wait("cleared", `document.querySelectorAll("#req-table tbody tr").length === 50`)
	p.str(fmt.Sprintf(`[...document.querySelectorAll("#req-table a")].find(a => a.innerText === %q).click() || ""`, pool.Mask(good)))
	p.wait("one key", `(document.getElementById("req-key")||{}).value === "`+ids[good]+`" && `+rows(min(viaGood, 50), `r.innerText.includes("200")`))

	// The key's drawer links to its requests.
	p.do("keys tab", chromedp.Click(chromedp.ID("tab-keys")))
	p.do("open the busy key", chromedp.Click(chromedp.ID("open-"+ids[busy])))
	p.do("its requests", chromedp.Click(chromedp.ID("detail-requests")))
	p.wait("busy key's requests", `(document.getElementById("req-key")||{}).value === "`+ids[busy]+`" && `+rows(viaBusy, `r.innerText.includes("503")`))

	// Alerts: settings and a test alert.
	p.wait("alert settings", textOfID("al-destinations")+`.includes("json http://127.0.0.1:") && !`+textOfID("alerts")+`.includes("secret-fake")`)
	p.do("test alert", chromedp.Click(chromedp.ID("al-test")))
	p.wait("delivered", textOfID("al-test-msg")+` === "Test alert delivered to every destination."`)
	for {
		b := <-hooks
		if strings.Contains(b, `"kind":"test"`) {
			break
		}
	}
	p.wait("listed as recent", textOfID("al-recent")+`.includes("API Key Pool: test alert")`)
	shot(t, p.ctx, "requests")
	p.do("phone width", chromedp.EmulateViewport(390, 844))
	p.wait("nothing wider than the phone", `document.documentElement.scrollWidth <= 390`)
	shot(t, p.ctx, "requests-phone")
}
