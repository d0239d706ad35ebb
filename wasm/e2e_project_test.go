//go:build !js

package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/adminclient"
)

// gemini429PerMinute is Gemini's real per-minute 429 (the fake upstream's
// RateLimited answer, worker-proxy/internal/fakeupstream/gemini.go; see
// shared/notes/provider-errors.md), for the model MODEL.
const gemini429PerMinute = `{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.","status":"RESOURCE_EXHAUSTED","details":[` +
	`{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_input_token_count","quotaId":"GenerateContentInputTokensPerModelPerMinute-FreeTier","quotaDimensions":{"location":"global","model":"MODEL"},"quotaValue":"250000"}]},` +
	`{"@type":"type.googleapis.com/google.rpc.Help","links":[{"description":"Learn more about Gemini API quotas","url":"https://ai.google.dev/gemini-api/docs/rate-limits"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"26s"}]}}`

// TestProjectsAndModelRestsInChromium: a key rested for gemini-2.5-pro by
// Gemini's real 429 shows, still "active", with a resting badge in the
// table and the model, until when and why in its drawer; the overview's
// project and resting counts agree with /admin/status; a project set in
// the add form and changed in the edit row reaches the proxy, and a bad
// one shows the proxy's error.
func TestProjectsAndModelRestsInChromium(t *testing.T) {
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
		key := strings.ToLower(r.Header.Get("x-goog-api-key"))
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.Contains(key, "busy") && strings.Contains(r.URL.Path, "/gemini-2.5-pro:"):
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, strings.ReplaceAll(gemini429PerMinute, "MODEL", "gemini-2.5-pro"))
		case strings.HasSuffix(r.URL.Path, ":generateContent"):
			io.WriteString(w, `{"candidates":[{"content":{"parts":[{"text":"pong"}],"role":"model"},"finishReason":"STOP","index":0}]}`)
		default:
			io.WriteString(w, `{"models":[{"name":"models/gemini-2.5-flash"},{"name":"models/gemini-2.5-pro"}]}`)
		}
	}))
	t.Cleanup(upstream.Close)
	proxyURL := startProxy(t, env.proxyBin, "ALLOWED_ORIGINS="+siteOrigin, "GEMINI_BASE_URL="+upstream.URL+"/v1beta", "RETEST_INTERVAL=0")
	admin := adminclient.New(proxyURL, e2eAdminKey)
	ctx := t.Context()
	add := func(secret, project string) string {
		req := adminapi.AddKeyRequest{Provider: "gemini", APIKey: secret}
		if project != "" {
			req.Project = &project
		}
		r, err := admin.AddKey(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return r.KeyID
	}
	busy := add("AIzaSyFakeE2eProjBusy000001", "111")
	add("AIzaSyFakeE2eProjGood000002", "111")
	plain := add("AIzaSyFakeE2eProjPlain00003", "")
	for i := 0; len(keyState(t, admin)[busy].ModelCooldowns) == 0; i++ {
		if i == 10 {
			t.Fatal("the busy key never met its 429")
		}
		path, hdr, body := adminclient.PlaygroundRequest("gemini", "gemini-2.5-pro", "", e2eClientToken, "hello")
		if r, err := admin.Relay(ctx, "POST", path, hdr, body); err != nil || r.Status != 200 {
			t.Fatalf("relay: %v %+v", err, r)
		}
	}
	if k := keyState(t, admin)[busy]; k.State != adminapi.StateActive || k.ModelCooldowns[0].Model != "gemini-2.5-pro" {
		t.Fatalf("busy key: %s %+v", k.State, k.ModelCooldowns)
	}

	p := &browserPage{t: t, ctx: newBrowser(t, chrome, t.TempDir()), tag: "projects"}
	openConnected(p, siteOrigin, proxyURL)

	// Overview: the same numbers as /admin/status.
	st, err := admin.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pairs := 0
	for _, pr := range st.Providers {
		pairs += pr.RestingModelPairs
	}
	if st.Projects != 1 || st.KeysWithoutProject != 1 || pairs != 1 {
		t.Fatalf("status: %d projects, %d without, %d resting pairs", st.Projects, st.KeysWithoutProject, pairs)
	}
	p.wait("overview counts", fmt.Sprintf(`document.querySelector("#tile-resting .n").innerText === "%d" && %s.includes("gemini: 2 keys in 1 project + 1 of unknown project")`, pairs, textOfID("ov-quotas")))
	p.wait("provider row", textOfID("ov-gemini")+`.includes("2 keys in 1 project + 1 of unknown project")`)

	// Table and drawer.
	p.do("keys tab", chromedp.Click(chromedp.ID("tab-keys")))
	p.wait("resting badge", textOfID("rest-"+busy)+` === "1 model resting" && document.querySelector("#row-`+busy+` .badge.active") !== null`)
	if p.num(`document.querySelectorAll("#keys-table .badge.resting").length`) != 1 {
		t.Fatal("another key has a resting badge")
	}
	p.do("open the drawer", chromedp.Click(chromedp.ID("open-"+busy)))
	p.wait("drawer", textOfID("detail-rests")+`.includes("gemini-2.5-pro") && `+textOfID("detail-rests")+`.includes("rate limited") && `+
		textOfID("detail-project")+`.includes("111") && `+textOfID("detail-project")+`.includes("set by an operator")`)
	shot(t, p.ctx, "project-drawer")
	p.do("close", chromedp.Click(chromedp.ID("detail-close")))

	// Add with a bad project, then a good one.
	p.do("open the add panel", chromedp.Click(chromedp.ID("add-open")))
	p.wait("add form", `!!document.getElementById("add-project")`)
	p.do("add with a bad project", typeInto("add-key", "AIzaSyFakeE2eProjAdded00004"), typeInto("add-project", "a/b"), chromedp.Click(chromedp.ID("add-submit")))
	p.wait("the proxy's error in the form", textOfID("add-msg")+`.includes("400") && `+textOfID("add-msg")+`.includes("project may only contain")`)
	if n := len(keyState(t, admin)); n != 3 {
		t.Fatalf("%d keys after a refused add, want 3", n)
	}
	p.do("add with a good project", typeInto("add-project", "444"), chromedp.Click(chromedp.ID("add-submit")))
	p.wait("added", textOfID("add-msg")+`.startsWith("Added")`)
	var added adminapi.KeyStatus
	for _, k := range keyState(t, admin) {
		if k.MaskedKey == "AIza…0004" {
			added = k
		}
	}
	if added.Project != "444" || added.ProjectLearned {
		t.Fatalf("added key: project %q learned %v, want 444 set", added.Project, added.ProjectLearned)
	}
	// The table redraws (and scrolls the new row into view) when the page
	// with the added key arrives, and the panel leaves on the next frame:
	// a click aimed before either lands where the button was.
	p.wait("new key in the table", `document.querySelector("#keys-table tr.fresh") !== null && `+textOfID("keys-count")+`.startsWith("4 of 4")`)
	p.do("close the panel", chromedp.Click(chromedp.ID("panel-close")))
	p.wait("panel closed", `!document.getElementById("add-form") && document.activeElement.id === "add-open"`)

	// Edit: set a project on the plain key, then clear the busy key's.
	p.do("edit", chromedp.Click(chromedp.ID("edit-"+plain)))
	p.wait("edit row", `!!document.querySelector("#row-`+plain+` #e-project")`)
	p.do("save", typeInto("e-project", "555"), chromedp.Click(chromedp.ID("e-save")))
	p.wait("saved", `!document.getElementById("e-save")`)
	if k := keyState(t, admin)[plain]; k.Project != "555" {
		t.Fatalf("plain key's project %q after the edit, want 555", k.Project)
	}
	p.wait("focus back on the row", `document.activeElement.id === "edit-`+plain+`"`)
	p.do("edit busy", chromedp.Click(chromedp.ID("edit-"+busy)))
	p.wait("edit row", `document.getElementById("e-project") && document.getElementById("e-project").value === "111"`)
	p.do("clear", typeInto("e-project", ""), chromedp.Click(chromedp.ID("e-save")))
	p.wait("saved", `!document.getElementById("e-save")`)
	if k := keyState(t, admin)[busy]; k.Project != "" {
		t.Fatalf("busy key's project %q after clearing it", k.Project)
	}
}
