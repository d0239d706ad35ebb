package ui

import (
	"strings"

	"github.com/maxence-charriere/go-app/v10/pkg/app"

	"github.com/keypool/keypool/worker-proxy/adminapi"
)

func (d *Dashboard) renderTokens() app.UI {
	rows := make([]app.UI, 0, len(d.tokens))
	for _, t := range d.tokens {
		id := t.ID
		source, created := TokenSourceText(d.lang, t.Source), fmtTime(d.lang, t.CreatedAt)
		if t.Source == adminapi.TokenSourceEnv && t.CreatedAt == nil {
			created = d.t("tok.envCreated")
		}
		rows = append(rows, app.Tr().ID("tok-"+id).Body(
			app.Td().Text(t.Name),
			app.Td().Class("mono").Text(t.Masked),
			app.Td().Text(source),
			app.Td().Class("when").Text(created),
			app.Td().Class("limits").Text(TokenLimitsText(d.lang, t)),
			app.Td().Class("usage").Text(TokenUsageText(d.lang, t.Usage)),
			app.Td().Class("actions").Body(app.If(t.Source == adminapi.TokenSourceEnv, func() app.UI {
				return app.Span().Class("hint").Text(d.t("tok.envRevoke"))
			}).Else(func() app.UI {
				if d.revokeAsk == id {
					return d.confirm(d.t("tok.revokeConfirm"), "revoke-yes-"+id, "revoke-no-"+id, d.doRevoke(id), func(ctx app.Context, e app.Event) {
						d.revokeAsk = ""
						d.focus(ctx, "revoke-"+id)
					})
				}
				return app.Button().ID("revoke-"+id).Type("button").Class("danger").Text(d.t("tok.revoke")).Aria("label", d.t("tok.revokeName", t.Name)).
					OnClick(func(ctx app.Context, e app.Event) {
						d.revokeAsk = id
						d.focus(ctx, "revoke-no-"+id)
					}, on("revoke", id))
			})),
		))
	}
	return app.Div().ID("tokens").Body(
		app.Form().ID("token-form").Class("card").OnSubmit(d.doCreateToken, on("token-form")).Body(
			app.H2().Text(d.t("tok.title")),
			field("tok-name", d.t("tok.name"), app.Input().ID("tok-name").Value(d.tokName).OnInput(d.ValueTo(&d.tokName), on("tok-name"))),
			d.tokenLimitFields(),
			app.Button().ID("tok-create").Type("submit").Text(d.t("tok.create")),
			formMsg("tok-msg", d.tokErr, true),
			app.If(d.newToken != nil, func() app.UI {
				return app.Div().ID("new-token").Class("once").Body(
					app.P().Text(d.t("tok.created")),
					app.Div().Class("copyline").Body(
						app.Code().ID("new-token-value").Text(d.newToken.Token),
						app.Button().ID("new-token-copy").Type("button").Text(d.t("tok.copy")).Aria("label", d.t("tok.copyLabel")).
							OnClick(d.copyToken, on("new-token-copy", d.newToken.ID)),
					),
					app.Span().ID("new-token-copied").Class(map[bool]string{true: "hint error", false: "hint ok"}[d.copyFailed]).Aria("live", "polite").Text(d.copyText()),
				)
			}),
		),
		app.Section().Class("card").Body(
			app.Div().Class("scroll").Body(app.Table().ID("tokens-table").Body(
				app.THead().Body(app.Tr().Body(
					app.Th().Scope("col").Text(d.t("tok.name")), app.Th().Scope("col").Text(d.t("tok.masked")),
					app.Th().Scope("col").Text(d.t("tok.source")), app.Th().Scope("col").Text(d.t("tok.createdAt")),
					app.Th().Scope("col").Text(d.t("tok.limits")), app.Th().Scope("col").Text(d.t("tok.usage")),
					app.Th().Scope("col").Text(d.t("col.actions")),
				)),
				app.TBody().Body(rows...),
			)),
			app.If(len(d.tokens) == 0, func() app.UI { return app.P().Class("hint").Text(d.t("tok.none")) }),
		),
	)
}

// TokenSourceText says where a client token comes from.
func TokenSourceText(lang, source string) string {
	switch source {
	case adminapi.TokenSourceEnv:
		return T(lang, "tok.env")
	case adminapi.TokenSourceAdmin:
		return T(lang, "tok.admin")
	}
	return source
}

func (d *Dashboard) copyText() string {
	switch {
	case d.copyFailed:
		return d.t("tok.copyFailed")
	case d.copied:
		return d.t("tok.copied")
	}
	return ""
}

// copyToken puts the shown-once token on the clipboard.
func (d *Dashboard) copyToken(ctx app.Context, e app.Event) {
	if d.newToken == nil || !app.IsClient {
		return
	}
	ctx = d.bind(ctx)
	result := func(ok bool) {
		ctx.Dispatch(func(app.Context) { d.copied, d.copyFailed = ok, !ok })
	}
	cb := app.Window().Get("navigator").Get("clipboard")
	if !cb.Truthy() { // not a secure context: no clipboard API
		result(false)
		return
	}
	var done, failed app.Func
	release := func() { done.Release(); failed.Release() }
	done = app.FuncOf(func(app.Value, []app.Value) any { result(true); release(); return nil })
	failed = app.FuncOf(func(app.Value, []app.Value) any { result(false); release(); return nil })
	cb.Call("writeText", d.newToken.Token).Call("then", done, failed)
}

func (d *Dashboard) doCreateToken(ctx app.Context, e app.Event) {
	e.PreventDefault()
	d.CreateToken(ctx)
}

// CreateToken submits the token form.
func (d *Dashboard) CreateToken(ctx app.Context) {
	name := strings.TrimSpace(d.tokName)
	d.tokErr = ""
	if name == "" {
		d.tokErr = d.t("tok.needName")
		return
	}
	req, err := d.tokLim.Request(d.lang, name)
	if err != nil {
		d.tokErr = err.Error()
		return
	}
	c := d.client
	ctx = d.bind(ctx)
	ctx.Async(func() {
		cctx, cancel := bg()
		defer cancel()
		r, err := c.CreateTokenWith(cctx, req)
		ctx.Dispatch(func(ctx app.Context) {
			if err != nil {
				d.tokErr = d.ErrorText(err)
				return
			}
			d.newToken = r
			d.copied, d.copyFailed = false, false
			d.tokName, d.tokLim = "", tokenLimitForm{}
			clearInput("tok-name")
			d.clearNotice()
			d.refresh(ctx)
		})
	})
}

func (d *Dashboard) doRevoke(id string) app.EventHandler {
	return func(ctx app.Context, e app.Event) {
		d.revokeAsk = ""
		c := d.client
		ctx = d.bind(ctx)
		ctx.Async(func() {
			cctx, cancel := bg()
			defer cancel()
			err := c.RevokeToken(cctx, id)
			ctx.Dispatch(func(ctx app.Context) {
				if err != nil {
					d.setNotice(ctx, func() string { return d.ErrorText(err) }, true)
					return
				}
				d.newToken = nil
				d.refresh(ctx)
			})
		})
	}
}
