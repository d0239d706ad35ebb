package ui

import (
	"strings"

	"github.com/keypool/keypool/worker-proxy/adminclient"
	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/maxence-charriere/go-app/v10/pkg/app"
)

// TabPlayground sends one prompt through the proxy's relay.
const TabPlayground = "playground"

type playForm struct {
	Provider, Model, Strategy, Token, Prompt string
	Busy                                     bool
	Status                                   int
	Answer, KeyID, Err                       string
	Masked                                   string // KeyID's masked key, asked of the proxy
}

// DefaultModel is the model the playground proposes for a provider.
func DefaultModel(provider string) string {
	switch provider {
	case "gemini":
		return "gemini-2.5-flash"
	case "anthropic":
		return "claude-sonnet-4-5"
	case "openai":
		return "gpt-4o-mini"
	}
	return ""
}

// maskedKeyFor names the key that served the playground's prompt the way
// the table shows it (its id alone until the proxy said its masked key).
func (d *Dashboard) maskedKeyFor(id string) string {
	if d.play.Masked != "" && d.play.KeyID == id {
		return d.play.Masked + " (" + id + ")"
	}
	return id
}

func (d *Dashboard) renderPlayground() app.UI {
	p := &d.play
	if p.Provider == "" {
		// The first provider that can serve, else the first one.
		p.Provider = d.providers()[0]
		if d.sum != nil {
			for _, ps := range d.sum.Providers {
				if ps.AvailableKeys > 0 {
					p.Provider = ps.Provider
					break
				}
			}
		}
	}
	if p.Model == "" {
		p.Model = DefaultModel(p.Provider)
	}
	stratOpts := []app.UI{}
	for _, s := range pool.Strategies {
		stratOpts = append(stratOpts, app.Option().Value(s.String()).Text(s.String()).Selected(p.Strategy == s.String()))
	}
	provOpts := []app.UI{}
	for _, name := range d.providers() {
		provOpts = append(provOpts, app.Option().Value(name).Text(name).Selected(p.Provider == name))
	}
	return app.Form().ID("play-form").Class("card").OnSubmit(func(ctx app.Context, e app.Event) {
		e.PreventDefault()
		d.SendPrompt(ctx)
	}, on("play-form")).Body(
		app.H2().Text(d.t("play.title")),
		app.P().Class("hint").Text(d.t("play.hint")),
		app.Div().Class("grid").Body(
			field("play-provider", d.t("add.provider"), app.Select().ID("play-provider").OnChange(func(ctx app.Context, e app.Event) {
				p.Provider = ctx.JSSrc().Get("value").String()
				p.Model = DefaultModel(p.Provider)
			}, on("play-provider")).Body(provOpts...)),
			field("play-model", d.t("play.model"), app.Input().ID("play-model").Value(p.Model).OnInput(d.ValueTo(&p.Model), on("play-model"))),
			field("play-strategy", d.t("play.strategy"), app.Select().ID("play-strategy").OnChange(d.ValueTo(&p.Strategy), on("play-strategy")).Body(stratOpts...)),
			field("play-token", d.t("play.token"), app.Input().ID("play-token").Type("password").AutoComplete(false).Placeholder("kp-…").Value(p.Token).OnInput(d.ValueTo(&p.Token), on("play-token"))),
		),
		field("play-prompt", d.t("play.prompt"), app.Textarea().ID("play-prompt").Rows(4).Text(p.Prompt).OnInput(d.ValueTo(&p.Prompt), on("play-prompt"))),
		app.Button().ID("play-send").Type("submit").Disabled(p.Busy).Text(map[bool]string{true: d.t("play.busy"), false: d.t("play.send")}[p.Busy]),
		app.If(p.Err != "", func() app.UI { return app.P().ID("play-error").Class("error").Text(p.Err) }),
		app.If(p.Status != 0, func() app.UI {
			return app.Div().ID("play-result").Class("once").Body(
				app.P().ID("play-meta").Text(d.t("play.meta", p.Status, d.maskedKeyFor(p.KeyID))),
				app.Pre().ID("play-answer").Text(p.Answer),
			)
		}),
	)
}

// SendPrompt relays the playground's prompt with the client token.
func (d *Dashboard) SendPrompt(ctx app.Context) {
	p := &d.play
	p.Err, p.Status, p.Answer, p.KeyID, p.Masked = "", 0, "", "", ""
	switch {
	case strings.TrimSpace(p.Token) == "":
		p.Err = d.t("play.needToken")
		return
	case strings.TrimSpace(p.Prompt) == "" || strings.TrimSpace(p.Model) == "":
		p.Err = d.t("play.needPrompt")
		return
	}
	path, headers, body := adminclient.PlaygroundRequest(p.Provider, strings.TrimSpace(p.Model), p.Strategy, strings.TrimSpace(p.Token), p.Prompt)
	provider := p.Provider
	c := d.client
	p.Busy = true
	ctx = d.bind(ctx)
	ctx.Async(func() {
		cctx, cancel := bg()
		defer cancel()
		r, err := c.Relay(cctx, "POST", path, headers, body)
		masked := ""
		if err == nil && r.KeyID != "" { // one key, not every key
			if k, kerr := c.GetKey(cctx, r.KeyID); kerr == nil {
				masked = k.MaskedKey
			}
		}
		ctx.Dispatch(func(ctx app.Context) {
			p.Busy = false
			if err != nil {
				p.Err = d.ErrorText(err)
				return
			}
			p.Status, p.KeyID, p.Masked = r.Status, r.KeyID, masked
			p.Answer = adminclient.AnswerText(provider, r.Body)
			d.refresh(ctx)
		})
	})
}
