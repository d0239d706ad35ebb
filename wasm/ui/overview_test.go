//go:build !js

package ui

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/adminclient"
	"github.com/maxence-charriere/go-app/v10/pkg/app"
)

// tileValue is the number an overview tile shows.
func tileValue(t *testing.T, html, id string) string {
	t.Helper()
	m := regexp.MustCompile(`id="` + id + `"[^>]*>\s*<div class="n">([^<]*)<`).FindStringSubmatch(html)
	if m == nil {
		t.Fatalf("no tile %s", id)
	}
	return m[1]
}

// tileClass is the class of the element with id (go-app writes
// attributes in any order).
func tileClass(html, id string) string {
	el := regexp.MustCompile(`<div[^>]*id="` + id + `"[^>]*>`).FindString(html)
	if m := regexp.MustCompile(`class="([^"]*)"`).FindStringSubmatch(el); m != nil {
		return m[1]
	}
	return ""
}

// lineD is the d attribute of the path with class cls: [whole, d] or nil.
func lineD(html, cls string) []string {
	for _, el := range regexp.MustCompile(`<path[^>]*>`).FindAllString(html, -1) {
		if strings.Contains(el, `class="`+cls+`"`) {
			return regexp.MustCompile(` d="([^"]*)"`).FindStringSubmatch(el)
		}
	}
	return nil
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.ReplaceAll(s, ",", ""))
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return n
}

// The overview agrees with itself: the key tiles partition the keys (and
// the bar chart uses the same partition), the traffic tiles show what the
// chart and its legend count in the same window, numbers have thousands
// separators, cooling and disabled tiles look like warnings, and the
// current, still-counting point is a dot, not a drop of the line.
func TestOverviewAgreesWithItself(t *testing.T) {
	up := &geminiUpstream{}
	ts := startServerUpstream(t, up)
	c := adminclient.New(ts.URL, adminKey)
	var secrets []string
	for i := range 1234 {
		s := fmt.Sprintf("AIzaSyFakeOverview%011d", i)
		if i < 7 {
			s = fmt.Sprintf("AIzaSyFakeOverviewRevoked%04d", i)
		}
		secrets = append(secrets, s)
	}
	if r, err := c.BulkAdd(t.Context(), adminapi.BulkAddRequest{Provider: "gemini", APIKeys: secrets}); err != nil || r.Added != 1234 {
		t.Fatalf("bulk add: %v", err)
	}
	st, _ := c.ProviderStatus(t.Context(), "gemini")
	var revoked []string
	off := st.Keys[100].ID
	for _, k := range st.Keys[:7] {
		revoked = append(revoked, k.ID)
	}
	if _, err := c.BulkTest(t.Context(), revoked); err != nil {
		t.Fatal(err)
	}
	f := false
	if _, err := c.UpdateKey(t.Context(), off, adminapi.UpdateKeyRequest{IsActive: &f}); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		path, hdr, body := adminclient.PlaygroundRequest("gemini", "gemini-2.5-flash", "", clientToken, "hi")
		if _, err := c.Relay(t.Context(), "POST", path, hdr, body); err != nil {
			t.Fatal(err)
		}
	}
	tr, err := c.Traffic(t.Context(), 60)
	if err != nil {
		t.Fatal(err)
	}
	var relayed int64
	for _, p := range tr.Providers {
		for _, b := range p.Buckets {
			relayed += b.Requests
		}
	}

	h := mount(t, &Dashboard{})
	h.connect(ts.URL, adminKey)
	html := h.html()
	if got := tileValue(t, html, "tile-total"); got != "1,234" {
		t.Errorf("total tile %q, want 1,234", got)
	}
	parts := atoi(t, tileValue(t, html, "tile-serving")) + atoi(t, tileValue(t, html, "tile-cooling")) +
		atoi(t, tileValue(t, html, "tile-disabled")) + atoi(t, tileValue(t, html, "tile-off"))
	if parts != 1234 || tileValue(t, html, "tile-disabled") != "7" || tileValue(t, html, "tile-off") != "1" || tileValue(t, html, "tile-serving") != "1,226" {
		t.Errorf("key tiles do not add up to the total: serving %s cooling %s disabled %s off %s", tileValue(t, html, "tile-serving"),
			tileValue(t, html, "tile-cooling"), tileValue(t, html, "tile-disabled"), tileValue(t, html, "tile-off"))
	}
	if tileClass(html, "tile-disabled") != "tile bad" || tileClass(html, "tile-cooling") != "tile" {
		t.Errorf("disabled tile class %q (want a warning), cooling %q (none cooling)", tileClass(html, "tile-disabled"), tileClass(html, "tile-cooling"))
	}
	h.contains("Requests in the last hour")
	// Traffic tiles = chart = legend = what the proxy counted.
	if got := tileValue(t, html, "tile-requests"); got != strconv.FormatInt(relayed, 10) || relayed != 5 {
		t.Errorf("requests tile %q, proxy counted %d", got, relayed)
	}
	h.contains(`data-total="5"`, "gemini: 5 requests, 100.0% ok, 0 errors", `>1,234</td>`, `id="tile-rate"`)
	// This proxy started this minute: its requests are a dot for the
	// still-counting minute, after a mark where counting began.
	h.contains(`class="partial s0"`, "gemini: 5 requests so far (still counting)", `class="started"`)
	h.d.lang = LangZH
	h.contains("当前密钥", "最近 1 小时的请求", "停用 / 用尽")
}

func TestTrafficFromSince(t *testing.T) {
	start := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	mk := func(since time.Time) *TrafficData {
		td := &TrafficData{Step: time.Minute, Since: since, Total: adminapi.TrafficBucket{Requests: 4}, Errors: make([]int64, 60),
			Series: []TrafficSeries{{Provider: "gemini", Points: make([]adminapi.TrafficBucket, 60)}}}
		for i := range 60 {
			td.Starts = append(td.Starts, start.Add(time.Duration(i)*time.Minute))
		}
		td.Series[0].Points[59].Requests = 4
		td.Peak = 4
		return td
	}
	// Counting began 20 minutes ago: the chart starts at 10:40.
	got := mk(start.Add(40*time.Minute + 30*time.Second)).FromSince(6)
	if len(got.Starts) != 20 || !got.Starts[0].Equal(start.Add(40*time.Minute)) || len(got.Series[0].Points) != 20 || len(got.Errors) != 20 || got.Peak != 4 || got.Total.Requests != 4 {
		t.Errorf("20 minutes: %d points from %v", len(got.Starts), got.Starts[0])
	}
	// A minute ago: still 6 points.
	if got := mk(start.Add(59 * time.Minute)).FromSince(6); len(got.Starts) != 6 {
		t.Errorf("a minute: %d points", len(got.Starts))
	}
	// Before the range: all of it.
	if got := mk(start.Add(-time.Hour)).FromSince(6); len(got.Starts) != 60 {
		t.Errorf("old proxy: %d points", len(got.Starts))
	}
}

// On a proxy counting since before the range, the line runs through every
// complete point and stops before the current one, which is a dot.
func TestTrafficLineStopsBeforeTheCurrentPoint(t *testing.T) {
	start := time.Now().Truncate(time.Minute).Add(-59 * time.Minute).UTC()
	buckets := make([]adminapi.TrafficBucket, 60)
	for i := range buckets {
		buckets[i] = adminapi.TrafficBucket{Requests: 10, Success: 10}
	}
	buckets[59] = adminapi.TrafficBucket{Requests: 1, Success: 1} // the current minute, so far
	td, err := AggregateTraffic(&adminapi.TrafficResponse{BucketSeconds: 60, Start: *adminapi.FormatTime(start), Since: *adminapi.FormatTime(start.Add(-2 * time.Hour)),
		Providers: []adminapi.ProviderTraffic{{Provider: "gemini", Buckets: buckets}}}, TrafficRanges[0])
	if err != nil {
		t.Fatal(err)
	}
	d := &Dashboard{}
	d.OnInit()
	html := app.HTMLString(d.trafficChart(&td, TrafficRanges[0]))
	line := lineD(html, "line s0")
	if line == nil || strings.Count(line[1], " L") != 58 || strings.Contains(html, `class="uncounted"`) {
		t.Fatalf("want a line through the 59 complete points and no uncounted band: %v", line)
	}
	// No drop: every plotted point is at 10.
	if ys := regexp.MustCompile(`[ML][0-9.]+ ([0-9.]+)`).FindAllStringSubmatch(line[1], -1); len(ys) != 59 || slices.ContainsFunc(ys, func(m []string) bool { return m[1] != ys[0][1] }) {
		t.Errorf("the line is not flat at 10 requests: %v", ys)
	}
	if !strings.Contains(html, `class="partial s0"`) || !strings.Contains(html, "gemini: 1 requests so far") {
		t.Error("no dot for the current point")
	}
}
