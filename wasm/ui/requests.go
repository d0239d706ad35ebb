package ui

import (
	"strconv"
	"strings"
	"time"

	"github.com/maxence-charriere/go-app/v10/pkg/app"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/adminclient"
)

// TabRequests is the request log's tab: GET /admin/requests with its
// filters, and the alert settings (GET /admin/alerts).
const TabRequests = "requests"

// requestsView is the Requests tab's state.
type requestsView struct {
	q       adminclient.RequestQuery // the filters in the form
	since   string                   // the form's time range, as datetime-local values
	until   string
	shown   adminclient.RequestQuery // the filters of the records shown
	resp    *adminapi.RequestsResponse
	records []adminapi.RequestRecord // every page loaded so far
	err     string
	busy    bool
	seq     int // answers to older requests are dropped
	alerts  *adminapi.AlertSettings
	testMsg string
	testErr bool
}

func init() {
	for k, v := range requestMessages {
		messages[k] = v
	}
}

// requestMessages are the Requests tab's strings ({English, 中文}).
var requestMessages = map[string][2]string{
	"tab.requests":       {"Requests", "请求日志"},
	"act.requests":       {"Requests", "请求记录"},
	"req.title":          {"Request log", "请求日志"},
	"req.provider":       {"Provider", "服务商"},
	"req.status":         {"Status", "状态"},
	"req.statusAny":      {"any", "全部"},
	"req.token":          {"Client token", "客户端令牌"},
	"req.key":            {"Key id", "密钥 id"},
	"req.model":          {"Model", "模型"},
	"req.apply":          {"Apply", "筛选"},
	"req.since":          {"From", "开始时间"},
	"req.until":          {"To", "结束时间"},
	"req.badTime":        {"Enter the time as year-month-day hour:minute.", "请按 年-月-日 时:分 输入时间。"},
	"req.clear":          {"Clear", "清除"},
	"req.more":           {"Older requests", "更早的请求"},
	"req.none":           {"No requests match.", "没有符合条件的请求。"},
	"req.off":            {"The request log is off on this proxy (REQUEST_LOG_MAX=0).", "此代理关闭了请求日志（REQUEST_LOG_MAX=0）。"},
	"req.kept":           {"%s; at most %s records, kept %s.", "%s；最多 %s 条，保留 %s。"},
	"req.backend.bolt":   {"Kept in DATA_DIR/requests.db", "保存在 DATA_DIR/requests.db"},
	"req.backend.memory": {"Kept in this instance's memory only", "只保存在本实例的内存中"},
	"req.backend.redis":  {"Kept in Redis, shared by every instance", "保存在 Redis 中，所有实例共用"},
	"req.count":          {"%d requests shown", "已显示 %d 个请求"},
	"req.col.time":       {"Time", "时间"},
	"req.col.token":      {"Token", "令牌"},
	"req.col.provider":   {"Provider / model", "服务商 / 模型"},
	"req.col.key":        {"Key", "密钥"},
	"req.col.status":     {"Status", "状态"},
	"req.col.attempts":   {"Attempts", "尝试"},
	"req.col.latency":    {"Latency / first byte", "延迟 / 首字节"},
	"req.col.tokens":     {"Tokens in / out", "Token 输入 / 输出"},
	"req.anonymous":      {"anonymous", "匿名"},
	"req.filterKey":      {"Show only requests that used key %s", "只显示使用密钥 %s 的请求"},
	"al.title":           {"Alerts", "告警"},
	"al.off":             {"No alert destination is set (ALERT_WEBHOOK_URL, or ALERT_TELEGRAM_BOT_TOKEN and ALERT_TELEGRAM_CHAT_ID).", "未设置告警目的地（ALERT_WEBHOOK_URL，或 ALERT_TELEGRAM_BOT_TOKEN 与 ALERT_TELEGRAM_CHAT_ID）。"},
	"al.settings":        {"Alerts when fewer than %s keys can serve; at most one message per condition per %s.", "可用密钥少于 %s 个时告警；每个条件每 %s 最多一条消息。"},
	"al.errorRate":       {"A 5xx share of %s over %s (at least %d requests).", "%[2]s 内 5xx 占比达到 %[1]s（至少 %[3]d 个请求）。"},
	"al.test":            {"Send a test alert", "发送测试告警"},
	"al.testOK":          {"Test alert delivered to every destination.", "测试告警已送达所有目的地。"},
	"al.testFail":        {"Not delivered: %s", "未送达：%s"},
	"al.recent":          {"Recent alerts", "最近的告警"},
	"al.none":            {"No alert sent yet.", "尚未发送告警。"},
}

// anyValue is the value of a filter's "any" option.
const anyValue = "*"

// choice sets *dst to a <select>'s value, "" for anyValue.
func choice(dst *string) app.EventHandler {
	return func(ctx app.Context, e app.Event) {
		*dst = ctx.JSSrc().Get("value").String()
		if *dst == anyValue {
			*dst = ""
		}
	}
}

// statusFilters are the status choices of the filter form.
var statusFilters = []string{"", "2xx", "4xx", "5xx", "429", "499", "503"}

// loadRequests fetches the first page for the form's filters, or, with
// more, the next page of what is shown; and the alert settings.
func (d *Dashboard) loadRequests(ctx app.Context, more bool) {
	c := d.client
	if c == nil {
		return
	}
	v := &d.reqs
	v.seq++
	seq := v.seq
	q := v.q
	if !more {
		var err error
		if q.Since, err = LocalTime(v.since); err == nil {
			q.Until, err = LocalTime(v.until)
		}
		if err != nil {
			v.err = d.t("req.badTime")
			return
		}
		if !q.Until.IsZero() && len(strings.TrimSpace(v.until)) == len("2006-01-02T15:04") {
			q.Until = q.Until.Add(time.Minute - time.Nanosecond) // to the end of that minute
		}
	}
	if more && v.resp != nil {
		q = v.shown
		q.Cursor = v.resp.Next
	}
	v.busy = true
	ctx = d.bind(ctx)
	ctx.Async(func() {
		cctx, cancel := bg()
		defer cancel()
		r, err := c.Requests(cctx, q)
		var al *adminapi.AlertSettings
		if err == nil && !more {
			al, _ = c.Alerts(cctx)
		}
		ctx.Dispatch(func(ctx app.Context) {
			if seq != v.seq {
				return
			}
			v.busy = false
			if err != nil {
				v.err = d.ErrorText(err)
				return
			}
			v.err = ""
			if !more {
				v.records = nil
				v.alerts = al
			}
			v.shown, v.resp = q, r
			v.records = append(v.records, r.Records...)
		})
	})
}

// filterByKey shows the requests that used key id.
func (d *Dashboard) filterByKey(id string) app.EventHandler {
	return func(ctx app.Context, e app.Event) {
		e.PreventDefault()
		d.reqs.q, d.reqs.since, d.reqs.until = adminclient.RequestQuery{KeyID: id}, "", ""
		if d.tab != TabRequests {
			d.tab = TabRequests
			d.clearNotice()
		}
		d.loadRequests(ctx, false)
	}
}

func (d *Dashboard) renderRequests() app.UI {
	v := &d.reqs
	// "" as an option's value renders no value attribute (the option's
	// text becomes its value), so "any" is anyValue.
	provs := []app.UI{app.Option().Value(anyValue).Selected(v.q.Provider == "").Text(d.t("req.statusAny"))}
	if d.sum != nil {
		for _, p := range d.sum.Providers {
			provs = append(provs, app.Option().Value(p.Provider).Selected(v.q.Provider == p.Provider).Text(p.Provider))
		}
	}
	statuses := make([]app.UI, 0, len(statusFilters))
	for _, s := range statusFilters {
		label, value := s, s
		if s == "" {
			label, value = d.t("req.statusAny"), anyValue
		}
		statuses = append(statuses, app.Option().Value(value).Selected(v.q.Status == s).Text(label))
	}
	form := app.Form().ID("req-form").Class("card filters").OnSubmit(func(ctx app.Context, e app.Event) {
		e.PreventDefault()
		d.loadRequests(ctx, false)
	}, on("req-form")).Body(
		app.H2().Text(d.t("req.title")),
		field("req-provider", d.t("req.provider"), app.Select().ID("req-provider").Body(provs...).OnChange(choice(&v.q.Provider), on("req-provider"))),
		field("req-status", d.t("req.status"), app.Select().ID("req-status").Body(statuses...).OnChange(choice(&v.q.Status), on("req-status"))),
		field("req-token", d.t("req.token"), app.Input().ID("req-token").Value(v.q.Token).OnInput(d.ValueTo(&v.q.Token), on("req-token"))),
		field("req-key", d.t("req.key"), app.Input().ID("req-key").Value(v.q.KeyID).OnInput(d.ValueTo(&v.q.KeyID), on("req-key"))),
		field("req-model", d.t("req.model"), app.Input().ID("req-model").Value(v.q.Model).OnInput(d.ValueTo(&v.q.Model), on("req-model"))),
		field("req-since", d.t("req.since"), app.Input().ID("req-since").Type("datetime-local").Value(v.since).OnInput(d.ValueTo(&v.since), on("req-since"))),
		field("req-until", d.t("req.until"), app.Input().ID("req-until").Type("datetime-local").Value(v.until).OnInput(d.ValueTo(&v.until), on("req-until"))),
		app.Button().ID("req-apply").Type("submit").Text(d.t("req.apply")),
		app.Button().ID("req-clear").Type("button").Text(d.t("req.clear")).OnClick(func(ctx app.Context, e app.Event) {
			v.q, v.since, v.until = adminclient.RequestQuery{}, "", ""
			for _, id := range []string{"req-token", "req-key", "req-model", "req-since", "req-until"} {
				clearInput(id)
			}
			d.loadRequests(ctx, false)
		}, on("req-clear")),
	)
	return app.Div().ID("requests").Body(form, d.renderRequestTable(), d.renderAlerts())
}

func (d *Dashboard) renderRequestTable() app.UI {
	v := &d.reqs
	var info app.UI = app.P().ID("req-info").Class("hint").Text(d.t("common.loading"))
	switch {
	case v.err != "":
		info = app.P().ID("req-info").Class("error").Text(v.err)
	case v.resp != nil && v.resp.Backend == "off":
		info = app.P().ID("req-info").Class("hint").Text(d.t("req.off"))
	case v.resp != nil:
		info = app.P().ID("req-info").Class("hint").Text(d.t("req.count", len(v.records)) + " · " +
			d.t("req.kept", d.t("req.backend."+v.resp.Backend), fmtInt(int64(v.resp.Max)), v.resp.MaxAge))
	}
	rows := make([]app.UI, 0, len(v.records))
	for _, r := range v.records {
		tok := r.Token
		if tok == "" {
			tok = d.t("req.anonymous")
		}
		model := r.Provider
		if r.Model != "" {
			model += " / " + r.Model
		}
		attempts := make([]string, 0, len(r.Attempts))
		for _, a := range r.Attempts {
			s := a.Key + " " + a.Class
			if a.Status != 0 {
				s += " " + strconv.Itoa(a.Status)
			}
			attempts = append(attempts, s)
		}
		var key app.UI = app.Span().Text("—")
		if r.KeyID != "" {
			key = app.A().Class("mono").Href("#").Title(d.t("req.filterKey", r.Key)).Text(r.Key).OnClick(d.filterByKey(r.KeyID), on("req-keylink", r.ID, r.KeyID))
		}
		statusCls := "status"
		if r.Status >= 400 {
			statusCls += " error"
		}
		rows = append(rows, app.Tr().ID("req-"+r.ID).Body(
			app.Td().Class("when").Text(r.Time.Local().Format("2006-01-02 15:04:05")),
			app.Td().Text(tok),
			app.Td().Text(model),
			app.Td().Body(key),
			app.Td().Class(statusCls).Text(strconv.Itoa(r.Status)+" "+r.Class),
			app.Td().Class("mono").Text(strings.Join(attempts, " → ")),
			app.Td().Text(ms(r.LatencyMs)+" / "+ms(r.TTFBMs)),
			app.Td().Text(fmtInt(r.PromptTokens)+" / "+fmtInt(r.CompletionTokens)),
		))
	}
	return app.Section().Class("card").Body(
		info,
		app.Div().Class("scroll").Body(app.Table().ID("req-table").Body(
			app.THead().Body(app.Tr().Body(
				app.Th().Scope("col").Text(d.t("req.col.time")), app.Th().Scope("col").Text(d.t("req.col.token")),
				app.Th().Scope("col").Text(d.t("req.col.provider")), app.Th().Scope("col").Text(d.t("req.col.key")),
				app.Th().Scope("col").Text(d.t("req.col.status")), app.Th().Scope("col").Text(d.t("req.col.attempts")),
				app.Th().Scope("col").Text(d.t("req.col.latency")), app.Th().Scope("col").Text(d.t("req.col.tokens")),
			)),
			app.TBody().Body(rows...),
		)),
		app.If(v.resp != nil && len(v.records) == 0 && v.resp.Backend != "off", func() app.UI {
			return app.P().ID("req-none").Class("hint").Text(d.t("req.none"))
		}),
		app.If(v.resp != nil && v.resp.Next != "", func() app.UI {
			return app.Button().ID("req-more").Type("button").Disabled(v.busy).Text(d.t("req.more")).
				OnClick(func(ctx app.Context, e app.Event) { d.loadRequests(ctx, true) }, on("req-more", v.resp.Next))
		}),
	)
}

// LocalTime reads a datetime-local value ("2026-01-15T10:30", seconds
// optional) on the browser's clock; "" is the zero time.
func LocalTime(v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.ParseInLocation("2006-01-02T15:04", v, time.Local)
	if err != nil {
		t, err = time.ParseInLocation("2006-01-02T15:04:05", v, time.Local)
	}
	return t, err
}

func ms(v float64) string {
	if v == 0 {
		return "—"
	}
	switch {
	case v >= 1000:
		return strconv.FormatFloat(v/1000, 'f', 2, 64) + " s"
	case v < 10:
		return strconv.FormatFloat(v, 'f', 1, 64) + " ms"
	}
	return strconv.FormatFloat(v, 'f', 0, 64) + " ms"
}

func (d *Dashboard) renderAlerts() app.UI {
	v := &d.reqs
	al := v.alerts
	body := []app.UI{app.H2().Text(d.t("al.title"))}
	if al == nil || !al.Enabled {
		body = append(body, app.P().ID("al-off").Class("hint").Text(d.t("al.off")))
		return app.Section().ID("alerts").Class("card").Body(body...)
	}
	dests := make([]app.UI, 0, len(al.Destinations))
	for _, dst := range al.Destinations {
		dests = append(dests, app.Li().Class("mono").Text(dst))
	}
	body = append(body,
		app.Ul().ID("al-destinations").Body(dests...),
		app.P().ID("al-settings").Text(d.t("al.settings", al.MinAvailable, al.Interval)),
	)
	if al.ErrorRate > 0 {
		body = append(body, app.P().Text(d.t("al.errorRate", pct(al.ErrorRate), al.ErrorWindow, al.ErrorMinRequests)))
	}
	body = append(body,
		app.Button().ID("al-test").Type("button").Text(d.t("al.test")).OnClick(d.testAlerts, on("al-test")),
		app.P().ID("al-test-msg").Class(map[bool]string{true: "error", false: "hint ok"}[v.testErr]).Aria("live", "polite").Text(v.testMsg),
		app.H3().Text(d.t("al.recent")),
	)
	if len(al.Recent) == 0 {
		body = append(body, app.P().Class("hint").Text(d.t("al.none")))
	} else {
		items := make([]app.UI, 0, len(al.Recent))
		for _, s := range al.Recent {
			items = append(items, app.Li().Text(s.Alert.At.Local().Format("2006-01-02 15:04")+" · "+s.Alert.Title))
		}
		body = append(body, app.Ul().ID("al-recent").Body(items...))
	}
	return app.Section().ID("alerts").Class("card").Body(body...)
}

func (d *Dashboard) testAlerts(ctx app.Context, e app.Event) {
	c := d.client
	v := &d.reqs
	ctx = d.bind(ctx)
	ctx.Async(func() {
		cctx, cancel := bg()
		defer cancel()
		r, err := c.TestAlerts(cctx)
		var al *adminapi.AlertSettings
		if err == nil {
			al, _ = c.Alerts(cctx)
		}
		ctx.Dispatch(func(ctx app.Context) {
			switch {
			case err != nil:
				v.testMsg, v.testErr = d.ErrorText(err), true
			case r.OK:
				v.testMsg, v.testErr = d.t("al.testOK"), false
			default:
				var bad []string
				for _, x := range r.Results {
					if !x.OK {
						bad = append(bad, x.Destination+": "+x.Error)
					}
				}
				v.testMsg, v.testErr = d.t("al.testFail", strings.Join(bad, "; ")), true
			}
			if al != nil {
				v.alerts = al
			}
		})
	})
}
