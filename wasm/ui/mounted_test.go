//go:build !js

package ui

import (
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/adminclient"
	"github.com/keypool/keypool/worker-proxy/provider"
	"github.com/keypool/keypool/worker-proxy/server"
	"github.com/keypool/keypool/worker-proxy/store/boltstore"
	"github.com/maxence-charriere/go-app/v10/pkg/app"
)

// The helpers below reach into go-app's mounted tree: what the browser
// holds after go-app's diff, with the event handlers it really attached
// (go-app keeps a mounted handler when the new one has the same code
// pointer and scope). Firing them there is what a click does; calling a
// handler built by a fresh Render would hide a stale one.

// open makes an unexported field usable.
func open(v reflect.Value) reflect.Value {
	return reflect.NewAt(v.Type(), unsafe.Pointer(v.UnsafeAddr())).Elem()
}

// mountedElem is one mounted HTML element: its attributes, handlers, children.
type mountedElem struct{ v reflect.Value } // the htmlElement struct, addressable

func (m mountedElem) attr(name string) string {
	a := open(m.v.FieldByName("attributes"))
	if a.IsNil() {
		return ""
	}
	if x := a.MapIndex(reflect.ValueOf(name)); x.IsValid() {
		return x.String()
	}
	return ""
}

// handlers returns event → (handler, scope).
func (m mountedElem) handlers() map[string]struct {
	h     app.EventHandler
	scope string
} {
	out := map[string]struct {
		h     app.EventHandler
		scope string
	}{}
	evs := open(m.v.FieldByName("eventHandlers"))
	for _, k := range evs.MapKeys() {
		cp := reflect.New(evs.Type().Elem()).Elem()
		cp.Set(evs.MapIndex(k))
		out[k.String()] = struct {
			h     app.EventHandler
			scope string
		}{open(cp.FieldByName("goHandler")).Interface().(app.EventHandler), open(cp.FieldByName("scope")).String()}
	}
	return out
}

// walk visits every mounted HTML element under n (components included).
func walk(n reflect.Value, visit func(mountedElem)) {
	for n.Kind() == reflect.Interface || n.Kind() == reflect.Pointer {
		if n.IsNil() {
			return
		}
		n = n.Elem()
	}
	if n.Kind() != reflect.Struct {
		return
	}
	if c := n.FieldByName("Compo"); c.IsValid() && c.Type() == reflect.TypeOf(app.Compo{}) {
		walk(open(c.FieldByName("rootElement")), visit)
		return
	}
	e := n.FieldByName("htmlElement")
	if !e.IsValid() {
		return // text, raw
	}
	m := mountedElem{e}
	visit(m)
	kids := open(e.FieldByName("children"))
	for i := 0; i < kids.Len(); i++ {
		walk(kids.Index(i), visit)
	}
}

// mounted returns the mounted element whose id attribute is id.
func (h *harness) mounted(id string) (mountedElem, bool) {
	var found mountedElem
	ok := false
	walk(reflect.ValueOf(h.d), func(m mountedElem) {
		if !ok && m.attr("id") == id {
			found, ok = m, true
		}
	})
	return found, ok
}

// fire runs the handler go-app attached for event on the element with id,
// as a browser event would, then all async work.
func (h *harness) fire(id, event string) {
	h.t.Helper()
	m, ok := h.mounted(id)
	if !ok {
		h.t.Fatalf("no mounted element #%s", id)
	}
	eh, ok := m.handlers()[event]
	if !ok {
		h.t.Fatalf("#%s has no %s handler", id, event)
	}
	h.do(func(ctx app.Context) { eh.h(ctx, app.Event{Value: app.Undefined()}) })
}

// rowIDs lists the key ids of the mounted table rows, in order.
func (h *harness) rowIDs() []string {
	var ids []string
	walk(reflect.ValueOf(h.d), func(m mountedElem) {
		if id, ok := strings.CutPrefix(m.attr("id"), "row-"); ok {
			ids = append(ids, id)
		}
	})
	return ids
}

// keysIn lists the ids the proxy holds, sorted.
func keysIn(t *testing.T, c *adminclient.Client) map[string]adminapi.KeyStatus {
	t.Helper()
	st, err := c.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]adminapi.KeyStatus{}
	for _, p := range st.Providers {
		for _, k := range p.Keys {
			out[k.ID] = k
		}
	}
	return out
}

func sortedIDs(keys []adminapi.KeyStatus) []string {
	ids := make([]string, 0, len(keys))
	for _, k := range keys {
		ids = append(ids, k.ID)
	}
	sort.Strings(ids)
	return ids
}

// taggedPool fills a proxy with n gemini keys; key i is tagged "canary"
// when i%3 == 0, else "backup", and described "key NNN".
func taggedPool(t *testing.T, c *adminclient.Client, n int) {
	t.Helper()
	for i := range n {
		tag := "backup"
		if i%3 == 0 {
			tag = "canary"
		}
		desc := fmt.Sprintf("key %03d", i)
		tags := []string{tag}
		if _, err := c.AddKey(t.Context(), adminapi.AddKeyRequest{Provider: "gemini", APIKey: fmt.Sprintf("AIzaSyFakeRowTest%012d", i),
			Metadata: &adminapi.Metadata{Description: &desc, Tags: &tags}}); err != nil {
			t.Fatal(err)
		}
	}
}

// Defect: after a page change, a filter, a search or a sort, a row's
// buttons and checkbox acted on the key that row showed before (go-app
// kept the first render's closures). Every action must hit the key the
// row shows, and "select all matching" must select exactly the matching keys.
func TestRowActionsHitTheKeyTheRowShows(t *testing.T) {
	ts := startServer(t)
	c := adminclient.New(ts.URL, adminKey)
	taggedPool(t, c, 120)
	h := mount(t, &Dashboard{})
	h.connect(ts.URL, adminKey)
	h.fire("tab-keys", "click")
	first := h.rowIDs()
	if len(first) != PageSize {
		t.Fatalf("%d rows", len(first))
	}

	// Page 2: Edit and the checkbox of its first row.
	h.fire("page-next", "click")
	page2 := h.rowIDs()
	if page2[0] == first[0] {
		t.Fatal("page 2 shows page 1's rows")
	}
	h.fire("edit-"+page2[0], "click")
	if h.d.editID != page2[0] {
		t.Fatalf("Edit on page 2's first row edits %q, want %q", h.d.editID, page2[0])
	}
	h.fire("e-cancel", "click")
	h.fire("sel-"+page2[1], "change")
	if got := h.d.Selected(); !slices.Equal(got, []string{page2[1]}) {
		t.Fatalf("ticking page 2's second row selected %v, want %v", got, page2[1])
	}
	h.fire("sel-none", "click")

	// A search leaving one row: Delete asks on that row and deletes it.
	h.do(func(ctx app.Context) { h.d.filter.Text = "key 077"; h.d.searchChanged(ctx) })
	rows := h.rowIDs()
	if len(rows) != 1 {
		t.Fatalf("search: %d rows", len(rows))
	}
	target := rows[0]
	h.fire("del-"+target, "click")
	if h.d.delAsk != target {
		t.Fatalf("Delete asks about %q, want %q", h.d.delAsk, target)
	}
	before := keysIn(t, c)
	h.fire("del-yes-"+target, "click")
	after := keysIn(t, c)
	if _, still := after[target]; still || len(after) != len(before)-1 {
		t.Fatalf("delete of the one searched row: %d → %d keys, target still there: %v", len(before), len(after), still)
	}

	// Sort, then tick rows of a tag filter and disable them.
	h.do(func(ctx app.Context) { h.d.filter = Filter{Tag: "backup", Sort: "created"}; h.d.filterChanged(ctx) })
	h.do(func(ctx app.Context) { h.d.filter.Sort = ""; h.d.filterChanged(ctx) })
	rows = h.rowIDs()
	for _, id := range rows[:5] {
		h.fire("sel-"+id, "change")
	}
	h.fire("sel-disable", "click")
	after = keysIn(t, c)
	var disabled []string
	for id, k := range after {
		if !k.IsActive {
			disabled = append(disabled, id)
		}
	}
	sort.Strings(disabled)
	want := slices.Clone(rows[:5])
	sort.Strings(want)
	if !slices.Equal(disabled, want) {
		t.Fatalf("disabled %v, want the 5 ticked backup keys %v", disabled, want)
	}
	h.fire("sel-none", "click")

	// Select all matching a filter, then bulk delete: exactly those go.
	h.do(func(ctx app.Context) { h.d.filter = Filter{Tag: "canary"}; h.d.filterChanged(ctx) })
	matching := slices.DeleteFunc(slices.Collect(maps.Values(keysIn(t, c))), func(k adminapi.KeyStatus) bool { return !slices.Contains(k.Tags, "canary") })
	h.fire("sel-all", "click")
	if got := h.d.SelectionCount(); got != len(matching) || len(matching) != 40 {
		t.Fatalf("select all matching selected %d keys, want the %d canary keys", got, len(matching))
	}
	h.contains(fmt.Sprintf("%d selected", len(matching)))
	h.fire("sel-delete", "click")
	h.contains(fmt.Sprintf("Delete %d keys?", len(matching)))
	before = keysIn(t, c)
	h.fire("sel-delete-yes", "click")
	after = keysIn(t, c)
	for id, k := range before {
		_, kept := after[id]
		if isCanary := slices.Contains(k.Tags, "canary"); kept == isCanary {
			t.Fatalf("key %s (tags %v) kept=%v after deleting all canary keys", id, k.Tags, kept)
		}
	}
}

func sortedSlice(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

// Every handler in the mounted tree is scoped: go-app compares handlers by
// code pointer and scope, so an unscoped closure over row data would be
// kept when the row shows another key.
func TestEveryMountedHandlerIsScoped(t *testing.T) {
	ts := startServer(t)
	c := adminclient.New(ts.URL, adminKey)
	taggedPool(t, c, 3)
	h := mount(t, &Dashboard{})
	h.connect(ts.URL, adminKey)
	check := func(screen string) {
		t.Helper()
		walk(reflect.ValueOf(h.d), func(m mountedElem) {
			for ev, x := range m.handlers() {
				if x.scope == "" {
					t.Errorf("%s: #%s (%s) has an unscoped %s handler", screen, m.attr("id"), m.attr("class"), ev)
				}
			}
		})
	}
	check("overview")
	for _, tab := range []string{TabKeys, TabTokens, TabPlayground} {
		h.fire("tab-"+tab, "click")
		check(tab)
	}
	h.fire("tab-keys", "click")
	id := h.rowIDs()[0]
	h.fire("edit-"+id, "click")
	check("edit")
	h.fire("e-cancel", "click")
	h.fire("del-"+id, "click")
	check("delete confirmation")
}

var optionValue = regexp.MustCompile(`value="([^"]*)"`)

// Defect: go-app drops an empty value attribute, so the "All" option's
// value was its text, and choosing "All" again filtered on the word "All"
// (0 of N keys). Every option has a value, and "All" means no filter.
func TestFilterOptionsHaveValues(t *testing.T) {
	ts := startServer(t)
	c := adminclient.New(ts.URL, adminKey)
	taggedPool(t, c, 3)
	for _, lang := range []string{LangEN, LangZH} {
		h := mount(t, &Dashboard{})
		h.connect(ts.URL, adminKey)
		h.d.lang = lang
		h.fire("tab-keys", "click")
		html := h.html()
		for _, sel := range []string{"f-provider", "f-state", "f-tag", "f-sort"} {
			body := between(html, `id="`+sel+`"`, "</select>")
			opts := strings.Split(body, "<option")[1:]
			if len(opts) < 2 {
				t.Fatalf("#%s: %d options", sel, len(opts))
			}
			for i, o := range opts {
				m := optionValue.FindStringSubmatch(strings.SplitN(o, ">", 2)[0])
				if m == nil || m[1] == "" {
					t.Fatalf("#%s option %d has no value: <option%s", sel, i, o)
				}
				if got := FilterValue(m[1]); (i == 0) != (got == "") {
					t.Fatalf("#%s option %d value %q means filter %q", sel, i, m[1], got)
				}
			}
		}
		// All again after a state: every key.
		h.do(func(ctx app.Context) { h.d.filter.State = FilterValue(adminapi.StateDisabled); h.d.filterChanged(ctx) })
		h.contains(T(lang, "keys.count", 0, 3))
		h.do(func(ctx app.Context) { h.d.filter.State = FilterValue(AnyOption); h.d.filterChanged(ctx) })
		h.contains(T(lang, "keys.count", 3, 3))
	}
}

// Add and Bulk import open from the top of the Keys page, above the
// table; after adding, the table shows the new key (filters that hide it
// are cleared, the page is turned) and highlights it.
func TestAddFromTheTopRevealsTheNewKey(t *testing.T) {
	ts := startServer(t)
	c := adminclient.New(ts.URL, adminKey)
	taggedPool(t, c, 120)
	h := mount(t, &Dashboard{})
	h.connect(ts.URL, adminKey)
	h.fire("tab-keys", "click")
	h.do(func(ctx app.Context) { h.d.filter.Tag = "canary"; h.d.filterChanged(ctx) })
	if strings.Contains(h.html(), `id="add-form"`) {
		t.Fatal("the add form shows before it is opened")
	}
	h.fire("add-open", "click")
	html := h.html()
	if i, j := strings.Index(html, `id="add-form"`), strings.Index(html, `id="keys-table"`); i < 0 || i > j {
		t.Fatalf("add form at %d, table at %d: the form must come first", i, j)
	}
	if m, _ := h.mounted("add-open"); m.attr("aria-expanded") != "true" {
		t.Fatalf("add-open aria-expanded=%q", m.attr("aria-expanded"))
	}
	h.d.add.APIKey = "AIzaSyFakeRevealMe0000000001"
	h.d.add.Description = "the new one"
	h.fire("add-form", "submit")
	var added adminapi.KeyStatus
	for _, k := range keysIn(t, c) {
		if k.Description == "the new one" {
			added = k
		}
	}
	if added.ID == "" {
		t.Fatalf("not added: %q", h.d.add.Msg)
	}
	if rows := h.rowIDs(); !slices.Contains(rows, added.ID) {
		t.Fatalf("the new key %s is not among the rows shown (offset %d, filter %+v)", added.ID, h.d.kp.offset, h.d.filter)
	}
	if h.d.filter.Tag != "" || h.d.kp.offset != 100 {
		t.Fatalf("filter %+v offset %d: want the canary filter cleared and the last page", h.d.filter, h.d.kp.offset)
	}
	h.contains("Page 3 of 3")
	h.contains(`class="fresh"`)
	// The panel stays open for the next key; Close (or Escape) shuts it.
	h.contains(`id="add-form"`, "Added "+added.MaskedKey)
	h.fire("panel-close", "click")
	if strings.Contains(h.html(), `id="add-form"`) {
		t.Fatal("the panel did not close")
	}
	h.fire("bulk-open", "click")
	h.contains(`id="bulk-form"`)
	h.fire("bulk-open", "click")
	if strings.Contains(h.html(), `id="bulk-form"`) {
		t.Fatal("the bulk import button does not close its panel")
	}
}

// Notices can be dismissed, success notices expire (errors stay), and a
// notice follows a language switch.
func TestNoticesDismissExpireAndTranslate(t *testing.T) {
	ts := startServer(t)
	c := adminclient.New(ts.URL, adminKey)
	taggedPool(t, c, 2)
	h := mount(t, &Dashboard{})
	h.connect(ts.URL, adminKey)
	h.fire("tab-keys", "click")
	id := h.rowIDs()[0]
	h.fire("sel-"+id, "change")
	h.fire("sel-disable", "click")
	if h.d.Notice() != "1 keys disabled, 0 failed." {
		t.Fatalf("notice %q", h.d.Notice())
	}
	h.contains(`id="notice-close"`, "fade-")
	h.fire("lang", "click")
	if want := T(LangZH, "sel.done.disable", 1, 0); h.d.Notice() != want || !strings.Contains(h.html(), want) {
		t.Fatalf("after switching to 中文 the notice reads %q, want %q", h.d.Notice(), want)
	}
	h.fire("notice-close", "click")
	if h.d.Notice() != "" || !strings.Contains(h.html(), `class="notice empty"`) {
		t.Fatalf("dismissed notice still shown: %q", h.d.Notice())
	}

	// A success notice expires; a timer from an older notice does not
	// clear a newer one; errors carry no timer.
	h.do(func(ctx app.Context) { h.d.setNotice(ctx, func() string { return "first" }, false) })
	old := h.d.noticeSeq
	h.do(func(ctx app.Context) { h.d.setNotice(ctx, func() string { return "second" }, false) })
	h.d.expireNotice(old)
	if h.d.Notice() != "second" {
		t.Fatalf("an old timer cleared the new notice: %q", h.d.Notice())
	}
	h.d.expireNotice(h.d.noticeSeq)
	if h.d.Notice() != "" {
		t.Fatalf("notice did not expire: %q", h.d.Notice())
	}
	h.do(func(ctx app.Context) { h.d.setNotice(ctx, func() string { return "failed" }, true) })
	if strings.Contains(h.html(), "fade-") {
		t.Fatal("an error notice fades")
	}
}

// Tokens say where they come from and when, in words; the shown-once
// token has a Copy button beside it.
func TestTokensInWordsWithCopy(t *testing.T) {
	ts := startServer(t)
	h := mount(t, &Dashboard{})
	h.connect(ts.URL, adminKey)
	h.fire("tab-tokens", "click")
	if len(h.d.tokens) != 1 || h.d.tokens[0].Source != adminapi.TokenSourceEnv {
		t.Fatalf("tokens: %+v", h.d.tokens)
	}
	env := between(h.html(), `id="tok-`+h.d.tokens[0].ID+`"`, "</tr>")
	for _, want := range []string{"from CLIENT_TOKENS (environment)", "when the proxy starts", "Remove it from CLIENT_TOKENS"} {
		if !strings.Contains(env, want) {
			t.Errorf("CLIENT_TOKENS row lacks %q: %s", want, env)
		}
	}
	if strings.Contains(env, "never") {
		t.Errorf("CLIENT_TOKENS row says never: %s", env)
	}
	h.d.tokName = "laptop"
	h.fire("token-form", "submit")
	if h.d.newToken == nil {
		t.Fatalf("no token: %q", h.d.tokErr)
	}
	once := between(h.html(), `id="new-token"`, "</form>")
	if i, j := strings.Index(once, h.d.newToken.Token), strings.Index(once, `id="new-token-copy"`); i < 0 || j < i {
		t.Fatalf("the Copy button is not beside the token: %s", once)
	}
	row := between(h.html(), `id="tok-`+h.d.newToken.ID+`"`, "</tr>")
	if !strings.Contains(row, "created here (admin API)") || strings.Contains(row, "never") {
		t.Errorf("admin token row: %s", row)
	}
	h.fire("lang", "click")
	h.contains("来自环境变量 CLIENT_TOKENS", "代理启动时载入", ">复制<")
}

// geminiUpstream answers like Gemini: a key with "revoked" in it gets
// 400 API_KEY_INVALID, others a model list. It records the keys it saw.
type geminiUpstream struct {
	mu   sync.Mutex
	seen []string
}

func (g *geminiUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	key := r.Header.Get("X-Goog-Api-Key")
	g.mu.Lock()
	g.seen = append(g.seen, key)
	g.mu.Unlock()
	status, body := 200, `{"models":[{"name":"models/gemini-2.5-flash"}]}`
	if strings.Contains(strings.ToLower(key), "revoked") {
		status, body = 400, `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com"}}]}}`
	}
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: r, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}, nil
}

func (g *geminiUpstream) keys() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := slices.Clone(g.seen)
	g.seen = nil
	sort.Strings(s)
	return slices.Compact(s)
}

func startServerUpstream(t *testing.T, up http.RoundTripper) *httptest.Server {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "keypool.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg, _ := provider.NewRegistry(provider.Defaults()...)
	s, err := server.New(t.Context(), server.Config{
		AdminKey: adminKey, ClientTokens: []string{clientToken}, Transport: up,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, st, reg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts
}

// "Re-test all disabled" and "Remove all invalid keys" name the count in
// their confirmation and act on exactly the keys it counted.
func TestSweepsActOnTheRejectedKeys(t *testing.T) {
	up := &geminiUpstream{}
	ts := startServerUpstream(t, up)
	c := adminclient.New(ts.URL, adminKey)
	var all, revoked []string
	for i := range 6 {
		secret := fmt.Sprintf("AIzaSyFakeSweepGood%010d", i)
		if i%2 == 0 {
			secret = fmt.Sprintf("AIzaSyFakeSweepRevoked%07d", i)
		}
		r, err := c.AddKey(t.Context(), adminapi.AddKeyRequest{Provider: "gemini", APIKey: secret})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, r.KeyID)
		if i%2 == 0 {
			revoked = append(revoked, r.KeyID)
		}
	}
	if _, err := c.BulkTest(t.Context(), all); err != nil {
		t.Fatal(err)
	}
	up.keys()
	sort.Strings(revoked)

	h := mount(t, &Dashboard{})
	h.connect(ts.URL, adminKey)
	h.fire("tab-keys", "click")
	h.contains("Re-test all disabled (3)", "Remove all invalid keys (3)")

	h.fire("sweep-retest", "click")
	h.contains("Test the 3 disabled keys again?")
	h.fire("sweep-yes", "click")
	if got := up.keys(); len(got) != 3 || !strings.Contains(strings.Join(got, ","), "Revoked") || strings.Contains(strings.Join(got, ","), "Good") {
		t.Fatalf("re-test sent %v to the upstream, want the 3 revoked keys", got)
	}
	h.contains("0 keys passed the test, 3 failed.")

	// Remove: the confirmation counts 3; a key rejected meanwhile is not
	// among the keys it deletes.
	h.fire("sweep-remove", "click")
	h.contains("Delete the 3 keys the providers rejected?")
	late, err := c.AddKey(t.Context(), adminapi.AddKeyRequest{Provider: "gemini", APIKey: "AIzaSyFakeSweepRevokedLate0001"})
	if err != nil {
		t.Fatal(err)
	}
	c.TestKey(t.Context(), late.KeyID)
	h.do(func(ctx app.Context) { h.d.refresh(ctx) })
	h.fire("sweep-yes", "click")
	left := keysIn(t, c)
	for _, id := range revoked {
		if _, ok := left[id]; ok {
			t.Errorf("rejected key %s not removed", id)
		}
	}
	if _, ok := left[late.KeyID]; !ok || len(left) != 4 {
		t.Fatalf("%d keys left (late one kept: %v), want the 3 good ones and the late one", len(left), ok)
	}
	h.contains("Remove all invalid keys (1)")
}
