package provider

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestTarget(t *testing.T) {
	ps := map[string]*Provider{}
	for _, p := range Defaults() {
		ps[p.Name] = p
	}
	local := &Provider{Name: "local", Base: mustParse("http://127.0.0.1:9/prefix/v1beta"), Versions: []string{"v1beta", "v1"}}
	ps["local"] = local
	tests := []struct {
		prov, rest, query, want string
	}{
		{"gemini", "models/gemini-pro:generateContent", "strategy=roundRobin", "https://generativelanguage.googleapis.com/v1beta/models/gemini-pro:generateContent"},
		{"gemini", "v1beta/models/gemini-pro:generateContent", "", "https://generativelanguage.googleapis.com/v1beta/models/gemini-pro:generateContent"},
		{"gemini", "v1/models/gemini-pro:generateContent", "", "https://generativelanguage.googleapis.com/v1/models/gemini-pro:generateContent"},
		{"gemini", "models/gemini-2.5-flash:streamGenerateContent", "alt=sse&key=kp-client&strategy=random", "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"},
		{"gemini", "openai/chat/completions", "", "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions"},
		{"openai", "chat/completions", "strategy=leastUsed", "https://api.openai.com/v1/chat/completions"},
		{"openai", "v1/chat/completions", "", "https://api.openai.com/v1/chat/completions"},
		{"openai", "models/ft%3Agpt-4o%3Aorg", "", "https://api.openai.com/v1/models/ft%3Agpt-4o%3Aorg"},
		{"anthropic", "messages", "beta=true", "https://api.anthropic.com/v1/messages?beta=true"},
		{"local", "v1/models/x:generateContent", "", "http://127.0.0.1:9/prefix/v1/models/x:generateContent"},
		{"local", "models", "", "http://127.0.0.1:9/prefix/v1beta/models"},
	}
	for _, tt := range tests {
		q, _ := url.ParseQuery(tt.query)
		u, err := ps[tt.prov].Target(tt.rest, q, "strategy", "key")
		if err != nil {
			t.Errorf("%s %s: %v", tt.prov, tt.rest, err)
			continue
		}
		if got := u.String(); got != tt.want {
			t.Errorf("%s %q %q:\n got %s\nwant %s", tt.prov, tt.rest, tt.query, got, tt.want)
		}
	}
}

func TestTargetRejectsTraversal(t *testing.T) {
	p := Defaults()[1]
	for _, rest := range []string{"../admin", "chat/%2e%2e/x", "a/./b", "a%2Fb/%2e%2e", "bad%zz"} {
		if u, err := p.Target(rest, nil); err == nil {
			t.Errorf("Target(%q) = %s, want error", rest, u)
		}
	}
}

func TestSetKey(t *testing.T) {
	for _, p := range Defaults() {
		h := http.Header{}
		u := mustParse("https://x/y?alt=sse")
		p.SetKey(h, u, "SECRET")
		switch p.Name {
		case "gemini":
			if h.Get("x-goog-api-key") != "SECRET" {
				t.Errorf("gemini header = %q", h.Get("x-goog-api-key"))
			}
		case "openai":
			if h.Get("Authorization") != "Bearer SECRET" {
				t.Errorf("openai header = %q", h.Get("Authorization"))
			}
		case "anthropic":
			if h.Get("x-api-key") != "SECRET" || h.Get("anthropic-version") != "2023-06-01" {
				t.Errorf("anthropic headers = %v", h)
			}
		}
	}
	q := &Provider{Name: "g", Base: mustParse("https://x/v1beta"), Auth: Auth{Query: "key"}}
	u := mustParse("https://x/y?alt=sse")
	q.SetKey(http.Header{}, u, "S")
	if u.Query().Get("key") != "S" || u.Query().Get("alt") != "sse" {
		t.Errorf("query key: %s", u)
	}
	// A client-set anthropic-version is kept.
	h := http.Header{"Anthropic-Version": {"2024-01-01"}}
	Defaults()[2].SetKey(h, mustParse("https://x"), "S")
	if h.Get("anthropic-version") != "2024-01-01" {
		t.Errorf("anthropic-version overwritten: %v", h)
	}
}

func TestRegistryRejectsDuplicates(t *testing.T) {
	if _, err := NewRegistry(Defaults()[0], Defaults()[0]); err == nil {
		t.Fatal("want error for duplicate provider")
	}
}

func TestMergeProvidersFile(t *testing.T) {
	doc := `{"providers":[
	  {"name":"deepseek","baseURL":"https://api.deepseek.com/v1","models":["deepseek-*"]},
	  {"name":"groq","baseURL":"https://api.groq.com/openai/v1","auth":"header:x-groq-key","models":["llama-*"]},
	  {"name":"openai","baseURL":"http://127.0.0.1:9/v1"}
	]}`
	ps, err := Merge([]byte(doc), Defaults())
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRegistry(ps...)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Names(); strings.Join(got, ",") != "anthropic,deepseek,gemini,groq,openai" {
		t.Fatalf("names %v", got)
	}
	ds, _ := r.Get("deepseek")
	u, _ := ds.Target("chat/completions", nil)
	if u.String() != "https://api.deepseek.com/v1/chat/completions" || ds.Auth != Bearer {
		t.Fatalf("deepseek %s %+v", u, ds.Auth)
	}
	if u, _ := ds.Target("v1/models", nil); u.String() != "https://api.deepseek.com/v1/models" {
		t.Fatalf("deepseek version prefix: %s", u)
	}
	gq, _ := r.Get("groq")
	h := http.Header{}
	gq.SetKey(h, mustParse("https://x"), "K")
	if h.Get("X-Groq-Key") != "K" {
		t.Fatalf("groq auth header %v", h)
	}
	oa, _ := r.Get("openai")
	if oa.Base.String() != "http://127.0.0.1:9/v1" || !oa.ServesModel("gpt-4o") {
		t.Fatalf("openai override %s", oa.Base)
	}
	for model, want := range map[string][2]string{
		"gpt-4o-mini":             {"openai", "gpt-4o-mini"},
		"gemini-2.5-flash":        {"gemini", "gemini-2.5-flash"},
		"claude-sonnet-4-5":       {"anthropic", "claude-sonnet-4-5"},
		"deepseek-chat":           {"deepseek", "deepseek-chat"},
		"llama-3.3-70b":           {"groq", "llama-3.3-70b"},
		"groq/mixtral-8x7b":       {"groq", "mixtral-8x7b"},
		"openai/text-embedding-x": {"openai", "text-embedding-x"},
	} {
		p, m, ok := r.ForModel(model)
		if !ok || p.Name != want[0] || m != want[1] {
			t.Errorf("ForModel(%q) = %v %q %v, want %v", model, p, m, ok, want)
		}
	}
	if _, _, ok := r.ForModel("mystery-model"); ok {
		t.Error("unknown model routed")
	}
	gm, _ := r.Get("gemini")
	if u, _ := gm.CompatTarget("chat/completions", nil); u.String() != "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions" {
		t.Errorf("gemini compat %s", u)
	}
}

func TestMergeRejectsBadFiles(t *testing.T) {
	for name, doc := range map[string]string{
		"not json":      `{`,
		"unknown field": `{"providers":[{"name":"x","baseURL":"https://x","modles":[]}]}`,
		"bad name":      `{"providers":[{"name":"X Y","baseURL":"https://x"}]}`,
		"no base":       `{"providers":[{"name":"x"}]}`,
		"bad base":      `{"providers":[{"name":"x","baseURL":"ftp://x"}]}`,
		"bad auth":      `{"providers":[{"name":"x","baseURL":"https://x","auth":"cookie"}]}`,
		"bad pattern":   `{"providers":[{"name":"x","baseURL":"https://x","models":["[a"]}]}`,
		"twice":         `{"providers":[{"name":"x","baseURL":"https://x"},{"name":"x","baseURL":"https://y"}]}`,
	} {
		if _, err := Merge([]byte(doc), Defaults()); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
