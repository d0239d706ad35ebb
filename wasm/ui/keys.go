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
	Project  string // "" = any; adminapi.NoProject = keys whose project is unknown
	Text     string // matched against masked key, id, description, tags
	Sort     string // "" or "created" (the proxy's order: by creation), "lastUsed", "requests", "successRate"; FilterKeys also sorts by "state"
	Reverse  bool   // the other direction than Sort's own (SortAscending)
}

// SortAscending reports whether sort s, not reversed, runs from low to
// high: creation time does (oldest first), the others show the most
// (requests, success, recent use) first.
func SortAscending(s string) bool { return s == "" || s == "created" || s == "state" }

// FilterKeys returns the keys matching f, in f's order. It never changes keys.
func FilterKeys(keys []adminapi.KeyStatus, f Filter) []adminapi.KeyStatus {
	text := strings.ToLower(strings.TrimSpace(f.Text))
	out := make([]adminapi.KeyStatus, 0, len(keys))
	for _, k := range keys {
		if f.Provider != "" && k.Provider != f.Provider {
			continue
		}
		if f.State != "" && k.State != f.State {
			continue
		}
		if f.Tag != "" && !slices.Contains(k.Tags, f.Tag) {
			continue
		}
		if f.Project == adminapi.NoProject && k.Project != "" || f.Project != "" && f.Project != adminapi.NoProject && k.Project != f.Project {
			continue
		}
		if text != "" && !matches(k, text) {
			continue
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

func matches(k adminapi.KeyStatus, text string) bool {
	if strings.Contains(strings.ToLower(k.MaskedKey), text) || strings.Contains(strings.ToLower(k.ID), text) ||
		strings.Contains(strings.ToLower(k.Description), text) {
		return true
	}
	for _, t := range k.Tags {
		if strings.Contains(strings.ToLower(t), text) {
			return true
		}
	}
	return false
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

// AllKeys flattens a status answer's providers into one list.
func AllKeys(st *adminapi.StatusResponse) []adminapi.KeyStatus {
	if st == nil {
		return nil
	}
	n := 0
	for _, p := range st.Providers {
		n += len(p.Keys)
	}
	out := make([]adminapi.KeyStatus, 0, n)
	for _, p := range st.Providers {
		out = append(out, p.Keys...)
	}
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
