package ui

import (
	"strconv"
	"strings"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/maxence-charriere/go-app/v10/pkg/app"
)

// Quotas the way providers count them (issue 15): Gemini and OpenAI rest
// a key for one model at a time (KeyStatus.ModelCooldowns), and Gemini
// counts quota per Google Cloud project (KeyStatus.Project), so keys of one
// project share one quota. This file shows both: a badge in the keys
// table, the project and resting models in the detail drawer, and the
// independent quotas on the overview.

func init() {
	for k, v := range projectMessages {
		messages[k] = v
	}
}

// projectMessages are the strings of projects and model rests ({English, 中文}).
var projectMessages = map[string][2]string{
	"rest.badge1":        {"1 model resting", "1 个模型休息中"},
	"rest.badgeN":        {"%d models resting", "%d 个模型休息中"},
	"rest.title":         {"Resting models", "休息中的模型"},
	"rest.serves":        {"The key serves its other models meanwhile.", "在此期间，该密钥照常服务其他模型。"},
	"rest.until":         {"until %s", "至 %s"},
	"rest.in":            {"%s (in %s)", "%s（还有 %s）"},
	"rest.sec":           {"%d s", "%d 秒"},
	"rest.min":           {"%d min", "%d 分钟"},
	"rest.hour":          {"%d h %d min", "%d 小时 %d 分钟"},
	"rest.project":       {"the whole project %s met this quota", "整个项目 %s 用完了这份配额"},
	"proj.label":         {"Project", "项目"},
	"proj.unknownOption": {"Unknown", "未知"},
	"proj.learned":       {"learned from Google's error details", "从 Google 的错误详情中得知"},
	"proj.set":           {"set by an operator", "由管理员设置"},
	"proj.unknown":       {"unknown: set it if you know it, or the proxy learns it from Google's error details", "未知：如已知可在编辑中设置，否则代理会从 Google 的错误详情中得知"},
	"proj.shares":        {"shares one quota with %d other keys here", "与这里的另外 %d 个密钥共用一份配额"},
	"proj.shares1":       {"shares one quota with 1 other key here", "与这里的另外 1 个密钥共用一份配额"},
	"proj.alone":         {"the only key of this project here", "这里只有它属于该项目"},
	"proj.field":         {"Project (Google Cloud project number, optional)", "项目（Google Cloud 项目编号，可选）"},
	"proj.editField":     {"Project (empty = unknown)", "项目（留空为未知）"},
	"proj.keysIn":        {"%s keys in %s projects", "%s 个密钥，分属 %s 个项目"},
	"proj.keysIn1":       {"%s keys in 1 project", "%s 个密钥，同属 1 个项目"},
	"proj.plusUnknown":   {" + %s of unknown project", "，另有 %s 个密钥的项目未知"},
	"proj.allUnknown":    {"projects unknown", "项目未知"},
	"ov.quotas":          {"Projects (independent quotas)", "项目（独立配额）"},
	"ov.quotasLine":      {"Independent quotas: %s.", "独立配额：%s。"},
	"ov.quotasOne":       {"%s: %s", "%s：%s"},
	"ov.quotasSep":       {"; ", "；"},
	"ov.quotasHint":      {"Gemini counts quota per Google Cloud project, not per key: keys of one project share one quota. A key of unknown project may be its own.", "Gemini 按 Google Cloud 项目计算配额，而不是按密钥：同一项目的密钥共用一份配额。项目未知的密钥可能各自是一个项目。"},
	"ov.resting":         {"Resting (key, model) pairs", "休息中的（密钥，模型）组合"},
	"ov.restingHint":     {"the keys serve their other models", "密钥仍服务其他模型"},
	"ov.restingCol":      {"Resting (key, model)", "休息中的（密钥，模型）"},
}

// RestText is the keys table's badge for a key resting for some models
// ("2 models resting"), "" when none rests.
func RestText(lang string, k adminapi.KeyStatus) string {
	switch n := len(k.ModelCooldowns); n {
	case 0:
		return ""
	case 1:
		return T(lang, "rest.badge1")
	default:
		return T(lang, "rest.badgeN", n)
	}
}

// restBadge shows, next to the state, that the key rests for some models:
// an "active" key resting for gemini-2.5-pro is not fully healthy. The
// badge names the models (no hovering needed for the count; the drawer
// has the rest).
func (d *Dashboard) restBadge(k adminapi.KeyStatus) app.UI {
	text := RestText(d.lang, k)
	if text == "" {
		return nil
	}
	models := make([]string, 0, len(k.ModelCooldowns))
	for _, m := range k.ModelCooldowns {
		models = append(models, m.Model)
	}
	return app.Span().ID("rest-" + k.ID).Class("badge resting").Title(strings.Join(models, ", ")).Text(text)
}

// stateCell is the keys table's state column: the state badge, and the
// resting-models badge when some model rests.
func (d *Dashboard) stateCell(k adminapi.KeyStatus) app.UI {
	// Long reasons are cut on screen; the tooltip has all of it.
	text := StateText(d.lang, k)
	badge := app.Span().Class("badge " + k.State).Title(text).Text(text)
	rest := d.restBadge(k)
	if rest == nil {
		return badge
	}
	return app.Span().Class("states").Body(badge, rest)
}

// ModelReasonText is a model rest's reason in words: "rate_limited" is
// "rate limited"; "quota_exhausted (project 111)" says the whole project
// met the quota.
func ModelReasonText(lang, reason string) string {
	project := ""
	if i := strings.LastIndex(reason, " (project "); i >= 0 && strings.HasSuffix(reason, ")") {
		project = reason[i+len(" (project ") : len(reason)-1]
		reason = reason[:i]
	}
	out := strings.TrimRight(ReasonText(lang, reason), ".。 ")
	if project != "" {
		out += T(lang, "reason.sep") + T(lang, "rest.project", project)
	}
	return out
}

// untilText is when a rest ends, with the time left when the dashboard
// knows the time ("14:05 (in 3 min)").
func (d *Dashboard) untilText(until *string) string {
	at := fmtTime(d.lang, until)
	if until == nil || d.now.IsZero() {
		return at
	}
	t, err := time.Parse(adminapi.TimeLayout, *until)
	if err != nil || !t.After(d.now) {
		return at
	}
	return d.t("rest.in", at, d.leftText(t.Sub(d.now)))
}

func (d *Dashboard) leftText(left time.Duration) string {
	switch s := int(left.Round(time.Second) / time.Second); {
	case s < 120:
		return d.t("rest.sec", s)
	case s < 3600:
		return d.t("rest.min", (s+30)/60)
	default:
		return d.t("rest.hour", s/3600, s%3600/60)
	}
}

// projectFacts are the detail drawer's rows about quotas: the key's
// project (learned or set, and how many keys here share it) and its
// resting models (model, until when, why), readable without hovering.
func (d *Dashboard) projectFacts(k adminapi.KeyStatus, row func(string, app.UI) app.UI) []app.UI {
	var proj app.UI
	if k.Project == "" {
		proj = app.Span().ID("detail-project").Class("hint").Text(d.t("proj.unknown"))
	} else {
		source := d.t("proj.set")
		if k.ProjectLearned {
			source = d.t("proj.learned")
		}
		same := 0
		if n, ok := d.projCount[k.Provider+"\x00"+k.Project]; ok { // counted by the proxy for the drawer
			same = max(0, n-1)
		} else if n, ok := d.projectKeys(k.Provider, k.Project); ok { // the summary's count meanwhile
			same = max(0, n-1)
		}
		shares := d.t("proj.alone")
		switch same {
		case 0:
		case 1:
			shares = d.t("proj.shares1")
		default:
			shares = d.t("proj.shares", same)
		}
		proj = app.Span().ID("detail-project").Body(
			app.Span().Class("mono").Text(k.Project),
			app.Span().ID("detail-project-source").Class("hint").Text(" · "+source+" · "+shares),
		)
	}
	facts := []app.UI{row(d.t("proj.label"), proj)}
	if len(k.ModelCooldowns) > 0 {
		items := make([]app.UI, 0, len(k.ModelCooldowns))
		for i, m := range k.ModelCooldowns {
			items = append(items, app.Li().ID("detail-rest-"+strconv.Itoa(i)).Body(
				app.Span().Class("mono model").Text(m.Model),
				app.Text(" — "+d.t("rest.until", d.untilText(m.Until))),
				app.If(m.Reason != "", func() app.UI {
					return app.Span().Class("rest-why").Text(" — " + ModelReasonText(d.lang, m.Reason))
				}),
			))
		}
		facts = append(facts, row(d.t("rest.title"), app.Div().ID("detail-rests").Body(
			app.Ul().Class("rests").Body(items...),
			app.P().Class("hint").Text(d.t("rest.serves")),
		)))
	}
	return facts
}

// QuotaText says how many independent quotas keys hold: "120 keys in 9
// projects", plus the keys of unknown project (each may be its own);
// "projects unknown" when no key names one.
func QuotaText(lang string, keys, projects, unknown int) string {
	if projects == 0 {
		return T(lang, "proj.allUnknown")
	}
	known := keys - unknown
	s := T(lang, "proj.keysIn", fmtInt(known), fmtInt(projects))
	if projects == 1 {
		s = T(lang, "proj.keysIn1", fmtInt(known))
	}
	if unknown > 0 {
		s += T(lang, "proj.plusUnknown", fmtInt(unknown))
	}
	return s
}

// quotaLine is the overview's sentence on independent quotas, from the
// status's counts of each provider whose keys name a project; nil when
// none does.
func (d *Dashboard) quotaLine(st *adminapi.Summary) app.UI {
	var parts []string
	for _, p := range st.Providers {
		if p.Projects > 0 {
			parts = append(parts, d.t("ov.quotasOne", p.Provider, QuotaText(d.lang, p.TotalKeys, p.Projects, p.KeysWithoutProject)))
		}
	}
	if len(parts) == 0 {
		return nil
	}
	return app.P().ID("ov-quotas").Class("hint").Text(d.t("ov.quotasLine", strings.Join(parts, d.t("ov.quotasSep"))) + sentenceGap(d.lang) + d.t("ov.quotasHint"))
}
