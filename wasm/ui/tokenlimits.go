package ui

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/maxence-charriere/go-app/v10/pkg/app"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/limits"
)

// A client token's limits and usage on the tokens screen.

func init() {
	for k, v := range tokenLimitMessages {
		messages[k] = v
	}
}

var tokenLimitMessages = map[string][2]string{
	"tok.limits":       {"Limits", "限额"},
	"tok.usage":        {"Usage (this instance)", "用量（本实例）"},
	"tok.unlimited":    {"unlimited", "不限"},
	"tok.expires":      {"expires %s", "%s 过期"},
	"tok.expired":      {"expired %s", "已于 %s 过期"},
	"tok.providersAre": {"providers: %s", "服务商：%s"},
	"tok.modelsAre":    {"models: %s", "模型：%s"},
	"tok.usageText":    {"%s requests (%s refused) · %s in / %s out tokens", "%s 次请求（拒绝 %s 次）· 输入 %s / 输出 %s token"},
	"tok.rpm":          {"Requests per minute", "每分钟请求数"},
	"tok.rpd":          {"Requests per day", "每天请求数"},
	"tok.tpm":          {"Tokens per minute", "每分钟 token 数"},
	"tok.tpd":          {"Tokens per day", "每天 token 数"},
	"tok.expiresAt":    {"Expires (RFC 3339, optional)", "过期时间（RFC 3339，可选）"},
	"tok.providers":    {"Providers (comma-separated, * patterns)", "服务商（逗号分隔，可用 *）"},
	"tok.models":       {"Models (comma-separated, * patterns)", "模型（逗号分隔，可用 *）"},
	"tok.limitsHint":   {"Empty or 0: unlimited.", "留空或 0 表示不限。"},
	"tok.badNumber":    {"%s must be a whole number, 0 or more.", "%s 必须是 0 或更大的整数。"},
}

// tokenLimitForm holds the optional settings of the token form, as typed.
type tokenLimitForm struct {
	RPM, RPD, TPM, TPD string
	ExpiresAt          string
	Providers, Models  string
}

// TokenLimitsText describes a token's settings in one line.
func TokenLimitsText(lang string, t adminapi.Token) string {
	var parts []string
	for _, b := range []struct {
		n    int64
		name string
	}{{t.Limits.RPM, "rpm"}, {t.Limits.RPD, "rpd"}, {t.Limits.TPM, "tpm"}, {t.Limits.TPD, "tpd"}} {
		if b.n > 0 {
			parts = append(parts, fmtInt(b.n)+" "+b.name)
		}
	}
	if t.ExpiresAt != nil {
		key := "tok.expires"
		if t.Expired {
			key = "tok.expired"
		}
		parts = append(parts, T(lang, key, fmtTime(lang, t.ExpiresAt)))
	}
	if len(t.Providers) > 0 {
		parts = append(parts, T(lang, "tok.providersAre", strings.Join(t.Providers, ", ")))
	}
	if len(t.Models) > 0 {
		parts = append(parts, T(lang, "tok.modelsAre", strings.Join(t.Models, ", ")))
	}
	if len(parts) == 0 {
		return T(lang, "tok.unlimited")
	}
	return strings.Join(parts, " · ")
}

// TokenUsageText describes what a token used on this instance.
func TokenUsageText(lang string, u adminapi.TokenUsage) string {
	return T(lang, "tok.usageText", fmtInt(u.Requests), fmtInt(u.Refused), fmtInt(u.PromptTokens), fmtInt(u.CompletionTokens))
}

// Request turns the form into the settings of a create request; the error
// (for the person) names a field that is not a whole number.
func (f tokenLimitForm) Request(lang, name string) (adminapi.CreateTokenRequest, error) {
	req := adminapi.CreateTokenRequest{Name: name}
	var lim limits.Limits
	for _, v := range []struct {
		s, label string
		dst      *int64
	}{{f.RPM, "tok.rpm", &lim.RPM}, {f.RPD, "tok.rpd", &lim.RPD}, {f.TPM, "tok.tpm", &lim.TPM}, {f.TPD, "tok.tpd", &lim.TPD}} {
		s := strings.TrimSpace(v.s)
		if s == "" {
			continue
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return req, fmt.Errorf("%s", T(lang, "tok.badNumber", T(lang, v.label)))
		}
		*v.dst = n
	}
	if !lim.IsZero() {
		req.Limits = &lim
	}
	if s := strings.TrimSpace(f.ExpiresAt); s != "" {
		if _, err := time.Parse(time.RFC3339, s); err != nil {
			if d, derr := time.Parse("2006-01-02", s); derr == nil { // a date: the end of that day, UTC
				s = d.Add(24*time.Hour - time.Second).Format(time.RFC3339)
			}
		}
		req.ExpiresAt = &s
	}
	req.Providers, req.Models = splitList(f.Providers), splitList(f.Models)
	return req, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// tokenLimitFields are the token form's optional settings.
func (d *Dashboard) tokenLimitFields() app.UI {
	f := &d.tokLim
	num := func(id, label string, v *string) app.UI {
		return field(id, d.t(label), app.Input().ID(id).Type("number").Attr("min", "0").Attr("inputmode", "numeric").Value(*v).OnInput(d.ValueTo(v), on(id)))
	}
	text := func(id, label string, v *string) app.UI {
		return field(id, d.t(label), app.Input().ID(id).Value(*v).OnInput(d.ValueTo(v), on(id)))
	}
	return app.Details().ID("tok-limits").Body(
		app.Summary().Text(d.t("tok.limits")),
		app.P().Class("hint").Text(d.t("tok.limitsHint")),
		num("tok-rpm", "tok.rpm", &f.RPM), num("tok-rpd", "tok.rpd", &f.RPD),
		num("tok-tpm", "tok.tpm", &f.TPM), num("tok-tpd", "tok.tpd", &f.TPD),
		text("tok-expires", "tok.expiresAt", &f.ExpiresAt),
		text("tok-providers", "tok.providers", &f.Providers),
		text("tok-models", "tok.models", &f.Models),
	)
}
