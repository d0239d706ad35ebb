package adminapi

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Paging of GET /admin/status.
const (
	DefaultPageLimit = 100
	MaxPageLimit     = 1000
	// MaxIDPageLimit bounds a page of ids only (FieldsID): 10,000 ids are
	// about 300 KB.
	MaxIDPageLimit = 10000
)

// FieldsID, as StatusQuery.Fields, asks for the matching keys' ids only
// (StatusPage.IDs), up to MaxIDPageLimit a page: what a bulk action or a
// walk to a far page needs, without every key's status.
const FieldsID = "id"

// Sort orders of a status page. A leading "-" reverses one.
const (
	SortCreated     = "created"     // when the key was added, oldest first: the pool's own order (default)
	SortID          = "id"          // key id
	SortRequests    = "requests"    // request count, fewest first
	SortFailures    = "failures"    // failure count
	SortLastUsed    = "lastUsed"    // last use, never-used first
	SortSuccessRate = "successRate" // success rate, lowest first
)

// SortOrders lists the sort orders a page accepts, ascending.
var SortOrders = []string{SortCreated, SortID, SortRequests, SortFailures, SortLastUsed, SortSuccessRate}

// States lists the key states a page can filter on.
var States = []string{StateActive, StateInactive, StateExhausted, StateCooling, StateDisabled}

// StatusQuery selects one page of GET /admin/status. Its zero value is the
// first page of every provider's keys in the default order.
type StatusQuery struct {
	Provider string // "" = every provider
	Limit    int    // keys per page, 1..MaxPageLimit; 0 = DefaultPageLimit
	Cursor   string // NextCursor of the previous page; "" = the first page
	State    string // keep keys in this state (see States); "" = any
	Tag      string // keep keys that carry this tag (exact match)
	Project  string // keep keys of this project (exact match); NoProject = keys without one
	Q        string // keep keys whose id, masked key, description or a tag contains this, ignoring case
	Sort     string // one of SortOrders, optionally prefixed with "-"; "" = SortCreated
	Fields   string // "" = every key's status; FieldsID = ids only
}

// pagingParams are the query parameters that ask for a page.
var pagingParams = []string{"limit", "cursor", "state", "tag", "project", "q", "sort", "fields"}

// NoProject, as StatusQuery.Project, keeps the keys whose project is not
// known.
const NoProject = "-"

// IsPaged reports whether a status query string asks for a page (names
// any paging parameter) rather than the whole status.
func IsPaged(v url.Values) bool {
	for _, p := range pagingParams {
		if v.Has(p) {
			return true
		}
	}
	return false
}

// Values encodes q as the query string of GET /admin/status. It always
// names limit, so the answer is a page.
func (q StatusQuery) Values() url.Values {
	v := url.Values{}
	if q.Provider != "" {
		v.Set("provider", q.Provider)
	}
	v.Set("limit", strconv.Itoa(q.pageLimit()))
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("cursor", q.Cursor)
	set("state", q.State)
	set("tag", q.Tag)
	set("project", q.Project)
	set("q", q.Q)
	set("sort", q.Sort)
	set("fields", q.Fields)
	return v
}

func (q StatusQuery) pageLimit() int {
	if q.Limit == 0 {
		return DefaultPageLimit
	}
	return q.Limit
}

// Max lengths of the free-text parameters.
const (
	maxQueryLen  = 200
	maxCursorLen = 300
)

// ParseStatusQuery reads and checks a paged status query; every error
// names the parameter at fault and holds no more than its bounded value.
func ParseStatusQuery(v url.Values) (StatusQuery, error) {
	q := StatusQuery{
		Provider: v.Get("provider"), Cursor: v.Get("cursor"), State: v.Get("state"),
		Tag: v.Get("tag"), Project: v.Get("project"), Q: v.Get("q"), Sort: v.Get("sort"), Fields: v.Get("fields"),
	}
	var errs []error
	maxLimit := MaxPageLimit
	switch q.Fields {
	case "":
	case FieldsID:
		maxLimit = MaxIDPageLimit
	default:
		errs = append(errs, fmt.Errorf("fields must be %q (ids only) or absent", FieldsID))
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			errs = append(errs, fmt.Errorf("limit must be a whole number from 1 to %d", maxLimit))
		}
		q.Limit = n
	}
	q.Limit = q.pageLimit()
	if q.State != "" && !contains(States, q.State) {
		errs = append(errs, fmt.Errorf("state must be one of %s", strings.Join(States, ", ")))
	}
	if q.Sort == "" {
		q.Sort = SortCreated
	}
	if !contains(SortOrders, strings.TrimPrefix(q.Sort, "-")) {
		errs = append(errs, fmt.Errorf("sort must be one of %s, each optionally prefixed with - for descending", strings.Join(SortOrders, ", ")))
	}
	if len(q.Q) > maxQueryLen || len(q.Tag) > maxQueryLen || len(q.Project) > maxQueryLen {
		errs = append(errs, fmt.Errorf("q, tag and project must be at most %d bytes", maxQueryLen))
	}
	if len(q.Cursor) > maxCursorLen {
		errs = append(errs, errors.New("cursor is not one this server gave out"))
	}
	return q, errors.Join(errs...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Cursor is the position after the last key of a page: that key's sort
// value and id, under one sort order. On the wire it is opaque.
type Cursor struct {
	Sort  string
	Value int64
	ID    string
}

// Encode writes c as an opaque URL-safe string.
func (c Cursor) Encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte("v1|" + c.Sort + "|" + strconv.FormatInt(c.Value, 10) + "|" + c.ID))
}

// ParseCursor reads a cursor written by Encode for the sort order sort.
func ParseCursor(s, sort string) (Cursor, error) {
	bad := errors.New("cursor is not one this server gave out")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, bad
	}
	parts := strings.SplitN(string(b), "|", 4)
	if len(parts) != 4 || parts[0] != "v1" {
		return Cursor{}, bad
	}
	if parts[1] != sort {
		return Cursor{}, fmt.Errorf("cursor belongs to sort %q, not %q: start again without a cursor", truncate(parts[1], 20), sort)
	}
	v, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return Cursor{}, bad
	}
	return Cursor{Sort: parts[1], Value: v, ID: parts[3]}, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// StatusPage answers GET /admin/status when the query names any of limit,
// cursor, state, tag, q or sort: one page of keys and the totals around it.
// Totals and States count every key of the provider (or of all providers),
// whatever the filters; Matched counts the keys the filters keep, over all
// pages.
type StatusPage struct {
	Provider      string         `json:"provider,omitempty"` // absent: every provider
	Store         StoreHealth    `json:"store"`
	TotalKeys     int            `json:"totalKeys"`
	ActiveKeys    int            `json:"activeKeys"`
	AvailableKeys int            `json:"availableKeys"`
	CoolingKeys   int            `json:"coolingKeys"`
	DisabledKeys  int            `json:"disabledKeys"`
	States        map[string]int `json:"states"` // keys per state (every state named, 0 included)
	Matched       int            `json:"matched"`
	Sort          string         `json:"sort"`
	Limit         int            `json:"limit"`
	Keys          []KeyStatus    `json:"keys"` // empty with fields=id
	// IDs are the page's key ids, in order, with fields=id.
	IDs []string `json:"ids,omitempty"`
	// NextCursor fetches the next page with the same filters and sort; it
	// is absent on the last page.
	NextCursor string `json:"nextCursor,omitempty"`
}
