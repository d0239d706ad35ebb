package ui

import (
	"strconv"

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
func (d *Dashboard) renderChart(providers []adminapi.ProviderStatus) app.UI {
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
		other := max(0, p.TotalKeys-p.AvailableKeys-p.CoolingKeys-p.DisabledKeys)
		segs := []chartSegment{
			{"seg-available", p.AvailableKeys, d.t("ov.available")},
			{"seg-cooling", p.CoolingKeys, d.t("ov.cooling")},
			{"seg-disabled", p.DisabledKeys, d.t("ov.disabled")},
			{"seg-other", other, d.t("chart.other")},
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
				Body(svg("title").Text(p.Provider+" — "+s.label+": "+strconv.Itoa(s.n))))
			x += w
		}
		nodes = append(nodes, svg("text").Attr("x", barX+barW+8).Attr("y", y+15).Class("chart-label").Text(strconv.Itoa(p.TotalKeys)))
	}
	legendY := rowH*len(providers) + 18
	lx := barX
	for _, s := range []chartSegment{{"seg-available", 0, d.t("ov.available")}, {"seg-cooling", 0, d.t("ov.cooling")}, {"seg-disabled", 0, d.t("ov.disabled")}, {"seg-other", 0, d.t("chart.other")}} {
		nodes = append(nodes,
			svg("rect").Class(s.class).Attr("x", lx).Attr("y", legendY-9).Attr("width", 10).Attr("height", 10),
			svg("text").Attr("x", lx+14).Attr("y", legendY).Class("chart-legend").Text(s.label),
		)
		lx += 110
	}
	return svg("svg").ID("overview-chart").Class("chart").Attr("role", "img").Attr("aria-label", d.t("chart.title")).
		Attr("viewBox", "0 0 "+strconv.Itoa(barX+barW+140)+" "+strconv.Itoa(h)).Body(nodes...)
}
