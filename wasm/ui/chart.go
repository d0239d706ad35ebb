package ui

import (
	"strconv"
	"strings"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/maxence-charriere/go-app/v10/pkg/app"
)

const svgNS = "http://www.w3.org/2000/svg"

// svg makes an SVG element; every SVG node needs its namespace (go-app
// does not inherit it).
func svg(tag string) app.HTMLElem { return app.Elem(tag).XMLNS(svgNS) }

// chartSegment is one colored part of a provider's bar.
type chartSegment struct {
	class string
	n     int
	label string
}

// renderChart draws, per provider, one horizontal bar split into
// available / cooling / disabled / other keys, in hand-written SVG.
func (d *Dashboard) renderChart(providers []adminapi.ProviderSummary) app.UI {
	const rowH, barX, barW = 26, 110, 400
	maxTotal := 1
	for _, p := range providers {
		maxTotal = max(maxTotal, p.TotalKeys)
	}
	h := rowH*len(providers) + 24
	nodes := []app.UI{
		svg("title").Text(d.t("chart.title")),
	}
	for i, p := range providers {
		y := i*rowH + 4
		c := StatesOf(p.States) // the same partition as the tiles
		segs := []chartSegment{
			{"seg-available", c.Serving, d.t("ov.serving")},
			{"seg-cooling", c.Cooling, d.t("ov.cooling")},
			{"seg-disabled", c.Disabled, d.t("ov.disabled")},
			{"seg-other", c.Off, d.t("ov.off")},
		}
		nodes = append(nodes, svg("text").Attr("x", 0).Attr("y", y+15).Class("chart-label").Text(p.Provider))
		x := float64(barX)
		for _, s := range segs {
			if s.n == 0 {
				continue
			}
			w := float64(barW) * float64(s.n) / float64(maxTotal)
			nodes = append(nodes, svg("rect").Class(s.class).
				Attr("x", strconv.FormatFloat(x, 'f', 1, 64)).Attr("y", y).
				Attr("width", strconv.FormatFloat(max(w, 1), 'f', 1, 64)).Attr("height", rowH-8).
				Body(svg("title").Text(p.Provider+" — "+s.label+": "+fmtInt(s.n))))
			x += w
		}
		nodes = append(nodes, svg("text").Attr("x", barX+barW+8).Attr("y", y+15).Class("chart-label").Text(fmtInt(c.Total)))
	}
	legendY := rowH*len(providers) + 18
	lx := barX
	for _, s := range []chartSegment{{"seg-available", 0, d.t("ov.serving")}, {"seg-cooling", 0, d.t("ov.cooling")}, {"seg-disabled", 0, d.t("ov.disabled")}, {"seg-other", 0, d.t("ov.off")}} {
		nodes = append(nodes,
			svg("rect").Class(s.class).Attr("x", lx).Attr("y", legendY-9).Attr("width", 10).Attr("height", 10),
			svg("text").Attr("x", lx+14).Attr("y", legendY).Class("chart-legend").Text(s.label),
		)
		lx += 110
	}
	return svg("svg").ID("overview-chart").Class("chart").Attr("role", "img").Attr("aria-label", d.t("chart.title")).
		Attr("viewBox", "0 0 "+strconv.Itoa(barX+barW+140)+" "+strconv.Itoa(h)).Body(nodes...)
}

// Traffic chart geometry, in SVG units that are CSS pixels: the chart is
// drawn as wide as its card (measured in the browser, see measureChart),
// so its text keeps its size on a phone and on a wide screen.
const (
	trafficW, trafficH = 720, 216 // the width before it is measured
	trafficLabelY      = 199      // top of the time labels (hanging), whatever their size
	trafficMinPoints   = 6        // a fresh proxy's chart still shows this many points
)

// trafficBox is the plot area of a chart w units wide.
func trafficBox(w int) plotBox { return plotBox{X: 48, Y: 12, W: float64(w) - 48 - 16, H: 180} }

// chartWidth is the traffic chart's width: its card's, once measured.
func (d *Dashboard) chartWidth() int {
	if d.chartW <= 0 {
		return trafficW
	}
	return min(max(d.chartW, 280), 2400)
}

var _ app.Resizer = (*Dashboard)(nil)

// OnResize measures the chart's card again.
func (d *Dashboard) OnResize(ctx app.Context) { d.measureChart(ctx) }

// measureChart reads the width of the traffic chart's card once the page
// shows it, and redraws the chart at that width.
func (d *Dashboard) measureChart(ctx app.Context) {
	if !app.IsClient {
		return
	}
	d.bind(ctx).Defer(func(ctx app.Context) {
		el := app.Window().GetElementByID("traffic")
		if !el.Truthy() {
			return
		}
		if w := el.Get("clientWidth").Int(); w > 0 && w != d.chartW {
			ctx.Dispatch(func(app.Context) { d.chartW = w })
		}
	})
}

// seriesClass colors series i (six colors, then they repeat).
func seriesClass(i int) string { return "s" + strconv.Itoa(i%6) }

func hhmm(t time.Time) string { return t.Local().Format("15:04") }

// renderTraffic draws the requests-over-time chart of the chosen range:
// one line (with a light area) per provider, a dashed line for the errors
// of all providers, time labels on the local clock, the y axis's top, a
// <title> tooltip per point, a legend with each provider's totals and
// success rate, and a text summary for screen readers.
func (d *Dashboard) renderTraffic() app.UI {
	rng := TrafficRanges[d.trafficRange]
	buttons := make([]app.UI, 0, len(TrafficRanges))
	for i, r := range TrafficRanges {
		cls := "range-btn"
		if i == d.trafficRange {
			cls += " current"
		}
		buttons = append(buttons, app.Button().ID("range-"+r.Key).Type("button").Class(cls).Aria("pressed", strconv.FormatBool(i == d.trafficRange)).
			Text(d.t("traffic."+r.Key)).OnClick(d.setTrafficRange(i), on("range", i)))
	}
	var body app.UI
	switch {
	case d.trafficErr != "":
		body = app.P().ID("traffic-error").Class("error").Aria("live", "polite").Text(d.trafficErr)
	case d.traffic == nil:
		body = app.P().Class("hint").Text(d.t("common.loading"))
	default:
		body = d.trafficChart(d.traffic, d.trafficShown)
	}
	return app.Section().ID("traffic").Class("traffic").Aria("labelledby", "traffic-title").Aria("busy", strconv.FormatBool(d.trafficBusy)).Body(
		app.Div().Class("traffic-head").Body(
			app.H3().ID("traffic-title").Text(d.t("traffic.title")+" · "+d.t("traffic.per", rng.Step)),
			app.Div().Class("ranges").Role("group").Aria("label", d.t("traffic.range")).Body(buttons...),
		),
		body,
	)
}

func (d *Dashboard) trafficChart(all *TrafficData, rng TrafficRange) app.UI {
	// A fresh proxy instance counted nothing before it started: the chart
	// begins there, not with an hour of grey.
	td := all.FromSince(trafficMinPoints)
	w := d.chartWidth()
	b := trafficBox(w)
	n := len(td.Starts)
	// The last point is still being counted (it ends with the current
	// minute): the line stops before it, and a dot shows it so far,
	// instead of a drop to zero.
	lineN := max(n-1, 1)
	top := NiceMax(td.Peak)
	first, last := td.Starts[0], td.Starts[n-1]
	summary := d.t("traffic.summary", td.Total.Requests, d.t("traffic.last."+rng.Key), td.Total.Success, td.Total.Errors)

	nodes := []app.UI{
		svg("title").Text(d.t("traffic.title")),
		svg("desc").Text(summary),
	}
	// Before the proxy instance started, nothing was counted: no line
	// there (it would say "0 requests"), a mark where counting began.
	from := 0
	if td.Since.After(first) {
		for from < n-1 && !td.Starts[from].Add(td.Step).After(td.Since) {
			from++
		}
		x := b.xAt(td.Since, first, last)
		nodes = append(nodes, svg("rect").Class("uncounted").Attr("x", num(b.X)).Attr("y", num(b.Y)).
			Attr("width", num(x-b.X)).Attr("height", num(b.H)).
			Body(svg("title").Text(d.t("traffic.uncounted", hhmm(td.Since)))),
			svg("line").Class("started").Attr("x1", num(x)).Attr("x2", num(x)).Attr("y1", num(b.Y)).Attr("y2", num(b.Y+b.H)),
			svg("text").Class("axis").Attr("x", num(x-4)).Attr("y", num(b.Y+10)).Attr("text-anchor", "end").Text(d.t("traffic.started", hhmm(td.Since))),
		)
	}
	// Grid and y labels: 0, half (when whole), top.
	levels := []int64{0, top}
	if top >= 2 {
		levels = []int64{0, top / 2, top}
	}
	for _, v := range levels {
		y := b.py(v, top)
		nodes = append(nodes,
			svg("line").Class("grid").Attr("x1", num(b.X)).Attr("x2", num(b.X+b.W)).Attr("y1", num(y)).Attr("y2", num(y)),
			svg("text").Class("axis").Attr("x", num(b.X-6)).Attr("y", num(y+4)).Attr("text-anchor", "end").Text(strconv.FormatInt(v, 10)),
		)
	}
	// Time labels at round local times.
	for _, t := range Ticks(first, last, rng.Tick, time.Local) {
		x := num(b.xAt(t, first, last))
		nodes = append(nodes,
			svg("line").Class("tick").Attr("x1", x).Attr("x2", x).Attr("y1", num(b.Y+b.H)).Attr("y2", num(b.Y+b.H+4)),
			svg("text").Class("axis").Attr("x", x).Attr("y", trafficLabelY).Attr("text-anchor", "middle").Attr("dominant-baseline", "hanging").Text(hhmm(t)),
		)
	}
	for i, s := range td.Series {
		vals := s.values()
		cls := seriesClass(i)
		nodes = append(nodes,
			svg("path").Class("area "+cls).Attr("d", b.AreaPathN(vals[:lineN], from, n, top)),
			svg("path").Class("line "+cls).Attr("d", b.LinePathN(vals[:lineN], from, n, top)).
				DataSet("provider", s.Provider).DataSet("total", s.Total.Requests).
				Body(svg("title").Text(d.t("traffic.legend", s.Provider, s.Total.Requests, Rate(s.Total), s.Total.Errors))),
		)
		if n > 1 {
			nodes = append(nodes, svg("circle").Class("partial "+cls).DataSet("provider", s.Provider).
				Attr("cx", num(b.px(n-1, n))).Attr("cy", num(b.py(vals[n-1], top))).Attr("r", 3).
				Body(svg("title").Text(d.t("traffic.partial", s.Provider, vals[n-1]))))
		}
	}
	if td.Total.Errors > 0 {
		nodes = append(nodes, svg("path").Class("line errs").Attr("d", b.LinePathN(td.Errors[:lineN], from, n, top)).DataSet("total", td.Total.Errors).
			Body(svg("title").Text(d.t("traffic.errors")+": "+strconv.FormatInt(td.Total.Errors, 10))))
	}
	if td.Total.Requests == 0 {
		nodes = append(nodes, svg("text").ID("traffic-none").Class("empty").Attr("x", num(b.X+b.W/2)).Attr("y", num(b.Y+b.H/2)).
			Attr("text-anchor", "middle").Text(d.t("traffic.none")))
	}
	// One hover band per point, its tooltip naming every provider.
	for i := range n {
		lo, hi := b.X, b.X+b.W
		if i > 0 {
			lo = (b.px(i-1, n) + b.px(i, n)) / 2
		}
		if i < n-1 {
			hi = (b.px(i, n) + b.px(i+1, n)) / 2
		}
		nodes = append(nodes, svg("rect").Class("slot").Attr("x", num(lo)).Attr("y", num(b.Y)).
			Attr("width", num(hi-lo)).Attr("height", num(b.H)).Body(svg("title").Text(d.pointTitle(td, i))))
	}

	legend := make([]app.UI, 0, len(td.Series)+1)
	for i, s := range td.Series {
		legend = append(legend, app.Li().ID("traffic-legend-"+s.Provider).Body(
			app.Span().Class("swatch "+seriesClass(i)).Aria("hidden", "true"),
			app.Text(d.t("traffic.legend", s.Provider, s.Total.Requests, Rate(s.Total), s.Total.Errors)),
		))
	}
	if td.Total.Errors > 0 {
		legend = append(legend, app.Li().Body(app.Span().Class("swatch errs").Aria("hidden", "true"), app.Text(d.t("traffic.errors"))))
	}
	return app.Div().Body(
		svg("svg").ID("traffic-chart").Class("chart traffic-chart").Attr("role", "img").Attr("aria-label", summary).
			Attr("viewBox", "0 0 "+strconv.Itoa(w)+" "+strconv.Itoa(trafficH)).DataSet("width", w).
			DataSet("range", rng.Minutes).DataSet("points", n).DataSet("total", td.Total.Requests).
			DataSet("errors", td.Total.Errors).DataSet("peak", td.Peak).DataSet("top", top).
			Body(nodes...),
		app.Ul().ID("traffic-legend").Class("legend").Body(legend...),
		app.P().ID("traffic-summary").Class("hint").Text(summary+sentenceGap(d.lang)+d.t("traffic.since", fmtTime(d.lang, adminapi.FormatTime(td.Since)))),
	)
}

// sentenceGap goes between two sentences: a space in English, nothing
// after "。".
func sentenceGap(lang string) string {
	if lang == LangZH {
		return ""
	}
	return " "
}

// pointTitle is the tooltip of point i: its time span and each provider's
// requests.
func (d *Dashboard) pointTitle(td *TrafficData, i int) string {
	var s strings.Builder
	s.WriteString(hhmm(td.Starts[i]) + "–" + hhmm(td.Starts[i].Add(td.Step)))
	for _, se := range td.Series {
		p := se.Points[i]
		s.WriteString("\n" + d.t("traffic.point", se.Provider, p.Requests, p.Errors))
	}
	return s.String()
}
