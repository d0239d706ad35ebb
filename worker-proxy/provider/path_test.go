package provider

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestCheckPathRefusesTraversalAndControlBytes(t *testing.T) {
	for _, bad := range []string{
		"..", ".", "a/../b", "a/./b", "%2e%2e/x", "%2E%2e/x", ".%2e/x", "%2e/x",
		"..%2F..%2Fother/x", "a%2fb", "a%5Cb", `a\b`, `..\x`, "a%00b", "%00", "a%0Ab", "a%0d%0aX-Injected:%201",
		"a%7fb", "%252e%252e/x", "a%252fb", "%zz", "a%2",
	} {
		err := CheckPath(bad)
		if !errors.Is(err, ErrBadPath) {
			t.Errorf("CheckPath(%q) = %v, want ErrBadPath", bad, err)
		}
		p := Defaults()[0]
		if _, err := p.Target(bad, nil); !errors.Is(err, ErrBadPath) {
			t.Errorf("Target(%q) = %v", bad, err)
		}
		if _, err := p.CompatTarget(bad, nil); !errors.Is(err, ErrBadPath) {
			t.Errorf("CompatTarget(%q) = %v", bad, err)
		}
	}
	for _, good := range []string{
		"", "chat/completions", "v1beta/models/gemini-2.0-flash:generateContent", "models/gemini-pro:streamGenerateContent",
		"files/abc-123", "a%20b", "a%25", "...", "..a", "a..", "models/%E4%BD%A0", "x/",
	} {
		if err := CheckPath(good); err != nil {
			t.Errorf("CheckPath(%q) = %v", good, err)
		}
	}
}

func TestCompatTargetKeepsEscapes(t *testing.T) {
	p := Defaults()[0] // gemini: /v1beta + /openai
	u, err := p.CompatTarget("models/a%20b:x", url.Values{"alt": {"sse"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := u.String(); got != "https://generativelanguage.googleapis.com/v1beta/openai/models/a%20b:x?alt=sse" {
		t.Fatalf("got %s", got)
	}
}

// FuzzRelayPath checks that any path the relay accepts maps to an upstream
// URL under the provider's base (or, for a version prefix, beside it) whose
// segments, once decoded, are neither dot segments nor hold a control byte,
// and that the URL reads back as the same path the upstream will see.
func FuzzRelayPath(f *testing.F) {
	for _, s := range []string{
		"chat/completions", "v2/models/x:generateContent", "..%2F..%2Fother/x", "%2e%2e/x", "a%00b",
		`a\b`, "a%5cb", "%252e%252e", "models/%E4%BD%A0", "./x", "a//b", "v1/../../x", "%", "%%32%65",
	} {
		f.Add(s)
	}
	base, _ := ParseBase("http://up.test/base/v1")
	p := &Provider{Name: "p", Base: base, Versions: []string{"v1", "v2"}, CompatPath: "/compat"}
	f.Fuzz(func(t *testing.T, rest string) {
		for i, target := range []func() (*url.URL, error){
			func() (*url.URL, error) { return p.Target(rest, nil) },
			func() (*url.URL, error) { return p.CompatTarget(rest, nil) },
		} {
			u, err := target()
			if err != nil {
				if !errors.Is(err, ErrBadPath) {
					t.Fatalf("%d: error %v does not wrap ErrBadPath", i, err)
				}
				if CheckPath(strings.TrimLeft(rest, "/")) == nil {
					t.Fatalf("%d: %q refused though CheckPath accepts it: %v", i, rest, err)
				}
				continue
			}
			if !strings.HasPrefix(u.Path, "/base/") {
				t.Fatalf("%d: %q → %q leaves the base", i, rest, u.Path)
			}
			back, err := url.Parse(u.String())
			if err != nil || back.Path != u.Path || back.Host != "up.test" {
				t.Fatalf("%d: %q → %s reads back as %v (%v)", i, rest, u, back, err)
			}
			for seg := range strings.SplitSeq(back.EscapedPath(), "/") {
				dec, err := url.PathUnescape(seg)
				if err != nil || dec == "." || dec == ".." || strings.ContainsAny(dec, "\\") || hasControl(dec) {
					t.Fatalf("%d: %q → segment %q of %s", i, rest, seg, u)
				}
			}
		}
	})
}
