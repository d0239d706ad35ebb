package ui

import (
	"slices"

	"github.com/keypool/keypool/worker-proxy/adminapi"
)

// The overview, the tokens, requests and playground tabs and the Keys
// tab's filters read the proxy's summary (GET /admin/summary): the pool in
// numbers, of a size that does not grow with it. No tab downloads every
// key.

// StatesOf splits a summary's per-state key counts into the overview's
// partition: turned off and used up are both Off.
func StatesOf(states map[string]int) StateCounts {
	c := StateCounts{
		Serving:  states[adminapi.StateActive],
		Cooling:  states[adminapi.StateCooling],
		Disabled: states[adminapi.StateDisabled],
		Off:      states[adminapi.StateInactive] + states[adminapi.StateExhausted],
	}
	c.Total = c.Serving + c.Cooling + c.Disabled + c.Off
	return c
}

// SummaryTags returns the tags the summary names, over every provider,
// sorted.
func SummaryTags(sum *adminapi.Summary) []string {
	return summaryNames(sum, func(p adminapi.ProviderSummary) []adminapi.NameCount { return p.Tags })
}

// SummaryProjects returns the projects the summary names, over every
// provider, sorted.
func SummaryProjects(sum *adminapi.Summary) []string {
	return summaryNames(sum, func(p adminapi.ProviderSummary) []adminapi.NameCount { return p.ProjectKeys })
}

func summaryNames(sum *adminapi.Summary, list func(adminapi.ProviderSummary) []adminapi.NameCount) []string {
	if sum == nil {
		return nil
	}
	var out []string
	for _, p := range sum.Providers {
		for _, nc := range list(p) {
			if !slices.Contains(out, nc.Name) {
				out = append(out, nc.Name)
			}
		}
	}
	slices.Sort(out)
	return out
}

// projectKeys is how many keys of provider name project, as the summary
// counts them (false when it does not say).
func (d *Dashboard) projectKeys(provider, project string) (int, bool) {
	if d.sum == nil {
		return 0, false
	}
	for _, p := range d.sum.Providers {
		if p.Provider != provider {
			continue
		}
		for _, nc := range p.ProjectKeys {
			if nc.Name == project {
				return nc.Keys, true
			}
		}
	}
	return 0, false
}
