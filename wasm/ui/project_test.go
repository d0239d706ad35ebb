//go:build !js

package ui

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/adminclient"
	"github.com/maxence-charriere/go-app/v10/pkg/app"
)

// Gemini's real answers (worker-proxy/internal/fakeupstream/gemini.go,
// shared/notes/provider-errors.md): a per-minute 429 naming the model in
// its quota dimensions, and a 403 for a suspended key whose ErrorInfo
// names the consumer project.
const (
	gemini429 = `{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.","status":"RESOURCE_EXHAUSTED","details":[` +
		`{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_input_token_count","quotaId":"GenerateContentInputTokensPerModelPerMinute-FreeTier","quotaDimensions":{"location":"global","model":"MODEL"},"quotaValue":"250000"}]},` +
		`{"@type":"type.googleapis.com/google.rpc.Help","links":[{"description":"Learn more about Gemini API quotas","url":"https://ai.google.dev/gemini-api/docs/rate-limits"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"26s"}]}}`
	gemini403Suspended = `{"error":{"code":403,"message":"Permission denied: Consumer 'api_key:AIzaSy...' has been suspended.","status":"PERMISSION_DENIED","details":[` +
		`{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"CONSUMER_SUSPENDED","domain":"googleapis.com","metadata":{"consumer":"projects/123456789012","service":"generativelanguage.googleapis.com","containerInfo":"api_key:AIzaSy..."}},` +
		`{"@type":"type.googleapis.com/google.rpc.LocalizedMessage","locale":"en-US","message":"Permission denied: Consumer 'api_key:AIzaSy...' has been suspended."}]}}`
)

// quotaUpstream answers like Gemini: a key with "busy" in it gets the
// per-minute 429 for gemini-2.5-pro (and serves other models), one with
// "suspended" the 403 naming its project; others answer.
type quotaUpstream struct {
	mu    sync.Mutex
	calls []string // key + " " + path
}

func (q *quotaUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	key := strings.ToLower(r.Header.Get("X-Goog-Api-Key"))
	q.mu.Lock()
	q.calls = append(q.calls, key+" "+r.URL.Path)
	q.mu.Unlock()
	status, body := 200, `{"candidates":[{"content":{"parts":[{"text":"hi"}],"role":"model"},"finishReason":"STOP","index":0}],"modelVersion":"gemini-2.5-pro"}`
	switch {
	case strings.Contains(key, "suspended"):
		status, body = 403, gemini403Suspended
	case strings.Contains(key, "busy") && strings.Contains(r.URL.Path, "gemini-2.5-pro:"):
		status, body = 429, strings.ReplaceAll(gemini429, "MODEL", "gemini-2.5-pro")
	case strings.HasSuffix(r.URL.Path, "/models"):
		body = `{"models":[{"name":"models/gemini-2.5-flash"},{"name":"models/gemini-2.5-pro"}]}`
	}
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: r, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}, nil
}

// relayUntil sends gemini requests for model through the proxy until
// done reports true (at most 20).
func relayUntil(t *testing.T, c *adminclient.Client, model string, done func() bool) {
	t.Helper()
	for i := 0; !done(); i++ {
		if i == 20 {
			t.Fatalf("20 requests for %s did not get there", model)
		}
		path, hdr, body := adminclient.PlaygroundRequest("gemini", model, "", clientToken, "hello")
		r, err := c.Relay(t.Context(), "POST", path, hdr, body)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != 200 {
			t.Fatalf("relay: %d %s", r.Status, r.Body)
		}
	}
}

// A key rested for one model shows it in the table (a badge beside its
// "active" state) and in the drawer (model, until when, why); a learned
// project says it was learned; the overview counts projects and resting
// pairs as /admin/status does; the add and edit forms set, change and
// clear a key's project through the admin API, and the API's error shows
// in the form.
func TestProjectsAndModelRests(t *testing.T) {
	up := &quotaUpstream{}
	ts := startServerUpstream(t, up)
	c := adminclient.New(ts.URL, adminKey)
	add := func(secret string, project *string) string {
		r, err := c.AddKey(t.Context(), adminapi.AddKeyRequest{Provider: "gemini", APIKey: secret, Project: project})
		if err != nil {
			t.Fatal(err)
		}
		return r.KeyID
	}
	p111 := "111"
	busy := add("AIzaSyFakeProjBusy0000000001", &p111)
	add("AIzaSyFakeProjGood0000000002", &p111)
	suspended := add("AIzaSyFakeProjSuspended00003", nil)
	plain := add("AIzaSyFakeProjGood0000000004", nil)

	relayUntil(t, c, "gemini-2.5-pro", func() bool {
		k := keysIn(t, c)
		return len(k[busy].ModelCooldowns) == 1 && k[suspended].Project != ""
	})
	keys := keysIn(t, c)
	if k := keys[busy]; k.State != adminapi.StateActive || k.ModelCooldowns[0].Model != "gemini-2.5-pro" {
		t.Fatalf("busy key: state %s rests %+v, want active and resting for gemini-2.5-pro", k.State, k.ModelCooldowns)
	}
	if k := keys[suspended]; k.Project != "123456789012" || !k.ProjectLearned {
		t.Fatalf("suspended key: project %q learned %v", k.Project, k.ProjectLearned)
	}

	h := mount(t, &Dashboard{})
	h.connect(ts.URL, adminKey)

	// Overview: the same numbers as /admin/status.
	st, err := c.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	gem, err := c.ProviderStatus(t.Context(), "gemini")
	if err != nil {
		t.Fatal(err)
	}
	if st.Projects != 2 || st.KeysWithoutProject != 1 || gem.RestingModelPairs != 1 || gem.Projects != 2 {
		t.Fatalf("status: %d projects, %d without, providers %+v", st.Projects, st.KeysWithoutProject, st.Providers)
	}
	if tile := elemAt(h.html(), "tile-resting", `class="l"`); !strings.Contains(tile, `class="tile warn"`) || !strings.Contains(tile, `<div class="n">1</div>`) {
		t.Errorf("resting tile: %s", tile)
	}
	h.contains("Resting (key, model) pairs",
		`id="ov-quotas"`, "Independent quotas: gemini: 3 keys in 2 projects + 1 of unknown project. Gemini counts")
	if row := elemAt(h.html(), "ov-gemini", "</tr>"); !strings.Contains(row, "3 keys in 2 projects + 1 of unknown project") || !strings.Contains(row, `"num warn"`) {
		t.Errorf("overview row: %s", row)
	}

	// Table: the busy key is active, with a badge naming the rest.
	h.fire("tab-keys", "click")
	row := elemAt(h.html(), "row-"+busy, "</tr>")
	if !strings.Contains(row, `class="badge active"`) || !strings.Contains(row, `id="rest-`+busy+`"`) || !strings.Contains(row, `title="gemini-2.5-pro"`) || !strings.Contains(row, `>1 model resting<`) {
		t.Errorf("busy key's row: %s", row)
	}
	if strings.Contains(between(h.html(), `id="row-`+plain+`"`, "</tr>"), "resting") {
		t.Error("a key resting for no model has the badge")
	}

	// Drawer: project, set by an operator, shared; the rest, readable.
	h.fire("open-"+busy, "click")
	drawer := between(h.html(), `id="key-detail"`, `class="drawer-actions"`)
	for _, want := range []string{`>111<`, "set by an operator", "shares one quota with 1 other key here",
		`id="detail-rests"`, "gemini-2.5-pro", "until ", "rate limited", "serves its other models"} {
		if !strings.Contains(drawer, want) {
			t.Errorf("drawer lacks %q: %s", want, drawer)
		}
	}
	h.fire("detail-close", "click")
	h.fire("open-"+suspended, "click")
	h.contains(`id="detail-project"`, ">123456789012<", "learned from Google&#39;s error details")
	h.fire("lang", "click")
	h.contains("从 Google 的错误详情中得知")
	h.fire("detail-close", "click")
	h.contains("1 个模型休息中")
	h.fire("lang", "click")

	// Add with a project; a bad one shows the API's error, adds nothing.
	h.d.add = addForm{Provider: "gemini", APIKey: "AIzaSyFakeProjAdded000000005", Project: "a/b"}
	h.do(h.d.AddKey)
	if !h.d.add.Err || !strings.Contains(h.d.add.Msg, "The proxy answered 400") || !strings.Contains(h.d.add.Msg, "project may only contain") {
		t.Fatalf("bad project: %q", h.d.add.Msg)
	}
	if len(keysIn(t, c)) != 4 {
		t.Fatal("a key with a bad project was added")
	}
	h.d.add.Project = " 222 "
	h.do(h.d.AddKey)
	if h.d.add.Err {
		t.Fatalf("add: %s", h.d.add.Msg)
	}
	var added adminapi.KeyStatus
	for _, k := range keysIn(t, c) {
		if k.MaskedKey == "AIza…0005" {
			added = k
		}
	}
	if added.Project != "222" || added.ProjectLearned {
		t.Fatalf("added key: project %q learned %v, want 222 set", added.Project, added.ProjectLearned)
	}

	// Bulk import: the project applies to every key; a bad one is refused.
	h.d.bulk = bulkForm{Provider: "gemini", Text: "AIzaSyFakeProjBulk0000000006\nAIzaSyFakeProjBulk0000000007", Project: "x/y"}
	h.do(h.d.BulkImport)
	if !strings.Contains(h.d.bulk.Err, "The proxy answered 400") || !strings.Contains(h.d.bulk.Err, "project") || len(keysIn(t, c)) != 5 {
		t.Fatalf("bulk with a bad project: %q, %d keys", h.d.bulk.Err, len(keysIn(t, c)))
	}
	h.d.bulk.Project = "777"
	h.do(h.d.BulkImport)
	n777 := 0
	for _, k := range keysIn(t, c) {
		if k.Project == "777" && !k.ProjectLearned {
			n777++
		}
	}
	if n777 != 2 || h.d.bulk.Err != "" {
		t.Fatalf("bulk with project 777: %d keys in it, error %q", n777, h.d.bulk.Err)
	}

	// Edit: other fields keep a learned project learned; change; clear.
	h.d.editKey(suspended)
	if h.d.edit.Project != "123456789012" {
		t.Fatalf("edit opens with project %q", h.d.edit.Project)
	}
	h.contains(`id="e-project"`)
	h.d.edit.Description = "kept learned"
	h.do(func(ctx app.Context) { h.d.doUpdate(suspended, "")(ctx, app.Event{}) })
	if k, _ := c.GetKey(t.Context(), suspended); k.Description != "kept learned" || k.Project != "123456789012" || !k.ProjectLearned {
		t.Fatalf("after editing the description: %+v", k)
	}
	for _, want := range []string{"333", ""} {
		h.d.editKey(plain)
		h.d.edit.Project = want
		if want == "" {
			h.d.edit.Project = "  "
		}
		h.do(func(ctx app.Context) { h.d.doUpdate(plain, "")(ctx, app.Event{}) })
		if k, err := c.GetKey(t.Context(), plain); err != nil || k.Project != want || k.ProjectLearned {
			t.Fatalf("after setting project %q: %v %+v (row msg %q)", want, err, k, h.d.rowMsg[plain])
		}
	}
	if h.d.editKey(plain); h.d.edit.ProjectWas != "" {
		t.Fatal("edit did not start from the cleared project")
	}
	h.d.edit.Project = "x y"
	h.do(func(ctx app.Context) { h.d.doUpdate(plain, "")(ctx, app.Event{}) })
	if msg := h.d.rowMsg[plain]; !strings.Contains(msg, "The proxy answered 400") || !strings.Contains(msg, "project") {
		t.Fatalf("bad project in edit: %q", msg)
	}
	h.contains(`id="msg-` + plain + `"`)
}

func TestQuotaAndRestTexts(t *testing.T) {
	for _, c := range []struct {
		lang                    string
		keys, projects, unknown int
		want                    string
	}{
		{LangEN, 120, 9, 0, "120 keys in 9 projects"},
		{LangEN, 5, 1, 2, "3 keys in 1 project + 2 of unknown project"},
		{LangEN, 4, 0, 4, "projects unknown"},
		{LangZH, 1200, 9, 0, "1,200 个密钥，分属 9 个项目"},
		{LangZH, 5, 2, 1, "4 个密钥，分属 2 个项目，另有 1 个密钥的项目未知"},
	} {
		if got := QuotaText(c.lang, c.keys, c.projects, c.unknown); got != c.want {
			t.Errorf("QuotaText(%s, %d, %d, %d) = %q, want %q", c.lang, c.keys, c.projects, c.unknown, got, c.want)
		}
	}
	for reason, want := range map[string]string{
		"rate_limited":                  "rate limited",
		"quota_exhausted (project 111)": "quota used up — the whole project 111 met this quota",
	} {
		if got := ModelReasonText(LangEN, reason); got != want {
			t.Errorf("ModelReasonText(%q) = %q, want %q", reason, got, want)
		}
	}
	if got := ModelReasonText(LangZH, "quota_exhausted (project 111)"); got != "配额已用完——整个项目 111 用完了这份配额" {
		t.Errorf("zh: %q", got)
	}
	k := adminapi.KeyStatus{ModelCooldowns: make([]adminapi.ModelCooldown, 2)}
	if RestText(LangEN, k) != "2 models resting" || RestText(LangZH, k) != "2 个模型休息中" || RestText(LangEN, adminapi.KeyStatus{}) != "" {
		t.Error("RestText")
	}
}

// elemAt is html from the start of the element whose id is id to end
// (go-app writes attributes in no fixed order).
func elemAt(html, id, end string) string {
	i := strings.Index(html, `id="`+id+`"`)
	if i < 0 {
		return ""
	}
	i = strings.LastIndex(html[:i], "<")
	return between(html[i:], "<", end)
}

// The keys table offers a project filter (one project, or the keys whose
// project is unknown) once a key names a project; the proxy filters
// (TestKeysTablePaged).
func TestKeysFilterByProject(t *testing.T) {
	keys := []adminapi.KeyStatus{
		{ID: "k1", Provider: "gemini", MaskedKey: "AIza…0001", State: "active", Project: "111"},
		{ID: "k2", Provider: "gemini", MaskedKey: "AIza…0002", State: "active", Project: "222"},
		{ID: "k3", Provider: "gemini", MaskedKey: "AIza…0003", State: "active"},
		{ID: "k4", Provider: "openai", MaskedKey: "sk-…0004", State: "active", Project: "111"},
	}
	if got := strings.Join(Projects(keys), ","); got != "111,222" {
		t.Errorf("Projects = %s", got)
	}

	d := &Dashboard{}
	d.OnInit()
	d.client = adminclient.New("http://127.0.0.1:1", adminKey)
	d.tab = TabKeys
	d.setSummary(&adminapi.Summary{Providers: []adminapi.ProviderSummary{
		{Provider: "gemini", ProjectKeys: []adminapi.NameCount{{Name: "111", Keys: 1}, {Name: "222", Keys: 1}}},
		{Provider: "openai", ProjectKeys: []adminapi.NameCount{{Name: "111", Keys: 1}}}}})
	html := app.HTMLString(d.Render())
	for _, want := range []string{`id="f-project"`, `value="-"`, `value="111"`, `value="222"`} {
		if !strings.Contains(html, want) {
			t.Errorf("the keys page lacks %s", want)
		}
	}
	// The table asks the proxy for the filtered page: TestKeysTablePaged.
	d.setSummary(&adminapi.Summary{Providers: []adminapi.ProviderSummary{{Provider: "gemini"}}})
	d.filter.Project = ""
	if html := app.HTMLString(d.Render()); strings.Contains(html, `id="f-project"`) {
		t.Error("a project filter without any project to choose")
	}
}
