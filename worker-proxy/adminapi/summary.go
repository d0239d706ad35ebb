package adminapi

// MaxSummaryNames bounds the tags and the projects a summary lists per
// provider (most keys first): a pool whose keys each name their own
// project still answers in a few kilobytes. MoreTags and MoreProjects
// count the names left out.
const MaxSummaryNames = 1000

// NameCount is a tag or a project and how many keys carry it.
type NameCount struct {
	Name string `json:"name"`
	Keys int    `json:"keys"`
}

// ProviderSummary is one provider's keys in numbers, without a key.
// TotalKeys … DisabledKeys, RestingModelPairs, Projects and
// KeysWithoutProject mean what they mean in ProviderStatus (and agree with
// it); States counts the keys per state as a status page does.
type ProviderSummary struct {
	Provider           string         `json:"provider"`
	TotalKeys          int            `json:"totalKeys"`
	ActiveKeys         int            `json:"activeKeys"`
	AvailableKeys      int            `json:"availableKeys"`
	CoolingKeys        int            `json:"coolingKeys"`
	DisabledKeys       int            `json:"disabledKeys"`
	States             map[string]int `json:"states"` // every state named, 0 included
	RestingModelPairs  int            `json:"restingModelPairs"`
	Projects           int            `json:"projects"`
	KeysWithoutProject int            `json:"keysWithoutProject"`
	// Requests, Successes and Failures add up the keys' own counts (what
	// POST /admin/reset zeroes); the tokens too.
	Requests         int64 `json:"requests"`
	Successes        int64 `json:"successes"`
	Failures         int64 `json:"failures"`
	PromptTokens     int64 `json:"promptTokens"`
	CompletionTokens int64 `json:"completionTokens"`
	// Tags are the tags the keys carry with their key counts, and
	// ProjectKeys the projects they name: at most MaxSummaryNames each,
	// by name.
	Tags         []NameCount `json:"tags"`
	MoreTags     int         `json:"moreTags,omitempty"`
	ProjectKeys  []NameCount `json:"projectKeys"`
	MoreProjects int         `json:"moreProjects,omitempty"`
}

// Summary answers GET /admin/summary: the store's health and every
// provider's numbers, with totals, and no key at all (its size does not
// grow with the pool). The totals add up the providers'.
type Summary struct {
	Store              StoreHealth       `json:"store"`
	TotalKeys          int               `json:"totalKeys"`
	ActiveKeys         int               `json:"activeKeys"`
	AvailableKeys      int               `json:"availableKeys"`
	CoolingKeys        int               `json:"coolingKeys"`
	DisabledKeys       int               `json:"disabledKeys"`
	States             map[string]int    `json:"states"`
	RestingModelPairs  int               `json:"restingModelPairs"`
	Projects           int               `json:"projects"`
	KeysWithoutProject int               `json:"keysWithoutProject"`
	Requests           int64             `json:"requests"`
	Successes          int64             `json:"successes"`
	Failures           int64             `json:"failures"`
	PromptTokens       int64             `json:"promptTokens"`
	CompletionTokens   int64             `json:"completionTokens"`
	Providers          []ProviderSummary `json:"providers"`
}
