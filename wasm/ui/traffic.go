package ui

import (
	"strconv"
	"strings"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
)

// TrafficRange is one setting of the requests-over-time chart's range
// switch.
type TrafficRange struct {
	Key     string // message key suffix and button id: "1h", "6h", "24h"
	Minutes int    // asked of GET /admin/traffic (1..1440)
	Step    int    // minutes summed into one point
	Tick    int    // minutes between time-axis labels, on the local clock
}

// TrafficRanges are the chart's ranges; the first is the default.
var TrafficRanges = []TrafficRange{
	{Key: "1h", Minutes: 60, Step: 1, Tick: 10},
	{Key: "6h", Minutes: 360, Step: 5, Tick: 60},
	{Key: "24h", Minutes: 1440, Step: 15, Tick: 240},
}

// TrafficSeries is one provider's requests, one point per step, oldest
// first.
type TrafficSeries struct {
	Provider string
	Points   []adminapi.TrafficBucket
	Total    adminapi.TrafficBucket
}

// TrafficData is a traffic answer summed into points of Step: what the
// chart draws. Every series has one point per entry of Starts.
type TrafficData struct {
	Starts []time.Time // start of each point, equally spaced (the first may precede the first bucket)
	Step   time.Duration
	End    time.Time // end of the last point (the end of the current minute)
	Since  time.Time // counting began here (the proxy instance's start)
	Series []TrafficSeries
	Errors []int64 // errors of all providers per point
	Total  adminapi.TrafficBucket
	Peak   int64 // the largest point of any series (requests)
}

// AggregateTraffic sums r's buckets (rng.Minutes of them, the answer to
// ?minutes=rng.Minutes) into points of rng.Step minutes aligned on
// multiples of the step since the epoch (:00, :05, …; every time zone's
// offset is a multiple of 15 minutes, so they are aligned locally too). The
// first and last points may cover fewer buckets than a step. A bad Start
// in r is an error.
func AggregateTraffic(r *adminapi.TrafficResponse, rng TrafficRange) (TrafficData, error) {
	start, err := time.Parse(adminapi.TimeLayout, r.Start)
	if err != nil {
		return TrafficData{}, err
	}
	since, _ := time.Parse(adminapi.TimeLayout, r.Since)
	bucket := int64(r.BucketSeconds)
	if bucket <= 0 {
		bucket = 60
	}
	span := max(int64(rng.Step)*60, bucket)
	n := int(int64(rng.Minutes) * 60 / bucket)
	for _, p := range r.Providers {
		n = max(n, len(p.Buckets))
	}
	first := start.Unix()
	firstPt := floorDiv(first, span)
	lastPt := firstPt
	if n > 0 {
		lastPt = floorDiv(first+int64(n-1)*bucket, span)
	}
	points := int(lastPt-firstPt) + 1
	d := TrafficData{
		Starts: make([]time.Time, points),
		Step:   time.Duration(span) * time.Second,
		End:    time.Unix(first+int64(n)*bucket, 0),
		Since:  since,
		Errors: make([]int64, points),
	}
	for i := range d.Starts {
		d.Starts[i] = time.Unix((firstPt+int64(i))*span, 0)
	}
	for _, p := range r.Providers {
		s := TrafficSeries{Provider: p.Provider, Points: make([]adminapi.TrafficBucket, points)}
		for j, b := range p.Buckets {
			i := floorDiv(first+int64(j)*bucket, span) - firstPt
			s.Points[i].Add(b)
			s.Total.Add(b)
			d.Errors[i] += b.Errors
		}
		for _, pt := range s.Points {
			d.Peak = max(d.Peak, pt.Requests)
		}
		d.Total.Add(s.Total)
		d.Series = append(d.Series, s)
	}
	for _, e := range d.Errors {
		d.Peak = max(d.Peak, e)
	}
	return d, nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// NiceMax rounds n up to 1, 2 or 5 times a power of ten (at least 1):
// the top of the chart's y axis.
func NiceMax(n int64) int64 {
	if n <= 1 {
		return 1
	}
	for p := int64(1); ; p *= 10 {
		for _, m := range []int64{1, 2, 5} {
			if m*p >= n {
				return m * p
			}
		}
	}
}

// plotBox is the chart's drawing area in SVG units.
type plotBox struct{ X, Y, W, H float64 }

// px is the x of point i of n (points spread over the full width).
func (b plotBox) px(i, n int) float64 {
	if n <= 1 {
		return b.X + b.W/2
	}
	return b.X + b.W*float64(i)/float64(n-1)
}

// py is the y of value v on an axis from 0 to top.
func (b plotBox) py(v, top int64) float64 {
	if top <= 0 {
		return b.Y + b.H
	}
	return b.Y + b.H - b.H*float64(v)/float64(top)
}

// xAt is the x of time t on an axis from a to z.
func (b plotBox) xAt(t, a, z time.Time) float64 {
	if !z.After(a) {
		return b.X
	}
	f := float64(t.Sub(a)) / float64(z.Sub(a))
	return b.X + b.W*min(max(f, 0), 1)
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

// LinePath is the SVG path ("M x y L x y …") through values, scaled into
// b with top at the box's top edge.
func (b plotBox) LinePath(values []int64, top int64) string {
	return b.LinePathN(values, 0, len(values), top)
}

// LinePathN is LinePath through points from to len(values)-1 of n points
// spread over the box's width.
func (b plotBox) LinePathN(values []int64, from, n int, top int64) string {
	var s strings.Builder
	for i := from; i < len(values); i++ {
		v := values[i]
		if i == from {
			s.WriteString("M")
		} else {
			s.WriteString(" L")
		}
		s.WriteString(num(b.px(i, n)) + " " + num(b.py(v, top)))
	}
	return s.String()
}

// AreaPath is LinePath closed down to the x axis, for the fill under it.
func (b plotBox) AreaPath(values []int64, top int64) string {
	return b.AreaPathN(values, 0, len(values), top)
}

// AreaPathN is AreaPath under LinePathN.
func (b plotBox) AreaPathN(values []int64, from, n int, top int64) string {
	if len(values) <= from {
		return ""
	}
	base := num(b.Y + b.H)
	return b.LinePathN(values, from, n, top) + " L" + num(b.px(len(values)-1, n)) + " " + base +
		" L" + num(b.px(from, n)) + " " + base + " Z"
}

// FromSince drops the leading points that ended before counting began
// (Since: the proxy instance's start), keeping at least keep points. The
// totals do not change: nothing was counted there.
func (td *TrafficData) FromSince(keep int) *TrafficData {
	n := len(td.Starts)
	lo := 0
	for lo < n-keep && !td.Starts[lo].Add(td.Step).After(td.Since) {
		lo++
	}
	if lo == 0 {
		return td
	}
	out := *td
	out.Starts, out.Errors = td.Starts[lo:], td.Errors[lo:]
	out.Series = make([]TrafficSeries, len(td.Series))
	out.Peak = 0
	for i, s := range td.Series {
		s.Points = s.Points[lo:]
		out.Series[i] = s
		for _, p := range s.Points {
			out.Peak = max(out.Peak, p.Requests)
		}
	}
	for _, e := range out.Errors {
		out.Peak = max(out.Peak, e)
	}
	return &out
}

// Ticks returns the times in [from, to] that fall on a multiple of every
// minutes on loc's clock (for "HH:MM" labels at round local times).
func Ticks(from, to time.Time, every int, loc *time.Location) []time.Time {
	if every <= 0 || to.Before(from) {
		return nil
	}
	_, off := from.In(loc).Zone()
	step := int64(every) * 60
	local := from.Unix() + int64(off)
	t := time.Unix(floorDiv(local+step-1, step)*step-int64(off), 0)
	var out []time.Time
	for ; !t.After(to); t = t.Add(time.Duration(step) * time.Second) {
		// A zone change (DST) within the range shifts later ticks; good
		// enough for labels.
		out = append(out, t)
	}
	return out
}

// values returns the requests of each point.
func (s TrafficSeries) values() []int64 {
	out := make([]int64, len(s.Points))
	for i, p := range s.Points {
		out[i] = p.Requests
	}
	return out
}

// Rate is the share of successful requests, as the table shows it ("—"
// without requests).
func Rate(b adminapi.TrafficBucket) string {
	if b.Requests == 0 {
		return "—"
	}
	return pct(float64(b.Success) / float64(b.Requests))
}
