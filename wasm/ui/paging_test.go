//go:build !js

package ui

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/adminclient"
	"github.com/maxence-charriere/go-app/v10/pkg/app"
)

// pagedPool fills a proxy with n gemini keys: key i is described
// "key NNNN", tagged "tI" with I = i%5, and keys with i%4 == 0 have no
// project (the others project 1000 + i%3).
func pagedPool(t *testing.T, c *adminclient.Client, n int) {
	t.Helper()
	type group struct {
		tag, project string
	}
	groups := map[group][]string{}
	var order []group
	for i := range n {
		g := group{tag: fmt.Sprintf("t%d", i%5)}
		if i%4 != 0 {
			g.project = fmt.Sprint(1000 + i%3)
		}
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], fmt.Sprintf("AIzaSyFakePaged%014d", i))
	}
	for _, g := range order {
		tags := []string{g.tag}
		req := adminapi.BulkAddRequest{Provider: "gemini", APIKeys: groups[g], Metadata: &adminapi.Metadata{Tags: &tags}}
		if g.project != "" {
			req.Project = &g.project
		}
		if r, err := c.BulkAdd(t.Context(), req); err != nil || r.Added != len(groups[g]) {
			t.Fatalf("bulk add: %v", err)
		}
	}
}

// serverIDs lists the ids the proxy's paged API gives for f, in order.
func serverIDs(t *testing.T, c *adminclient.Client, f Filter) []string {
	t.Helper()
	ids, err := CollectIDs(t.Context(), c, f.Query())
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// The Keys table shows one page of the proxy's paged status at a time:
// next, previous and a page jump follow the proxy's order (cursors seen
// are kept to go back), a filter, search, sort and the Project filter go
// to the proxy, the totals are the page's, and the table never asks for
// the whole status.
func TestKeysTablePaged(t *testing.T) {
	ts := startServer(t)
	c := adminclient.New(ts.URL, adminKey)
	const n = 2000
	pagedPool(t, c, n)
	var full, pages atomic.Int64
	spy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/admin/status" {
			if adminapi.IsPaged(r.URL.Query()) {
				pages.Add(1)
			} else {
				full.Add(1)
			}
		}
		ts.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(spy.Close)
	h := mount(t, &Dashboard{})
	h.connect(spy.URL, adminKey)
	fullBefore := full.Load()
	h.fire("tab-keys", "click")
	all := serverIDs(t, c, Filter{})
	if len(all) != n {
		t.Fatalf("proxy lists %d keys", len(all))
	}
	h.contains("2000 of 2000 keys", "Page 1 of 40")
	if got := h.rowIDs(); !slices.Equal(got, all[:50]) {
		t.Fatalf("page 1 rows differ from the proxy's first page")
	}
	h.fire("page-next", "click")
	if got := h.rowIDs(); !slices.Equal(got, all[50:100]) {
		t.Fatal("page 2 rows differ")
	}
	h.contains("Page 2 of 40")
	// A jump far ahead walks the proxy's pages; back goes by the cursors seen.
	h.do(func(ctx app.Context) { h.d.loadKeys(ctx, 37*50) })
	if got := h.rowIDs(); !slices.Equal(got, all[37*50:38*50]) {
		t.Fatal("page 38 rows differ")
	}
	h.contains("Page 38 of 40")
	h.fire("page-prev", "click")
	if got := h.rowIDs(); !slices.Equal(got, all[36*50:37*50]) {
		t.Fatal("page 37 rows differ")
	}
	// Beyond the end: the last page.
	h.do(func(ctx app.Context) { h.d.loadKeys(ctx, 10*n) })
	if got := h.rowIDs(); !slices.Equal(got, all[39*50:]) {
		t.Fatalf("past the end shows %d rows, want the last page", len(got))
	}
	// Page size 200 keeps the first row in view.
	h.do(func(ctx app.Context) { h.d.pageSize = 200; h.d.loadKeys(ctx, h.d.kp.offset/200*200) })
	h.contains("Page 10 of 10")

	// Filter, search and sort go to the proxy; totals are the page's.
	f := Filter{Tag: "t2", Text: "…", Sort: "created", Reverse: true}
	h.do(func(ctx app.Context) { h.d.pageSize = 50; h.d.filter = f; h.d.filterChanged(ctx) })
	want := serverIDs(t, c, f)
	if len(want) != n/5 {
		t.Fatalf("tag t2 matches %d", len(want))
	}
	h.contains(fmt.Sprintf("%d of 2000 keys", len(want)), "Page 1 of 8")
	if got := h.rowIDs(); !slices.Equal(got, want[:50]) {
		t.Fatal("filtered, reversed rows differ")
	}
	// Project: "-" keeps the keys of unknown project; the filter offers
	// the projects of the keys seen.
	h.contains(`id="f-project"`, `value="-"`, `value="1001"`)
	f = Filter{Project: adminapi.NoProject}
	h.do(func(ctx app.Context) { h.d.filter = f; h.d.filterChanged(ctx) })
	if want := serverIDs(t, c, f); len(want) != n/4 || !slices.Equal(h.rowIDs(), want[:50]) {
		t.Fatalf("no-project filter: %d keys", len(want))
	}
	h.contains("500 of 2000 keys")
	f = Filter{Project: "1001", Sort: "requests"}
	h.do(func(ctx app.Context) { h.d.filter = f; h.d.filterChanged(ctx) })
	if want := serverIDs(t, c, f); len(want) == 0 || !slices.Equal(h.rowIDs(), want[:50]) {
		t.Fatalf("project 1001: %d keys", len(want))
	}
	for _, id := range h.rowIDs() {
		if k, _ := c.GetKey(t.Context(), id); k.Project != "1001" {
			t.Fatalf("row %s of project %q", id, k.Project)
		}
	}
	if got := full.Load(); got != fullBefore {
		t.Fatalf("the Keys table asked for the whole status %d times", got-fullBefore)
	}
	if pages.Load() == 0 {
		t.Fatal("no page was asked for")
	}
}

// An answer to an older query never replaces a newer one: the first
// search's answer is held back until after the second's.
func TestKeysStaleAnswerDropped(t *testing.T) {
	ts := startServer(t)
	c := adminclient.New(ts.URL, adminKey)
	pagedPool(t, c, 300)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("q") == "slow" {
			time.Sleep(300 * time.Millisecond)
		}
		ts.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(slow.Close)
	h := mount(t, &Dashboard{})
	h.connect(slow.URL, adminKey)
	h.fire("tab-keys", "click")
	h.do(func(ctx app.Context) {
		h.d.filter.Text = "slow"
		h.d.searchChanged(ctx)
		h.d.filter.Text = "t3"
		h.d.searchChanged(ctx)
	})
	time.Sleep(400 * time.Millisecond)
	h.do(func(ctx app.Context) {})
	want := serverIDs(t, c, Filter{Text: "t3"})
	if got := h.rowIDs(); len(want) < 60 || !slices.Equal(got, want[:50]) {
		t.Fatalf("rows %d, want the newer search's (%d keys); count %q", len(got), len(want), between(h.html(), `id="keys-count"`, "</p>"))
	}
	h.contains(fmt.Sprintf("%d of 300 keys", len(want)))
}

// "Select all matching" names the proxy's count and acts on exactly the
// keys the filter matches there (less a row unticked), never on another.
func TestSelectAllMatchingPaged(t *testing.T) {
	ts := startServer(t)
	c := adminclient.New(ts.URL, adminKey)
	pagedPool(t, c, 1500)
	h := mount(t, &Dashboard{})
	h.connect(ts.URL, adminKey)
	h.fire("tab-keys", "click")
	f := Filter{Tag: "t1", Project: adminapi.NoProject}
	h.do(func(ctx app.Context) { h.d.filter = f; h.d.filterChanged(ctx) })
	matching := serverIDs(t, c, f)
	if len(matching) != 75 {
		t.Fatalf("t1 without project: %d", len(matching))
	}
	h.contains("Select all matching (75)")
	h.fire("sel-all", "click")
	h.contains("75 selected")
	rows := h.rowIDs()
	h.fire("sel-"+rows[3], "change") // untick one row
	h.contains("74 selected")
	h.fire("sel-disable", "click")
	if !strings.Contains(h.d.Notice(), "74 keys disabled, 0 failed") {
		t.Fatalf("notice %q", h.d.Notice())
	}
	for id, k := range keysIn(t, c) {
		if wantOff := slices.Contains(matching, id) && id != rows[3]; k.IsActive == wantOff {
			t.Fatalf("key %s (tags %v, project %q) active=%v", id, k.Tags, k.Project, k.IsActive)
		}
	}
	// A filter change ends "all matching".
	h.do(func(ctx app.Context) { h.d.filter = Filter{Tag: "t2"}; h.d.filterChanged(ctx) })
	if h.d.SelectionCount() != 0 {
		t.Fatalf("%d still selected after the filter changed", h.d.SelectionCount())
	}
	// The page's totals count the keys turned off, whatever the filter.
	if h.d.kp.states[adminapi.StateInactive] != 74 {
		t.Fatalf("states %v", h.d.kp.states)
	}
}

// Connecting on the Keys tab (a reload there) asks for its first page
// and the summary (the filters' tags and projects): never the whole
// status.
func TestConnectOnKeysTabLoadsOnePage(t *testing.T) {
	ts := startServer(t)
	c := adminclient.New(ts.URL, adminKey)
	pagedPool(t, c, 120)
	var asked []string
	spy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = append(asked, r.URL.RequestURI())
		ts.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(spy.Close)
	h := mount(t, &Dashboard{})
	h.d.tab = TabKeys
	h.connect(spy.URL, adminKey)
	if len(asked) != 2 || !strings.Contains(asked[0], "limit=50") || asked[1] != "/admin/summary" {
		t.Fatalf("asked %v", asked)
	}
	h.contains("120 of 120 keys", "Page 1 of 3")
	h.fire("page-next", "click")
	if got, want := h.rowIDs(), serverIDs(t, c, Filter{})[50:100]; !slices.Equal(got, want) {
		t.Fatal("page 2 differs")
	}
	if len(asked) != 3 {
		t.Fatalf("page 2 took %d requests: %v", len(asked)-2, asked[2:])
	}
}

// A large "all matching" delete runs as one proxy job (progress polled):
// every matching key goes but the row unticked.
func TestSelectAllMatchingDeleteJob(t *testing.T) {
	ts := startServer(t)
	c := adminclient.New(ts.URL, adminKey)
	pagedPool(t, c, 1600)
	var jobsStarted, idPages, bigPages atomic.Int64
	spy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/admin/jobs/delete" {
			jobsStarted.Add(1)
		}
		if r.URL.Path == "/admin/status" {
			switch limit, _ := strconv.Atoi(r.URL.Query().Get("limit")); {
			case r.URL.Query().Get("fields") == adminapi.FieldsID:
				idPages.Add(1)
			case limit > 200:
				bigPages.Add(1)
			}
		}
		ts.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(spy.Close)
	h := mount(t, &Dashboard{})
	h.connect(spy.URL, adminKey)
	h.fire("tab-keys", "click")
	h.do(func(ctx app.Context) { h.d.filter = Filter{}; h.d.filterChanged(ctx) })
	h.fire("sel-all", "click")
	h.contains("1600 selected")
	keep := h.rowIDs()[7]
	h.fire("sel-"+keep, "change")
	h.fire("sel-delete", "click")
	h.contains("Delete 1599 keys?")
	h.fire("sel-delete-yes", "click")
	for range 50 { // the job polls every jobPoll
		if strings.Contains(h.d.Notice(), "keys deleted") {
			break
		}
		time.Sleep(100 * time.Millisecond)
		h.do(func(ctx app.Context) {})
	}
	if !strings.Contains(h.d.Notice(), "1599 keys deleted") || jobsStarted.Load() != 1 {
		t.Fatalf("notice %q, %d delete jobs", h.d.Notice(), jobsStarted.Load())
	}
	// The ids came as ids only (one page of up to 10,000), not as pages of
	// every key's status.
	if idPages.Load() != 1 || bigPages.Load() != 0 {
		t.Fatalf("collecting the ids took %d pages of ids and %d pages of over 200 keys", idPages.Load(), bigPages.Load())
	}
	left := keysIn(t, c)
	if _, ok := left[keep]; !ok || len(left) != 1 {
		t.Fatalf("%d keys left, the unticked one kept: %v", len(left), ok)
	}
}

// The drawer's "shares one quota with N other keys" is counted by the
// proxy: the Keys tab does not hold every key.
func TestDrawerCountsTheProjectOnTheProxy(t *testing.T) {
	ts := startServer(t)
	c := adminclient.New(ts.URL, adminKey)
	pagedPool(t, c, 240)
	h := mount(t, &Dashboard{})
	h.d.tab = TabKeys
	h.connect(ts.URL, adminKey)
	var k adminapi.KeyStatus
	for _, id := range h.rowIDs() {
		if k, _ = h.d.findShown(id); k.Project != "" {
			break
		}
	}
	n := len(serverIDs(t, c, Filter{Project: k.Project}))
	h.fire("open-"+k.ID, "click")
	h.contains(fmt.Sprintf("shares one quota with %d other keys here", n-1))
}
