package ui

import (
	"strconv"
	"strings"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/maxence-charriere/go-app/v10/pkg/app"
)

// failureClasses are the proxy's failure classes (worker-proxy/failure)
// the dashboard puts in words (message "class.NAME").
var failureClasses = []string{"invalid_key", "rate_limited", "quota_exhausted", "upstream", "client"}

// ClassText is a failure class in words; an unknown one is shown as is.
func ClassText(lang, class string) string {
	if _, ok := messages["class."+class]; ok {
		return T(lang, "class."+class)
	}
	return class
}

// leadingStatus splits an HTTP status code off the start of msg ("400 …",
// "HTTP 400: …", "status 400 …", "Error 400 - …").
func leadingStatus(msg string) (int, string) {
	s := msg
	for _, p := range []string{"http ", "status code ", "status ", "error "} {
		if len(s) >= len(p) && strings.EqualFold(s[:len(p)], p) {
			s = s[len(p):]
			break
		}
	}
	if len(s) < 3 || s[0] < '1' || s[0] > '5' || s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9' || len(s) > 3 && s[3] >= '0' && s[3] <= '9' {
		return 0, msg
	}
	n, _ := strconv.Atoi(s[:3])
	return n, strings.TrimLeft(s[3:], " :,-–—")
}

// ErrorText is a key error as the dashboard shows it: the status once
// (the proxy's messages often repeat it: "400 API_KEY_INVALID: …" with
// status 400), and where it happened: "test" for a key test, "" for a
// relayed request. status 0 takes the status the message starts with.
func CleanError(status int, msg string) (int, string, string) {
	msg = strings.TrimSpace(msg)
	where := ""
	for _, p := range []string{"key test: ", "passive health: "} {
		if rest, ok := strings.CutPrefix(msg, p); ok {
			where, msg = strings.TrimSuffix(p, ": "), rest
		}
	}
	for {
		n, rest := leadingStatus(msg)
		if n == 0 || status != 0 && n != status {
			break
		}
		status, msg = n, rest
	}
	return status, msg, where
}

// ReasonText is a disabled or cooling reason in words: "invalid_key: 400
// API_KEY_INVALID: …" becomes "rejected by the provider — 400
// API_KEY_INVALID: …"; "passive health: upstream" says it failed several
// times in a row.
func ReasonText(lang, reason string) string {
	status, msg, where := CleanError(0, reason)
	class, rest := msg, ""
	if c, r, ok := strings.Cut(msg, ": "); ok {
		class, rest = c, r
	}
	known := false
	for _, c := range failureClasses {
		known = known || c == class
	}
	if !known {
		class, rest = "", msg
	}
	if class != "" && status == 0 {
		status, rest, _ = CleanError(0, rest)
	}
	var out []string
	if where == "passive health" {
		out = append(out, T(lang, "reason.repeated"))
	}
	if class != "" {
		out = append(out, ClassText(lang, class))
	}
	detail := rest
	if status != 0 {
		detail = strings.TrimSpace(strconv.Itoa(status) + " " + rest)
	}
	if detail != "" {
		out = append(out, detail)
	}
	return strings.Join(out, T(lang, "reason.sep"))
}

// openDetail shows key id's detail drawer and puts the focus on its
// close button.
func (d *Dashboard) openDetail(ctx app.Context, id string) {
	d.detailID = id
	d.detailAsk = false
	d.focus(ctx, "detail-close")
	d.countProject(ctx, id)
}

// countProject asks the proxy how many keys share the project of key id
// (one page of one key: its Matched), for the drawer's "shares one quota
// with N other keys": the Keys tab does not hold every key.
func (d *Dashboard) countProject(ctx app.Context, id string) {
	k, ok := d.findShown(id)
	c := d.client
	if !ok || k.Project == "" || c == nil {
		return
	}
	q := adminapi.StatusQuery{Provider: k.Provider, Project: k.Project, Limit: 1}
	ctx = d.bind(ctx)
	ctx.Async(func() {
		cctx, cancel := bg()
		defer cancel()
		p, err := c.StatusPage(cctx, q)
		if err != nil {
			return // the drawer counts the keys it holds instead
		}
		ctx.Dispatch(func(ctx app.Context) {
			if d.projCount == nil {
				d.projCount = map[string]int{}
			}
			d.projCount[q.Provider+"\x00"+q.Project] = p.Matched
		})
	})
}

func (d *Dashboard) closeDetail(ctx app.Context) {
	id := d.detailID
	d.detailID, d.detailAsk = "", false
	d.focus(ctx, "open-"+id)
}

// detailKey is the key the drawer shows (false when it is closed or the
// key is gone).
func (d *Dashboard) detailKey() (adminapi.KeyStatus, bool) {
	if d.detailID == "" {
		return adminapi.KeyStatus{}, false
	}
	return d.findShown(d.detailID)
}

// renderDetail is the key detail drawer: everything about one key without
// hovering (touch screens): its state and why, its last error, when it was
// disabled or until when it cools, its usage, and its actions. Always
// present (empty when closed) so the table keeps its place in the tree.
func (d *Dashboard) renderDetail() app.UI {
	k, ok := d.detailKey()
	if !ok {
		return app.Aside().ID("key-detail").Class("drawer empty")
	}
	id := k.ID
	close := func(ctx app.Context, e app.Event) { d.closeDetail(ctx) }
	row := func(label string, value app.UI) app.UI {
		return app.Div().Class("fact").Body(app.Dt().Text(label), app.Dd().Body(value))
	}
	text := func(s string) app.UI { return app.Text(s) }
	facts := []app.UI{
		row(d.t("col.state"), app.Span().ID("detail-state").Class("badge "+k.State).Text(d.t("state."+k.State))),
	}
	if why := d.whyOut(k); why != "" {
		facts = append(facts, row(d.t("detail.why"), app.P().ID("detail-why").Class("why "+k.State).Text(why)))
	}
	if k.DisabledAt != nil {
		facts = append(facts, row(d.t("detail.disabledAt"), app.Span().ID("detail-disabled-at").Text(fmtTime(d.lang, k.DisabledAt))))
	}
	if k.CoolingUntil != nil {
		facts = append(facts, row(d.t("detail.coolingUntil"), app.Span().ID("detail-cooling-until").Text(fmtTime(d.lang, k.CoolingUntil))))
	}
	facts = append(facts, d.projectFacts(k, row)...)
	if le := k.LastError; le != nil {
		status, msg, where := CleanError(le.Status, le.Message)
		head := d.t("detail.during."+map[bool]string{true: "test", false: "request"}[where == "key test"], fmtTime(d.lang, le.At))
		if status != 0 {
			head = strconv.Itoa(status) + " · " + head
		}
		facts = append(facts, row(d.t("detail.lastError"), app.Div().ID("detail-last-error").Class("errbox").Body(
			app.Div().Class("errhead").Text(head),
			app.Div().Class("errmsg").Text(msg),
		)))
	}
	limit := d.t("unlimited")
	if k.MaxRequests > 0 {
		limit = fmtInt(k.MaxRequests)
	}
	rate := "—"
	if k.Requests > 0 {
		rate = pct(k.SuccessRate)
	}
	facts = append(facts,
		row(d.t("col.usage"), app.Span().ID("detail-usage").Text(fmtInt(k.Requests)+" / "+limit)),
		row(d.t("detail.results"), text(d.t("detail.resultsText", fmtInt(k.Successes), fmtInt(k.Failures), rate))),
		row(d.t("detail.streak"), text(fmtInt(k.ConsecutiveFailures))),
		row(d.t("detail.inFlight"), text(fmtInt(k.InFlight))),
		row(d.t("edit.weight"), text(strconv.Itoa(max(k.Weight, 1)))),
		row(d.t("col.lastUsed"), text(fmtTime(d.lang, k.LastUsed))),
		row(d.t("detail.created"), text(fmtTime(d.lang, k.CreatedAt))),
		row(d.t("detail.id"), app.Span().Class("mono").Text(id)),
	)
	if k.Description != "" {
		facts = append(facts, row(d.t("col.description"), app.P().Class("desc-full").Text(k.Description)))
	}
	if len(k.Tags) > 0 {
		facts = append(facts, row(d.t("col.tags"), app.Span().Body(app.Range(k.Tags).Slice(func(i int) app.UI { return app.Span().Class("tag").Text(k.Tags[i]) }))))
	}
	toggleLabel := d.t("sel.disable")
	if !k.IsActive {
		toggleLabel = d.t("sel.enable")
	}
	return app.Aside().ID("key-detail").Class("drawer").Role("dialog").Aria("modal", "false").Aria("labelledby", "detail-title").
		OnKeyDown(onEscape(close), on("key-detail", id)).Body(
		app.Div().Class("drawer-head").Body(
			app.H2().ID("detail-title").Body(app.Span().Class("mono").Text(k.MaskedKey), app.Text(" · "+k.Provider)),
			app.Button().ID("detail-close").Type("button").Class("close").Aria("label", d.t("common.close")).Title(d.t("common.close")).Text("×").OnClick(close, on("detail-close", id)),
		),
		app.Dl().Class("facts").Body(facts...),
		app.Div().Class("drawer-actions").Body(
			app.Button().ID("detail-test").Type("button").Text(d.t("act.test")).OnClick(d.doTest(id), on("detail-test", id)),
			app.Button().ID("detail-requests").Type("button").Text(d.t("act.requests")).OnClick(d.filterByKey(id), on("detail-requests", id)),
			app.Button().ID("detail-toggle").Type("button").Text(toggleLabel).OnClick(d.doToggle(id, k.MaskedKey, !k.IsActive), on("detail-toggle", id, k.IsActive)),
			app.Button().ID("detail-edit").Type("button").Text(d.t("act.edit")).OnClick(func(ctx app.Context, e app.Event) {
				d.detailID = ""
				d.editKey(id)
				d.focus(ctx, "e-active")
			}, on("detail-edit", id)),
			app.Span().Class("spacer"),
			app.If(d.detailAsk, func() app.UI {
				return d.confirm(d.deleteQuestion(k), "detail-del-yes-"+id, "detail-del-no-"+id, func(ctx app.Context, e app.Event) {
					d.detailAsk, d.detailID = false, ""
					d.doDelete(id, k.MaskedKey)(ctx, e)
				}, func(ctx app.Context, e app.Event) {
					d.detailAsk = false
					d.focus(ctx, "detail-delete")
				})
			}).Else(func() app.UI {
				return app.Button().ID("detail-delete").Type("button").Class("danger").Text(d.t("act.delete")).OnClick(func(ctx app.Context, e app.Event) {
					d.detailAsk = true
					d.focus(ctx, "detail-del-no-"+id)
				}, on("detail-delete", id))
			}),
		),
		app.If(d.rowMsg[id] != "", func() app.UI {
			return app.P().ID("detail-msg").Class("rowmsg").Aria("live", "polite").Text(d.rowMsg[id])
		}),
	)
}

// whyOut says why a key serves no requests ("" when it serves).
func (d *Dashboard) whyOut(k adminapi.KeyStatus) string {
	// The sentences end with their own full stop.
	reason := func(r string) string { return strings.TrimRight(ReasonText(d.lang, r), ".。 ") }
	switch k.State {
	case adminapi.StateDisabled:
		return d.t("why.disabled", reason(k.DisabledReason))
	case adminapi.StateCooling:
		if k.CoolingReason != "" {
			return d.t("why.coolingWhy", fmtTime(d.lang, k.CoolingUntil), reason(k.CoolingReason))
		}
		return d.t("why.cooling", fmtTime(d.lang, k.CoolingUntil))
	case adminapi.StateInactive:
		return d.t("why.inactive")
	case adminapi.StateExhausted:
		return d.t("why.exhausted", fmtInt(k.MaxRequests))
	}
	return ""
}

// doToggle turns key id on or off.
func (d *Dashboard) doToggle(id, masked string, active bool) app.EventHandler {
	return func(ctx app.Context, e app.Event) {
		c := d.client
		ctx = d.bind(ctx)
		ctx.Async(func() {
			cctx, cancel := bg()
			defer cancel()
			_, err := c.UpdateKey(cctx, id, adminapi.UpdateKeyRequest{IsActive: &active})
			ctx.Dispatch(func(ctx app.Context) {
				if err != nil {
					d.rowMsg[id] = d.ErrorText(err)
					return
				}
				d.setNotice(ctx, func() string { return d.t("act.updated", masked) }, false)
				d.refresh(ctx)
			})
		})
	}
}

// fmtInt writes n with thousands separators (1,234,567).
func fmtInt[N ~int | ~int64](n N) string {
	s := strconv.FormatInt(int64(n), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// deleteQuestion asks before k is deleted; for a key given at start it
// says that the key comes back at the next start.
func (d *Dashboard) deleteQuestion(k adminapi.KeyStatus) string {
	if adminapi.IsStartKey(k.ID) {
		return d.t("act.deleteStartKey", adminapi.StartKeysVariable(k.Provider))
	}
	return d.t("act.deleteConfirm")
}
