package ui

import (
	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/maxence-charriere/go-app/v10/pkg/app"
)

// StateCounts splits keys by state (see StatesOf); every key is in exactly
// one count, so Serving + Cooling + Disabled + Off = Total.
type StateCounts struct {
	Total, Serving, Cooling, Disabled, Off int // Off: turned off or used up
}

// tile is one number of the overview; level "warn" or "bad" styles it as
// a warning when n > 0.
func tile(id, label, value, hint, level string, n int) app.UI {
	cls := "tile"
	if level != "" && n > 0 {
		cls += " " + level
	}
	return app.Div().ID(id).Class(cls).Body(
		app.Div().Class("n").Text(value),
		app.Div().Class("l").Text(label),
		app.If(hint != "", func() app.UI { return app.Div().Class("h").Text(hint) }),
	)
}

func (d *Dashboard) renderOverview() app.UI {
	st := d.sum
	if st == nil {
		return app.P().Text(d.t("common.loading"))
	}
	storeText := d.t("ov.storeOK", st.Store.Backend)
	if !st.Store.OK {
		since := ""
		if st.Store.Since != nil {
			since = *st.Store.Since
		}
		storeText = d.t("ov.storeBad", st.Store.Backend, since, st.Store.Detail)
	}
	all := StatesOf(st.States)
	// Traffic numbers come from the chart's answer: the tiles, the legend
	// and the table show the same window.
	rng := d.trafficShown
	if rng.Key == "" {
		rng = TrafficRanges[d.trafficRange]
	}
	window := d.t("traffic.last." + rng.Key)
	byProvider := map[string]adminapi.TrafficBucket{}
	var total adminapi.TrafficBucket
	haveTraffic := d.traffic != nil
	if haveTraffic {
		total = d.traffic.Total
		for _, s := range d.traffic.Series {
			byProvider[s.Provider] = s.Total
		}
	}
	trafficVal := func(n int64) string {
		if !haveTraffic {
			return "…"
		}
		return fmtInt(n)
	}
	rate := "—"
	if haveTraffic {
		rate = Rate(total)
	}
	rows := []app.UI{}
	for _, p := range st.Providers {
		c := StatesOf(p.States)
		used := p.Requests
		tr := byProvider[p.Provider]
		name := p.Provider
		rows = append(rows, app.Tr().ID("ov-"+name).Body(
			app.Th().Scope("row").Text(name),
			app.Td().Class("num").Text(fmtInt(c.Total)),
			app.Td().Class("num").Text(fmtInt(c.Serving)),
			app.Td().Class(map[bool]string{true: "num warn", false: "num"}[c.Cooling > 0]).Text(fmtInt(c.Cooling)),
			app.Td().Class(map[bool]string{true: "num bad", false: "num"}[c.Disabled > 0]).Text(fmtInt(c.Disabled)),
			app.Td().Class("num").Text(fmtInt(c.Off)),
			app.Td().Class(map[bool]string{true: "num warn", false: "num"}[p.RestingModelPairs > 0]).Text(fmtInt(p.RestingModelPairs)),
			app.Td().Class("quotas").Text(QuotaText(d.lang, p.TotalKeys, p.Projects, p.KeysWithoutProject)),
			app.Td().Class("num").Text(trafficVal(tr.Requests)),
			app.Td().Class("num").Text(Rate(tr)),
			app.Td().Class("num").Text(fmtInt(used)),
			app.Td().Class("actions").Body(app.If(d.resetAsk == name, func() app.UI {
				return d.confirm(d.t("ov.resetConfirm", name), "reset-yes-"+name, "reset-no-"+name, d.doReset(name), func(ctx app.Context, e app.Event) {
					d.resetAsk = ""
					d.focus(ctx, "reset-"+name)
				})
			}).Else(func() app.UI {
				return app.Button().ID("reset-"+name).Type("button").Text(d.t("ov.reset")).OnClick(func(ctx app.Context, e app.Event) {
					d.resetAsk = name
					d.focus(ctx, "reset-no-"+name)
				}, on("reset", name))
			})),
		))
	}
	return app.Section().ID("overview").Class("card").Body(
		app.H2().Text(d.t("ov.title")),
		app.P().ID("store-health").Class(map[bool]string{true: "ok", false: "error"}[st.Store.OK]).Text(d.t("ov.store")+" — "+storeText),
		app.H3().Class("tiles-title").Text(d.t("ov.keysNow")),
		app.Div().ID("key-tiles").Class("tiles").Body(
			tile("tile-total", d.t("ov.total"), fmtInt(all.Total), "", "", 0),
			tile("tile-serving", d.t("ov.serving"), fmtInt(all.Serving), d.t("ov.servingHint"), "", 0),
			tile("tile-cooling", d.t("ov.cooling"), fmtInt(all.Cooling), d.t("ov.coolingHint"), "warn", all.Cooling),
			tile("tile-disabled", d.t("ov.disabled"), fmtInt(all.Disabled), d.t("ov.disabledHint"), "bad", all.Disabled),
			tile("tile-off", d.t("ov.off"), fmtInt(all.Off), d.t("ov.offHint"), "", 0),
			tile("tile-resting", d.t("ov.resting"), fmtInt(st.RestingModelPairs), d.t("ov.restingHint"), "warn", st.RestingModelPairs),
		),
		d.quotaLine(st),
		app.H3().Class("tiles-title").Text(d.t("ov.trafficIn", window)),
		app.Div().ID("traffic-tiles").Class("tiles").Body(
			tile("tile-requests", d.t("ov.requests"), trafficVal(total.Requests), "", "", 0),
			tile("tile-rate", d.t("ov.successRate"), rate, "", "", 0),
			tile("tile-errors", d.t("ov.errors"), trafficVal(total.Errors), "", "bad", int(min(total.Errors, 1))),
		),
		app.If(all.Total == 0, func() app.UI { return app.P().Class("hint").Text(d.t("ov.noKeys")) }),
		d.renderTraffic(),
		app.If(len(st.Providers) > 0, func() app.UI { return d.renderChart(st.Providers) }),
		app.Div().Class("scroll").Body(app.Table().ID("overview-table").Body(
			app.THead().Body(app.Tr().Body(
				app.Th().Scope("col").Text(d.t("ov.provider")), app.Th().Scope("col").Class("num").Text(d.t("ov.total")),
				app.Th().Scope("col").Class("num").Text(d.t("ov.serving")), app.Th().Scope("col").Class("num").Text(d.t("ov.cooling")),
				app.Th().Scope("col").Class("num").Text(d.t("ov.disabled")), app.Th().Scope("col").Class("num").Text(d.t("ov.off")),
				app.Th().Scope("col").Class("num").Text(d.t("ov.restingCol")), app.Th().Scope("col").Text(d.t("ov.quotas")),
				app.Th().Scope("col").Class("num").Text(d.t("ov.requestsIn", d.t("traffic."+rng.Key))),
				app.Th().Scope("col").Class("num").Text(d.t("ov.successIn", d.t("traffic."+rng.Key))),
				app.Th().Scope("col").Class("num").Text(d.t("ov.usage")),
				app.Th().Scope("col").Text(d.t("col.actions")),
			)),
			app.TBody().Body(rows...),
		)),
		app.P().Class("hint").Text(d.t("ov.usageHint")),
	)
}
