package ui

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/pool"
)

func bk(req, ok, errs int64) adminapi.TrafficBucket {
	return adminapi.TrafficBucket{Requests: req, Success: ok, Errors: errs}
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func apiTime(t time.Time) string { return *adminapi.FormatTime(t) }

func TestAggregateTraffic(t *testing.T) {
	// Ten minutes from 10:02 to 10:11 in 5-minute points: 10:00 (3
	// buckets), 10:05 (5), 10:10 (2).
	r := &adminapi.TrafficResponse{
		BucketSeconds: 60, Start: apiTime(at("2026-01-01T10:02:00Z")), Since: apiTime(at("2026-01-01T10:03:30Z")),
		Providers: []adminapi.ProviderTraffic{
			{Provider: "gemini", Buckets: []adminapi.TrafficBucket{
				bk(1, 1, 0), bk(2, 1, 1), bk(0, 0, 0), bk(4, 4, 0), bk(1, 0, 1), bk(0, 0, 0), bk(0, 0, 0), bk(3, 3, 0), bk(5, 5, 0), bk(7, 6, 1),
			}},
			{Provider: "openai", Buckets: []adminapi.TrafficBucket{
				bk(0, 0, 0), bk(0, 0, 0), bk(0, 0, 0), bk(0, 0, 0), bk(0, 0, 0), bk(0, 0, 0), bk(0, 0, 0), bk(0, 0, 0), bk(0, 0, 0), bk(2, 0, 2),
			}},
		},
	}
	d, err := AggregateTraffic(r, TrafficRange{Minutes: 10, Step: 5})
	if err != nil {
		t.Fatal(err)
	}
	wantStarts := []time.Time{at("2026-01-01T10:00:00Z"), at("2026-01-01T10:05:00Z"), at("2026-01-01T10:10:00Z")}
	if len(d.Starts) != len(wantStarts) {
		t.Fatalf("starts: %v", d.Starts)
	}
	for i, w := range wantStarts {
		if !d.Starts[i].Equal(w) {
			t.Errorf("start %d: got %v, want %v", i, d.Starts[i], w)
		}
	}
	if !d.End.Equal(at("2026-01-01T10:12:00Z")) || d.Step != 5*time.Minute || !d.Since.Equal(at("2026-01-01T10:03:30Z")) {
		t.Errorf("end %v step %v since %v", d.End, d.Step, d.Since)
	}
	for _, c := range []struct {
		name string
		got  []adminapi.TrafficBucket
		want []adminapi.TrafficBucket
	}{
		{"gemini", d.Series[0].Points, []adminapi.TrafficBucket{bk(3, 2, 1), bk(8, 7, 1), bk(12, 11, 1)}},
		{"openai", d.Series[1].Points, []adminapi.TrafficBucket{bk(0, 0, 0), bk(0, 0, 0), bk(2, 0, 2)}},
	} {
		for i := range c.want {
			if c.got[i] != c.want[i] {
				t.Errorf("%s point %d: got %+v, want %+v", c.name, i, c.got[i], c.want[i])
			}
		}
	}
	if got, want := d.Errors, []int64{1, 1, 3}; !slices.Equal(got, want) {
		t.Errorf("errors: got %v, want %v", got, want)
	}
	if d.Total != bk(25, 20, 5) || d.Series[0].Total != bk(23, 20, 3) || d.Peak != 12 {
		t.Errorf("total %+v gemini %+v peak %d", d.Total, d.Series[0].Total, d.Peak)
	}

	// Step 1 keeps the buckets as they are.
	d, _ = AggregateTraffic(r, TrafficRange{Minutes: 10, Step: 1})
	if len(d.Starts) != 10 || d.Series[0].Points[9] != bk(7, 6, 1) || !d.Starts[0].Equal(at("2026-01-01T10:02:00Z")) || d.Peak != 7 {
		t.Errorf("step 1: %d points, last %+v, first %v, peak %d", len(d.Starts), d.Series[0].Points[9], d.Starts[0], d.Peak)
	}

	// Nothing counted yet: the axis still spans the range.
	d, err = AggregateTraffic(&adminapi.TrafficResponse{BucketSeconds: 60, Start: apiTime(at("2026-01-01T00:01:00Z"))}, TrafficRanges[2])
	if err != nil || len(d.Starts) != 97 || len(d.Series) != 0 || d.Total.Requests != 0 || d.Peak != 0 {
		t.Errorf("empty 24 h: %v, %d points, %d series", err, len(d.Starts), len(d.Series))
	}
	if _, err := AggregateTraffic(&adminapi.TrafficResponse{Start: "yesterday"}, TrafficRanges[0]); err == nil {
		t.Error("a bad start passed")
	}
}

func TestNiceMax(t *testing.T) {
	for n, want := range map[int64]int64{0: 1, 1: 1, 2: 2, 3: 5, 5: 5, 7: 10, 10: 10, 11: 20, 250: 500, 1001: 2000} {
		if got := NiceMax(n); got != want {
			t.Errorf("NiceMax(%d) = %d, want %d", n, got, want)
		}
	}
}

func TestPlotGeometry(t *testing.T) {
	b := plotBox{X: 10, Y: 0, W: 100, H: 50}
	if got, want := b.LinePath([]int64{0, 5, 10}, 10), "M10.0 50.0 L60.0 25.0 L110.0 0.0"; got != want {
		t.Errorf("LinePath: %q, want %q", got, want)
	}
	if got, want := b.AreaPath([]int64{0, 10}, 20), "M10.0 50.0 L110.0 25.0 L110.0 50.0 L10.0 50.0 Z"; got != want {
		t.Errorf("AreaPath: %q, want %q", got, want)
	}
	if got := b.LinePath([]int64{3}, 0); got != "M60.0 50.0" {
		t.Errorf("one point, empty axis: %q", got)
	}
	a, z := at("2026-01-01T10:00:00Z"), at("2026-01-01T11:00:00Z")
	if got := b.xAt(at("2026-01-01T10:15:00Z"), a, z); got != 35 {
		t.Errorf("xAt quarter: %v", got)
	}
	if got := b.xAt(at("2026-01-01T09:00:00Z"), a, z); got != 10 {
		t.Errorf("xAt before: %v", got)
	}
}

func TestTicks(t *testing.T) {
	india := time.FixedZone("IST", 5*3600+1800)
	// 10:10 UTC is 15:40 in India: hourly ticks at 16:00, 17:00, 18:00 there.
	got := Ticks(at("2026-01-01T10:10:00Z"), at("2026-01-01T13:10:00Z"), 60, india)
	var labels []string
	for _, tk := range got {
		labels = append(labels, tk.In(india).Format("15:04"))
	}
	if strings.Join(labels, ",") != "16:00,17:00,18:00" {
		t.Errorf("hourly ticks in +05:30: %v", labels)
	}
	got = Ticks(at("2026-01-01T10:00:00Z"), at("2026-01-01T10:30:00Z"), 10, time.UTC)
	if len(got) != 4 || !got[0].Equal(at("2026-01-01T10:00:00Z")) {
		t.Errorf("10-minute ticks: %v", got)
	}
}

func TestRate(t *testing.T) {
	if Rate(bk(0, 0, 0)) != "—" || Rate(bk(4, 3, 1)) != "75.0%" || Rate(bk(2, 2, 0)) != "100.0%" {
		t.Errorf("Rate: %q %q %q", Rate(bk(0, 0, 0)), Rate(bk(4, 3, 1)), Rate(bk(2, 2, 0)))
	}
}

func TestFieldError(t *testing.T) {
	manyTags := make([]string, pool.MaxTags+1)
	for i := range manyTags {
		manyTags[i] = "t" + strings.Repeat("x", i)
	}
	_, tagsErr := pool.NormalizeTags(manyTags)
	_, longTagErr := pool.NormalizeTags([]string{strings.Repeat("x", pool.MaxTagLen+1)})
	for _, c := range []struct {
		err    error
		en, zh string
	}{
		{pool.ValidateSecret(""), "API key is required.", "请填写API 密钥。"},
		{pool.ValidateSecret("has space"), "API key must not contain spaces or control characters.", "API 密钥不能包含空格或控制字符。"},
		{pool.ValidateSecret(strings.Repeat("x", pool.MaxSecretLen+1)), "API key may have at most 512 bytes.", "API 密钥最多 512 字节。"},
		{pool.ValidateDescription(strings.Repeat("x", pool.MaxDescriptionLen+1)), "API key may have at most 500 characters.", "API 密钥最多 500 个字符。"},
		{pool.ValidateDescription("a\x01b"), "API key must not contain control characters.", "API 密钥不能包含控制字符。"},
		{pool.ValidateWeight(pool.MaxWeight + 1), "API key must be between 0 and 1000.", "API 密钥必须在 0 到 1000 之间。"},
		{pool.ValidateMaxRequests(-1), "API key must be 0 or more.", "API 密钥必须大于或等于 0。"},
		{pool.ValidateProvider("Bad!"), "API key may only contain a-z, 0-9, - and _.", "API 密钥只能包含 a-z、0-9、- 和 _。"},
		{tagsErr, "API key: at most 16 tags.", "API 密钥：最多 16 个标签。"},
		{longTagErr, "API key: a tag may have at most 32 characters.", "API 密钥：每个标签最多 32 个字符。"},
		{errors.New("invalid: something new"), "API key is not valid: something new", "API 密钥无效：something new"},
	} {
		if c.err == nil {
			t.Fatalf("no error for %q", c.en)
		}
		for lang, want := range map[string]string{LangEN: c.en, LangZH: c.zh} {
			d := &Dashboard{lang: lang}
			if got := d.FieldError(d.t("add.apiKey"), c.err); got != want {
				t.Errorf("%s %v: got %q, want %q", lang, c.err, got, want)
			}
		}
	}
	for _, r := range fieldRules {
		if _, ok := messages[r.key]; !ok {
			t.Errorf("rule %q: %s not in the translation table", r.phrase, r.key)
		}
	}
}
