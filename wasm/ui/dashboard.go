// Package ui is the admin dashboard's components (go-app v10). It builds
// natively for tests and prerendering, and for GOOS=js GOARCH=wasm.
package ui

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/adminclient"
	"github.com/maxence-charriere/go-app/v10/pkg/app"
)

// Storage keys.
const (
	storeConn = "keypool.conn"
	storeTab  = "keypool.tab" // session storage: a reload stays on the tab
	storeLang = "keypool.lang"
)

// DefaultProxyEnv names the build-time default proxy URL (public: it is
// baked into app.js).
const DefaultProxyEnv = "KEYPOOL_PROXY_URL"

// Tabs.
const (
	TabOverview = "overview"
	TabKeys     = "keys"
	TabTokens   = "tokens"
)

type savedConn struct {
	URL string `json:"url"`
	Key string `json:"key"`
}

// Dashboard is the whole app: the connect screen until connected, then
// the tabs.
type Dashboard struct {
	app.Compo

	// NewClient makes the admin API client; tests replace it.
	NewClient func(url, key string) *adminclient.Client
	// Origin is this page's origin, named in the CORS advice.
	Origin string

	lang      string
	self      app.Context // the Dashboard's own context, set on mount
	hasSelf   bool
	client    *adminclient.Client
	tab       string
	notice    func() string // the page notice, translated when shown
	noticeErr bool
	noticeSeq int // which notice a fade timer belongs to

	// connect
	url, key   string
	remember   bool
	connecting bool
	connErr    string

	// data
	sum       *adminapi.Summary // the pool in numbers (GET /admin/summary): never every key
	sumSeq    int               // answers to older summary requests are dropped
	loading   bool
	updatedAt time.Time // when the summary or the table's page last arrived
	now       time.Time // the dashboard's clock (see Tick)
	autoEvery int       // auto-refresh interval in seconds, 0 = off
	theme     string    // ThemeAuto, ThemeDark or ThemeLight
	menuOpen  bool      // the phone menu

	// keys view
	filter     Filter
	kp         keysPage // the table's page (paging.go)
	searchSeq  int      // debounced searches: only the last one loads
	pageSize   int      // 0 = PageSize
	tagList    []string // the summary's tags (SummaryTags)
	projList   []string // the summary's projects (SummaryProjects)
	resetAsk   string
	delAsk     string
	editID     string
	edit       editForm
	rowMsg     map[string]string
	add        addForm
	bulk       bulkForm
	tokens     []adminapi.Token
	tokName    string
	tokLim     tokenLimitForm
	newToken   *adminapi.CreateTokenResponse
	copied     bool // the new token went to the clipboard
	copyFailed bool
	revokeAsk  string
	tokErr     string

	panel       string         // PanelAdd, PanelBulk or "" above the keys table
	fresh       string         // the key just added: highlighted
	detailID    string         // the key in the detail drawer ("" = closed)
	detailAsk   bool           // the drawer's delete awaits confirmation
	projCount   map[string]int // keys per provider + "\x00" + project, counted by the proxy for the drawer
	revealAfter string         // the key to reveal once the table is reloaded

	play       playForm
	selected   map[string]bool
	selAll     *selectAll // "all matching" is selected
	bulkBusy   string
	bulkDelAsk bool
	sweepAsk   string   // SweepRemove or SweepRetest awaiting confirmation
	sweepIDs   []string // the keys that confirmation counted

	reqs requestsView // the Requests tab (requests.go)

	// requests-over-time chart
	trafficRange int          // index into TrafficRanges
	traffic      *TrafficData // what the chart shows
	trafficShown TrafficRange // the range of traffic
	trafficErr   string
	trafficBusy  bool
	trafficSeq   int // answers to older requests are dropped
	chartW       int // the traffic chart's card width in CSS pixels (0: not measured)
}

type editForm struct {
	Active      bool
	MaxRequests string
	Weight      string
	Description string
	Tags        string
	Project     string
	ProjectWas  string // the key's project when the edit began
}

type addForm struct {
	Provider, APIKey, MaxRequests, Description, Tags string
	Project                                          string
	Msg                                              string // the last result, shown in the form
	Err                                              bool
}

type bulkForm struct {
	Provider string
	Text     string
	// applied to every key of the import
	MaxRequests, Weight, Tags string
	Project                   string
	Sent                      Extracted // what the last import sent
	Busy                      bool
	Done                      int
	Total                     int
	Result                    *adminapi.BulkAddResponse
	Err                       string // shown in the form
}

var (
	_ app.Initializer = (*Dashboard)(nil)
	_ app.Mounter     = (*Dashboard)(nil)
)

// OnInit sets defaults; it also runs when prerendering.
func (d *Dashboard) OnInit() {
	if d.NewClient == nil {
		d.NewClient = adminclient.New
	}
	if d.lang == "" {
		d.lang = LangEN
	}
	if d.tab == "" {
		d.tab = TabOverview
	}
	if d.url == "" {
		d.url = app.Getenv(DefaultProxyEnv)
	}
	if d.rowMsg == nil {
		d.rowMsg = map[string]string{}
	}
	if d.selected == nil {
		d.selected = map[string]bool{}
	}
	if d.add.Provider == "" {
		d.add.Provider = "gemini"
	}
	if d.bulk.Provider == "" {
		d.bulk.Provider = "gemini"
	}
}

// OnMount runs in the browser only: language, saved connection.
func (d *Dashboard) OnMount(ctx app.Context) {
	d.self, d.hasSelf = ctx, true
	if app.IsClient {
		d.Origin = app.Window().Get("location").Get("origin").String()
	}
	var lang string
	ctx.LocalStorage().Get(storeLang, &lang)
	if lang == "" && app.IsClient {
		lang = LangFor(app.Window().Get("navigator").Get("language").String())
	}
	if lang == LangZH || lang == LangEN {
		d.lang = lang
	}
	d.showLang(ctx)
	ctx.LocalStorage().Get(storeTheme, &d.theme)
	if d.theme != ThemeDark && d.theme != ThemeLight {
		d.theme = ThemeAuto
	}
	d.applyTheme()
	ctx.LocalStorage().Get(storeAuto, &d.autoEvery)
	d.startTicker(ctx)
	var c savedConn
	if ctx.LocalStorage().Get(storeConn, &c); c.Key != "" {
		d.remember = true
	} else {
		ctx.SessionStorage().Get(storeConn, &c)
	}
	if c.URL != "" {
		d.url = c.URL
	}
	var tab string
	if ctx.SessionStorage().Get(storeTab, &tab); tab != "" {
		d.tab = tab
	}
	if c.Key != "" {
		d.key = c.Key
		d.connect(ctx)
	}
}

// bind returns the context async work must dispatch through. An event's
// context belongs to the element that fired it, and go-app silently drops
// a Dispatch whose element was unmounted meanwhile (a confirm button that
// disappears, a form re-created by a re-render). The Dashboard's own
// context stays mounted.
func (d *Dashboard) bind(ctx app.Context) app.Context {
	if d.hasSelf {
		return d.self
	}
	return ctx
}

func (d *Dashboard) t(key string, args ...any) string { return T(d.lang, key, args...) }

// ErrorText turns a client error into the sentence the operator reads.
func (d *Dashboard) ErrorText(err error) string {
	var e *adminclient.Error
	if !asError(err, &e) {
		return err.Error()
	}
	switch e.Kind {
	case adminclient.KindUnreachable:
		return d.t("err.unreachable", d.baseURL())
	case adminclient.KindCORS:
		origin := d.Origin
		if origin == "" {
			origin = d.t("err.thisOrigin")
		}
		return d.t("err.cors", d.baseURL(), origin)
	case adminclient.KindUnauthorized:
		return d.t("err.unauthorized")
	case adminclient.KindDecode:
		return d.t("err.decode", e.Message)
	}
	return d.t("err.http", e.Status, e.Message)
}

func (d *Dashboard) baseURL() string {
	if d.client != nil {
		return d.client.BaseURL
	}
	return adminclient.NormalizeURL(d.url)
}

// NoticeTTL is how long a success notice stays; errors stay until
// dismissed or replaced.
const NoticeTTL = 8 * time.Second

// setNotice shows the page notice. text runs at each render, so a notice
// follows a language switch. A success notice fades after NoticeTTL.
func (d *Dashboard) setNotice(ctx app.Context, text func() string, isErr bool) {
	d.notice, d.noticeErr = text, isErr
	d.noticeSeq++
	if isErr || !app.IsClient {
		return
	}
	seq := d.noticeSeq
	d.bind(ctx).After(NoticeTTL, func(app.Context) { d.expireNotice(seq) })
}

// expireNotice clears notice seq if it is still the one shown.
func (d *Dashboard) expireNotice(seq int) {
	if seq == d.noticeSeq {
		d.clearNotice()
	}
}

func (d *Dashboard) clearNotice() {
	d.notice, d.noticeErr = nil, false
	d.noticeSeq++
}

// Notice is the page notice as shown now ("" when none).
func (d *Dashboard) Notice() string {
	if d.notice == nil {
		return ""
	}
	return d.notice()
}

func bg() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 60*time.Second)
}

// Connect checks the URL and key with one status page (one key, or the
// Keys tab's first page).
func (d *Dashboard) Connect(ctx app.Context) { d.connect(ctx) }

func (d *Dashboard) connect(ctx app.Context) {
	d.connErr = ""
	switch {
	case strings.TrimSpace(d.url) == "":
		d.connErr = d.t("connect.needURL")
		return
	case d.key == "":
		d.connErr = d.t("connect.needKey")
		return
	}
	c := d.NewClient(d.url, d.key)
	keysTab, kq := d.tab == TabKeys && d.filter == (Filter{}), d.keysQuery()
	kq.Limit = d.size()
	d.connecting = true
	ctx = d.bind(ctx)
	ctx.Async(func() {
		cctx, cancel := bg()
		defer cancel()
		// One page checks the URL and the admin key: the Keys tab's first
		// page, else one key, and the tab then loads what it shows (the
		// Keys tab never every key).
		q := adminapi.StatusQuery{Limit: 1}
		if keysTab {
			q = kq
		}
		p, err := c.StatusPage(cctx, q)
		ctx.Dispatch(func(ctx app.Context) {
			d.connecting = false
			if err != nil {
				d.client = c
				d.connErr = d.ErrorText(err)
				d.client = nil
				return
			}
			d.client = c
			if keysTab && d.tab == TabKeys && d.filter == (Filter{}) {
				d.kp = keysPage{sig: querySig(q), cursors: map[int]string{0: ""}}
				if p.NextCursor != "" {
					d.kp.cursors[len(p.Keys)] = p.NextCursor
				}
				d.setPage(p, 0)
				d.loadSummary(ctx) // the filters' tags and projects
			} else {
				d.refresh(ctx)
			}
			saved := savedConn{URL: c.BaseURL, Key: d.key}
			if d.remember {
				ctx.LocalStorage().Set(storeConn, saved)
				ctx.SessionStorage().Del(storeConn)
			} else {
				ctx.SessionStorage().Set(storeConn, saved)
				ctx.LocalStorage().Del(storeConn)
			}
		})
	})
}

func (d *Dashboard) disconnect(ctx app.Context, e app.Event) {
	ctx.LocalStorage().Del(storeConn)
	ctx.SessionStorage().Del(storeConn)
	d.client, d.sum, d.tokens, d.key = nil, nil, nil, ""
	d.sumSeq++
	d.kp, d.selAll = keysPage{}, nil
	d.tagList, d.projList = nil, nil
	d.clearNotice()
	d.traffic, d.trafficErr, d.trafficBusy = nil, "", false
	d.trafficSeq++
	clear(d.selected)
	d.newToken, d.tokErr, d.add.Msg, d.bulk.Err, d.bulk.Result = nil, "", "", "", nil
}

// setSummary keeps the pool's numbers: the overview's, the filters' tags
// and projects, the providers.
func (d *Dashboard) setSummary(sum *adminapi.Summary) {
	d.sum = sum
	d.updatedAt = time.Now()
	d.now = d.updatedAt
	d.tagList = SummaryTags(sum)
	d.projList = SummaryProjects(sum)
}

// loadSummary fetches the summary alone (the Keys tab's filters); an
// answer to an older request is dropped.
func (d *Dashboard) loadSummary(ctx app.Context) {
	c := d.client
	if c == nil {
		return
	}
	d.sumSeq++
	seq := d.sumSeq
	ctx = d.bind(ctx)
	ctx.Async(func() {
		cctx, cancel := bg()
		defer cancel()
		sum, err := c.Summary(cctx)
		ctx.Dispatch(func(ctx app.Context) {
			if seq != d.sumSeq || err != nil { // the table reports its own errors
				return
			}
			d.setSummary(sum)
		})
	})
}

// refresh reloads what the tab shows: the summary (never every key), the
// table's page on the Keys tab, the tokens on theirs.
func (d *Dashboard) refresh(ctx app.Context) {
	c := d.client
	if c == nil {
		return
	}
	d.loading = true
	tab := d.tab
	if tab == TabOverview {
		d.loadTraffic(ctx)
	}
	if tab == TabRequests {
		d.loadRequests(ctx, false)
	}
	if tab == TabKeys { // one page, never every key
		id := d.revealAfter
		d.revealAfter = ""
		d.loadKeysThen(ctx, d.kp.offset, id)
		d.loadSummary(ctx)
		return // loading stays true (the Refresh button is busy) until the page arrives
	}
	d.sumSeq++
	seq := d.sumSeq
	ctx = d.bind(ctx)
	ctx.Async(func() {
		cctx, cancel := bg()
		defer cancel()
		sum, err := c.Summary(cctx)
		var toks []adminapi.Token
		var terr error
		if err == nil && tab == TabTokens {
			toks, terr = c.Tokens(cctx)
		}
		ctx.Dispatch(func(ctx app.Context) {
			d.loading = false
			if err != nil {
				d.setNotice(ctx, func() string { return d.ErrorText(err) }, true)
				return
			}
			if seq == d.sumSeq {
				d.setSummary(sum)
			}
			if terr != nil {
				d.setNotice(ctx, func() string { return d.ErrorText(terr) }, true)
			} else if tab == TabTokens {
				d.tokens = toks
			}
		})
	})
}

// loadTraffic fetches the chart's range. The answer to an older request
// (the operator switched ranges meanwhile) is dropped.
func (d *Dashboard) loadTraffic(ctx app.Context) {
	c := d.client
	if c == nil {
		return
	}
	d.trafficSeq++
	seq := d.trafficSeq
	rng := TrafficRanges[d.trafficRange]
	d.trafficBusy = true
	ctx = d.bind(ctx)
	ctx.Async(func() {
		cctx, cancel := bg()
		defer cancel()
		r, err := c.Traffic(cctx, rng.Minutes)
		var td TrafficData
		if err == nil {
			td, err = AggregateTraffic(r, rng)
		}
		ctx.Dispatch(func(ctx app.Context) {
			if seq != d.trafficSeq {
				return
			}
			d.trafficBusy = false
			if err != nil {
				d.trafficErr = d.t("traffic.error", d.ErrorText(err))
				return
			}
			d.trafficErr = ""
			d.traffic, d.trafficShown = &td, rng
			d.measureChart(ctx)
		})
	})
}

func (d *Dashboard) setTrafficRange(i int) app.EventHandler {
	return func(ctx app.Context, e app.Event) {
		d.trafficRange = i
		d.loadTraffic(ctx)
	}
}

func (d *Dashboard) setLang(ctx app.Context, e app.Event) {
	if d.lang == LangZH {
		d.lang = LangEN
	} else {
		d.lang = LangZH
	}
	ctx.LocalStorage().Set(storeLang, d.lang)
	d.showLang(ctx)
}

// showLang puts the language on the document (its lang attribute, for
// screen readers, and the window title).
func (d *Dashboard) showLang(ctx app.Context) {
	if !app.IsClient {
		return
	}
	app.Window().Get("document").Get("documentElement").Set("lang", map[string]string{LangZH: "zh-CN", LangEN: "en"}[d.lang])
	ctx.Page().SetTitle(d.t("app.title"))
}

// focus moves the keyboard focus to the element id once the current
// update is on screen: a confirmation's Cancel when it opens, the button
// that opened it when it closes.
func (d *Dashboard) focus(ctx app.Context, id string) {
	if !app.IsClient {
		return
	}
	d.bind(ctx).Defer(func(app.Context) {
		if el := app.Window().GetElementByID(id); el.Truthy() {
			el.Call("focus")
		}
	})
}

// confirm is an inline confirmation: the question, Yes and Cancel. The
// opener gives Cancel the focus (see focus); Escape cancels.
func (d *Dashboard) confirm(question, yesID, noID string, yes, no app.EventHandler) app.UI {
	return app.Span().Class("confirm").Role("group").Aria("label", question).OnKeyDown(onEscape(no), on(yesID)).Body(
		app.Text(question+" "),
		app.Button().ID(yesID).Type("button").Class("danger").Text(d.t("common.yes")).OnClick(yes, on(yesID)),
		app.Button().ID(noID).Type("button").Text(d.t("common.no")).OnClick(no, on(noID)),
	)
}

// onEscape runs h when Escape is pressed.
func onEscape(h app.EventHandler) app.EventHandler {
	return func(ctx app.Context, e app.Event) {
		if e.Get("key").String() == "Escape" {
			e.PreventDefault()
			h(ctx, e)
		}
	}
}

func (d *Dashboard) setTab(tab string) app.EventHandler {
	return func(ctx app.Context, e app.Event) {
		d.tab = tab
		ctx.SessionStorage().Set(storeTab, tab)
		d.menuOpen = false
		d.clearNotice()
		d.newToken = nil // shown once: gone when the operator leaves
		d.refresh(ctx)
	}
}

// Render draws the current screen.
func (d *Dashboard) Render() app.UI {
	return app.Div().ID("dashboard").Class("dash").Lang(d.lang).Body(
		d.renderHeader(),
		d.renderNotice(),
		app.Main().Aria("busy", strconv.FormatBool(d.loading)).Body(d.screen()),
	)
}

// clearInput empties a form control in the page. Setting the bound field
// to "" is not enough: the virtual DOM still holds "" from the last render,
// sees no change, and would leave what the operator typed (a secret) there.
func clearInput(id string) {
	if !app.IsClient {
		return
	}
	if el := app.Window().GetElementByID(id); el.Truthy() {
		el.Set("value", "")
	}
}

// renderNotice is the page notice with its dismiss button. Always present,
// so the screen below keeps its place in the tree and is not re-created
// when a notice comes and goes.
func (d *Dashboard) renderNotice() app.UI {
	msg := d.Notice()
	// Success notices fade out over NoticeTTL; the animation's name
	// alternates so a new notice in the same element starts it again.
	cls := noticeClass(msg, d.noticeErr)
	if msg != "" && !d.noticeErr {
		cls += " fade-" + strconv.Itoa(d.noticeSeq%2)
	}
	return app.Div().ID("notice").Class(cls).Role(map[bool]string{true: "alert", false: "status"}[d.noticeErr]).Body(
		app.Span().ID("notice-text").Text(msg),
		app.If(msg != "", func() app.UI {
			return app.Button().ID("notice-close").Type("button").Class("close").Aria("label", d.t("common.dismiss")).Title(d.t("common.dismiss")).Text("×").
				OnClick(func(ctx app.Context, e app.Event) { d.clearNotice() }, on("notice-close"))
		}),
	)
}

func noticeClass(msg string, isErr bool) string {
	switch {
	case msg == "":
		return "notice empty"
	case isErr:
		return "notice error"
	}
	return "notice"
}

func (d *Dashboard) tabButton(tab, label string) app.UI {
	cls := "tab"
	if d.tab == tab {
		cls += " current"
	}
	return app.Button().ID("tab-"+tab).Type("button").Class(cls).Aria("current", map[bool]string{true: "page", false: "false"}[d.tab == tab]).Text(d.t(label)).OnClick(d.setTab(tab), on("tab", tab))
}

func (d *Dashboard) screen() app.UI {
	if d.client == nil {
		return d.renderConnect()
	}
	switch d.tab {
	case TabKeys:
		return d.renderKeys()
	case TabTokens:
		return d.renderTokens()
	case TabRequests:
		return d.renderRequests()
	case TabPlayground:
		return d.renderPlayground()
	}
	return d.renderOverview()
}

func (d *Dashboard) renderConnect() app.UI {
	return app.Form().ID("connect-form").Class("card connect").OnSubmit(func(ctx app.Context, e app.Event) {
		e.PreventDefault()
		d.connect(ctx)
	}, on("connect-form")).Body(
		app.H2().Text(d.t("connect.title")),
		field("proxy-url", d.t("connect.url"), app.Input().ID("proxy-url").Type("url").Placeholder("http://127.0.0.1:8080").
			Value(d.url).AutoComplete(true).OnInput(d.ValueTo(&d.url), on("proxy-url"))),
		field("admin-key", d.t("connect.key"), app.Input().ID("admin-key").Type("password").Value(d.key).
			OnInput(d.ValueTo(&d.key), on("admin-key"))),
		app.Label().Class("check").Body(
			app.Input().ID("remember").Type("checkbox").Checked(d.remember).OnChange(func(ctx app.Context, e app.Event) {
				d.remember = ctx.JSSrc().Get("checked").Bool()
			}, on("remember")),
			app.Text(" "+d.t("connect.remember")),
		),
		app.P().Class("hint").Text(d.t("connect.rememberHint")),
		app.If(d.connErr != "", func() app.UI {
			return app.P().ID("connect-error").Class("error").Aria("live", "assertive").Text(d.connErr)
		}),
		app.Button().ID("connect").Type("submit").Disabled(d.connecting).Text(func() string {
			if d.connecting {
				return d.t("connect.busy")
			}
			return d.t("connect.submit")
		}()),
	)
}

func field(id, label string, input app.UI) app.UI {
	return app.Div().Class("field").Body(app.Label().For(id).Text(label), input)
}

func pct(rate float64) string {
	if rate <= 1 {
		rate *= 100
	}
	return strconv.FormatFloat(rate, 'f', 1, 64) + "%"
}

func (d *Dashboard) doReset(provider string) app.EventHandler {
	return func(ctx app.Context, e app.Event) {
		d.resetAsk = ""
		c := d.client
		ctx = d.bind(ctx)
		ctx.Async(func() {
			cctx, cancel := bg()
			defer cancel()
			r, err := c.Reset(cctx, provider)
			ctx.Dispatch(func(ctx app.Context) {
				if err != nil {
					d.setNotice(ctx, func() string { return d.ErrorText(err) }, true)
					return
				}
				d.setNotice(ctx, func() string { return d.t("ov.resetDone", r.KeysReset, provider) }, false)
				d.refresh(ctx)
			})
		})
	}
}

// parseInt parses an optional whole number; empty is ok=true, set=false.
func parseInt(s string) (n int64, set bool, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false, nil
	}
	n, err = strconv.ParseInt(s, 10, 64)
	return n, err == nil, err
}

func fmtTime(lang string, p *string) string {
	if p == nil || *p == "" {
		return T(lang, "never")
	}
	t, err := time.Parse(adminapi.TimeLayout, *p)
	if err != nil {
		return *p
	}
	return t.Local().Format("2006-01-02 15:04")
}
