package ui

import (
	"context"
	"errors"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/adminclient"
	"github.com/maxence-charriere/go-app/v10/pkg/app"
)

// The Keys table asks the proxy for one page at a time (GET /admin/status
// with limit, cursor, state, tag, project, q and sort): it never downloads
// every key, so it stays fast at 100,000 keys.

// SearchDebounce is how long the table waits after a keystroke in the
// search box before asking the proxy.
const SearchDebounce = 150 * time.Millisecond

// walkLimit is how many ids one request carries when the table walks
// keys it does not show (a page jump, collecting the ids of every
// matching key, finding a key): the API's largest page of ids only
// (fields=id), about 300 KB; never every key's status.
const walkLimit = adminapi.MaxIDPageLimit

// maxWalk bounds the requests of one walk (2,000,000 keys at walkLimit).
const maxWalk = 200

// keysPage is what the Keys table shows: one page of the paged status,
// where it starts, and the cursors of the pages seen so far.
type keysPage struct {
	keys    []adminapi.KeyStatus
	matched int            // keys the filters keep, over all pages
	total   int            // keys of the provider (or of all providers)
	states  map[string]int // every key of the provider per state, whatever the filters
	offset  int            // index of the first row shown among the matching keys
	sig     string         // the query the cursors belong to
	cursors map[int]string // offset → cursor of the page starting there ("" at 0)
	seq     int            // answers to older queries are dropped
	loaded  bool
	err     string
}

// ServerSort is the paged API's sort order for the table's sort s. The
// table shows the most requests, the best success rate and the latest use
// first; the API sorts ascending unless "-" leads.
func ServerSort(s string, reverse bool) string {
	var out string
	desc := false
	switch s {
	case "", "created":
		out = adminapi.SortCreated
	case "lastUsed":
		out, desc = adminapi.SortLastUsed, true
	case "requests":
		out, desc = adminapi.SortRequests, true
	case "successRate":
		out, desc = adminapi.SortSuccessRate, true
	default:
		out = adminapi.SortCreated
	}
	if desc != reverse {
		return "-" + out
	}
	return out
}

// Query is the paged status query of f (no cursor, no limit).
func (f Filter) Query() adminapi.StatusQuery {
	return adminapi.StatusQuery{
		Provider: f.Provider, State: f.State, Tag: f.Tag, Project: f.Project,
		Q: f.Text, Sort: ServerSort(f.Sort, f.Reverse),
	}
}

func querySig(q adminapi.StatusQuery) string {
	q.Cursor, q.Limit = "", 0
	return q.Values().Encode()
}

// lastStart is the offset of the last page of matched keys.
func lastStart(matched, size int) int {
	if matched <= 0 {
		return 0
	}
	return (matched - 1) / size * size
}

// fetchPage returns the page of size keys starting at offset (clamped to
// the last page), walking from the nearest known cursor; cursors learns
// the cursors it passes. It returns the offset of the page it returns.
func fetchPage(ctx context.Context, c *adminclient.Client, q adminapi.StatusQuery, cursors map[int]string, offset, size int) (*adminapi.StatusPage, int, error) {
	offset = max(offset, 0)
	for range maxWalk {
		k := 0
		for o := range cursors {
			if o <= offset && o > k {
				k = o
			}
		}
		q.Cursor = cursors[k]
		if k == offset {
			q.Limit, q.Fields = size, ""
		} else { // ids only up to the page
			q.Limit, q.Fields = min(walkLimit, offset-k), adminapi.FieldsID
		}
		p, err := c.StatusPage(ctx, q)
		if err != nil {
			return nil, offset, err
		}
		n := len(p.Keys) + len(p.IDs)
		if p.NextCursor != "" {
			cursors[k+n] = p.NextCursor
		}
		if k == offset {
			if len(p.Keys) == 0 && offset > 0 && p.Matched > 0 { // keys gone since: the last page
				offset = lastStart(p.Matched, size)
				continue
			}
			return p, offset, nil
		}
		if p.NextCursor == "" { // the matching keys end before offset
			offset = lastStart(k+n, size)
		}
	}
	return nil, offset, errors.New("too many pages")
}

// walkIDs visits the id of every key q matches, in q's order, walkLimit
// ids a request, until visit returns false; cursors (may be nil) learns
// the cursors it passes.
func walkIDs(ctx context.Context, c *adminclient.Client, q adminapi.StatusQuery, cursors map[int]string, visit func(i int, id string) bool) error {
	q.Cursor, q.Limit, q.Fields = "", walkLimit, adminapi.FieldsID
	i := 0
	for range maxWalk {
		p, err := c.StatusPage(ctx, q)
		if err != nil {
			return err
		}
		for _, id := range p.IDs {
			if !visit(i, id) {
				return nil
			}
			i++
		}
		if p.NextCursor == "" {
			return nil
		}
		if cursors != nil {
			cursors[i] = p.NextCursor
		}
		q.Cursor = p.NextCursor
	}
	return errors.New("too many pages")
}

// CollectIDs returns the ids of every key q matches, in q's order.
func CollectIDs(ctx context.Context, c *adminclient.Client, q adminapi.StatusQuery) ([]string, error) {
	var ids []string
	err := walkIDs(ctx, c, q, nil, func(_ int, id string) bool {
		ids = append(ids, id)
		return true
	})
	return ids, err
}

// keysQuery is the table's query now.
func (d *Dashboard) keysQuery() adminapi.StatusQuery { return d.filter.Query() }

// turnTo loads the page at offset from an event handler: nothing changes
// on screen until the page arrives (one redraw, not two).
func (d *Dashboard) turnTo(ctx app.Context, offset int) {
	d.loadKeys(ctx, offset)
	if app.IsClient {
		ctx.PreventUpdate()
	}
}

// loadKeys fetches the table's page starting at offset with the current
// filter, search, sort and page size. An answer to an older query is
// dropped, so a slow answer never replaces a newer one.
func (d *Dashboard) loadKeys(ctx app.Context, offset int) {
	d.loadKeysThen(ctx, offset, "")
}

// loadKeysThen is loadKeys that, with reveal set, finds the key reveal in
// the matching keys (clearing the filter when it hides it) and turns to
// its page.
func (d *Dashboard) loadKeysThen(ctx app.Context, offset int, reveal string) {
	c := d.client
	if c == nil {
		return
	}
	q := d.keysQuery()
	sig := querySig(q)
	if sig != d.kp.sig || d.kp.cursors == nil {
		d.kp.sig, d.kp.cursors = sig, map[int]string{0: ""}
	}
	cursors := make(map[int]string, len(d.kp.cursors))
	for o, cur := range d.kp.cursors {
		cursors[o] = cur
	}
	d.kp.seq++
	seq := d.kp.seq
	size := d.size()
	sortOnly := Filter{Sort: d.filter.Sort, Reverse: d.filter.Reverse}
	ctx = d.bind(ctx)
	ctx.Async(func() {
		cctx, cancel := bg()
		defer cancel()
		cleared := false
		if reveal != "" {
			idx, err := findKey(cctx, c, q, cursors, reveal)
			if err == nil && idx < 0 { // the filter hides it
				q, cleared = sortOnly.Query(), true
				cursors = map[int]string{0: ""}
				idx, err = findKey(cctx, c, q, cursors, reveal)
			}
			if err == nil && idx >= 0 {
				offset = idx / size * size
			} else {
				reveal = ""
			}
		}
		p, at, err := fetchPage(cctx, c, q, cursors, offset, size)
		ctx.Dispatch(func(ctx app.Context) {
			if seq != d.kp.seq {
				return // a newer query was asked meanwhile
			}
			d.loading = false // a Refresh's
			if err != nil {
				d.kp.err = d.ErrorText(err)
				d.setNotice(ctx, func() string { return d.ErrorText(err) }, true)
				return
			}
			if cleared {
				d.filter = sortOnly
				d.selAll = nil
				d.syncFilterControls()
			}
			d.kp.err = ""
			d.kp.sig, d.kp.cursors = querySig(q), cursors
			d.setPage(p, at)
			if reveal != "" {
				d.showRow(ctx, reveal)
			}
		})
	})
}

// findKey is the index of key id among the keys q matches (-1: none).
func findKey(ctx context.Context, c *adminclient.Client, q adminapi.StatusQuery, cursors map[int]string, id string) (int, error) {
	at := -1
	err := walkIDs(ctx, c, q, cursors, func(i int, k string) bool {
		if k == id {
			at = i
			return false
		}
		return true
	})
	return at, err
}

func (d *Dashboard) setPage(p *adminapi.StatusPage, offset int) {
	d.kp.keys, d.kp.matched, d.kp.total, d.kp.states = p.Keys, p.Matched, p.TotalKeys, p.States
	d.kp.offset, d.kp.loaded = offset, true
	d.updatedAt = time.Now()
	d.now = d.updatedAt
}

// filterChanged reloads the first page after a filter, sort or page size
// change. A filter change ends "all matching" (it named the old filter).
func (d *Dashboard) filterChanged(ctx app.Context) {
	d.selAll = nil
	d.loadKeys(ctx, 0)
}

// searchChanged reloads after a keystroke in the search box, once the
// operator paused for SearchDebounce.
func (d *Dashboard) searchChanged(ctx app.Context) {
	d.selAll = nil
	d.searchSeq++
	seq := d.searchSeq
	if !app.IsClient {
		d.loadKeys(ctx, 0)
		return
	}
	d.bind(ctx).After(SearchDebounce, func(ctx app.Context) {
		if seq == d.searchSeq {
			d.loadKeys(ctx, 0)
		}
		ctx.PreventUpdate() // the table changes with the answer
	})
}

// findShown is the key with id as the dashboard last saw it: on the
// table's page.
func (d *Dashboard) findShown(id string) (adminapi.KeyStatus, bool) {
	for _, k := range d.kp.keys {
		if k.ID == id {
			return k, true
		}
	}
	return adminapi.KeyStatus{}, false
}

// updateShown replaces the key k wherever the dashboard holds it.
func (d *Dashboard) updateShown(k adminapi.KeyStatus) {
	for i := range d.kp.keys {
		if d.kp.keys[i].ID == k.ID {
			d.kp.keys[i] = k
		}
	}
}

// forgetKey drops deleted keys from what the dashboard holds.
func (d *Dashboard) forgetKey(ids ...string) {
	gone := make(map[string]bool, len(ids))
	for _, id := range ids {
		gone[id] = true
		delete(d.selected, id)
	}
	keep := func(keys []adminapi.KeyStatus) []adminapi.KeyStatus {
		out := make([]adminapi.KeyStatus, 0, len(keys))
		for _, k := range keys {
			if !gone[k.ID] {
				out = append(out, k)
			}
		}
		return out
	}
	d.kp.keys = keep(d.kp.keys)
}
