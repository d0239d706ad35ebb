//go:build !js

package ui

import (
	"strings"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/adminclient"
	"github.com/maxence-charriere/go-app/v10/pkg/app"
)

// Column headers sort, and sort again the other way, saying so with
// aria-sort; a row action after sorting hits the row's key; the page size
// and page number are the operator's to choose.
func TestSortHeadersAndPageSize(t *testing.T) {
	ts := startServer(t)
	c := adminclient.New(ts.URL, adminKey)
	taggedPool(t, c, 120)
	keys := keysIn(t, c)
	h := mount(t, &Dashboard{})
	h.connect(ts.URL, adminKey)
	h.fire("tab-keys", "click")
	ariaSort := func(id string) string {
		var out string
		html := h.html()
		i := strings.Index(html, `id="`+id+`"`)
		th := html[strings.LastIndex(html[:i], "<th"):i]
		if j := strings.Index(th, `aria-sort="`); j >= 0 {
			out = th[j+11:]
			out = out[:strings.Index(out, `"`)]
		}
		return out
	}
	// The proxy sorts: the newest key first, then the oldest.
	newest, oldest := "", ""
	for _, k := range keys {
		if k.Description == "key 119" {
			newest = k.ID
		}
		if k.Description == "key 000" {
			oldest = k.ID
		}
	}
	h.fire("sort-provider", "click") // the default order: ascending, so this reverses it
	rows := h.rowIDs()
	if rows[0] != newest || ariaSort("sort-provider") != "descending" || ariaSort("sort-requests") != "none" {
		t.Fatalf("creation descending: first row %s, want %s; aria-sort %q", rows[0], newest, ariaSort("sort-provider"))
	}
	h.contains("Provider ▼")
	h.fire("sort-provider", "click")
	if rows := h.rowIDs(); rows[0] != oldest || ariaSort("sort-provider") != "ascending" {
		t.Fatalf("creation ascending: first row %s, want %s", rows[0], oldest)
	}
	h.fire("sort-provider", "click")
	rows = h.rowIDs()
	// Delete the first row now shown: exactly that key goes.
	target := rows[0]
	h.fire("del-"+target, "click")
	h.fire("del-yes-"+target, "click")
	left := keysIn(t, c)
	if _, ok := left[target]; ok || len(left) != 119 {
		t.Fatalf("deleting the first sorted row: %d keys left, %s still there: %v", len(left), target, ok)
	}

	// Page size 100: two pages; page 2 shows the other 19.
	h.do(func(ctx app.Context) { h.d.pageSize = 100; h.d.filterChanged(ctx) })
	if n := len(h.rowIDs()); n != 100 {
		t.Fatalf("%d rows at page size 100", n)
	}
	h.contains("Page 1 of 2")
	h.fire("page-next", "click")
	if n := len(h.rowIDs()); n != 19 {
		t.Fatalf("%d rows on page 2", n)
	}
}

// Auto-refresh refreshes once its interval passed since the last answer
// (not while a row is being edited), the header says how long ago, the
// theme switch cycles system → dark → light, and a tab closes the phone
// menu.
func TestAutoRefreshThemeAndMenu(t *testing.T) {
	ts := startServer(t)
	c := adminclient.New(ts.URL, adminKey)
	h := mount(t, &Dashboard{})
	h.connect(ts.URL, adminKey)
	first := h.d.updatedAt
	h.do(func(ctx app.Context) { h.d.Tick(ctx, first.Add(25*time.Second)) })
	h.contains(`id="updated"`, "updated 25 s ago")
	if !h.d.updatedAt.Equal(first) {
		t.Fatal("refreshed with auto-refresh off")
	}
	if _, err := c.AddKey(t.Context(), adminapi.AddKeyRequest{Provider: "gemini", APIKey: "AIzaSyFakeAutoRefresh000000001"}); err != nil {
		t.Fatal(err)
	}
	h.do(func(ctx app.Context) { h.d.SetAutoRefresh(ctx, 10) })
	h.do(func(ctx app.Context) { h.d.editID = "editing"; h.d.Tick(ctx, first.Add(30*time.Second)) })
	if h.d.sum.TotalKeys != 0 {
		t.Fatal("auto-refresh ran while a row was being edited")
	}
	h.do(func(ctx app.Context) { h.d.editID = ""; h.d.Tick(ctx, first.Add(31*time.Second)) })
	if h.d.sum.TotalKeys != 1 || !h.d.updatedAt.After(first) {
		t.Fatalf("auto-refresh did not run: %d keys", h.d.sum.TotalKeys)
	}
	h.contains("every 10 s", "every 30 s")

	for _, want := range []string{ThemeDark, ThemeLight, ThemeAuto} {
		h.fire("theme", "click")
		if h.d.theme != want {
			t.Fatalf("theme %q, want %q", h.d.theme, want)
		}
	}
	h.fire("menu", "click")
	h.contains(`class="top open"`)
	h.fire("tab-keys", "click")
	if h.d.menuOpen {
		t.Fatal("the menu stays open after choosing a tab")
	}
	h.d.lang = LangZH
	h.contains("调试台", "自动刷新", "主题：跟随系统")
}
