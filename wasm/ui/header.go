package ui

import (
	"strconv"
	"time"

	"github.com/maxence-charriere/go-app/v10/pkg/app"
)

// Themes: "" follows the system (prefers-color-scheme).
const (
	ThemeAuto  = ""
	ThemeDark  = "dark"
	ThemeLight = "light"

	storeTheme = "keypool.theme"
	storeAuto  = "keypool.autorefresh"
)

// AutoRefreshChoices are the auto-refresh intervals in seconds (0 = off).
var AutoRefreshChoices = []int{0, 10, 30}

// tickEvery is how often the header's "updated N s ago" and auto-refresh
// are looked at.
const tickEvery = 5 * time.Second

// nextTheme is the theme after t on the switch: auto → dark → light → auto.
func nextTheme(t string) string {
	switch t {
	case ThemeAuto:
		return ThemeDark
	case ThemeDark:
		return ThemeLight
	}
	return ThemeAuto
}

// applyTheme puts the theme on the document (data-theme; none = follow
// the system).
func (d *Dashboard) applyTheme() {
	if !app.IsClient {
		return
	}
	root := app.Window().Get("document").Get("documentElement")
	if d.theme == ThemeAuto {
		root.Call("removeAttribute", "data-theme")
	} else {
		root.Call("setAttribute", "data-theme", d.theme)
	}
}

// startTicker runs tick every tickEvery while the page is open.
func (d *Dashboard) startTicker(ctx app.Context) {
	if !app.IsClient {
		return
	}
	d.bind(ctx).After(tickEvery, func(ctx app.Context) {
		d.Tick(ctx, time.Now())
		d.startTicker(ctx)
	})
}

// Tick moves the dashboard's clock to now ("updated N s ago") and, when
// auto-refresh is on and its interval has passed since the last answer,
// refreshes, unless the operator is editing a row or an action runs.
func (d *Dashboard) Tick(ctx app.Context, now time.Time) {
	d.now = now
	if d.autoEvery <= 0 || d.client == nil || d.loading || d.editID != "" || d.bulkBusy != "" || d.bulk.Busy {
		return
	}
	if now.Sub(d.updatedAt) >= time.Duration(d.autoEvery)*time.Second-time.Second/2 {
		d.refresh(ctx)
	}
}

// updatedText is "updated N s ago" (or "refreshing…").
func (d *Dashboard) updatedText() string {
	if d.loading {
		return d.t("nav.refreshing")
	}
	if d.updatedAt.IsZero() {
		return ""
	}
	now := d.now
	if now.Before(d.updatedAt) {
		now = d.updatedAt
	}
	s := int(now.Sub(d.updatedAt) / time.Second)
	if s < 60 {
		return d.t("nav.updatedSec", s)
	}
	return d.t("nav.updatedMin", s/60)
}

func (d *Dashboard) renderHeader() app.UI {
	connected := d.client != nil
	menu := map[bool]string{true: "top open", false: "top"}[d.menuOpen]
	return app.Header().Class(menu).Body(
		app.H1().Text(d.t("app.title")),
		app.If(connected, func() app.UI {
			return app.Button().ID("menu").Type("button").Class("menu-btn").Aria("expanded", strconv.FormatBool(d.menuOpen)).Aria("controls", "nav").
				Text(d.t("nav.menu")).OnClick(func(ctx app.Context, e app.Event) { d.menuOpen = !d.menuOpen }, on("menu"))
		}),
		app.If(connected, func() app.UI {
			return app.Nav().ID("nav").Class("tabs").Body(
				d.tabButton(TabOverview, "tab.overview"),
				d.tabButton(TabKeys, "tab.keys"),
				d.tabButton(TabTokens, "tab.tokens"),
				d.tabButton(TabRequests, "tab.requests"),
				d.tabButton(TabPlayground, "tab.playground"),
			)
		}),
		app.Div().Class("top-actions").Body(
			app.If(connected, func() app.UI {
				return app.Span().Class("conn").Text(d.t("nav.connectedTo", d.baseURL()))
			}),
			app.If(connected, func() app.UI {
				return app.Span().Class("refreshing").Body(
					app.Span().ID("updated").Class("hint").Aria("live", "off").Text(d.updatedText()),
					app.Button().ID("refresh").Type("button").Disabled(d.loading).Aria("busy", strconv.FormatBool(d.loading)).
						Text(d.t("nav.refresh")).OnClick(func(ctx app.Context, e app.Event) { d.refresh(ctx) }, on("refresh")),
					app.Label().Class("auto").Body(
						app.Text(d.t("nav.auto")+" "),
						app.Select().ID("auto-refresh").OnChange(func(ctx app.Context, e app.Event) {
							if n, err := strconv.Atoi(ctx.JSSrc().Get("value").String()); err == nil {
								d.SetAutoRefresh(ctx, n)
							}
						}, on("auto-refresh")).Body(app.Range(AutoRefreshChoices).Slice(func(i int) app.UI {
							n := AutoRefreshChoices[i]
							text := d.t("nav.autoOff")
							if n > 0 {
								text = d.t("nav.autoEvery", n)
							}
							return app.Option().Value(n).Text(text).Selected(n == d.autoEvery)
						})),
					),
				)
			}),
			app.If(connected, func() app.UI {
				return app.Button().ID("disconnect").Type("button").Text(d.t("nav.disconnect")).OnClick(d.disconnect, on("disconnect"))
			}),
			app.Button().ID("theme").Type("button").Title(d.t("theme.label")).Text(d.t("theme."+map[string]string{ThemeAuto: "auto", ThemeDark: "dark", ThemeLight: "light"}[d.theme])).
				OnClick(func(ctx app.Context, e app.Event) {
					d.theme = nextTheme(d.theme)
					ctx.LocalStorage().Set(storeTheme, d.theme)
					d.applyTheme()
				}, on("theme")),
			app.Button().ID("lang").Type("button").Title(d.t("lang.label")).Lang(map[string]string{LangZH: "en", LangEN: "zh"}[d.lang]).
				Text(d.t("lang.switch")).OnClick(d.setLang, on("lang")),
		),
	)
}

// SetAutoRefresh sets the auto-refresh interval (seconds, 0 = off) and
// remembers it on this device.
func (d *Dashboard) SetAutoRefresh(ctx app.Context, seconds int) {
	d.autoEvery = max(seconds, 0)
	ctx.LocalStorage().Set(storeAuto, d.autoEvery)
}
