package deploy

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRepo(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"alice/keypool", "alice/keypool"},
		{"github.com/alice/keypool", "alice/keypool"},
		{"https://github.com/alice/keypool", "alice/keypool"},
		{"https://github.com/alice/keypool.git", "alice/keypool"},
		{"https://github.com/alice/keypool/", "alice/keypool"},
		{"https://x-token:secret@github.com/alice/keypool.git", "alice/keypool"},
		{"git@github.com:alice/keypool.git", "alice/keypool"},
		{"ssh://git@github.com/Alice-Org/key.pool_2.git", "Alice-Org/key.pool_2"},
		{"alice/alice.github.io", "alice/alice.github.io"},
	} {
		r, err := ParseRepo(tc.in)
		if err != nil || r.String() != tc.want {
			t.Errorf("ParseRepo(%q) = %v, %v; want %s", tc.in, r, err, tc.want)
		}
	}
	for _, in := range []string{"", "alice", "alice/", "/keypool", "a/b/c", "https://gitlab.com/alice/keypool",
		"-alice/keypool", "alice/..", "alice/key pool", "/tmp/remote.git", "https://user:hunter2hunter2@example.com/a/b"} {
		_, err := ParseRepo(in)
		if err == nil {
			t.Errorf("ParseRepo(%q) accepted", in)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("ParseRepo(%q) error shows the password: %v", in, err)
		}
	}
}

func TestRepoOf(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://github.com/alice/keypool.git", "alice/keypool"},
		{"git@github-work:alice/keypool.git", "alice/keypool"},
		{"ssh://git@ghe.example.test:2222/team/alice/keypool.git", "alice/keypool"},
		{"/tmp/remote.git", ""},
		{"../keypool.git", ""},
		{`C:\Users\alice\remote.git`, ""},
		{"file:///srv/git/alice/keypool.git", ""},
		{"", ""},
	} {
		r, ok := repoOf(tc.in)
		got := ""
		if ok {
			got = r.String()
		}
		if got != tc.want {
			t.Errorf("repoOf(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRepoURLs(t *testing.T) {
	for _, tc := range []struct {
		repo                         Repo
		pages, origin, prefix, image string
	}{
		{Repo{"Alice", "KeyPool"}, "https://alice.github.io/KeyPool/", "https://alice.github.io", "/KeyPool", "ghcr.io/alice/keypool"},
		{Repo{"alice", "Alice.GitHub.io"}, "https://alice.github.io/", "https://alice.github.io", "", "ghcr.io/alice/alice.github.io"},
	} {
		r := tc.repo
		if got := r.PagesURL(); got != tc.pages {
			t.Errorf("%v PagesURL = %s, want %s", r, got, tc.pages)
		}
		if got := r.Origin(); got != tc.origin {
			t.Errorf("%v Origin = %s, want %s", r, got, tc.origin)
		}
		if got := r.Prefix(); got != tc.prefix {
			t.Errorf("%v Prefix = %q, want %q", r, got, tc.prefix)
		}
		if got := r.Image(); got != tc.image {
			t.Errorf("%v Image = %s, want %s", r, got, tc.image)
		}
	}
	if !(Repo{"alice", "keypool"}).Same(Repo{"ALICE", "KeyPool"}) {
		t.Error("Same ignores case, as GitHub does")
	}
}

func TestParseArgs(t *testing.T) {
	env := func(vars map[string]string) func(string) string {
		return func(k string) string { return vars[k] }
	}
	o, err := parseArgs([]string{"--dry-run", "alice/keypool", "--proxy-url", "https://proxy.example.test/", "--yes"},
		env(map[string]string{"CF_ACCOUNT_ID": "acc", "CF_API_TOKEN": "cf-unit-test-token-0000"}))
	if err != nil {
		t.Fatal(err)
	}
	if o.Repo != "alice/keypool" || !o.DryRun || o.ProxyURL != "https://proxy.example.test" || o.CFAccount != "acc" || !o.kvEnabled() || o.KVTitle != "keypool" {
		t.Errorf("parsed %+v", o)
	}
	if _, err := parseArgs([]string{"-h"}, env(nil)); !errors.Is(err, errHelp) {
		t.Errorf("-h: %v", err)
	}
	for _, tc := range []struct {
		args []string
		vars map[string]string
		want string
	}{
		{[]string{"--cf-token=cf-unit-test-token-0000"}, nil, "CF_API_TOKEN"},
		{[]string{"--token", "cf-unit-test-token-0000"}, nil, "CF_API_TOKEN"},
		{[]string{"a/b", "c/d"}, nil, "one repository argument"},
		{[]string{"a/b", "--repo", "c/d"}, nil, "disagree"},
		{[]string{"--cf-account", "acc"}, nil, "CF_API_TOKEN is not set"},
		{nil, map[string]string{"CF_API_TOKEN": "cf-unit-test-token-0000"}, "no account id"},
		{[]string{"--proxy-url", "proxy.example.test"}, nil, "not a URL"},
		{[]string{"--kv-title", ""}, nil, "kv-title"},
		{[]string{"--nope"}, nil, "not defined"},
		{[]string{"--target", "vercel"}, nil, "want pages, deno or workers"},
		{[]string{"--target", "deno", "--out", "."}, nil, "a folder of its own"},
	} {
		_, err := parseArgs(tc.args, env(tc.vars))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseArgs(%q) = %v, want an error with %q", tc.args, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "cf-unit-test-token-0000") {
			t.Errorf("parseArgs(%q) error repeats the token: %v", tc.args, err)
		}
	}
}

func TestShellJoin(t *testing.T) {
	got := shellJoin([]string{"run", "./wasm/build", "-proxy", "https://p.example.test/a b", "it's"})
	want := `run ./wasm/build -proxy 'https://p.example.test/a b' 'it'\''s'`
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
