//go:build !js

package ui

import (
	"fmt"
	"strings"
	"testing"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/adminclient"
	"github.com/maxence-charriere/go-app/v10/pkg/app"
)

func TestCleanErrorAndReasons(t *testing.T) {
	for _, c := range []struct {
		status     int
		msg        string
		want       string
		wantStatus int
		wantWhere  string
	}{
		{400, "key test: 400 API_KEY_INVALID: API key not valid.", "API_KEY_INVALID: API key not valid.", 400, "key test"},
		{403, "HTTP 403: 403 Forbidden", "Forbidden", 403, ""},
		{429, "Resource exhausted (429)", "Resource exhausted (429)", 429, ""},
		{500, "404 model not found", "404 model not found", 500, ""}, // another code stays
		{0, "status 503 - overloaded", "overloaded", 503, ""},
		{400, "4000 tokens is too many", "4000 tokens is too many", 400, ""},
	} {
		st, msg, where := CleanError(c.status, c.msg)
		if msg != c.want || st != c.wantStatus || where != c.wantWhere {
			t.Errorf("CleanError(%d, %q) = %d %q %q; want %d %q %q", c.status, c.msg, st, msg, where, c.wantStatus, c.want, c.wantWhere)
		}
	}
	for _, c := range []struct{ lang, reason, want string }{
		{LangEN, "invalid_key: 400 API_KEY_INVALID: API key not valid.", "rejected by the provider (invalid, revoked or suspended key) — 400 API_KEY_INVALID: API key not valid."},
		{LangEN, "passive health: upstream", "failed several times in a row — provider error"},
		{LangEN, "rate_limited", "rate limited"},
		{LangZH, "quota_exhausted: 429 daily limit", "配额已用完——429 daily limit"},
		{LangEN, "something else", "something else"},
	} {
		if got := ReasonText(c.lang, c.reason); got != c.want {
			t.Errorf("ReasonText(%q) = %q; want %q", c.reason, got, c.want)
		}
	}
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -12345: "-12,345"} {
		if got := fmtInt(n); got != want {
			t.Errorf("fmtInt(%d) = %q", n, got)
		}
	}
}

// The detail drawer explains, without hovering, why a key is out (its
// reason in words, its last error once, when it was disabled), and its
// actions hit the key it shows after the table changed under it.
func TestKeyDetailDrawer(t *testing.T) {
	up := &geminiUpstream{}
	ts := startServerUpstream(t, up)
	c := adminclient.New(ts.URL, adminKey)
	var ids []string
	for i := range 60 {
		secret := fmt.Sprintf("AIzaSyFakeDetailGood%09d", i)
		if i%20 == 0 {
			secret = fmt.Sprintf("AIzaSyFakeDetailRevoked%06d", i)
		}
		r, err := c.AddKey(t.Context(), adminapi.AddKeyRequest{Provider: "gemini", APIKey: secret})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.KeyID)
	}
	revoked := ids[20]
	if _, err := c.TestKey(t.Context(), revoked); err != nil {
		t.Fatal(err)
	}
	h := mount(t, &Dashboard{})
	h.connect(ts.URL, adminKey)
	h.fire("tab-keys", "click")
	if strings.Contains(h.html(), `id="detail-close"`) {
		t.Fatal("the drawer shows before a key is opened")
	}

	// Go to page 2 first so the row under the same position changes key.
	h.fire("page-next", "click")
	h.fire("page-prev", "click")
	h.fire("open-"+revoked, "click")
	h.contains(`id="detail-why"`, "Out of the pool until re-tested or enabled: rejected by the provider (invalid, revoked or suspended key) — 400 API_KEY_INVALID: API key not valid. Please pass a valid API key.<",
		`id="detail-disabled-at"`, `id="detail-last-error"`, "400 · in a key test", "API_KEY_INVALID: API key not valid.")
	if html := h.html(); strings.Contains(html, "400 400") || strings.Contains(html, `class="errmsg">400`) {
		t.Fatal("the status code is repeated")
	}
	// Test from the drawer: the answer says the status once, in words.
	h.fire("detail-test", "click")
	h.contains(`id="detail-msg"`, "rejected by the provider (invalid, revoked or suspended key): 400 API_KEY_INVALID: API key not valid.")
	if got := up.keys(); len(got) != 1 || !strings.Contains(got[0], "Revoked") {
		t.Fatalf("the drawer's Test sent %v upstream", got)
	}
	h.fire("detail-close", "click")

	// Search to one key, open it, disable it from the drawer; then search
	// another and delete it from the drawer: each action hits that key.
	good := ids[33]
	goodKey := keysIn(t, c)[good]
	h.do(func(ctx app.Context) {
		h.d.filter.Text = strings.TrimPrefix(goodKey.MaskedKey, "AIza")
		h.d.searchChanged(ctx)
	})
	if rows := h.rowIDs(); len(rows) != 1 || rows[0] != good {
		t.Fatalf("search shows %v, want %s", rows, good)
	}
	h.fire("open-"+good, "click")
	h.contains(`id="detail-toggle"`, "Disable")
	h.fire("detail-toggle", "click")
	after := keysIn(t, c)
	for id, k := range after {
		if k.IsActive != (id != good) {
			t.Errorf("key %s active=%v after disabling %s from the drawer", id, k.IsActive, good)
		}
	}
	h.contains("Turned off by an operator", "Enable")

	other := ids[47]
	otherKey := after[other]
	h.do(func(ctx app.Context) {
		h.d.filter.Text = strings.TrimPrefix(otherKey.MaskedKey, "AIza")
		h.d.searchChanged(ctx)
	})
	h.fire("open-"+other, "click")
	h.fire("detail-delete", "click")
	h.fire("detail-del-yes-"+other, "click")
	left := keysIn(t, c)
	if _, ok := left[other]; ok || len(left) != 59 {
		t.Fatalf("after deleting %s from the drawer: %d keys left, it is still there: %v", other, len(left), ok)
	}
	if strings.Contains(h.html(), `id="detail-close"`) {
		t.Fatal("the drawer stays open on a deleted key")
	}
}

// Edit opens with the key's values as they are now, even when the key
// changed after its row (and its mounted Edit handler) first rendered.
func TestEditOpensWithCurrentValues(t *testing.T) {
	ts := startServer(t)
	c := adminclient.New(ts.URL, adminKey)
	desc := "first description"
	r, err := c.AddKey(t.Context(), adminapi.AddKeyRequest{Provider: "gemini", APIKey: "AIzaSyFakeEditCurrent000000001", Metadata: &adminapi.Metadata{Description: &desc}})
	if err != nil {
		t.Fatal(err)
	}
	h := mount(t, &Dashboard{})
	h.connect(ts.URL, adminKey)
	h.fire("tab-keys", "click")
	changed := "changed elsewhere"
	if _, err := c.UpdateKey(t.Context(), r.KeyID, adminapi.UpdateKeyRequest{Metadata: &adminapi.Metadata{Description: &changed}}); err != nil {
		t.Fatal(err)
	}
	h.do(func(ctx app.Context) { h.d.refresh(ctx) })
	h.fire("edit-"+r.KeyID, "click")
	if h.d.edit.Description != changed {
		t.Fatalf("the row's Edit opened with %q, want the current %q", h.d.edit.Description, changed)
	}
	h.fire("e-cancel", "click")
	h.fire("open-"+r.KeyID, "click")
	h.fire("detail-edit", "click")
	if h.d.edit.Description != changed || h.d.editID != r.KeyID {
		t.Fatalf("the drawer's Edit opened with %q", h.d.edit.Description)
	}
}
