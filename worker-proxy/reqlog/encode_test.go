package reqlog_test

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/reqlog"
)

// oddStrings are strings encoding/json escapes or rewrites.
var oddStrings = []string{
	"", "plain", `quote " and \ backslash`, "<script>&amp;</script>", "\n\r\t\b\f", "\x00\x01\x1f\x7f",
	"ünïcødé 日本語 🎉", "\u2028 line \u2029 para", "bad utf8 \xff\xfe end", "\xc3", "trailing \xe2\x80",
	"gpt-4o-mini", "models/gemini-2.0-flash", "sk-t…ake", "a/b?c=d#e", "\u0000", "é\u00a0\u200b",
}

func randString(r *rand.Rand) string {
	if r.IntN(3) == 0 {
		return oddStrings[r.IntN(len(oddStrings))]
	}
	b := make([]byte, r.IntN(24))
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	return string(b)
}

func randFloat(r *rand.Rand) float64 {
	switch r.IntN(6) {
	case 0:
		return 0
	case 1:
		return float64(r.IntN(1_000_000)) / 1000
	case 2:
		return r.Float64() * 1e-8 // exponent form
	case 3:
		return r.Float64() * 1e25 // exponent form
	case 4:
		return -r.Float64() * 100
	}
	return r.NormFloat64()
}

// TestAppendRecordWritesWhatJSONWrites checks the reflection-free encoder
// byte for byte against encoding/json, on odd strings, numbers at the
// format boundaries, empty and full records.
func TestAppendRecordWritesWhatJSONWrites(t *testing.T) {
	recs := []adminapi.RequestRecord{
		{},
		{ID: "0000000000000001", Time: base, Route: "api", Provider: "openai", Strategy: "roundRobin", Status: 200, LatencyMs: 12.345},
		{ID: "0000000000000002", Time: base.Add(123456789 * time.Nanosecond), Token: "team <a>", TokenID: "tok_1", Route: "v1",
			Provider: "gemini", Model: "gemini-2.0-flash", Strategy: "leastUsed", KeyID: "key_1", Key: "AIza…x7Q2", Status: 429,
			Class: "rate_limit", Attempts: []adminapi.RequestAttempt{{KeyID: "k1", Key: "AIza…x7Q2", Class: "rate_limit", Status: 429}, {KeyID: "k2", Key: "sk-…", Class: "success"}},
			LatencyMs: 1e-7, TTFBMs: 1e21, PromptTokens: 9, CompletionTokens: -6},
		{Attempts: []adminapi.RequestAttempt{}, LatencyMs: math.Copysign(0, -1), TTFBMs: math.Copysign(0, -1)},
		{Time: time.Date(2026, 3, 1, 0, 0, 0, 0, time.FixedZone("CET", 3600)), LatencyMs: 1e-6, TTFBMs: 999999999999999999999},
		{Time: time.Date(2026, 3, 1, 0, 0, 0, 1, time.FixedZone("Z0", 0))},
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		rec := adminapi.RequestRecord{
			ID: randString(r), Time: time.Unix(r.Int64N(1<<36)-1<<35, r.Int64N(1e9)).UTC(), Token: randString(r), TokenID: randString(r),
			Route: randString(r), Provider: randString(r), Model: randString(r), Strategy: randString(r),
			KeyID: randString(r), Key: randString(r), Status: r.IntN(700) - 50, Class: randString(r),
			LatencyMs: randFloat(r), TTFBMs: randFloat(r), PromptTokens: r.Int64N(1<<40) - 1<<20, CompletionTokens: r.Int64N(3) * r.Int64(),
		}
		for range r.IntN(4) {
			rec.Attempts = append(rec.Attempts, adminapi.RequestAttempt{KeyID: randString(r), Key: randString(r), Class: randString(r), Status: r.IntN(3) * r.IntN(600)})
		}
		recs = append(recs, rec)
	}
	for _, s := range oddStrings {
		recs = append(recs, adminapi.RequestRecord{ID: s, Token: s, TokenID: s, Route: s, Provider: s, Model: s, Strategy: s, KeyID: s, Key: s, Class: s,
			Attempts: []adminapi.RequestAttempt{{KeyID: s, Key: s, Class: s}}})
	}
	buf := []byte("prefix")
	for i := range recs {
		want, wantErr := json.Marshal(recs[i])
		got, err := reqlog.AppendRecord(buf[:6], &recs[i])
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("record %d: error %v, json.Marshal's %v", i, err, wantErr)
		}
		if err != nil {
			continue
		}
		if string(got[:6]) != "prefix" || !bytes.Equal(got[6:], want) {
			t.Fatalf("record %d:\n got %s\nwant prefix%s", i, got, want)
		}
		buf = got
	}
}

// TestAppendRecordErrsAsJSONDoes: what json.Marshal refuses, AppendRecord
// refuses too.
func TestAppendRecordErrsAsJSONDoes(t *testing.T) {
	for _, rec := range []adminapi.RequestRecord{
		{LatencyMs: math.NaN()}, {TTFBMs: math.Inf(1)}, {Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		if _, err := json.Marshal(rec); err == nil {
			t.Fatalf("json.Marshal accepted %+v", rec)
		}
		if _, err := reqlog.AppendRecord(nil, &rec); err == nil {
			t.Errorf("AppendRecord accepted %+v", rec)
		}
	}
}

func BenchmarkAppendRecord(b *testing.B) {
	rec := adminapi.RequestRecord{ID: reqlog.FormatID(uint64(base.UnixNano())), Time: base, Token: "team", TokenID: "tok_1", Route: "api",
		Provider: "openai", Model: "gpt-4o-mini", Strategy: "roundRobin", KeyID: "key_000001", Key: "sk-b…0001", Status: 200,
		Attempts: []adminapi.RequestAttempt{{KeyID: "key_000001", Key: "sk-b…0001", Class: "success", Status: 200}}, LatencyMs: 1.234, TTFBMs: 0.9, PromptTokens: 9, CompletionTokens: 6}
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			json.Marshal(&rec)
		}
	})
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf, _ = reqlog.AppendRecord(buf[:0], &rec)
		}
	})
}
