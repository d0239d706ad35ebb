//go:build !js

package ui

import (
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/adminclient"
	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/provider"
	"github.com/keypool/keypool/worker-proxy/server"
	"github.com/keypool/keypool/worker-proxy/store/boltstore"
	"github.com/maxence-charriere/go-app/v10/pkg/app"
)

const (
	adminKey    = "ui-test-admin-key-0123456789abcdef"
	clientToken = "kp-ui-test-client-token-0123456789"
)

func startServer(t *testing.T, origins ...string) *httptest.Server {
	t.Helper()
	ts, _ := startProxyServer(t, origins...)
	return ts
}

// startProxyServer is startServer that also returns the proxy's Server.
func startProxyServer(t *testing.T, origins ...string) (*httptest.Server, *server.Server) {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "keypool.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg, _ := provider.NewRegistry(provider.Defaults()...)
	s, err := server.New(t.Context(), server.Config{
		AdminKey: adminKey, AllowedOrigins: origins, ClientTokens: []string{clientToken},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, st, reg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts, s
}

// probe mounts a Dashboard in go-app's test engine and keeps the Context
// that OnPreRender receives (OnMount never runs natively).
type probe struct {
	app.Compo
	d   *Dashboard
	ctx app.Context
	ok  bool
}

func (p *probe) OnPreRender(ctx app.Context) { p.ctx, p.ok = ctx, true }
func (p *probe) Render() app.UI              { return p.d }

var _ app.PreRenderer = (*probe)(nil)

type harness struct {
	t *testing.T
	e app.TestEngine
	p *probe
	d *Dashboard
}

func mount(t *testing.T, d *Dashboard) *harness {
	t.Helper()
	p := &probe{d: d}
	e := app.NewTestEngine()
	if err := e.Load(p); err != nil {
		t.Fatal(err)
	}
	e.ConsumeAll()
	if !p.ok {
		t.Fatal("OnPreRender did not run")
	}
	return &harness{t: t, e: e, p: p, d: d}
}

// do runs f with the component's context, then all async work.
func (h *harness) do(f func(ctx app.Context)) {
	h.p.ctx.Dispatch(f)
	for i := 0; i < 5; i++ { // async work dispatches more (refresh after add)
		h.e.ConsumeAll()
	}
}

func (h *harness) html() string { return app.HTMLString(h.d.Render()) }

func (h *harness) contains(subs ...string) {
	h.t.Helper()
	html := h.html()
	for _, s := range subs {
		if !strings.Contains(html, s) {
			h.t.Errorf("HTML lacks %q", s)
		}
	}
}

func (h *harness) connect(url, key string) {
	h.d.url, h.d.key = url, key
	h.do(h.d.Connect)
}

func TestConnectErrors(t *testing.T) {
	ts := startServer(t, "http://allowed.example")

	h := mount(t, &Dashboard{})
	h.connect(ts.URL, "wrong-admin-key-0000000000000")
	if h.d.client != nil || !strings.Contains(h.d.connErr, "Wrong admin key") {
		t.Fatalf("wrong key: client %v err %q", h.d.client, h.d.connErr)
	}
	h.contains(`id="connect-error"`, "401")

	dead := httptest.NewServer(nil)
	dead.Close()
	h.connect(dead.URL, adminKey)
	if want := "Cannot reach " + dead.URL; !strings.Contains(h.d.connErr, want) {
		t.Fatalf("unreachable: %q lacks %q", h.d.connErr, want)
	}

	// A page on an origin the proxy does not allow: the advice names it.
	d := &Dashboard{Origin: "https://me.github.io", NewClient: func(u, k string) *adminclient.Client {
		c := adminclient.New(u, k)
		c.Doer = &adminclient.HTTPDoer{Origin: "https://me.github.io"}
		return c
	}}
	h = mount(t, d)
	h.connect(ts.URL, adminKey)
	if want := "ALLOWED_ORIGINS=https://me.github.io"; !strings.Contains(h.d.connErr, want) {
		t.Fatalf("cors: %q lacks %q", h.d.connErr, want)
	}

	h.connect("", adminKey)
	if h.d.connErr != T(LangEN, "connect.needURL") {
		t.Fatalf("empty URL: %q", h.d.connErr)
	}
}

func TestConnectAddBulkEditDeleteTokens(t *testing.T) {
	ts := startServer(t)
	c := adminclient.New(ts.URL, adminKey)
	h := mount(t, &Dashboard{})
	h.connect(ts.URL+"/", adminKey)
	if h.d.client == nil {
		t.Fatalf("not connected: %q", h.d.connErr)
	}
	h.contains(`id="overview"`, `id="tab-keys"`, `id="store-health"`, `<svg`, `id="overview-chart"`, `class="seg-available"`)

	h.d.tab = TabKeys
	const secret = "sk-dashboard-test-key-00000001"
	h.d.add = addForm{Provider: "openai", APIKey: secret, MaxRequests: "100", Description: "from the test", Tags: "a, b"}
	h.do(h.d.AddKey)
	if h.d.add.Err || !strings.Contains(h.d.add.Msg, "Added") {
		t.Fatalf("add: %s", h.d.add.Msg)
	}
	st, err := c.ProviderStatus(t.Context(), "openai")
	if err != nil || len(st.Keys) != 1 {
		t.Fatalf("proxy state after add: %v %+v", err, st)
	}
	k := st.Keys[0]
	if k.MaxRequests != 100 || k.Description != "from the test" || strings.Join(k.Tags, ",") != "a,b" {
		t.Fatalf("added key: %+v", k)
	}
	h.contains(`id="row-`+k.ID+`"`, pool.Mask(secret), "0 / 100", `class="tag"`)
	if strings.Contains(h.html(), secret) {
		t.Fatal("the secret appears in the page")
	}

	h.d.panel = PanelBulk
	h.d.bulk = bulkForm{Provider: "openai", Text: "sk-bulk-line-one-000000001\n\n" + secret + "\nhas space\n"}
	h.do(h.d.BulkImport)
	r := h.d.bulk.Result
	if r == nil || r.Added != 1 || r.Duplicates != 1 || r.Invalid != 0 {
		t.Fatalf("bulk: %+v notice %q", r, h.d.Notice())
	}
	// The line without a key never left the browser; problems come first.
	h.contains(`id="bulk-summary"`, "1 added, 1 duplicates, 1 invalid", "Line 3: duplicate", "already in the pool",
		"Line 4: no key found")
	if html := h.html(); strings.Index(html, "Line 4: no key found") > strings.Index(html, "Line 1: added") {
		t.Error("the problems are not listed before the keys added")
	}

	h.d.startEdit(k)
	h.contains(`id="e-save"`)
	h.d.edit.Active = false
	h.d.edit.Weight = "7"
	h.d.edit.Description = "edited"
	h.do(func(ctx app.Context) { h.d.doUpdate(k.ID, k.MaskedKey)(ctx, app.Event{}) })
	got, err := c.GetKey(t.Context(), k.ID)
	if err != nil || got.IsActive || got.Weight != 7 || got.Description != "edited" {
		t.Fatalf("after edit: %v %+v (row msg %q)", err, got, h.d.rowMsg[k.ID])
	}
	h.contains(`id="row-`+k.ID+`"`, "edited", `badge inactive`)

	// Delete asks first.
	h.do(func(ctx app.Context) { h.d.delAsk = k.ID })
	h.contains(`id="del-yes-` + k.ID + `"`)
	h.do(func(ctx app.Context) { h.d.doDelete(k.ID, k.MaskedKey)(ctx, app.Event{}) })
	if _, err := c.GetKey(t.Context(), k.ID); adminclient.StatusOf(err) != 404 {
		t.Fatalf("after delete: %v", err)
	}
	if strings.Contains(h.html(), `id="row-`+k.ID+`"`) {
		t.Fatal("deleted key still in the table")
	}

	// Tokens: shown once, listed masked, revoked.
	h.do(func(ctx app.Context) { h.d.setTab(TabTokens)(ctx, app.Event{}) })
	h.d.tokName = "laptop"
	h.do(h.d.CreateToken)
	if h.d.newToken == nil {
		t.Fatalf("no token: %q", h.d.tokErr)
	}
	tok := h.d.newToken
	h.contains(`id="new-token-value"`, tok.Token, `id="tok-`+tok.ID+`"`, tok.Masked)
	h.do(func(ctx app.Context) { h.d.doRevoke(tok.ID)(ctx, app.Event{}) })
	if list, _ := c.Tokens(t.Context()); len(list) != 1 || list[0].Source != adminapi.TokenSourceEnv {
		t.Fatalf("after revoke: %+v", list) // the CLIENT_TOKENS one stays
	}
	if html := h.html(); strings.Contains(html, tok.Token) || strings.Contains(html, `id="tok-`+tok.ID+`"`) {
		t.Fatal("revoked token still shown")
	}

	// Reset from the overview.
	h.do(func(ctx app.Context) { h.d.doReset("openai")(ctx, app.Event{}) })
	if h.d.noticeErr || !strings.Contains(h.d.Notice(), "of openai reset") {
		t.Fatalf("reset: %q", h.d.Notice())
	}
}

func manyKeys(n int) []adminapi.KeyStatus {
	keys := make([]adminapi.KeyStatus, n)
	states := []string{adminapi.StateActive, adminapi.StateCooling, adminapi.StateDisabled}
	for i := range keys {
		created := fmt.Sprintf("2026-01-01T00:00:%02d.%03dZ", i/1000%60, i%1000)
		keys[i] = adminapi.KeyStatus{
			ID: fmt.Sprintf("key_%05d", i), Provider: []string{"gemini", "openai"}[i%2],
			MaskedKey: fmt.Sprintf("AIza…%04d", i), State: states[i%3], CreatedAt: &created,
			Requests: int64(i), Tags: []string{fmt.Sprintf("t%d", i%10)},
		}
	}
	return keys
}

func between(s, a, b string) string {
	i := strings.Index(s, a)
	if i < 0 {
		return ""
	}
	s = s[i:]
	if j := strings.Index(s, b); j >= 0 {
		return s[:j]
	}
	return s
}

func TestTranslations(t *testing.T) {
	for k, v := range messages {
		if v[0] == "" || v[1] == "" {
			t.Errorf("%s: missing a language: %q", k, v)
		}
		if strings.Count(v[0], "%") != strings.Count(v[1], "%") {
			t.Errorf("%s: format verbs differ: %q vs %q", k, v[0], v[1])
		}
	}
	// Render every screen in both languages; no string may be missing.
	clear(missing)
	for _, lang := range []string{LangEN, LangZH} {
		d := &Dashboard{}
		d.OnInit()
		d.lang = lang
		d.connErr = "x"
		html := app.HTMLString(d.Render())
		if lang == LangZH && !strings.Contains(html, "连接到你的代理") {
			t.Error("connect screen not in Chinese")
		}
		d.client = adminclient.New("http://127.0.0.1:1", adminKey)
		keys := manyKeys(3)
		keys[1].CoolingUntil = keys[1].CreatedAt
		keys[2].DisabledReason = "invalid_key"
		keys[2].Project, keys[0].Project, keys[0].ProjectLearned = "111", "111", true
		keys[2].ModelCooldowns = []adminapi.ModelCooldown{{Model: "gemini-2.5-pro", Until: keys[1].CreatedAt, Reason: "quota_exhausted (project 111)"}, {Model: "m"}}
		d.kp = keysPage{keys: keys, matched: 3, total: 3, loaded: true}
		states := map[string]int{adminapi.StateActive: 1, adminapi.StateCooling: 1, adminapi.StateDisabled: 1}
		d.setSummary(&adminapi.Summary{Store: adminapi.StoreHealth{Backend: "bolt", OK: true}, TotalKeys: 3, States: states, RestingModelPairs: 2,
			Providers: []adminapi.ProviderSummary{{Provider: "gemini", TotalKeys: 3, States: states, Projects: 1, KeysWithoutProject: 1, RestingModelPairs: 2,
				ProjectKeys: []adminapi.NameCount{{Name: "111", Keys: 2}}}}, Projects: 1, KeysWithoutProject: 1})
		d.tokens = []adminapi.Token{{ID: "tok_1", Name: "n", Masked: "kp-…abcd", Source: adminapi.TokenSourceEnv}}
		d.bulk.Result = &adminapi.BulkAddResponse{Results: []adminapi.BulkResult{{Status: adminapi.BulkAdded}, {Status: adminapi.BulkInvalid}, {Status: adminapi.BulkDuplicate}}}
		d.delAsk, d.resetAsk, d.notice = "key_00000", "gemini", func() string { return "n" }
		d.play = playForm{Status: 200, Answer: "hi", KeyID: "key_00000", Err: "x"}
		d.add.Msg, d.bulk.Err, d.tokErr = "x", "x", "x"
		td, err := AggregateTraffic(&adminapi.TrafficResponse{BucketSeconds: 60, Start: "2026-01-01T10:00:00.000Z", Since: "2026-01-01T10:57:30.000Z",
			Providers: []adminapi.ProviderTraffic{{Provider: "gemini", Buckets: []adminapi.TrafficBucket{{Requests: 2, Success: 1, Errors: 1}}}}}, TrafficRanges[0])
		if err != nil {
			t.Fatal(err)
		}
		d.traffic, d.trafficShown = &td, TrafficRanges[0]
		d.bulk.Sent = Extracted{Keys: []string{"a"}, Lines: []int{1}, Repeats: []int{2}, NoKey: []int{3}}
		d.detailID = keys[2].ID
		d.tab = TabOverview
		if html := app.HTMLString(d.Render()); !strings.Contains(html, `class="uncounted"`) || !strings.Contains(html, `class="line errs"`) {
			t.Error("traffic chart lacks the uncounted band or the error line")
		}
		d.trafficErr = "x"
		app.HTMLString(d.Render())
		d.trafficErr = ""
		for _, tab := range []string{TabOverview, TabKeys, TabTokens, TabPlayground} {
			d.tab = tab
			app.HTMLString(d.Render())
		}
		d.startEdit(keys[0])
		d.tab = TabKeys
		app.HTMLString(d.Render())
	}
	if len(missing) > 0 {
		t.Fatalf("strings missing from the translation table: %v", missing)
	}
	if LangFor("zh-CN") != LangZH || LangFor("zh-TW") != LangZH || LangFor("en-US") != LangEN || LangFor("") != LangEN {
		t.Fatal("LangFor")
	}
}

func TestStateText(t *testing.T) {
	until := "2026-01-01T10:30:00.000Z"
	k := adminapi.KeyStatus{State: adminapi.StateCooling, CoolingUntil: &until}
	if s := StateText(LangEN, k); !strings.HasPrefix(s, "cooling until 2026-01-01") {
		t.Errorf("cooling: %q", s)
	}
	k = adminapi.KeyStatus{State: adminapi.StateDisabled, DisabledReason: "invalid_key: 401"}
	if s := StateText(LangZH, k); s != "已禁用：被服务商拒绝（密钥无效、已吊销或被停用）——401" {
		t.Errorf("disabled zh: %q", s)
	}
}

func TestFormsValidate(t *testing.T) {
	d := &Dashboard{}
	d.OnInit()
	d.add = addForm{Provider: "gemini", APIKey: "has space"}
	if _, err := d.AddRequest(); err == nil {
		t.Error("a key with a space passed")
	}
	d.add = addForm{Provider: "gemini", APIKey: " AIzaOK000000000 ", MaxRequests: "x"}
	if _, err := d.AddRequest(); err == nil {
		t.Error("maxRequests x passed")
	}
	d.add.MaxRequests = ""
	req, err := d.AddRequest()
	if err != nil || req.APIKey != "AIzaOK000000000" || req.MaxRequests != nil || req.Metadata != nil {
		t.Errorf("add request: %v %+v", err, req)
	}
	if got := ParseLines(" a \r\n\nb\n"); strings.Join(got, "|") != "a|b" {
		t.Errorf("ParseLines: %q", got)
	}
}

func TestSelectionBulkActionsAndChunkedImport(t *testing.T) {
	ts := startServer(t)
	c := adminclient.New(ts.URL, adminKey)
	h := mount(t, &Dashboard{})
	h.connect(ts.URL, adminKey)
	h.d.tab = TabKeys

	// 1,200 lines: three requests of bulkChunk; line 1,201 repeats line 1.
	var b strings.Builder
	for i := range 1200 {
		fmt.Fprintf(&b, "AIzaSyChunked%016d\n", i)
	}
	b.WriteString("AIzaSyChunked0000000000000000\n")
	h.d.panel = PanelBulk
	h.d.bulk = bulkForm{Provider: "gemini", Text: b.String()}
	h.do(h.d.BulkImport)
	r := h.d.bulk.Result
	if r == nil || r.Added != 1200 || r.Duplicates != 0 || len(r.Results) != 1200 || r.Results[1199].Index != 1199 {
		t.Fatalf("chunked import: %+v (notice %q)", r != nil, h.d.Notice())
	}
	// Line 1,201 repeats line 1: left out before sending, and said so.
	h.contains("1200 added, 1 duplicates, 0 invalid", "Line 1201: key repeated in the paste, sent once")
	if h.d.bulk.Done != 1200 || h.d.bulk.Busy {
		t.Fatalf("progress: %d busy %v", h.d.bulk.Done, h.d.bulk.Busy)
	}
	if st, _ := c.ProviderStatus(t.Context(), "gemini"); st.TotalKeys != 1200 {
		t.Fatalf("proxy holds %d keys", st.TotalKeys)
	}

	// Select everything matching a filter, disable, enable, delete.
	h.do(func(ctx app.Context) { h.d.filter.Text = "…000"; h.d.searchChanged(ctx) }) // masked "AIza…000N": keys 0-9 (ids never contain …)
	matching := h.d.kp.keys
	if len(matching) != 10 {
		t.Fatalf("filter …000 matched %d", len(matching))
	}
	h.d.selectKeys(matching, true)
	h.contains(`id="selection-count"`, "10 selected", `id="sel-disable"`)
	h.do(func(ctx app.Context) { h.d.RunBulk(ctx, BulkDisable) })
	if !strings.Contains(h.d.Notice(), "10 keys disabled, 0 failed") {
		t.Fatalf("disable: %q", h.d.Notice())
	}
	for _, k := range matching {
		if got, _ := c.GetKey(t.Context(), k.ID); got.IsActive {
			t.Fatalf("%s still active", k.ID)
		}
	}
	h.do(func(ctx app.Context) { h.d.RunBulk(ctx, BulkEnable) })
	if got, _ := c.GetKey(t.Context(), matching[0].ID); !got.IsActive {
		t.Fatal("enable did not reach the proxy")
	}
	h.do(func(ctx app.Context) { h.d.RunBulk(ctx, BulkDelete) })
	if !strings.Contains(h.d.Notice(), "10 keys deleted") || len(h.d.selected) != 0 {
		t.Fatalf("delete: %q, %d selected", h.d.Notice(), len(h.d.selected))
	}
	if st, _ := c.ProviderStatus(t.Context(), "gemini"); st.TotalKeys != 1190 {
		t.Fatalf("proxy holds %d keys after bulk delete", st.TotalKeys)
	}
}

func TestTagFilter(t *testing.T) {
	keys := manyKeys(100)
	if got := Tags(keys); len(got) != 10 || got[0] != "t0" {
		t.Fatalf("Tags: %v", got)
	}
}

// The overview's requests-over-time chart shows what GET /admin/traffic
// counts, per range, in both languages; an error is shown in its place.
func TestTrafficChart(t *testing.T) {
	ts := startServer(t)
	c := adminclient.New(ts.URL, adminKey)
	h := mount(t, &Dashboard{})
	h.connect(ts.URL, adminKey)
	if h.d.client == nil {
		t.Fatalf("not connected: %q", h.d.connErr)
	}
	// Loaded with the overview; nothing relayed yet.
	h.contains(`id="traffic-chart"`, `data-range="60"`, `data-total="0"`, `id="traffic-none"`, "No requests in this period.",
		`id="range-1h"`, "Requests over time · per 1 min")
	// (HTMLString writes a "true" attribute bare; the browser gets "true".)
	if n := strings.Count(h.html(), `aria-pressed="false"`); n != 2 {
		t.Errorf("%d range buttons not pressed, want 2", n)
	}

	// Three requests the proxy cannot serve (no gemini keys): 503, counted
	// as errors.
	for range 3 {
		path, hdr, body := adminclient.PlaygroundRequest("gemini", "gemini-2.5-flash", "", clientToken, "hi")
		if r, err := c.Relay(t.Context(), "POST", path, hdr, body); err != nil || r.Status != 503 {
			t.Fatalf("relay: %v %+v", err, r)
		}
	}
	want, err := c.Traffic(t.Context(), 60)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, p := range want.Providers {
		for _, b := range p.Buckets {
			total += b.Requests
		}
	}
	if total != 3 {
		t.Fatalf("proxy counted %d requests", total)
	}
	h.do(func(ctx app.Context) { h.d.refresh(ctx) })
	h.contains(`data-total="3"`, `data-errors="3"`, `data-peak="3"`, `data-top="5"`, `data-points="6"`,
		`class="partial s0"`, `class="started"`, `data-provider="gemini"`, `class="line errs"`, `id="traffic-legend-gemini"`,
		"gemini: 3 requests, 0.0% ok, 3 errors", "3 requests in the last hour: 0 succeeded, 3 failed.", `class="slot"`)
	// A fresh proxy: the chart starts where counting began (the 1-minute
	// point holding its start, but at least 6 points), not with an hour
	// of "not counted".
	if n := strings.Count(h.html(), `class="slot"`); n != 6 {
		t.Errorf("%d hover bands, want one per point (6)", n)
	}
	if strings.Contains(h.html(), `id="traffic-none"`) {
		t.Error("empty-chart text with requests")
	}

	// 24 h: 15-minute points, the same total.
	h.do(func(ctx app.Context) { h.d.setTrafficRange(2)(ctx, app.Event{}) })
	h.contains(`data-range="1440"`, `data-total="3"`, "per 15 min", "in the last 24 hours")
	if td := h.d.traffic; len(td.Starts) < 96 || len(td.Starts) > 97 || td.Step != 15*time.Minute {
		t.Errorf("24 h: %d points of %v", len(td.Starts), td.Step)
	}

	// Switching again before the first answer: only the last one shows.
	h.do(func(ctx app.Context) {
		h.d.setTrafficRange(0)(ctx, app.Event{})
		h.d.setTrafficRange(1)(ctx, app.Event{})
	})
	if h.d.trafficShown.Minutes != 360 || h.d.trafficBusy {
		t.Errorf("after two switches: showing %d minutes, busy %v", h.d.trafficShown.Minutes, h.d.trafficBusy)
	}

	h.d.lang = LangZH
	h.contains("请求趋势 · 每 5 分钟", "最近 6 小时共 3 个请求：成功 0 个，失败 3 个。", "gemini：3 个请求，成功率 0.0%，错误 3 个")

	// An error shows in the chart's place (here: the proxy went away).
	h.d.lang = LangEN
	ts.Close()
	h.do(func(ctx app.Context) { h.d.loadTraffic(ctx) })
	h.contains(`id="traffic-error"`, "Request history unavailable: Cannot reach")
}

// Form errors show in the form, translated.
func TestFormMessages(t *testing.T) {
	ts := startServer(t)
	h := mount(t, &Dashboard{})
	h.connect(ts.URL, adminKey)
	h.d.tab = TabKeys
	h.d.lang = LangZH
	h.d.panel = PanelAdd
	h.d.add = addForm{Provider: "gemini", APIKey: "has space"}
	h.do(h.d.AddKey)
	if !h.d.add.Err || h.d.add.Msg != "API 密钥不能包含空格或控制字符。" {
		t.Fatalf("add error: %q", h.d.add.Msg)
	}
	h.contains(`id="add-msg"`, `class="formmsg error"`, "API 密钥不能包含空格或控制字符。")
	h.d.panel = PanelBulk
	h.d.bulk = bulkForm{Provider: "gemini", Text: "\n \n"}
	h.do(h.d.BulkImport)
	h.contains(`id="bulk-msg"`, "请至少粘贴一个密钥。")
	h.d.tab = TabTokens
	h.do(h.d.CreateToken)
	h.contains(`id="tok-msg"`, "请输入名称。")
	if h.d.Notice() != "" {
		t.Errorf("form errors went to the page notice: %q", h.d.Notice())
	}

	// Edit: a weight out of range is caught before the request.
	h.d.lang = LangEN
	h.d.startEdit(adminapi.KeyStatus{ID: "key_x", Weight: 1})
	h.d.edit.Weight = "5000"
	if _, err := h.d.UpdateRequest(); err == nil || err.Error() != "Weight must be between 0 and 1000." {
		t.Errorf("weight 5000: %v", err)
	}
}

// Deleting a key given at start (OPENAI_KEYS) asks with a warning that it
// comes back at the next start, in the table and in the drawer; other keys
// get the plain question.
func TestDeleteAsksAboutStartKeys(t *testing.T) {
	ts, srv := startProxyServer(t)
	if _, err := srv.SeedKeys(t.Context(), "openai", []string{"sk-dashboard-start-key-0000001"}); err != nil {
		t.Fatal(err)
	}
	c := adminclient.New(ts.URL, adminKey)
	if _, err := c.AddKey(t.Context(), adminapi.AddKeyRequest{Provider: "openai", APIKey: "sk-dashboard-plain-key-0000001"}); err != nil {
		t.Fatal(err)
	}
	h := mount(t, &Dashboard{})
	h.connect(ts.URL, adminKey)
	h.d.tab = TabKeys
	h.do(h.d.refresh)
	st, err := c.ProviderStatus(t.Context(), "openai")
	if err != nil || len(st.Keys) != 2 {
		t.Fatalf("keys: %v %+v", err, st)
	}
	for _, k := range st.Keys {
		start := adminapi.IsStartKey(k.ID)
		h.do(func(ctx app.Context) { h.d.delAsk = k.ID })
		html := h.html()
		if got := strings.Contains(html, "It is given in OPENAI_KEYS and comes back at the next start."); got != start {
			t.Errorf("row %s (start key %v): warning shown %v", k.ID, start, got)
		}
		h.do(func(ctx app.Context) { h.d.delAsk = ""; h.d.detailID, h.d.detailAsk = k.ID, true })
		if got := strings.Contains(h.html(), "comes back at the next start"); got != start {
			t.Errorf("drawer %s (start key %v): warning shown %v", k.ID, start, got)
		}
		h.do(func(ctx app.Context) { h.d.detailID, h.d.detailAsk = "", false })
	}
	h.d.lang = LangZH
	for _, k := range st.Keys {
		if adminapi.IsStartKey(k.ID) {
			h.do(func(ctx app.Context) { h.d.delAsk = k.ID })
			h.contains("它由 OPENAI_KEYS 给出，下次启动时会回来。")
		}
	}
}
