package ui

import (
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/adminclient"
	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/maxence-charriere/go-app/v10/pkg/app"
)

func asError(err error, e **adminclient.Error) bool { return errors.As(err, e) }

func (d *Dashboard) providers() []string {
	var out []string
	if d.sum != nil {
		for _, p := range d.sum.Providers {
			out = append(out, p.Provider)
		}
	}
	if len(out) == 0 {
		out = []string{"gemini", "openai", "anthropic"}
	}
	return out
}

// AnyOption is the value of a filter's "All" option (and the default
// sort). It cannot be "": go-app drops an empty value attribute, and an
// <option> without one has its text as value, so choosing "All" again
// filtered on the word "All".
const AnyOption = "*"

// FilterValue is what a filter control's value means for the Filter.
func FilterValue(v string) string {
	if v == AnyOption {
		return ""
	}
	return v
}

// anyOption is a filter's first option, meaning no filter.
func anyOption(text, current string) app.UI {
	return app.Option().Value(AnyOption).Text(text).Selected(current == "")
}

// setFilter stores a filter control's value and loads the first page
// (after a pause in typing when debounce). (go-app keeps one handler per
// event: a second OnInput replaces the first.)
func (d *Dashboard) setFilter(v *string, debounce bool) app.EventHandler {
	return func(ctx app.Context, e app.Event) {
		*v = FilterValue(ctx.JSSrc().Get("value").String())
		if debounce {
			if app.IsClient {
				ctx.PreventUpdate() // the box shows what is typed; the table changes with the answer
			}
			d.searchChanged(ctx)
		} else {
			d.filterChanged(ctx)
		}
	}
}

// tagChoices are the tags the tag filter offers: those of the keys the
// dashboard has seen, and the one filtered on.
func (d *Dashboard) tagChoices() []string {
	tags := slices.Clone(d.tagList)
	for _, t := range append(Tags(d.kp.keys), d.filter.Tag) {
		if t != "" && !slices.Contains(tags, t) {
			tags = append(tags, t)
		}
	}
	slices.Sort(tags)
	return tags
}

// projChoices are the projects the project filter offers: those of the
// keys the dashboard has seen, and the one filtered on.
func (d *Dashboard) projChoices() []string {
	out := slices.Clone(d.projList)
	for _, p := range append(Projects(d.kp.keys), d.filter.Project) {
		if p != "" && p != NoProject && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// pageInfo is the table's page (0-based) and page count.
func (d *Dashboard) pageInfo() (page, pages int) {
	size := d.size()
	return d.kp.offset / size, max(1, (d.kp.matched+size-1)/size)
}

// on scopes an event handler by what it acts on. go-app v10 keeps the
// handler it mounted when a re-render brings one with the same code
// pointer and scope, so an unscoped closure over a row's key would keep
// acting on the key that row showed first (after a search, a filter, a
// sort or a page change). Every handler in the dashboard gets a scope
// naming its element and the key, token or provider it acts on, and reads
// lists (the filtered keys, the page) when it runs, not when rendered.
// TestEveryMountedHandlerIsScoped checks the first rule.
func on(what ...any) app.EventOption { return app.EventScope(what...) }

func (d *Dashboard) renderKeys() app.UI {
	rows := d.kp.keys
	page, pages := d.pageInfo()
	provOpts := []app.UI{anyOption(d.t("keys.any"), d.filter.Provider)}
	for _, p := range d.providers() {
		provOpts = append(provOpts, app.Option().Value(p).Text(p).Selected(d.filter.Provider == p))
	}
	stateOpts := []app.UI{anyOption(d.t("keys.any"), d.filter.State)}
	for _, s := range []string{adminapi.StateActive, adminapi.StateCooling, adminapi.StateDisabled, adminapi.StateInactive, adminapi.StateExhausted} {
		stateOpts = append(stateOpts, app.Option().Value(s).Text(d.t("state."+s)).Selected(d.filter.State == s))
	}
	tagOpts := []app.UI{anyOption(d.t("keys.any"), d.filter.Tag)}
	for _, tg := range d.tagChoices() {
		tagOpts = append(tagOpts, app.Option().Value(tg).Text(tg).Selected(d.filter.Tag == tg))
	}
	projOpts := []app.UI{anyOption(d.t("keys.any"), d.filter.Project),
		app.Option().Value(NoProject).Text(d.t("proj.unknownOption")).Selected(d.filter.Project == NoProject)}
	projChoices := d.projChoices()
	for _, p := range projChoices {
		projOpts = append(projOpts, app.Option().Value(p).Text(p).Selected(d.filter.Project == p))
	}
	sortOpts := []app.UI{anyOption(d.t("sort.default"), d.filter.Sort)}
	for _, s := range []string{"lastUsed", "requests", "successRate"} { // "created" is the default order
		sortOpts = append(sortOpts, app.Option().Value(s).Text(d.t("sort."+s)).Selected(d.filter.Sort == s))
	}
	body := make([]app.UI, 0, len(rows))
	for _, k := range rows {
		body = append(body, d.keyRow(k))
	}
	return app.Div().ID("keys").Body(
		// Fixed positions: the toolbar, the panel (empty when closed),
		// the table; opening a panel does not re-create the table.
		d.renderKeysToolbar(),
		d.renderKeyPanel(),
		d.renderDetail(),
		app.Section().ID("keys-card").Class("card").Body(
			app.Div().Class("filters").Body(
				field("f-provider", d.t("keys.filterProvider"), app.Select().ID("f-provider").OnChange(d.setFilter(&d.filter.Provider, false), on("f-provider")).Body(provOpts...)),
				field("f-state", d.t("keys.filterState"), app.Select().ID("f-state").OnChange(d.setFilter(&d.filter.State, false), on("f-state")).Body(stateOpts...)),
				field("f-tag", d.t("keys.filterTag"), app.Select().ID("f-tag").OnChange(d.setFilter(&d.filter.Tag, false), on("f-tag")).Body(tagOpts...)),
				app.If(len(projChoices) > 0 || d.filter.Project != "", func() app.UI {
					return field("f-project", d.t("proj.label"), app.Select().ID("f-project").OnChange(d.setFilter(&d.filter.Project, false), on("f-project")).Body(projOpts...))
				}),
				field("f-sort", d.t("keys.sort"), app.Select().ID("f-sort").OnChange(func(ctx app.Context, e app.Event) {
					d.filter.Sort, d.filter.Reverse = FilterValue(ctx.JSSrc().Get("value").String()), false
					d.filterChanged(ctx)
				}, on("f-sort")).Body(sortOpts...)),
				field("f-text", d.t("keys.search"), app.Input().ID("f-text").Type("search").Value(d.filter.Text).OnInput(d.setFilter(&d.filter.Text, true), on("f-text"))),
			),
			app.P().ID("keys-count").Class("hint").Text(d.t("keys.count", d.kp.matched, d.kp.total)),
			d.renderSelectionBar(),
			app.Div().Class("scroll").Body(app.Table().ID("keys-table").Body(
				app.THead().Body(app.Tr().Body(
					app.Th().Scope("col").Body(app.Input().ID("sel-page").Type("checkbox").Aria("label", d.t("sel.page")).
						Checked(len(rows) > 0 && d.allChecked(rows)).OnChange(func(ctx app.Context, e app.Event) {
						rows := d.kp.keys // now, not at render time (see on)
						d.selectKeys(rows, !d.allChecked(rows))
					}, on("sel-page"))),
					app.Th().Scope("col").Class("c-key").Text(d.t("col.key")), d.sortHeader("c-provider", "col.provider", ""),
					app.Th().Scope("col").Class("c-state").Text(d.t("col.state")), d.sortHeader("c-usage", "col.usage", "requests"),
					d.sortHeader("c-success", "col.success", "successRate"), d.sortHeader("c-used", "col.lastUsed", "lastUsed"),
					app.Th().Scope("col").Class("c-desc").Text(d.t("col.description")), app.Th().Scope("col").Class("c-tags").Text(d.t("col.tags")),
					app.Th().Scope("col").Class("c-actions").Text(d.t("col.actions")),
				)),
				app.TBody().Body(body...),
			)),
			app.If(d.kp.loaded && len(rows) == 0, func() app.UI { return app.P().ID("keys-none").Class("hint").Text(d.t("keys.none")) }),
			app.Div().Class("pager").Body(
				app.Button().ID("page-prev").Type("button").Disabled(page == 0).Text(d.t("keys.prev")).OnClick(func(ctx app.Context, e app.Event) { d.turnTo(ctx, d.kp.offset-d.size()) }, on("page-prev")),
				app.Span().ID("page-info").Text(d.t("keys.page", page+1, pages)),
				app.Button().ID("page-next").Type("button").Disabled(page >= pages-1).Text(d.t("keys.next")).OnClick(func(ctx app.Context, e app.Event) { d.turnTo(ctx, d.kp.offset+d.size()) }, on("page-next")),
				app.Label().Class("pager-field").Body(
					app.Text(d.t("keys.jump")+" "),
					app.Input().ID("page-jump").Type("number").Min(1).Max(pages).Value(page+1).OnChange(func(ctx app.Context, e app.Event) {
						if n, err := strconv.Atoi(ctx.JSSrc().Get("value").String()); err == nil {
							d.turnTo(ctx, min(max(n-1, 0), pagesNow(d)-1)*d.size())
						}
					}, on("page-jump")),
				),
				app.Label().Class("pager-field").Body(
					app.Text(d.t("keys.pageSize")+" "),
					app.Select().ID("page-size").OnChange(func(ctx app.Context, e app.Event) {
						if n, err := strconv.Atoi(ctx.JSSrc().Get("value").String()); err == nil && slices.Contains(PageSizes, n) {
							d.pageSize = n // keep the first row shown in view
							d.loadKeys(ctx, d.kp.offset/n*n)
						}
					}, on("page-size")).Body(app.Range(PageSizes).Slice(func(i int) app.UI {
						n := PageSizes[i]
						return app.Option().Value(n).Text(n).Selected(n == d.size())
					})),
				),
			),
		),
	)
}

// Panels above the keys table.
const (
	PanelAdd  = "add"
	PanelBulk = "bulk"
)

func (d *Dashboard) renderKeysToolbar() app.UI {
	btn := func(panel, label string) app.UI {
		open := d.panel == panel
		return app.Button().ID(panel+"-open").Type("button").Class(map[bool]string{true: "primary current", false: "primary"}[open]).
			Aria("expanded", map[bool]string{true: "true", false: "false"}[open]).Aria("controls", "key-panel").
			Text(d.t(label)).OnClick(func(ctx app.Context, e app.Event) { d.openPanel(ctx, panel) }, on(panel+"-open"))
	}
	return app.Div().ID("keys-toolbar").Class("toolbar").Body(
		app.H2().Text(d.t("keys.title")),
		app.Span().Class("toolbar-actions").Body(
			btn(PanelAdd, "add.open"),
			btn(PanelBulk, "bulk.open"),
		),
		d.renderSweeps(),
	)
}

// openPanel opens the add or bulk import panel (closes it when open) and
// puts the focus in its first field.
func (d *Dashboard) openPanel(ctx app.Context, panel string) {
	if d.panel == panel {
		d.panel = ""
		return
	}
	d.panel = panel
	d.focus(ctx, map[string]string{PanelAdd: "add-key", PanelBulk: "bulk-text"}[panel])
}

func (d *Dashboard) renderKeyPanel() app.UI {
	// Each panel sits in its own kind of element: go-app updates an
	// element of the same tag in place, and the browser would keep what
	// was typed in the add form's fields in the bulk form's (the add
	// form's description became the bulk import's tags).
	var body app.UI
	switch d.panel {
	case PanelAdd:
		body = app.Div().Class("panel-body").Body(d.renderAdd())
	case PanelBulk:
		body = app.Section().Class("panel-body").Body(d.renderBulk())
	}
	close := func(ctx app.Context, e app.Event) {
		opener := d.panel + "-open"
		d.panel = ""
		d.focus(ctx, opener)
	}
	return app.Div().ID("key-panel").Class(map[bool]string{true: "panel", false: "panel empty"}[body != nil]).OnKeyDown(onEscape(close), on("key-panel")).Body(
		app.If(body != nil, func() app.UI {
			return app.Div().Class("card").Body(
				app.Button().ID("panel-close").Type("button").Class("close").Aria("label", d.t("common.close")).Title(d.t("common.close")).Text("×").OnClick(close, on("panel-close")),
				body,
			)
		}),
	)
}

// showRow highlights the row of key id (just added, its page loaded by
// loadKeysThen) and scrolls to it.
func (d *Dashboard) showRow(ctx app.Context, id string) {
	d.fresh = id
	if app.IsClient {
		d.bind(ctx).Defer(func(app.Context) {
			if el := app.Window().GetElementByID("row-" + id); el.Truthy() {
				el.Call("scrollIntoView", map[string]any{"block": "center"})
			}
		})
	}
}

// syncFilterControls puts the filter into the page's controls: a re-render
// does not clear a text box (go-app drops an empty value attribute).
func (d *Dashboard) syncFilterControls() {
	if !app.IsClient {
		return
	}
	doc := app.Window()
	if el := doc.GetElementByID("f-text"); el.Truthy() {
		el.Set("value", d.filter.Text)
	}
	for id, v := range map[string]string{"f-provider": d.filter.Provider, "f-state": d.filter.State, "f-tag": d.filter.Tag, "f-project": d.filter.Project} {
		if el := doc.GetElementByID(id); el.Truthy() && v == "" {
			el.Set("value", AnyOption)
		}
	}
}

// StateText is the badge text of a key's state.
func StateText(lang string, k adminapi.KeyStatus) string {
	switch k.State {
	case adminapi.StateCooling:
		if k.CoolingUntil != nil {
			return T(lang, "state.coolingUntil", fmtTime(lang, k.CoolingUntil))
		}
	case adminapi.StateDisabled:
		if k.DisabledReason != "" {
			return T(lang, "state.disabledWhy", ReasonText(lang, k.DisabledReason))
		}
	}
	if _, ok := messages["state."+k.State]; ok {
		return T(lang, "state."+k.State)
	}
	return k.State
}

func (d *Dashboard) keyRow(k adminapi.KeyStatus) app.UI {
	id := k.ID
	if d.editID == id {
		return d.editRow(k)
	}
	limit := d.t("unlimited")
	frac := 0.0
	if k.MaxRequests > 0 {
		limit = fmtInt(k.MaxRequests)
		frac = min(1, float64(k.Requests)/float64(k.MaxRequests))
	}
	rate := "—"
	if k.Requests > 0 {
		rate = pct(k.SuccessRate)
	}
	return app.Tr().ID("row-"+id).DataSet("id", id).Class(map[bool]string{true: "fresh", false: ""}[d.fresh == id]).Body(
		app.Td().Body(app.Input().ID("sel-"+id).Type("checkbox").Aria("label", d.t("sel.row", k.MaskedKey)).Checked(d.isSelected(id)).OnChange(d.toggle(id), on("sel", id))),
		app.Td().Body(app.Button().ID("open-"+id).Type("button").Class("linklike mono").Aria("label", d.t("detail.open", k.MaskedKey)).
			Aria("expanded", strconv.FormatBool(d.detailID == id)).Aria("controls", "key-detail").Text(k.MaskedKey).
			OnClick(func(ctx app.Context, e app.Event) { d.openDetail(ctx, id) }, on("open", id))),
		app.Td().DataSet("label", d.t("col.provider")).Text(k.Provider),
		app.Td().DataSet("label", d.t("col.state")).Body(d.stateCell(k)),
		app.Td().DataSet("label", d.t("col.usage")).Body(
			app.Div().Class("usage").Text(fmtInt(k.Requests)+" / "+limit),
			app.If(k.MaxRequests > 0, func() app.UI {
				return app.Div().Class("bar").Body(app.Div().Style("width", strconv.FormatFloat(frac*100, 'f', 1, 64)+"%"))
			}),
		),
		app.Td().Class("num").DataSet("label", d.t("col.success")).Text(rate),
		app.Td().Class("when").DataSet("label", d.t("col.lastUsed")).Text(fmtTime(d.lang, k.LastUsed)),
		app.Td().Class("desc").DataSet("label", d.t("col.description")).Title(k.Description).Text(k.Description),
		app.Td().Class("tags").DataSet("label", d.t("col.tags")).Body(app.Range(k.Tags).Slice(func(i int) app.UI { return app.Span().Class("tag").Text(k.Tags[i]) })),
		app.Td().Class("actions").Body(
			app.If(d.delAsk == id, func() app.UI {
				return d.confirm(d.deleteQuestion(k), "del-yes-"+id, "del-no-"+id, d.doDelete(id, k.MaskedKey), func(ctx app.Context, e app.Event) {
					d.delAsk = ""
					d.focus(ctx, "del-"+id)
				})
			}).Else(func() app.UI {
				return app.Span().Body(
					app.Button().ID("edit-"+id).Type("button").Text(d.t("act.edit")).Aria("label", d.t("act.editKey", k.MaskedKey)).OnClick(func(ctx app.Context, e app.Event) {
						d.editKey(id)
						d.focus(ctx, "e-active")
					}, on("edit", id)),
					app.Button().ID("test-"+id).Type("button").Text(d.t("act.test")).Aria("label", d.t("act.testKey", k.MaskedKey)).OnClick(d.doTest(id), on("test", id)),
					app.Button().ID("del-"+id).Type("button").Class("danger").Text(d.t("act.delete")).Aria("label", d.t("act.deleteKey", k.MaskedKey)).OnClick(func(ctx app.Context, e app.Event) {
						d.delAsk = id
						d.focus(ctx, "del-no-"+id)
					}, on("del", id)),
				)
			}),
			app.If(d.rowMsg[id] != "", func() app.UI {
				return app.Div().ID("msg-"+id).Class("rowmsg").Aria("live", "polite").Text(d.rowMsg[id])
			}),
		),
	)
}

// editKey opens the edit row of key id with the key as it is now: a
// handler kept from an earlier render (go-app keeps one per scope) must
// not fill the form with the values it saw then.
func (d *Dashboard) editKey(id string) {
	if k, ok := d.findShown(id); ok {
		d.startEdit(k)
	}
}

func (d *Dashboard) startEdit(k adminapi.KeyStatus) {
	d.editID = k.ID
	d.edit = editForm{
		Active: k.IsActive, MaxRequests: strconv.FormatInt(k.MaxRequests, 10), Weight: strconv.Itoa(k.Weight),
		Description: k.Description, Tags: strings.Join(k.Tags, ", "),
		Project: k.Project, ProjectWas: k.Project,
	}
}

func (d *Dashboard) editRow(k adminapi.KeyStatus) app.UI {
	id := k.ID
	cancel := func(ctx app.Context, e app.Event) {
		d.editID = ""
		delete(d.rowMsg, id)
		d.focus(ctx, "edit-"+id)
	}
	save := d.doUpdate(id, k.MaskedKey)
	// Escape cancels; Enter in a text box saves (a table row cannot hold
	// a form).
	keys := func(ctx app.Context, e app.Event) {
		switch e.Get("key").String() {
		case "Escape":
			e.PreventDefault()
			cancel(ctx, e)
		case "Enter":
			if t := e.Get("target"); t.Get("tagName").String() == "INPUT" && t.Get("type").String() != "checkbox" {
				e.PreventDefault()
				save(ctx, e)
			}
		}
	}
	return app.Tr().ID("row-"+id).Class("editing").OnKeyDown(keys, on("edit", id)).Body(
		app.Td(),
		app.Td().Class("mono").Text(k.MaskedKey),
		app.Td().Text(k.Provider),
		app.Td().Body(app.Label().Class("check").Body(
			app.Input().ID("e-active").Type("checkbox").Checked(d.edit.Active).OnChange(func(ctx app.Context, e app.Event) {
				d.edit.Active = ctx.JSSrc().Get("checked").Bool()
			}, on("e-active", id)),
			app.Text(" "+d.t("edit.active")),
		)),
		app.Td().Body(inlineField("e-max", d.t("edit.maxRequests"), app.Input().ID("e-max").Type("number").Min(0).Value(d.edit.MaxRequests).OnInput(d.ValueTo(&d.edit.MaxRequests), on("e-max", id)))),
		app.Td().Body(inlineField("e-weight", d.t("edit.weight"), app.Input().ID("e-weight").Type("number").Min(0).Value(d.edit.Weight).OnInput(d.ValueTo(&d.edit.Weight), on("e-weight", id)))),
		app.Td().Body(inlineField("e-project", d.t("proj.editField"), app.Input().ID("e-project").Value(d.edit.Project).OnInput(d.ValueTo(&d.edit.Project), on("e-project", id)))),
		app.Td().Body(inlineField("e-desc", d.t("col.description"), app.Input().ID("e-desc").Value(d.edit.Description).OnInput(d.ValueTo(&d.edit.Description), on("e-desc", id)))),
		app.Td().Body(inlineField("e-tags", d.t("add.tags"), app.Input().ID("e-tags").Value(d.edit.Tags).OnInput(d.ValueTo(&d.edit.Tags), on("e-tags", id)))),
		app.Td().Class("actions").Body(
			app.Button().ID("e-save").Type("button").Text(d.t("common.save")).OnClick(save, on("e-save", id)),
			app.Button().ID("e-cancel").Type("button").Text(d.t("common.no")).OnClick(cancel, on("e-cancel", id)),
			app.If(d.rowMsg[id] != "", func() app.UI {
				return app.Div().ID("msg-"+id).Class("rowmsg error").Aria("live", "assertive").Text(d.rowMsg[id])
			}),
		),
	)
}

// UpdateRequest builds the PUT body from the edit form.
func (d *Dashboard) UpdateRequest() (adminapi.UpdateKeyRequest, error) {
	f := d.edit
	maxReq, _, err := parseInt(f.MaxRequests)
	if err != nil {
		return adminapi.UpdateKeyRequest{}, errors.New(d.t("edit.invalidNumber", d.t("edit.maxRequests")))
	}
	w, _, err := parseInt(f.Weight)
	if err != nil {
		return adminapi.UpdateKeyRequest{}, errors.New(d.t("edit.invalidNumber", d.t("edit.weight")))
	}
	weight := int(w)
	desc := strings.TrimSpace(f.Description)
	tags, err := pool.NormalizeTags(ParseTags(f.Tags))
	for _, c := range []struct {
		label string
		err   error
	}{
		{d.t("edit.maxRequests"), pool.ValidateMaxRequests(maxReq)},
		{d.t("edit.weight"), pool.ValidateWeight(weight)},
		{d.t("col.description"), pool.ValidateDescription(desc)},
		{d.t("col.tags"), err},
	} {
		if c.err != nil {
			return adminapi.UpdateKeyRequest{}, errors.New(d.FieldError(c.label, c.err))
		}
	}
	active := f.Active
	req := adminapi.UpdateKeyRequest{IsActive: &active, MaxRequests: &maxReq, Metadata: &adminapi.Metadata{Description: &desc, Tags: &tags}}
	if weight > 0 {
		req.Weight = &weight
	}
	// Sent only when changed, so saving other fields keeps a learned
	// project learned; "" clears it. The proxy checks it.
	if p := strings.TrimSpace(f.Project); p != f.ProjectWas {
		req.Project = &p
	}
	return req, nil
}

func (d *Dashboard) doUpdate(id, masked string) app.EventHandler {
	return func(ctx app.Context, e app.Event) {
		req, err := d.UpdateRequest()
		if err != nil {
			d.rowMsg[id] = err.Error()
			return
		}
		c := d.client
		ctx = d.bind(ctx)
		ctx.Async(func() {
			cctx, cancel := bg()
			defer cancel()
			_, err := c.UpdateKey(cctx, id, req)
			ctx.Dispatch(func(ctx app.Context) {
				if err != nil {
					d.rowMsg[id] = d.ErrorText(err)
					return
				}
				delete(d.rowMsg, id)
				d.editID = ""
				d.setNotice(ctx, func() string { return d.t("act.updated", masked) }, false)
				d.focus(ctx, "edit-"+id)
				d.refresh(ctx)
			})
		})
	}
}

func (d *Dashboard) doDelete(id, masked string) app.EventHandler {
	return func(ctx app.Context, e app.Event) {
		d.delAsk = ""
		c := d.client
		ctx = d.bind(ctx)
		ctx.Async(func() {
			cctx, cancel := bg()
			defer cancel()
			_, err := c.DeleteKey(cctx, id)
			ctx.Dispatch(func(ctx app.Context) {
				if err != nil {
					d.rowMsg[id] = d.ErrorText(err)
					return
				}
				d.forgetKey(id)
				d.setNotice(ctx, func() string { return d.t("act.deleted", masked) }, false)
				d.refresh(ctx)
			})
		})
	}
}

func (d *Dashboard) doTest(id string) app.EventHandler {
	return func(ctx app.Context, e app.Event) {
		d.rowMsg[id] = d.t("act.testing")
		c := d.client
		ctx = d.bind(ctx)
		ctx.Async(func() {
			cctx, cancel := bg()
			defer cancel()
			r, err := c.TestKey(cctx, id)
			ctx.Dispatch(func(ctx app.Context) {
				switch {
				case err != nil:
					d.rowMsg[id] = d.ErrorText(err)
				case r.OK:
					d.rowMsg[id] = d.t("act.testOK", r.LatencyMs)
				default:
					status, msg, _ := CleanError(r.Status, r.Message)
					d.rowMsg[id] = d.t("act.testFail", ClassText(d.lang, r.Class), status, msg)
				}
				if err == nil && r.Key != nil {
					d.updateShown(*r.Key)
				}
			})
		})
	}
}

func (d *Dashboard) providerSelect(id string, v *string) app.UI {
	opts := []app.UI{}
	for _, p := range d.providers() {
		opts = append(opts, app.Option().Value(p).Text(p).Selected(*v == p))
	}
	return app.Select().ID(id).OnChange(d.ValueTo(v), on(id)).Body(opts...)
}

func (d *Dashboard) renderAdd() app.UI {
	return app.Form().ID("add-form").OnSubmit(d.doAdd, on("add-form")).Body(
		app.H2().Text(d.t("add.title")),
		app.Div().Class("grid").Body(
			field("add-provider", d.t("add.provider"), d.providerSelect("add-provider", &d.add.Provider)),
			field("add-key", d.t("add.apiKey"), app.Input().ID("add-key").Type("password").AutoComplete(false).Value(d.add.APIKey).OnInput(d.ValueTo(&d.add.APIKey), on("add-key"))),
			field("add-max", d.t("add.maxRequests"), app.Input().ID("add-max").Type("number").Min(0).Value(d.add.MaxRequests).OnInput(d.ValueTo(&d.add.MaxRequests), on("add-max"))),
			field("add-desc", d.t("add.description"), app.Input().ID("add-desc").Value(d.add.Description).OnInput(d.ValueTo(&d.add.Description), on("add-desc"))),
			field("add-tags", d.t("add.tags"), app.Input().ID("add-tags").Value(d.add.Tags).OnInput(d.ValueTo(&d.add.Tags), on("add-tags"))),
			field("add-project", d.t("proj.field"), app.Input().ID("add-project").Value(d.add.Project).OnInput(d.ValueTo(&d.add.Project), on("add-project"))),
		),
		app.Button().ID("add-submit").Type("submit").Text(d.t("add.submit")),
		formMsg("add-msg", d.add.Msg, d.add.Err),
	)
}

// formMsg is a form's own result line, where the operator is looking.
// Always present (empty when there is nothing to say) so screen readers
// announce its changes.
func formMsg(id, msg string, isErr bool) app.UI {
	cls := "formmsg ok"
	if isErr {
		cls = "formmsg error"
	}
	return app.P().ID(id).Class(cls).Aria("live", "polite").Text(msg)
}

// AddRequest builds the POST body from the add form, validated with the
// pool core's rules.
func (d *Dashboard) AddRequest() (adminapi.AddKeyRequest, error) {
	f := d.add
	key := strings.TrimSpace(f.APIKey)
	if err := pool.ValidateProvider(f.Provider); err != nil {
		return adminapi.AddKeyRequest{}, errors.New(d.FieldError(d.t("add.provider"), err))
	}
	if err := pool.ValidateSecret(key); err != nil {
		return adminapi.AddKeyRequest{}, errors.New(d.FieldError(d.t("add.apiKey"), err))
	}
	req := adminapi.AddKeyRequest{Provider: f.Provider, APIKey: key}
	n, set, err := parseInt(f.MaxRequests)
	if err != nil {
		return req, errors.New(d.t("edit.invalidNumber", d.t("add.maxRequests")))
	}
	if err := pool.ValidateMaxRequests(n); err != nil {
		return req, errors.New(d.FieldError(d.t("add.maxRequests"), err))
	}
	if set {
		req.MaxRequests = &n
	}
	desc := strings.TrimSpace(f.Description)
	if err := pool.ValidateDescription(desc); err != nil {
		return req, errors.New(d.FieldError(d.t("add.description"), err))
	}
	tags, err := pool.NormalizeTags(ParseTags(f.Tags))
	if err != nil {
		return req, errors.New(d.FieldError(d.t("col.tags"), err))
	}
	if desc != "" || len(tags) > 0 {
		req.Metadata = &adminapi.Metadata{Description: &desc, Tags: &tags}
	}
	// The project is checked by the proxy: its JSON error shows in the form.
	if p := strings.TrimSpace(f.Project); p != "" {
		req.Project = &p
	}
	return req, nil
}

func (d *Dashboard) doAdd(ctx app.Context, e app.Event) {
	e.PreventDefault()
	d.AddKey(ctx)
}

// AddKey submits the add form.
func (d *Dashboard) AddKey(ctx app.Context) {
	req, err := d.AddRequest()
	if err != nil {
		d.add.Msg, d.add.Err = err.Error(), true
		return
	}
	d.add.Msg, d.add.Err = d.t("add.busy"), false
	c := d.client
	ctx = d.bind(ctx)
	ctx.Async(func() {
		cctx, cancel := bg()
		defer cancel()
		r, err := c.AddKey(cctx, req)
		ctx.Dispatch(func(ctx app.Context) {
			if err != nil {
				d.add.Msg, d.add.Err = d.ErrorText(err), true
				return
			}
			masked := pool.Mask(req.APIKey)
			if r.Key != nil {
				masked = r.Key.MaskedKey
			}
			d.add.APIKey = ""
			clearInput("add-key")
			d.add.Msg, d.add.Err = d.t("add.done", masked), false
			d.revealAfter = r.KeyID
			d.refresh(ctx)
		})
	})
}

func (d *Dashboard) renderBulk() app.UI {
	b := d.bulk
	x := ExtractKeys(b.Provider, b.Text)
	return app.Form().ID("bulk-form").OnSubmit(d.doBulk, on("bulk-form")).Body(
		app.H2().Text(d.t("bulk.title")),
		app.Div().Class("grid").Body(
			field("bulk-provider", d.t("add.provider"), d.providerSelect("bulk-provider", &d.bulk.Provider)),
			field("bulk-max", d.t("add.maxRequests"), app.Input().ID("bulk-max").Type("number").Min(0).Value(b.MaxRequests).OnInput(d.ValueTo(&d.bulk.MaxRequests), on("bulk-max"))),
			field("bulk-weight", d.t("bulk.weight"), app.Input().ID("bulk-weight").Type("number").Min(0).Value(b.Weight).OnInput(d.ValueTo(&d.bulk.Weight), on("bulk-weight"))),
			field("bulk-tags", d.t("add.tags"), app.Input().ID("bulk-tags").Value(b.Tags).OnInput(d.ValueTo(&d.bulk.Tags), on("bulk-tags"))),
			field("bulk-project", d.t("proj.field"), app.Input().ID("bulk-project").Value(b.Project).OnInput(d.ValueTo(&d.bulk.Project), on("bulk-project"))),
		),
		field("bulk-text", d.t("bulk.keys"), app.Textarea().ID("bulk-text").Rows(6).Spellcheck(false).Text(b.Text).OnInput(d.ValueTo(&d.bulk.Text), on("bulk-text"))),
		app.P().ID("bulk-found").Class("hint").Aria("live", "polite").Text(d.foundText(x)),
		field("bulk-file", d.t("bulk.file"), app.Input().ID("bulk-file").Type("file").Accept(".txt,.csv,.env,.json,text/plain").OnChange(d.readFile, on("bulk-file"))),
		app.Button().ID("bulk-submit").Type("submit").Class("primary").Disabled(b.Busy).Text(map[bool]string{true: d.t("bulk.busy"), false: d.t("bulk.submit", len(x.Keys))}[b.Busy]),
		formMsg("bulk-msg", b.Err, true),
		app.If(b.Busy || b.Total > 0 && b.Result != nil, func() app.UI {
			return app.Div().Class("progress").Body(
				app.Progress().ID("bulk-progress").Max(max(b.Total, 1)).Value(b.Done),
				app.Span().Class("hint").Text(d.t("bulk.progress", b.Done, b.Total)),
			)
		}),
		app.If(b.Result != nil, func() app.UI { return d.renderBulkResult(b.Result, b.Sent) }),
	)
}

// foundText says, before importing, what the paste holds: keys, repeats
// left out, lines without a key.
func (d *Dashboard) foundText(x Extracted) string {
	s := d.t("bulk.found", len(x.Keys))
	if len(x.Repeats) > 0 {
		s += d.t("bulk.foundRepeats", lineList(x.Repeats))
	}
	if len(x.NoKey) > 0 {
		s += d.t("bulk.foundNoKey", lineList(x.NoKey))
	}
	return s
}

// lineList names up to ten line numbers.
func lineList(lines []int) string {
	parts := make([]string, 0, min(len(lines), 11))
	for i, l := range lines {
		if i == 10 {
			parts = append(parts, "…")
			break
		}
		parts = append(parts, strconv.Itoa(l))
	}
	return strings.Join(parts, ", ")
}

// renderBulkResult shows an import's problems first, with counts: lines
// without a key and repeats (left out before sending), keys the proxy
// rejected or already held; then the keys added.
func (d *Dashboard) renderBulkResult(r *adminapi.BulkAddResponse, sent Extracted) app.UI {
	lineOf := func(i int) int {
		if i >= 0 && i < len(sent.Lines) {
			return sent.Lines[i]
		}
		return i + 1
	}
	var problems, added []app.UI
	for _, l := range sent.NoKey {
		problems = append(problems, app.Li().Class("bulk-invalid").Text(d.t("bulk.line", l)+d.t("bulk.sep")+d.t("bulk.noKey")))
	}
	for _, l := range sent.Repeats {
		problems = append(problems, app.Li().Class("bulk-duplicate").Text(d.t("bulk.line", l)+d.t("bulk.sep")+d.t("bulk.repeat")))
	}
	for _, x := range r.Results {
		text := d.t("bulk.line", lineOf(x.Index)) + d.t("bulk.sep") + d.t("bulk."+x.Status)
		if x.MaskedKey != "" {
			text += " " + x.MaskedKey
		}
		if why := d.bulkReason(r, x, lineOf); why != "" {
			text += " — " + why
		}
		li := app.Li().Class("bulk-" + x.Status).Text(text)
		if x.Status == adminapi.BulkAdded {
			added = append(added, li)
		} else {
			problems = append(problems, li)
		}
	}
	dups := r.Duplicates + len(sent.Repeats)
	invalid := r.Invalid + len(sent.NoKey)
	return app.Div().ID("bulk-result").Body(
		app.P().ID("bulk-summary").Class(map[bool]string{true: "warn", false: "ok"}[dups+invalid > 0]).Text(d.t("bulk.summary", r.Added, dups, invalid)),
		app.If(len(problems) > 0, func() app.UI {
			return app.Ul().ID("bulk-problems").Class("bulk-lines").Body(problems...)
		}),
		app.If(len(added) > 0, func() app.UI {
			return app.Details().ID("bulk-added").Body(
				app.Summary().Text(d.t("bulk.addedList", len(added))),
				app.Ul().Class("bulk-lines").Body(added...),
			)
		}),
	)
}

// bulkReason says, translated, why a key was not added: the pool core's
// rule it broke, or which line (or the pool) already holds it.
func (d *Dashboard) bulkReason(r *adminapi.BulkAddResponse, x adminapi.BulkResult, lineOf func(int) int) string {
	switch x.Status {
	case adminapi.BulkInvalid:
		if x.Error == "" {
			return ""
		}
		return d.FieldError(d.t("add.apiKey"), errors.New(x.Error))
	case adminapi.BulkDuplicate:
		for _, y := range r.Results {
			if y.Status == adminapi.BulkAdded && y.KeyID == x.KeyID && y.Index < x.Index {
				return d.t("bulk.sameAs", lineOf(y.Index))
			}
		}
		return d.t("bulk.inPool")
	}
	return ""
}

func (d *Dashboard) doBulk(ctx app.Context, e app.Event) {
	e.PreventDefault()
	d.BulkImport(ctx)
}

// BulkRequest builds the settings every key of a bulk import gets (max
// requests, weight, tags), validated with the pool core's rules.
func (d *Dashboard) BulkRequest() (adminapi.BulkAddRequest, error) {
	f := d.bulk
	req := adminapi.BulkAddRequest{Provider: f.Provider}
	if err := pool.ValidateProvider(f.Provider); err != nil {
		return req, errors.New(d.FieldError(d.t("add.provider"), err))
	}
	n, set, err := parseInt(f.MaxRequests)
	if err != nil {
		return req, errors.New(d.t("edit.invalidNumber", d.t("add.maxRequests")))
	}
	if err := pool.ValidateMaxRequests(n); err != nil {
		return req, errors.New(d.FieldError(d.t("add.maxRequests"), err))
	}
	if set {
		req.MaxRequests = &n
	}
	w, set, err := parseInt(f.Weight)
	if err != nil {
		return req, errors.New(d.t("edit.invalidNumber", d.t("bulk.weight")))
	}
	weight := int(w)
	if err := pool.ValidateWeight(weight); err != nil {
		return req, errors.New(d.FieldError(d.t("bulk.weight"), err))
	}
	if set && weight > 0 {
		req.Weight = &weight
	}
	tags, err := pool.NormalizeTags(ParseTags(f.Tags))
	if err != nil {
		return req, errors.New(d.FieldError(d.t("col.tags"), err))
	}
	if len(tags) > 0 {
		req.Metadata = &adminapi.Metadata{Tags: &tags}
	}
	if p := strings.TrimSpace(f.Project); p != "" {
		req.Project = &p // checked by the proxy
	}
	return req, nil
}

// BulkImport submits the bulk import form: the keys found in the paste
// (each once, see ExtractKeys), bulkChunk per request so any paste fits
// the admin API's body limit and the bar shows progress, each with the
// form's max requests, weight and tags. Duplicates against the pool come
// back per key.
func (d *Dashboard) BulkImport(ctx app.Context) {
	x := ExtractKeys(d.bulk.Provider, d.bulk.Text)
	d.bulk.Err = ""
	if len(x.Keys) == 0 {
		d.bulk.Err = d.t("bulk.empty")
		return
	}
	base, err := d.BulkRequest()
	if err != nil {
		d.bulk.Err = err.Error()
		return
	}
	d.bulk.Busy = true
	d.bulk.Result = nil
	d.bulk.Sent = x
	d.bulk.Done, d.bulk.Total = 0, len(x.Keys)
	c := d.client
	lines := x.Keys
	ctx = d.bind(ctx)
	ctx.Async(func() {
		cctx, cancel := bg()
		defer cancel()
		total := &adminapi.BulkAddResponse{Provider: base.Provider}
		var err error
		for lo := 0; lo < len(lines); lo += bulkChunk {
			req := base
			req.APIKeys = lines[lo:min(lo+bulkChunk, len(lines))]
			var r *adminapi.BulkAddResponse
			r, err = c.BulkAdd(cctx, req)
			if err != nil {
				break
			}
			total.Added += r.Added
			total.Duplicates += r.Duplicates
			total.Invalid += r.Invalid
			for _, x := range r.Results {
				x.Index += lo
				total.Results = append(total.Results, x)
			}
			done := lo + len(req.APIKeys)
			ctx.Dispatch(func(ctx app.Context) { d.bulk.Done = done })
		}
		ctx.Dispatch(func(ctx app.Context) {
			d.bulk.Busy = false
			if err != nil {
				d.bulk.Err = d.ErrorText(err)
			}
			if len(total.Results) > 0 || err == nil {
				d.bulk.Result = total
			}
			if err == nil {
				d.bulk.Text = ""
				clearInput("bulk-text")
			}
			d.refresh(ctx)
		})
	})
}

// readFile appends a chosen text file's lines to the bulk import box.
func (d *Dashboard) readFile(ctx app.Context, e app.Event) {
	files := ctx.JSSrc().Get("files")
	if !files.Truthy() || files.Length() == 0 {
		return
	}
	ctx = d.bind(ctx)
	files.Index(0).Call("text").Then(func(v app.Value) {
		ctx.Dispatch(func(ctx app.Context) {
			text := v.String()
			if d.bulk.Text != "" && !strings.HasSuffix(d.bulk.Text, "\n") {
				d.bulk.Text += "\n"
			}
			d.bulk.Text += text
			if app.IsClient {
				if el := app.Window().GetElementByID("bulk-text"); el.Truthy() {
					el.Set("value", d.bulk.Text)
				}
			}
		})
	})
}

// allChecked reports whether every key of keys shows as selected.
func (d *Dashboard) allChecked(keys []adminapi.KeyStatus) bool {
	for _, k := range keys {
		if !d.isSelected(k.ID) {
			return false
		}
	}
	return true
}

// pagesNow is the table's page count.
func pagesNow(d *Dashboard) int {
	_, pages := d.pageInfo()
	return pages
}

// size is the table's page size.
func (d *Dashboard) size() int {
	if d.pageSize <= 0 {
		return PageSize
	}
	return d.pageSize
}

// sortHeader is a column header that sorts by sort ("" = the proxy's
// order) when clicked, and again in the other direction; aria-sort says
// how the table is sorted.
func (d *Dashboard) sortHeader(cls, label, sort string) app.UI {
	current := d.filter.Sort == sort
	asc := SortAscending(sort) != (current && d.filter.Reverse)
	ariaSort, arrow := "none", ""
	if current {
		ariaSort, arrow = map[bool]string{true: "ascending", false: "descending"}[asc], map[bool]string{true: " ▲", false: " ▼"}[asc]
	}
	id := "sort-" + sort
	if sort == "" {
		id = "sort-provider"
	}
	return app.Th().Scope("col").Class(cls).Aria("sort", ariaSort).Body(
		app.Button().ID(id).Type("button").Class("sort").Text(d.t(label)+arrow).OnClick(func(ctx app.Context, e app.Event) {
			if d.filter.Sort == sort {
				d.filter.Reverse = !d.filter.Reverse
			} else {
				d.filter.Sort, d.filter.Reverse = sort, false
			}
			d.syncSortControl()
			d.filterChanged(ctx)
		}, on(id)),
	)
}

// syncSortControl puts the sort into the Sort by box (go-app does not
// update a select's value when only an option's selected flag changes).
func (d *Dashboard) syncSortControl() {
	if !app.IsClient {
		return
	}
	if el := app.Window().GetElementByID("f-sort"); el.Truthy() {
		v := d.filter.Sort
		if v == "" {
			v = AnyOption
		}
		el.Set("value", v)
	}
}

// inlineField is an input in the edited row with its label shown above it.
func inlineField(id, label string, input app.UI) app.UI {
	return app.Div().Class("inline-field").Body(app.Label().For(id).Text(label), input)
}
