package server

import (
	"cmp"
	"net/http"
	"slices"
	"strings"

	"github.com/keypool/keypool/worker-proxy/adminapi"
)

// providerSummary counts provider name's keys in one scan without
// building any key's status: the numbers the dashboard's overview, its
// filters and its sweep buttons need, at any pool size.
func (s *Server) providerSummary(name string) adminapi.ProviderSummary {
	now := s.cfg.Now()
	ps := adminapi.ProviderSummary{Provider: name, States: make(map[string]int, len(adminapi.States))}
	states := make([]int, len(adminapi.States))
	tags, projects := map[string]int{}, map[string]int{}
	for _, e := range s.pool.Entries(name) {
		k := e.Config()
		ps.TotalKeys++
		if k.IsActive() {
			ps.ActiveKeys++
		}
		if e.AvailableAt(now) {
			ps.AvailableKeys++
		}
		if isCooling(e, now) {
			ps.CoolingKeys++
		}
		if k.DisabledReason() != "" {
			ps.DisabledKeys++
		}
		if i := slices.Index(adminapi.States, keyState(e, now)); i >= 0 {
			states[i]++
		}
		ps.RestingModelPairs += len(e.ModelRests(now))
		if pr := k.Project(); pr == "" {
			ps.KeysWithoutProject++
		} else {
			projects[pr]++
		}
		for _, t := range k.Tags() {
			tags[t]++
		}
		u := e.Usage()
		ps.Requests += u.Requests
		ps.Successes += u.Successes
		ps.Failures += u.Failures
		ps.PromptTokens += u.PromptTokens
		ps.CompletionTokens += u.CompletionTokens
	}
	for i, st := range adminapi.States {
		ps.States[st] = states[i]
	}
	ps.Projects = len(projects)
	ps.Tags, ps.MoreTags = topNames(tags, adminapi.MaxSummaryNames)
	ps.ProjectKeys, ps.MoreProjects = topNames(projects, adminapi.MaxSummaryNames)
	return ps
}

// topNames returns the at most limit names of counts that most keys
// carry (ties by name), sorted by name, and how many were left out.
func topNames(counts map[string]int, limit int) ([]adminapi.NameCount, int) {
	out := make([]adminapi.NameCount, 0, min(len(counts), limit))
	for name, n := range counts {
		out = append(out, adminapi.NameCount{Name: name, Keys: n})
	}
	more := 0
	if len(out) > limit {
		slices.SortFunc(out, func(a, b adminapi.NameCount) int {
			return cmp.Or(cmp.Compare(b.Keys, a.Keys), strings.Compare(a.Name, b.Name))
		})
		more, out = len(out)-limit, out[:limit]
	}
	slices.SortFunc(out, func(a, b adminapi.NameCount) int { return strings.Compare(a.Name, b.Name) })
	return out, more
}

// handleSummary answers GET /admin/summary[?provider=NAME]: every
// provider's (or one provider's) numbers and totals, no key.
func (s *Server) handleSummary(w http.ResponseWriter, r *http.Request) {
	names := s.providerNames()
	if name := r.URL.Query().Get("provider"); name != "" {
		if !slices.Contains(names, name) {
			s.unknownProvider(w, http.StatusBadRequest, name)
			return
		}
		names = []string{name}
	}
	sum := adminapi.Summary{Store: s.storeHealth(), States: make(map[string]int, len(adminapi.States)), Providers: make([]adminapi.ProviderSummary, 0, len(names))}
	for _, st := range adminapi.States {
		sum.States[st] = 0
	}
	for _, name := range names {
		ps := s.providerSummary(name)
		sum.TotalKeys += ps.TotalKeys
		sum.ActiveKeys += ps.ActiveKeys
		sum.AvailableKeys += ps.AvailableKeys
		sum.CoolingKeys += ps.CoolingKeys
		sum.DisabledKeys += ps.DisabledKeys
		for st, n := range ps.States {
			sum.States[st] += n
		}
		sum.RestingModelPairs += ps.RestingModelPairs
		sum.Projects += ps.Projects
		sum.KeysWithoutProject += ps.KeysWithoutProject
		sum.Requests += ps.Requests
		sum.Successes += ps.Successes
		sum.Failures += ps.Failures
		sum.PromptTokens += ps.PromptTokens
		sum.CompletionTokens += ps.CompletionTokens
		sum.Providers = append(sum.Providers, ps)
	}
	writeJSON(w, http.StatusOK, sum)
}
