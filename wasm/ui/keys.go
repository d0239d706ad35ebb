package ui

import (
	"cmp"
	"slices"
	"strings"

	"github.com/keypool/keypool/worker-proxy/adminapi"
)

// PageSize is how many key rows the table shows at once: the DOM stays
// small however many keys the proxy holds.
const PageSize = 50

// Filter selects and orders keys for the table.
type Filter struct {
	Provider string // "" = any
	State    string // "" = any
	Tag      string // "" = any
	Project  string // "" = any; NoProject = keys whose project is unknown
	Text     string // matched against masked key, id, description, tags
	Sort     string // "" or "created" (the proxy's order: by creation), "lastUsed", "requests", "successRate"; FilterKeys also sorts by "state"
	Reverse  bool   // the other direction than Sort's own (SortAscending)
}

// SortAscending reports whether sort s, not reversed, runs from low to
// high: creation time does (oldest first), the others show the most
// (requests, success, recent use) first.
func SortAscending(s string) bool { return s == "" || s == "created" || s == "state" }

// FilterKeys returns the keys matching f, in f's order. It never changes
// keys; with no filter and the default order it returns keys itself.
func FilterKeys(keys []adminapi.KeyStatus, f Filter) []adminapi.KeyStatus {
	return filterKeys(keys, nil, f)
}

// SearchText is what a search matches a key against: its masked key, id,
// description and tags, lower case, separated by a byte no search holds.
func SearchText(k adminapi.KeyStatus) string {
	parts := append([]string{k.MaskedKey, k.ID, k.Description}, k.Tags...)
	return strings.ToLower(strings.Join(parts, "\x00"))
}

// filterKeys is FilterKeys with each key's SearchText precomputed in
// texts (nil: computed as needed).
func filterKeys(keys []adminapi.KeyStatus, texts []string, f Filter) []adminapi.KeyStatus {
	text := strings.ToLower(strings.TrimSpace(f.Text))
	if f.Provider == "" && f.State == "" && f.Tag == "" && f.Project == "" && text == "" && f.Sort == "" && !f.Reverse {
		return keys
	}
	out := make([]adminapi.KeyStatus, 0, len(keys))
	for i, k := range keys {
		if f.Provider != "" && k.Provider != f.Provider {
			continue
		}
		if f.State != "" && k.State != f.State {
			continue
		}
		if f.Tag != "" && !slices.Contains(k.Tags, f.Tag) {
			continue
		}
		if f.Project != "" && k.Project != f.Project && (f.Project != NoProject || k.Project != "") {
			continue
		}
		if text != "" {
			hay := ""
			if texts != nil {
				hay = texts[i]
			} else {
				hay = SearchText(k)
			}
			if !strings.Contains(hay, text) {
				continue
			}
		}
		out = append(out, k)
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	switch f.Sort {
	case "lastUsed":
		slices.SortStableFunc(out, func(a, b adminapi.KeyStatus) int { return cmp.Compare(str(b.LastUsed), str(a.LastUsed)) })
	case "requests":
		slices.SortStableFunc(out, func(a, b adminapi.KeyStatus) int { return cmp.Compare(b.Requests, a.Requests) })
	case "successRate":
		slices.SortStableFunc(out, func(a, b adminapi.KeyStatus) int { return cmp.Compare(b.SuccessRate, a.SuccessRate) })
	case "created":
		slices.SortStableFunc(out, func(a, b adminapi.KeyStatus) int { return cmp.Compare(str(a.CreatedAt), str(b.CreatedAt)) })
	case "state":
		slices.SortStableFunc(out, func(a, b adminapi.KeyStatus) int { return cmp.Compare(a.State, b.State) })
	}
	if f.Reverse {
		slices.Reverse(out)
	}
	return out
}

// PageSizes are the table's page sizes to choose from.
var PageSizes = []int{25, 50, 100, 200}

// Paginate returns page p (0-based, clamped) of PageSize keys and the
// page count.
func Paginate(keys []adminapi.KeyStatus, p int) ([]adminapi.KeyStatus, int, int) {
	return PaginateBy(keys, p, PageSize)
}

// PaginateBy is Paginate with size keys a page.
func PaginateBy(keys []adminapi.KeyStatus, p, size int) ([]adminapi.KeyStatus, int, int) {
	if size <= 0 {
		size = PageSize
	}
	pages := max(1, (len(keys)+size-1)/size)
	p = min(max(p, 0), pages-1)
	lo := p * size
	hi := min(lo+size, len(keys))
	return keys[lo:hi], p, pages
}

// ParseLines splits a bulk import into keys: one a line, trimmed, blank
// lines dropped.
func ParseLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// ParseTags splits "a, b ,c" into tags.
func ParseTags(s string) []string {
	out := []string{}
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// AllKeys flattens a status answer's providers into one list. When the
// providers' keys already lie in one array in order (as the browser's
// decoder leaves them) it returns that array, shared, without a copy.
func AllKeys(st *adminapi.StatusResponse) []adminapi.KeyStatus {
	if st == nil {
		return nil
	}
	n := 0
	for _, p := range st.Providers {
		n += len(p.Keys)
	}
	if joined, ok := contiguous(st.Providers, n); ok {
		return joined
	}
	out := make([]adminapi.KeyStatus, 0, n)
	for _, p := range st.Providers {
		out = append(out, p.Keys...)
	}
	return out
}

// NoProject, as Filter.Project, keeps the keys whose project is unknown
// (the admin API's adminapi.NoProject).
const NoProject = adminapi.NoProject

// Projects returns every project the keys name, sorted.
func Projects(keys []adminapi.KeyStatus) []string {
	seen := map[string]bool{}
	var out []string
	for _, k := range keys {
		if k.Project != "" && !seen[k.Project] {
			seen[k.Project] = true
			out = append(out, k.Project)
		}
	}
	slices.Sort(out)
	return out
}

// Tags returns every tag the keys carry, sorted.
func Tags(keys []adminapi.KeyStatus) []string {
	seen := map[string]bool{}
	var out []string
	for _, k := range keys {
		for _, t := range k.Tags {
			if !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
	}
	slices.Sort(out)
	return out
}

// contiguous returns the providers' n keys as one slice if they lie one
// after the other in one array.
func contiguous(ps []adminapi.ProviderStatus, n int) ([]adminapi.KeyStatus, bool) {
	var all []adminapi.KeyStatus
	off := 0
	for _, p := range ps {
		if len(p.Keys) == 0 {
			continue
		}
		if all == nil {
			if cap(p.Keys) < n {
				return nil, false
			}
			all = p.Keys[:n]
		}
		if off+len(p.Keys) > n || &all[off] != &p.Keys[0] {
			return nil, false
		}
		off += len(p.Keys)
	}
	return all, all != nil && off == n
}
