package ui

import (
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
	Sort     string // "" or "created" (the proxy's order: by creation), "lastUsed", "requests", "successRate"
	Reverse  bool   // the other direction than Sort's own (SortAscending)
}

// SortAscending reports whether sort s, not reversed, runs from low to
// high: creation time does (oldest first), the others show the most
// (requests, success, recent use) first.
func SortAscending(s string) bool { return s == "" || s == "created" || s == "state" }

// PageSizes are the table's page sizes to choose from.
var PageSizes = []int{25, 50, 100, 200}

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
