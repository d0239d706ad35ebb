package ui

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/adminclient"
	"github.com/maxence-charriere/go-app/v10/pkg/app"
)

// Bulk actions on the selected keys.
const (
	BulkEnable  = "enable"
	BulkDisable = "disable"
	BulkTest    = "test"
	BulkDelete  = "delete"
)

// bulkChunk is how many keys one bulk request carries (the admin API
// reads at most 1 MiB and tests at most 1000 keys per request).
const bulkChunk = 500

// selectAll is "Select all matching": every key the filter matched when
// chosen (Matched of its page). The bulk action collects their ids from
// the proxy under that same filter, so it acts on no key outside it;
// rows unticked since are left out.
type selectAll struct {
	q      adminapi.StatusQuery
	n      int
	except map[string]bool
}

// Selected returns the ticked key ids, sorted (not the keys of "all
// matching": see SelectionCount).
func (d *Dashboard) Selected() []string {
	ids := make([]string, 0, len(d.selected))
	for id := range d.selected {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// SelectionCount is how many keys the selection names.
func (d *Dashboard) SelectionCount() int {
	if d.selAll != nil {
		return max(0, d.selAll.n-len(d.selAll.except))
	}
	return len(d.selected)
}

func (d *Dashboard) isSelected(id string) bool {
	if d.selAll != nil {
		return !d.selAll.except[id]
	}
	return d.selected[id]
}

func (d *Dashboard) toggle(id string) app.EventHandler {
	return func(ctx app.Context, e app.Event) {
		d.setSelected(id, !d.isSelected(id))
	}
}

func (d *Dashboard) setSelected(id string, on bool) {
	switch {
	case d.selAll != nil && on:
		delete(d.selAll.except, id)
	case d.selAll != nil:
		d.selAll.except[id] = true
	case on:
		d.selected[id] = true
	default:
		delete(d.selected, id)
	}
}

func (d *Dashboard) selectKeys(keys []adminapi.KeyStatus, on bool) {
	for _, k := range keys {
		d.setSelected(k.ID, on)
	}
}

// SelectAllMatching selects every key the current filter matches on the
// proxy (the count is the page's Matched).
func (d *Dashboard) SelectAllMatching() {
	clear(d.selected)
	d.selAll = &selectAll{q: d.keysQuery(), n: d.kp.matched, except: map[string]bool{}}
}

func (d *Dashboard) clearSelection() {
	clear(d.selected)
	d.selAll = nil
}

func (d *Dashboard) renderSelectionBar() app.UI {
	n := d.SelectionCount()
	return app.Div().ID("selection").Class("selection").Body(
		app.Span().ID("selection-count").Text(d.t("sel.count", n)),
		// The handler reads the filter when clicked: a closure over this
		// render's list would be the one go-app keeps (see on).
		app.Button().ID("sel-all").Type("button").Text(d.t("sel.all", d.kp.matched)).OnClick(func(ctx app.Context, e app.Event) {
			d.SelectAllMatching()
		}, on("sel-all")),
		app.If(n > 0, func() app.UI {
			return app.Span().Class("bulk-actions").Body(
				app.Button().ID("sel-none").Type("button").Text(d.t("sel.none")).OnClick(func(ctx app.Context, e app.Event) {
					d.clearSelection()
				}, on("sel-none")),
				app.Button().ID("sel-enable").Type("button").Disabled(d.bulkBusy != "").Text(d.t("sel.enable")).OnClick(d.runBulk(BulkEnable), on("sel", BulkEnable)),
				app.Button().ID("sel-disable").Type("button").Disabled(d.bulkBusy != "").Text(d.t("sel.disable")).OnClick(d.runBulk(BulkDisable), on("sel", BulkDisable)),
				app.Button().ID("sel-test").Type("button").Disabled(d.bulkBusy != "").Text(d.t("sel.test")).OnClick(d.runBulk(BulkTest), on("sel", BulkTest)),
				app.If(d.bulkDelAsk, func() app.UI {
					return d.confirm(d.t("sel.deleteConfirm", n), "sel-delete-yes", "sel-delete-no", d.runBulk(BulkDelete), func(ctx app.Context, e app.Event) {
						d.bulkDelAsk = false
						d.focus(ctx, "sel-delete")
					})
				}).Else(func() app.UI {
					return app.Button().ID("sel-delete").Type("button").Class("danger").Disabled(d.bulkBusy != "").Text(d.t("sel.delete")).OnClick(func(ctx app.Context, e app.Event) {
						d.bulkDelAsk = true
						d.focus(ctx, "sel-delete-no")
					}, on("sel-delete"))
				}),
			)
		}),
		app.Span().ID("selection-busy").Class("hint").Aria("live", "polite").Text(d.bulkBusy),
	)
}

// RunBulk applies action to the selected keys.
func (d *Dashboard) RunBulk(ctx app.Context, action string) {
	d.bulkDelAsk = false
	sa := d.selAll
	if sa == nil {
		d.applyBulk(ctx, action, d.Selected())
		return
	}
	// All matching: the ids of the keys the filter matches on the proxy
	// now, less the rows unticked since.
	d.bulkBusy = d.t("sel.collecting")
	c := d.client
	ctx = d.bind(ctx)
	ctx.Async(func() {
		cctx, cancel := bg()
		defer cancel()
		ids, err := CollectIDs(cctx, c, sa.q)
		ids = slices.DeleteFunc(ids, func(id string) bool { return sa.except[id] })
		ctx.Dispatch(func(ctx app.Context) {
			d.bulkBusy = ""
			if err != nil {
				d.setNotice(ctx, func() string { return d.ErrorText(err) }, true)
				return
			}
			if action == BulkDelete {
				d.selAll = nil
			}
			d.applyBulk(ctx, action, ids)
		})
	})
}

// applyBulk applies action to the keys ids, with progress in the
// selection bar and the result in the page notice.
func (d *Dashboard) applyBulk(ctx app.Context, action string, ids []string) {
	if len(ids) == 0 {
		return
	}
	d.bulkBusy = d.t("sel.working", 0, len(ids))
	c := d.client
	ctx = d.bind(ctx)
	progress := func(done int) {
		ctx.Dispatch(func(ctx app.Context) { d.bulkBusy = d.t("sel.working", done, len(ids)) })
	}
	ctx.Async(func() {
		cctx, cancel := bg()
		defer cancel()
		ok, failed, err := bulkApply(cctx, c, action, ids, progress)
		ctx.Dispatch(func(ctx app.Context) {
			d.bulkBusy = ""
			if err != nil {
				d.setNotice(ctx, func() string { return d.ErrorText(err) }, true)
			} else {
				d.setNotice(ctx, func() string { return d.t("sel.done."+action, ok, failed) }, failed > 0)
			}
			if action == BulkDelete {
				d.forgetKey(ids...)
			}
			d.refresh(ctx)
		})
	})
}

// Sweeps: one-click actions on every key the providers rejected.
const (
	SweepRemove = "remove" // delete every disabled key
	SweepRetest = "retest" // test every disabled key again
)

// RejectedKeys are the ids of the keys in state disabled (a provider
// rejected them: revoked, invalid, no permission), in table order.
func RejectedKeys(keys []adminapi.KeyStatus) []string {
	var ids []string
	for _, k := range keys {
		if k.State == adminapi.StateDisabled {
			ids = append(ids, k.ID)
		}
	}
	return ids
}

// askSweep opens the confirmation of sweep over the disabled keys as they
// are now (of the provider filtered on, else of every provider), collected
// from the proxy page by page: Yes acts on exactly the keys the question
// counted.
func (d *Dashboard) askSweep(ctx app.Context, sweep string) {
	c := d.client
	q := adminapi.StatusQuery{Provider: d.filter.Provider, State: adminapi.StateDisabled}
	d.bulkBusy = d.t("sel.collecting")
	ctx = d.bind(ctx)
	ctx.Async(func() {
		cctx, cancel := bg()
		defer cancel()
		ids, err := CollectIDs(cctx, c, q)
		ctx.Dispatch(func(ctx app.Context) {
			d.bulkBusy = ""
			if err != nil {
				d.setNotice(ctx, func() string { return d.ErrorText(err) }, true)
				return
			}
			d.sweepAsk, d.sweepIDs = sweep, ids
			d.focus(ctx, "sweep-no")
		})
	})
}

// RunSweep runs the confirmed sweep.
func (d *Dashboard) RunSweep(ctx app.Context) {
	ids, sweep := d.sweepIDs, d.sweepAsk
	d.sweepAsk, d.sweepIDs = "", nil
	d.applyBulk(ctx, map[string]string{SweepRemove: BulkDelete, SweepRetest: BulkTest}[sweep], ids)
}

func (d *Dashboard) renderSweeps() app.UI {
	if d.sweepAsk != "" {
		return d.confirm(d.t("sweep.confirm."+d.sweepAsk, len(d.sweepIDs)), "sweep-yes", "sweep-no",
			func(ctx app.Context, e app.Event) { d.RunSweep(ctx) },
			func(ctx app.Context, e app.Event) {
				opener := "sweep-" + d.sweepAsk
				d.sweepAsk, d.sweepIDs = "", nil
				d.focus(ctx, opener)
			})
	}
	n := d.kp.states[adminapi.StateDisabled]
	busy := d.bulkBusy != ""
	return app.Span().Class("sweeps").Body(
		app.Button().ID("sweep-retest").Type("button").Disabled(n == 0 || busy).Text(d.t("sweep.retest", n)).
			OnClick(func(ctx app.Context, e app.Event) { d.askSweep(ctx, SweepRetest) }, on("sweep-retest")),
		app.Button().ID("sweep-remove").Type("button").Class("danger").Disabled(n == 0 || busy).Text(d.t("sweep.remove", n)).
			OnClick(func(ctx app.Context, e app.Event) { d.askSweep(ctx, SweepRemove) }, on("sweep-remove")),
	)
}

func (d *Dashboard) runBulk(action string) app.EventHandler {
	return func(ctx app.Context, e app.Event) { d.RunBulk(ctx, action) }
}

// jobAbove is the selection size above which deletes and tests run as
// one background job on the proxy (POST /admin/jobs/delete or /test)
// rather than bulkChunk at a time.
const jobAbove = 2 * bulkChunk

// jobPoll is how often a job's progress is read.
const jobPoll = 300 * time.Millisecond

// jobApply deletes or tests ids as one proxy job, reporting its progress
// until it ends.
func jobApply(ctx context.Context, c *adminclient.Client, action string, ids []string, progress func(int)) (ok, failed int, err error) {
	var j *adminapi.JobStatus
	if action == BulkDelete {
		j, err = c.DeleteJob(ctx, ids)
	} else {
		j, err = c.TestJob(ctx, adminapi.TestJobRequest{IDs: ids})
	}
	for err == nil && j.State == adminapi.JobRunning {
		progress(j.Done)
		select {
		case <-ctx.Done():
			return ok, failed, ctx.Err()
		case <-time.After(jobPoll):
		}
		j, err = c.Job(ctx, j.ID)
	}
	if err != nil {
		return 0, 0, err
	}
	good, bad := "passed", "failed"
	if action == BulkDelete {
		good, bad = "deleted", "not_found"
	}
	ok, failed = j.Counts[good], j.Counts[bad]
	progress(j.Done)
	if j.State != adminapi.JobDone {
		return ok, failed, &adminclient.Error{Kind: adminclient.KindHTTP, Message: j.State + ": " + j.Error}
	}
	return ok, failed, nil
}

// bulkApply runs action over ids: deletes and tests in chunks, updates
// four at a time. It returns how many succeeded and failed; err is the
// first error that stopped it.
func bulkApply(ctx context.Context, c *adminclient.Client, action string, ids []string, progress func(int)) (ok, failed int, err error) {
	switch action {
	case BulkDelete, BulkTest:
		if len(ids) > jobAbove {
			return jobApply(ctx, c, action, ids, progress)
		}
		for lo := 0; lo < len(ids); lo += bulkChunk {
			chunk := ids[lo:min(lo+bulkChunk, len(ids))]
			if action == BulkDelete {
				r, err := c.BulkDelete(ctx, chunk)
				if err != nil {
					return ok, failed, err
				}
				ok += r.Deleted
				failed += len(r.NotFound)
			} else {
				r, err := c.BulkTest(ctx, chunk)
				if err != nil {
					return ok, failed, err
				}
				ok += r.Passed
				failed += r.Failed
			}
			progress(lo + len(chunk))
		}
		return ok, failed, nil
	}
	active := action == BulkEnable
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		next int
		errs []string
	)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if next >= len(ids) || ctx.Err() != nil {
					mu.Unlock()
					return
				}
				id := ids[next]
				next++
				mu.Unlock()
				_, err := c.UpdateKey(ctx, id, adminapi.UpdateKeyRequest{IsActive: &active})
				mu.Lock()
				if err != nil {
					failed++
					if adminclient.KindOf(err) != adminclient.KindHTTP {
						errs = append(errs, err.Error())
					}
				} else {
					ok++
				}
				done := ok + failed
				mu.Unlock()
				if done%50 == 0 || done == len(ids) {
					progress(done)
				}
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 && ok == 0 {
		return ok, failed, &adminclient.Error{Kind: adminclient.KindUnreachable, Message: strings.Join(errs[:1], "")}
	}
	return ok, failed, nil
}
