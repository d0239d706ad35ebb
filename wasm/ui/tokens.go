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
		source := t.Source
		if source == adminapi.TokenSourceEnv {
			source = d.t("tok.env")
		}
		rows = append(rows, app.Tr().ID("tok-"+id).Body(
			app.Td().Text(t.Name),
			app.Td().Class("mono").Text(t.Masked),
			app.Td().Text(source),
			app.Td().Text(fmtTime(d.lang, t.CreatedAt)),
			app.Td().Class("actions").Body(app.If(t.Source != adminapi.TokenSourceEnv, func() app.UI {
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
			app.Button().ID("tok-create").Type("submit").Text(d.t("tok.create")),
			formMsg("tok-msg", d.tokErr, true),
			app.If(d.newToken != nil, func() app.UI {
				return app.Div().ID("new-token").Class("once").Body(
					app.P().Text(d.t("tok.created")),
					app.Code().ID("new-token-value").Text(d.newToken.Token),
				)
			}),
		),
		app.Section().Class("card").Body(
			app.Div().Class("scroll").Body(app.Table().ID("tokens-table").Body(
				app.THead().Body(app.Tr().Body(
					app.Th().Scope("col").Text(d.t("tok.name")), app.Th().Scope("col").Text(d.t("tok.masked")),
					app.Th().Scope("col").Text(d.t("tok.source")), app.Th().Scope("col").Text(d.t("tok.createdAt")),
					app.Th().Scope("col").Text(d.t("col.actions")),
				)),
				app.TBody().Body(rows...),
			)),
			app.If(len(d.tokens) == 0, func() app.UI { return app.P().Class("hint").Text(d.t("tok.none")) }),
		),
	)
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
	c := d.client
	ctx = d.bind(ctx)
	ctx.Async(func() {
		cctx, cancel := bg()
		defer cancel()
		r, err := c.CreateToken(cctx, name)
		ctx.Dispatch(func(ctx app.Context) {
			if err != nil {
				d.tokErr = d.ErrorText(err)
				return
			}
			d.newToken = r
			d.tokName = ""
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
