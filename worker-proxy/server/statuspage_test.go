package server

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/pool"
)

// pagedServer holds n keys: openai and gemini alternately, every fifth
// tagged "team-a", every seventh described, every eleventh disabled, every
// third of Google Cloud project 42 (the rest of none), and request counts
// i%13 (set the way a shared store would report them).
func pagedServer(t *testing.T, n int) *Server {
	t.Helper()
	s, _ := newTestServer(t)
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	keys := make([]pool.Key, n)
	usage := map[string]pool.Usage{}
	for i := range keys {
		k := pool.Key{
			ID: fmt.Sprintf("key_%06d_test", i), Provider: []string{"openai", "gemini"}[i%2],
			Secret: fmt.Sprintf("sk-fake-paging-%08d", i), IsActive: true,
			CreatedAt: base.Add(time.Duration(i/3) * time.Second), Revision: 1,
		}
		if i%5 == 0 {
			k.Tags = []string{"team-a"}
		}
		if i%7 == 0 {
			k.Description = fmt.Sprintf("Billing Account %d", i)
		}
		if i%11 == 0 {
			k.DisabledReason, k.DisabledAt = "invalid_key: test", base
		}
		if i%3 == 0 {
			k.Project = "42"
		}
		keys[i] = k
		usage[k.ID] = pool.Usage{Requests: int64(i % 13)}
	}
	s.pool.AddAll(keys)
	s.pool.Sync(keys, usage)
	return s
}

func getPage(t *testing.T, s *Server, q url.Values) adminapi.StatusPage {
	t.Helper()
	w := serve(s, "GET", "/admin/status?"+q.Encode(), "")
	if w.Code != 200 {
		t.Fatalf("GET /admin/status?%s: %d %s", q.Encode(), w.Code, w.Body)
	}
	var p adminapi.StatusPage
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// allPages walks every page of q and returns the ids in page order.
func allPages(t *testing.T, s *Server, q adminapi.StatusQuery) (ids []string, first adminapi.StatusPage) {
	t.Helper()
	for pages := 0; ; pages++ {
		p := getPage(t, s, q.Values())
		if pages == 0 {
			first = p
		}
		if len(p.Keys) > q.Limit {
			t.Fatalf("page of %d keys, limit %d", len(p.Keys), q.Limit)
		}
		for _, k := range p.Keys {
			ids = append(ids, k.ID)
		}
		if p.NextCursor == "" {
			return ids, first
		}
		if pages > 1000 {
			t.Fatal("paging does not end")
		}
		q.Cursor = p.NextCursor
	}
}

// The expected answer, computed the slow way from the full status.
func wantIDs(s *Server, keep func(adminapi.KeyStatus) bool, less func(a, b adminapi.KeyStatus) int) []string {
	var all []adminapi.KeyStatus
	for _, name := range s.providerNames() {
		all = append(all, s.providerStatus(name).Keys...)
	}
	all = slices.DeleteFunc(all, func(k adminapi.KeyStatus) bool { return !keep(k) })
	slices.SortStableFunc(all, less)
	ids := make([]string, len(all))
	for i, k := range all {
		ids[i] = k.ID
	}
	return ids
}

func TestStatusPagesWalkEveryKeyOnce(t *testing.T) {
	s := pagedServer(t, 253)
	byCreated := func(a, b adminapi.KeyStatus) int {
		return strings.Compare(*a.CreatedAt+a.ID, *b.CreatedAt+b.ID)
	}
	byRequestsDesc := func(a, b adminapi.KeyStatus) int {
		if a.Requests != b.Requests {
			return int(b.Requests - a.Requests)
		}
		return strings.Compare(b.ID, a.ID)
	}
	all := func(adminapi.KeyStatus) bool { return true }
	for _, tc := range []struct {
		name  string
		q     adminapi.StatusQuery
		keep  func(adminapi.KeyStatus) bool
		order func(a, b adminapi.KeyStatus) int
	}{
		{"default order", adminapi.StatusQuery{Limit: 40}, all, byCreated},
		{"one provider", adminapi.StatusQuery{Provider: "gemini", Limit: 25}, func(k adminapi.KeyStatus) bool { return k.Provider == "gemini" }, byCreated},
		{"by id", adminapi.StatusQuery{Sort: "id", Limit: 100}, all, func(a, b adminapi.KeyStatus) int { return strings.Compare(a.ID, b.ID) }},
		{"most requests first", adminapi.StatusQuery{Sort: "-requests", Limit: 30}, all, byRequestsDesc},
		{"state", adminapi.StatusQuery{State: "disabled", Limit: 7}, func(k adminapi.KeyStatus) bool { return k.State == "disabled" }, byCreated},
		{"tag", adminapi.StatusQuery{Tag: "team-a", Limit: 10}, func(k adminapi.KeyStatus) bool { return slices.Contains(k.Tags, "team-a") }, byCreated},
		{"project", adminapi.StatusQuery{Project: "42", Limit: 20}, func(k adminapi.KeyStatus) bool { return k.Project == "42" }, byCreated},
		{"no project", adminapi.StatusQuery{Project: adminapi.NoProject, Limit: 20}, func(k adminapi.KeyStatus) bool { return k.Project == "" }, byCreated},
		{"project and tag", adminapi.StatusQuery{Project: "42", Tag: "team-a", Limit: 3}, func(k adminapi.KeyStatus) bool {
			return k.Project == "42" && slices.Contains(k.Tags, "team-a")
		}, byCreated},
		{"search in description, any case", adminapi.StatusQuery{Q: "billing ACCOUNT", Limit: 10}, func(k adminapi.KeyStatus) bool {
			return strings.Contains(strings.ToLower(k.Description), "billing account")
		}, byCreated},
		{"search in the masked key", adminapi.StatusQuery{Q: "0012", Limit: 10}, func(k adminapi.KeyStatus) bool {
			return strings.Contains(k.MaskedKey, "0012") || strings.Contains(k.ID, "0012")
		}, byCreated},
		{"nothing matches", adminapi.StatusQuery{Q: "no-such-key"}, func(adminapi.KeyStatus) bool { return false }, byCreated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.q.Limit == 0 {
				tc.q.Limit = adminapi.DefaultPageLimit
			}
			got, first := allPages(t, s, tc.q)
			want := wantIDs(s, tc.keep, tc.order)
			if !slices.Equal(got, want) {
				t.Fatalf("got %d ids %v\nwant %d ids %v", len(got), head(got), len(want), head(want))
			}
			if first.Matched != len(want) {
				t.Errorf("matched = %d, want %d", first.Matched, len(want))
			}
			wantTotal := 253
			if tc.q.Provider == "gemini" {
				wantTotal = 126
			}
			if first.TotalKeys != wantTotal {
				t.Errorf("totalKeys = %d, want %d", first.TotalKeys, wantTotal)
			}
		})
	}
}

func head(ids []string) []string { return ids[:min(len(ids), 5)] }

// The totals of a page are those of the full status; the states add up.
func TestStatusPageTotalsMatchTheFullStatus(t *testing.T) {
	s := pagedServer(t, 100)
	e, _ := s.pool.Entry("key_000003_test")
	s.pool.Cool(e, time.Now().Add(time.Hour), "rate_limited")
	w := serve(s, "GET", "/admin/status", "")
	var full adminapi.StatusResponse
	json.Unmarshal(w.Body.Bytes(), &full)
	if len(full.Providers) == 0 {
		t.Fatalf("default status lost its shape: %s", w.Body.String()[:200])
	}
	p := getPage(t, s, url.Values{"limit": {"5"}})
	if p.TotalKeys != full.TotalKeys || p.ActiveKeys != full.ActiveKeys || p.AvailableKeys != full.AvailableKeys ||
		p.CoolingKeys != full.CoolingKeys || p.DisabledKeys != full.DisabledKeys {
		t.Fatalf("page totals %+v, full status %d/%d/%d/%d/%d", p, full.TotalKeys, full.ActiveKeys, full.AvailableKeys, full.CoolingKeys, full.DisabledKeys)
	}
	sum := 0
	for _, n := range p.States {
		sum += n
	}
	if sum != p.TotalKeys || p.States["cooling"] != 1 || p.States["disabled"] != 10 || len(p.States) != len(adminapi.States) {
		t.Fatalf("states %v", p.States)
	}
	if len(p.Keys) != 5 || p.NextCursor == "" || p.Limit != 5 || p.Sort != "created" {
		t.Fatalf("page: %d keys, cursor %q, limit %d, sort %q", len(p.Keys), p.NextCursor, p.Limit, p.Sort)
	}
	// Each page key's state agrees with GET /admin/keys/{id}.
	for _, k := range p.Keys {
		var one adminapi.KeyStatus
		json.Unmarshal(serve(s, "GET", "/admin/keys/"+k.ID, "").Body.Bytes(), &one)
		if one.State != k.State {
			t.Errorf("%s: page state %s, key state %s", k.ID, k.State, one.State)
		}
	}
}

// Deleting keys of a page already read neither skips nor repeats the
// others: the cursor is a position in the order, not an offset.
func TestStatusCursorSurvivesChanges(t *testing.T) {
	s := pagedServer(t, 60)
	p1 := getPage(t, s, url.Values{"limit": {"20"}})
	removed := []string{p1.Keys[0].ID, p1.Keys[19].ID}
	s.pool.Remove(removed...)
	p2 := getPage(t, s, url.Values{"limit": {"20"}, "cursor": {p1.NextCursor}})
	want := wantIDs(s, func(adminapi.KeyStatus) bool { return true }, func(a, b adminapi.KeyStatus) int {
		return strings.Compare(*a.CreatedAt+a.ID, *b.CreatedAt+b.ID)
	})
	if p2.Keys[0].ID != want[18] || p2.TotalKeys != 58 {
		t.Fatalf("second page starts at %s, want %s (total %d)", p2.Keys[0].ID, want[18], p2.TotalKeys)
	}
}

func TestStatusPageBadParameters(t *testing.T) {
	s := pagedServer(t, 10)
	p := getPage(t, s, url.Values{"limit": {"3"}, "sort": {"id"}})
	for _, tc := range []struct{ query, want string }{
		{"limit=0", "limit must be"},
		{"limit=1001", "limit must be"},
		{"limit=ten", "limit must be"},
		{"state=sleepy", "state must be one of"},
		{"sort=price", "sort must be one of"},
		{"cursor=%21%21", "cursor is not one this server gave out"},
		{"cursor=" + p.NextCursor + "&sort=requests", "cursor belongs to sort"},
		{"q=" + strings.Repeat("x", 201), "at most 200 bytes"},
		{"provider=nope&limit=5", "Unknown provider"},
	} {
		w := serve(s, "GET", "/admin/status?"+tc.query, "")
		if w.Code != 400 || !strings.Contains(w.Body.String(), tc.want) || !strings.HasPrefix(w.Body.String(), `{"error":`) {
			t.Errorf("%.40s: %d %s", tc.query, w.Code, w.Body)
		}
		if strings.Contains(w.Body.String(), "sk-fake") {
			t.Errorf("%.40s: answer shows a secret", tc.query)
		}
	}
}

func TestMaskContainsMatchesMask(t *testing.T) {
	for _, secret := range []string{"sk-fake-0123456789abcdef", "AIzaFakeTestKey99", "short-fake", "ключ-fake-тест-ключ-01"} {
		m := pool.Mask(secret)
		for _, q := range []string{m, string([]rune(m)[:1]), strings.ToUpper(m), "…", "zzz"} {
			if got, want := maskContains(secret, q), strings.Contains(strings.ToLower(m), strings.ToLower(q)); got != want {
				t.Errorf("maskContains(%q, %q) = %v, want %v", m, q, got, want)
			}
		}
	}
}

// benchKeys are n keys over OpenAI and Gemini for the admin API's
// benchmarks: every tenth tagged and described, every fiftieth disabled,
// with usage.
func benchKeys(n int) ([]pool.Key, map[string]pool.Usage) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	keys := make([]pool.Key, n)
	usage := make(map[string]pool.Usage, n)
	for i := range keys {
		keys[i] = pool.Key{
			ID: fmt.Sprintf("key_%013d_test%02d", base.UnixMilli()+int64(i), i%100), Provider: []string{"openai", "gemini"}[i%2],
			Secret: fmt.Sprintf("sk-fake-bench-%012d", i), IsActive: true, CreatedAt: base.Add(time.Duration(i) * time.Millisecond), Revision: 1,
		}
		if i%10 == 0 {
			keys[i].Tags, keys[i].Description = []string{"team-a", "prod"}, "Benchmark key"
		}
		if i%50 == 0 {
			keys[i].DisabledReason = "invalid_key: test"
		}
		usage[keys[i].ID] = pool.Usage{Requests: int64(i % 1000), Failures: int64(i % 7)}
	}
	return keys, usage
}

// BenchmarkStatusPage answers one page of GET /admin/status over 100,000
// keys (goal: ≤ 50 ms a page).
func BenchmarkStatusPage(b *testing.B) {
	s, _ := newTestServer(b)
	const n = 100000
	keys, usage := benchKeys(n)
	s.pool.AddAll(keys)
	s.pool.Sync(keys, usage)
	mid := getPageB(b, s, "limit=100&cursor="+adminapi.Cursor{Sort: "created", Value: keys[n/2].CreatedAt.UnixNano(), ID: keys[n/2].ID}.Encode())
	for _, bc := range []struct{ name, query string }{
		{"first", "limit=100"},
		{"middle", "limit=100&cursor=" + mid},
		{"provider", "provider=gemini&limit=100"},
		{"state", "state=disabled&limit=100"},
		{"tag", "tag=team-a&limit=100"},
		{"search", "q=7777&limit=100"},
		{"sort-requests-desc", "sort=-requests&limit=100"},
		{"limit-1000", "limit=1000"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if w := serve(s, "GET", "/admin/status?"+bc.query, ""); w.Code != 200 {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}

func getPageB(b *testing.B, s *Server, query string) string {
	w := serve(s, "GET", "/admin/status?"+query, "")
	var p adminapi.StatusPage
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &p) != nil || p.NextCursor == "" {
		b.Fatalf("%d %.300s", w.Code, w.Body)
	}
	return p.NextCursor
}
