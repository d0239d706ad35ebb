package server

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/pool"
)

func getSummary(t testing.TB, s *Server, query string) adminapi.Summary {
	t.Helper()
	w := serve(s, "GET", "/admin/summary"+query, "")
	if w.Code != 200 {
		t.Fatalf("GET /admin/summary%s: %d %s", query, w.Code, w.Body)
	}
	var sum adminapi.Summary
	if err := json.Unmarshal(w.Body.Bytes(), &sum); err != nil {
		t.Fatal(err)
	}
	return sum
}

// The summary says what the full status says, counted from its keys: per
// provider the totals, the states, the resting pairs, the projects, the
// tags and the usage; and it holds no key.
func TestSummaryAgreesWithStatus(t *testing.T) {
	s := pagedServer(t, 300)
	now := time.Now()
	es := s.pool.Entries("gemini")
	s.pool.Cool(es[1], now.Add(time.Hour), "rate_limited")
	s.pool.CoolModel(es[2], "gemini-2.5-pro", now.Add(time.Hour), "quota_exhausted")
	s.pool.CoolModel(es[2], "gemini-2.5-flash", now.Add(time.Hour), "rate_limited")
	k := es[3].Key()
	k.Tags, k.IsActive, k.Project = []string{"team-a", "canary"}, false, "77"
	if err := s.pool.Update(k); err != nil {
		t.Fatal(err)
	}

	w := serve(s, "GET", "/admin/summary", "")
	if w.Code != 200 || strings.Contains(w.Body.String(), `"keys":[`) || strings.Contains(w.Body.String(), "sk-fake") || strings.Contains(w.Body.String(), "key_0") {
		t.Fatalf("summary holds keys: %d %.300s", w.Code, w.Body)
	}
	sum := getSummary(t, s, "")
	var st adminapi.StatusResponse
	if err := json.Unmarshal(serve(s, "GET", "/admin/status", "").Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if len(sum.Providers) != len(st.Providers) {
		t.Fatalf("%d providers, status has %d", len(sum.Providers), len(st.Providers))
	}
	total := adminapi.Summary{States: map[string]int{}}
	for i, ps := range st.Providers {
		got := sum.Providers[i]
		want := adminapi.ProviderSummary{
			Provider: ps.Provider, TotalKeys: ps.TotalKeys, ActiveKeys: ps.ActiveKeys, AvailableKeys: ps.AvailableKeys,
			CoolingKeys: ps.CoolingKeys, DisabledKeys: ps.DisabledKeys, RestingModelPairs: ps.RestingModelPairs,
			Projects: ps.Projects, KeysWithoutProject: ps.KeysWithoutProject,
			PromptTokens: ps.PromptTokens, CompletionTokens: ps.CompletionTokens,
			States: map[string]int{}, Tags: []adminapi.NameCount{}, ProjectKeys: []adminapi.NameCount{},
		}
		for _, st := range adminapi.States {
			want.States[st] = 0
		}
		tags, projects := map[string]int{}, map[string]int{}
		for _, k := range ps.Keys {
			want.States[k.State]++
			want.Requests += k.Requests
			want.Successes += k.Successes
			want.Failures += k.Failures
			for _, t := range k.Tags {
				tags[t]++
			}
			if k.Project != "" {
				projects[k.Project]++
			}
		}
		want.Tags, _ = topNames(tags, 1000)
		want.ProjectKeys, _ = topNames(projects, 1000)
		if a, b := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", want); a != b {
			t.Errorf("provider %s:\n got %s\nwant %s", ps.Provider, a, b)
		}
		total.TotalKeys += got.TotalKeys
		total.RestingModelPairs += got.RestingModelPairs
		total.Requests += got.Requests
		for st, n := range got.States {
			total.States[st] += n
		}
	}
	// The numbers the test set up, seen where the overview reads them.
	g := sum.Providers[slicesIndex(sum.Providers, "gemini")]
	if g.RestingModelPairs != 2 || g.CoolingKeys != 1 || g.States[adminapi.StateInactive] != 1 || g.States[adminapi.StateCooling] != 1 {
		t.Errorf("gemini: resting %d, cooling %d, states %v", g.RestingModelPairs, g.CoolingKeys, g.States)
	}
	if want := []adminapi.NameCount{{Name: "42", Keys: 50}, {Name: "77", Keys: 1}}; fmt.Sprint(g.ProjectKeys) != fmt.Sprint(want) {
		t.Errorf("gemini projects %v, want %v", g.ProjectKeys, want)
	}
	if want := []adminapi.NameCount{{Name: "canary", Keys: 1}, {Name: "team-a", Keys: 31}}; fmt.Sprint(g.Tags) != fmt.Sprint(want) {
		t.Errorf("gemini tags %v, want %v", g.Tags, want)
	}
	if sum.TotalKeys != st.TotalKeys || sum.TotalKeys != 300 || sum.ActiveKeys != st.ActiveKeys || sum.AvailableKeys != st.AvailableKeys ||
		sum.CoolingKeys != st.CoolingKeys || sum.DisabledKeys != st.DisabledKeys || sum.Projects != st.Projects ||
		sum.KeysWithoutProject != st.KeysWithoutProject || sum.RestingModelPairs != total.RestingModelPairs ||
		sum.Requests != total.Requests || fmt.Sprint(sum.States) != fmt.Sprint(total.States) || sum.Store != st.Store {
		t.Errorf("totals %+v\nstatus %+v", sum, st)
	}

	one := getSummary(t, s, "?provider=openai")
	if len(one.Providers) != 1 || one.Providers[0].Provider != "openai" || one.TotalKeys != 150 {
		t.Errorf("provider=openai: %+v", one)
	}
	if w := serve(s, "GET", "/admin/summary?provider=nope", ""); w.Code != 400 || !strings.Contains(w.Body.String(), "Unknown provider") {
		t.Errorf("unknown provider: %d %s", w.Code, w.Body)
	}
	req := serve(s, "POST", "/admin/summary", "")
	if req.Code != 405 {
		t.Errorf("POST: %d", req.Code)
	}
}

func slicesIndex(ps []adminapi.ProviderSummary, name string) int {
	for i, p := range ps {
		if p.Provider == name {
			return i
		}
	}
	return -1
}

// A pool whose keys each name their own project or tag lists the
// MaxSummaryNames names most keys carry, and counts the rest.
func TestSummaryBoundsNames(t *testing.T) {
	s, _ := newTestServer(t)
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	n := adminapi.MaxSummaryNames + 200
	keys := make([]pool.Key, n)
	for i := range keys {
		keys[i] = pool.Key{
			ID: fmt.Sprintf("key_%06d_test", i), Provider: "gemini", Secret: fmt.Sprintf("AIzaFakeSummaryKey%08d", i), IsActive: true,
			CreatedAt: base, Revision: 1, Project: fmt.Sprintf("p%05d", i), Tags: []string{fmt.Sprintf("t%05d", i), "all"},
		}
	}
	keys[n-1].Project = "p00000" // two keys: kept first
	s.pool.AddAll(keys)
	g := getSummary(t, s, "?provider=gemini").Providers[0]
	if len(g.ProjectKeys) != adminapi.MaxSummaryNames || g.MoreProjects != n-1-adminapi.MaxSummaryNames || g.Projects != n-1 {
		t.Fatalf("%d projects listed, %d more, %d in all", len(g.ProjectKeys), g.MoreProjects, g.Projects)
	}
	if g.ProjectKeys[0] != (adminapi.NameCount{Name: "p00000", Keys: 2}) {
		t.Errorf("first project %+v", g.ProjectKeys[0])
	}
	if len(g.Tags) != adminapi.MaxSummaryNames || g.MoreTags != n+1-adminapi.MaxSummaryNames || g.Tags[0] != (adminapi.NameCount{Name: "all", Keys: n}) {
		t.Errorf("%d tags, %d more, first %+v", len(g.Tags), g.MoreTags, g.Tags[0])
	}
}

// BenchmarkSummary answers GET /admin/summary over 100,000 keys (the
// dashboard's overview; goal: well under the 50 ms a status page may
// take), next to one status page of 100 keys over the same pool. Five
// runs of 30 at load 6–8 on 2 cores: 4.7–25 ms (median 5.2 ms), the page
// 8–34 ms (median 20 ms); about 10 KB an answer.
func BenchmarkSummary(b *testing.B) {
	s, _ := newTestServer(b)
	keys, usage := benchKeys(100000)
	for i := range keys {
		if i%3 == 0 {
			keys[i].Project = fmt.Sprintf("%d", 100000+i%900) // 900 projects
		}
	}
	s.pool.AddAll(keys)
	s.pool.Sync(keys, usage)
	now := time.Now()
	for i, e := range s.pool.Entries("gemini") {
		if i%100 == 0 {
			s.pool.CoolModel(e, "gemini-2.5-pro", now.Add(time.Hour), "quota_exhausted")
		}
	}
	for _, bc := range []struct{ name, path string }{
		{"summary", "/admin/summary"},
		{"summary-provider", "/admin/summary?provider=gemini"},
		{"status-page", "/admin/status?limit=100"},
		{"status-ids-10000", "/admin/status?fields=id&limit=10000"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var size int
			for b.Loop() {
				w := serve(s, "GET", bc.path, "")
				if w.Code != 200 {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
				size = w.Body.Len()
			}
			b.ReportMetric(float64(size), "B/answer")
		})
	}
}

// fields=id pages list the same keys in the same order as full pages,
// ids only, up to MaxIDPageLimit a page; a page of full keys stays at
// MaxPageLimit.
func TestStatusIDPages(t *testing.T) {
	s := pagedServer(t, 2500)
	q := adminapi.StatusQuery{Limit: 1000, State: adminapi.StateActive, Sort: "-requests"}
	want, _ := allPages(t, s, q)
	var got []string
	q.Fields, q.Limit = adminapi.FieldsID, 700
	for pages := 0; ; pages++ {
		w := serve(s, "GET", "/admin/status?"+q.Values().Encode(), "")
		var p adminapi.StatusPage
		if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &p) != nil {
			t.Fatalf("%d %.200s", w.Code, w.Body)
		}
		if len(p.Keys) != 0 || len(p.IDs) > 700 || p.Matched != len(want) || strings.Contains(w.Body.String(), "sk-fake") {
			t.Fatalf("ids page: %d keys, %d ids, matched %d", len(p.Keys), len(p.IDs), p.Matched)
		}
		got = append(got, p.IDs...)
		if p.NextCursor == "" {
			break
		}
		q.Cursor = p.NextCursor
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || len(got) == 0 {
		t.Fatalf("ids pages give %d ids, full pages %d, or another order", len(got), len(want))
	}
	if p := getPage(t, s, url.Values{"fields": {"id"}, "limit": {"10000"}}); len(p.IDs) != 2500 || p.NextCursor != "" {
		t.Errorf("one page of 10,000 ids: %d ids, next %q", len(p.IDs), p.NextCursor)
	}
	for _, tc := range []struct{ query, want string }{
		{"limit=10000", "limit must be a whole number from 1 to 1000"},
		{"fields=id&limit=10001", "limit must be a whole number from 1 to 10000"},
		{"fields=secret", "fields must be"},
	} {
		if w := serve(s, "GET", "/admin/status?"+tc.query, ""); w.Code != 400 || !strings.Contains(w.Body.String(), tc.want) {
			t.Errorf("%s: %d %s", tc.query, w.Code, w.Body)
		}
	}
}
