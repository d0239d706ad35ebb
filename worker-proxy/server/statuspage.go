package server

import (
	"cmp"
	"container/heap"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/pool"
)

// pageItem is a key placed in a page's order: by v, then by id.
type pageItem struct {
	v  int64
	id string
	e  *pool.Entry
}

// pageOrder compares two items under one sort order.
type pageOrder struct {
	field string
	desc  bool
}

func (o pageOrder) compare(a, b pageItem) int {
	c := cmp.Or(cmp.Compare(a.v, b.v), strings.Compare(a.id, b.id))
	if o.desc {
		return -c
	}
	return c
}

// value is the key's sort value under o, as an int64.
func (o pageOrder) value(k pool.Config, e *pool.Entry) int64 {
	switch o.field {
	case adminapi.SortCreated:
		return unixNano(k.CreatedAt())
	case adminapi.SortRequests:
		return e.Usage().Requests
	case adminapi.SortFailures:
		return e.Usage().Failures
	case adminapi.SortLastUsed:
		return unixNano(e.Usage().LastUsed)
	case adminapi.SortSuccessRate:
		return int64(math.Round(e.Usage().SuccessRate() * 1e9))
	}
	return 0 // SortID: by id alone
}

// unixNano is t in Unix nanoseconds, with the zero time first of all.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return math.MinInt64
	}
	return t.UnixNano()
}

// topItems keeps the limit first items offered, under order: a max-heap
// whose top is the last item kept, so a scan of n keys costs O(n log limit)
// and holds at most limit items.
type topItems struct {
	order pageOrder
	limit int
	items []pageItem
}

func (t *topItems) Len() int           { return len(t.items) }
func (t *topItems) Less(i, j int) bool { return t.order.compare(t.items[i], t.items[j]) > 0 }
func (t *topItems) Swap(i, j int)      { t.items[i], t.items[j] = t.items[j], t.items[i] }
func (t *topItems) Push(x any)         { t.items = append(t.items, x.(pageItem)) }
func (t *topItems) Pop() any {
	x := t.items[len(t.items)-1]
	t.items = t.items[:len(t.items)-1]
	return x
}

func (t *topItems) offer(it pageItem) {
	switch {
	case len(t.items) < t.limit:
		heap.Push(t, it)
	case t.order.compare(it, t.items[0]) < 0:
		t.items[0] = it
		heap.Fix(t, 0)
	}
}

// sorted returns the kept items in order.
func (t *topItems) sorted() []pageItem {
	slices.SortFunc(t.items, t.order.compare)
	return t.items
}

// keyFilter is the state, tag, project and q filters of a page.
type keyFilter struct {
	state, tag, project, q string
}

func (f keyFilter) match(k pool.Config, state string) bool {
	if f.state != "" && state != f.state {
		return false
	}
	if f.tag != "" && !slices.Contains(k.Tags(), f.tag) {
		return false
	}
	switch f.project {
	case "":
	case adminapi.NoProject:
		if k.Project() != "" {
			return false
		}
	default:
		if k.Project() != f.project {
			return false
		}
	}
	if f.q == "" {
		return true
	}
	if containsFold(k.ID(), f.q) || containsFold(k.Description(), f.q) || maskContains(k.Secret(), f.q) {
		return true
	}
	for _, t := range k.Tags() {
		if containsFold(t, f.q) {
			return true
		}
	}
	return false
}

// containsFold reports whether sub is within s, ignoring case.
func containsFold(s, sub string) bool {
	if sub == "" {
		return true
	}
	c0 := sub[0]
	lo, up := c0|0x20, c0&^0x20 // ASCII letters' two cases
	letter := lo >= 'a' && lo <= 'z'
	for i := 0; i+len(sub) <= len(s); i++ {
		if c := s[i]; c0 < 0x80 && c < 0x80 && c != c0 && !(letter && (c == lo || c == up)) {
			continue
		}
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// maskContains reports whether pool.Mask(secret) contains q, ignoring
// case, without building the mask for the usual ASCII secret.
func maskContains(secret, q string) bool {
	if len(secret) >= 12 && isASCII(secret) {
		var b [11]byte
		copy(b[:4], secret)
		copy(b[4:7], "…")
		copy(b[7:], secret[len(secret)-4:])
		return containsFold(string(b[:]), q)
	}
	return containsFold(pool.Mask(secret), q)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// handleStatusPage answers GET /admin/status with paging parameters: one
// page of keys, filtered and sorted, with totals. It scans the keys once
// (O(n log limit)) and builds the status of the page's keys only.
func (s *Server) handleStatusPage(w http.ResponseWriter, r *http.Request) {
	q, err := adminapi.ParseStatusQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	names := s.providerNames()
	if q.Provider != "" {
		if !slices.Contains(names, q.Provider) {
			s.unknownProvider(w, http.StatusBadRequest, q.Provider)
			return
		}
		names = []string{q.Provider}
	}
	order := pageOrder{field: strings.TrimPrefix(q.Sort, "-"), desc: strings.HasPrefix(q.Sort, "-")}
	var after *pageItem
	if q.Cursor != "" {
		c, err := adminapi.ParseCursor(q.Cursor, q.Sort)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		after = &pageItem{v: c.Value, id: c.ID}
	}
	page := adminapi.StatusPage{Provider: q.Provider, Store: s.storeHealth(), States: make(map[string]int, len(adminapi.States)), Sort: q.Sort, Limit: q.Limit}
	states := make([]int, len(adminapi.States))
	filter := keyFilter{state: q.State, tag: q.Tag, project: q.Project, q: q.Q}
	top := &topItems{order: order, limit: q.Limit, items: make([]pageItem, 0, q.Limit)}
	now := s.cfg.Now()
	remaining := 0 // matching keys after the cursor
	for _, name := range names {
		for _, e := range s.pool.Entries(name) {
			k := e.Config()
			state := keyState(e, now)
			page.TotalKeys++
			if i := slices.Index(adminapi.States, state); i >= 0 {
				states[i]++
			}
			if k.IsActive() {
				page.ActiveKeys++
			}
			if k.DisabledReason() != "" {
				page.DisabledKeys++
			}
			if state == adminapi.StateActive {
				page.AvailableKeys++
			}
			if state == adminapi.StateCooling || state != adminapi.StateActive && isCooling(e, now) {
				page.CoolingKeys++
			}
			if !filter.match(k, state) {
				continue
			}
			page.Matched++
			it := pageItem{v: order.value(k, e), id: k.ID(), e: e}
			if after != nil && order.compare(it, *after) <= 0 {
				continue
			}
			remaining++
			top.offer(it)
		}
	}
	for i, st := range adminapi.States {
		page.States[st] = states[i]
	}
	items := top.sorted()
	if q.Fields == adminapi.FieldsID {
		page.Keys = []adminapi.KeyStatus{}
		page.IDs = make([]string, len(items))
		for i, it := range items {
			page.IDs[i] = it.id
		}
	} else {
		page.Keys = make([]adminapi.KeyStatus, len(items))
		for i, it := range items {
			page.Keys[i] = keyStatus(it.e, now)
		}
	}
	if remaining > len(items) && len(items) > 0 {
		last := items[len(items)-1]
		page.NextCursor = adminapi.Cursor{Sort: q.Sort, Value: last.v, ID: last.id}.Encode()
	}
	writeJSON(w, http.StatusOK, page)
}

func isCooling(e *pool.Entry, now time.Time) bool {
	until, _ := e.Cooling(now)
	return !until.IsZero()
}
