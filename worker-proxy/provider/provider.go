// Package provider describes the upstream AI APIs the proxy relays to: where
// each lives, how a pooled key is sent to it, and how a relay path maps onto
// its URL.
package provider

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
)

// Auth says where an upstream expects its API key.
type Auth struct {
	Header string // header name, e.g. "Authorization"; ignored when Query is set
	Prefix string // what precedes the key in Header, e.g. "Bearer "
	Query  string // query parameter name, e.g. "key"
}

// Bearer is "Authorization: Bearer <key>".
var Bearer = Auth{Header: "Authorization", Prefix: "Bearer "}

// ParseAuth reads how a providers file says the key is sent: "bearer",
// "header:NAME" or "query:NAME".
func ParseAuth(s string) (Auth, error) {
	kind, name, _ := strings.Cut(strings.TrimSpace(s), ":")
	switch strings.ToLower(kind) {
	case "", "bearer":
		if name == "" {
			return Bearer, nil
		}
	case "header":
		if name != "" && !strings.ContainsAny(name, " :\t\r\n") {
			return Auth{Header: http.CanonicalHeaderKey(name)}, nil
		}
	case "query":
		if name != "" && url.QueryEscape(name) == name {
			return Auth{Query: name}, nil
		}
	}
	return Auth{}, fmt.Errorf("auth %q: want bearer, header:NAME or query:NAME", s)
}

// Apply puts secret where a says.
func (a Auth) Apply(h http.Header, u *url.URL, secret string) {
	if a.Query != "" {
		q := u.Query()
		q.Set(a.Query, secret)
		u.RawQuery = q.Encode()
		return
	}
	h.Set(a.Header, a.Prefix+secret)
}

// Provider is one upstream API.
type Provider struct {
	// Name is the path segment after /api/ and the provider of pooled keys.
	Name string
	// Base is the API's base URL, version included
	// (https://api.openai.com/v1). Relay paths are joined onto it.
	Base *url.URL
	// Versions are the path segments that name an API version. A relay
	// path starting with one of them replaces the version in Base instead
	// of being appended to it, so SDKs that add their own version prefix
	// (genai adds v1beta/) do not double it.
	Versions []string
	// Auth says where the native API takes the key.
	Auth Auth
	// DefaultHeaders are set on upstream requests that lack them.
	DefaultHeaders map[string]string

	// Compat is true when the provider has an OpenAI-compatible API, at
	// CompatPath under Base ("" = Base itself), taking the key as
	// CompatAuth. The /v1/ front door routes to it.
	Compat     bool
	CompatPath string
	CompatAuth Auth
	// Models are glob patterns (path.Match) of the model names the front
	// door sends to this provider.
	Models []string
}

// Defaults are the built-in providers with their public base URLs.
func Defaults() []*Provider {
	return []*Provider{
		{
			Name: "gemini", Base: mustParse("https://generativelanguage.googleapis.com/v1beta"),
			Versions: []string{"v1beta", "v1", "v1alpha"}, Auth: Auth{Header: "X-Goog-Api-Key"},
			Compat: true, CompatPath: "/openai", CompatAuth: Bearer,
			Models: []string{"gemini-*", "gemma-*", "models/gemini-*", "models/gemma-*", "text-embedding-004", "embedding-*", "imagen-*", "veo-*"},
		},
		{
			Name: "openai", Base: mustParse("https://api.openai.com/v1"),
			Versions: []string{"v1"}, Auth: Bearer, Compat: true, CompatAuth: Bearer,
			Models: []string{"gpt-*", "chatgpt-*", "o1", "o1-*", "o3", "o3-*", "o4-*", "text-embedding-*", "dall-e-*", "whisper-*", "tts-*", "omni-*", "codex-*", "davinci-*", "babbage-*", "computer-use-*"},
		},
		{
			Name: "anthropic", Base: mustParse("https://api.anthropic.com/v1"),
			Versions: []string{"v1"}, Auth: Auth{Header: "X-Api-Key"},
			DefaultHeaders: map[string]string{"Anthropic-Version": "2023-06-01"},
			Compat:         true, CompatAuth: Bearer,
			Models: []string{"claude-*"},
		},
	}
}

func mustParse(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// ParseBase checks a base URL given in configuration.
func ParseBase(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(s, "/"))
	if err != nil {
		return nil, fmt.Errorf("invalid base URL %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("invalid base URL %q: want http(s)://host[/path]", s)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("invalid base URL %q: no query, fragment or user info allowed", s)
	}
	return u, nil
}

// ErrBadPath is returned for relay paths that cannot be mapped; CheckPath
// wraps it with the reason.
var ErrBadPath = errors.New("invalid relay path")

// CheckPath checks an escaped URL path (or the part of one after a route's
// prefix) before it is joined onto an upstream's base URL: no segment may
// be "." or "..", raw or percent-encoded, hold a slash or backslash once
// decoded (%2F, %5C, "\"), a control byte (%00, %0A …), malformed or
// double percent-encoding (%252e). The error wraps ErrBadPath and says
// which rule the path broke, in words safe to show a client.
func CheckPath(escaped string) error {
	for seg := range strings.SplitSeq(escaped, "/") {
		dec, err := url.PathUnescape(seg)
		switch {
		case err != nil:
			return fmt.Errorf("%w: malformed percent-encoding", ErrBadPath)
		case dec == "." || dec == "..":
			return fmt.Errorf("%w: a . or .. segment (raw or percent-encoded)", ErrBadPath)
		case strings.ContainsAny(dec, "/\\"):
			return fmt.Errorf("%w: an encoded slash or a backslash inside a segment", ErrBadPath)
		case hasControl(dec):
			return fmt.Errorf("%w: a control character such as %%00", ErrBadPath)
		case dec != seg && hasEscape(dec):
			return fmt.Errorf("%w: double percent-encoding", ErrBadPath)
		}
	}
	return nil
}

func hasControl(s string) bool {
	for i := range len(s) {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// hasEscape reports whether s holds a percent escape (%XX).
func hasEscape(s string) bool {
	for i := strings.IndexByte(s, '%'); i >= 0 && i+2 < len(s); {
		if isHex(s[i+1]) && isHex(s[i+2]) {
			return true
		}
		j := strings.IndexByte(s[i+1:], '%')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// Target returns the upstream URL for a relay path (the escaped path after
// /api/{name}/) and the client's query, less the parameters in drop. A path
// CheckPath refuses gives its error.
func (p *Provider) Target(escapedRest string, query url.Values, drop ...string) (*url.URL, error) {
	rest := strings.TrimLeft(escapedRest, "/")
	if err := CheckPath(rest); err != nil {
		return nil, err
	}
	u := *p.Base
	base := u.EscapedPath()
	first, _, _ := strings.Cut(rest, "/")
	if first != "" && slices.Contains(p.Versions, first) {
		if i := strings.LastIndexByte(base, '/'); i >= 0 && slices.Contains(p.Versions, base[i+1:]) {
			base = base[:i]
		}
	}
	raw := base + "/" + rest
	path, err := url.PathUnescape(raw)
	if err != nil {
		return nil, ErrBadPath
	}
	u.Path, u.RawPath = path, raw
	if u.EscapedPath() != raw {
		u.RawPath = ""
	}
	u.RawQuery = ""
	if len(query) > 0 {
		q := url.Values{}
		for k, v := range query {
			if !slices.Contains(drop, k) {
				q[k] = v
			}
		}
		u.RawQuery = q.Encode()
	}
	return &u, nil
}

// SetKey puts secret where the native API expects it.
func (p *Provider) SetKey(h http.Header, u *url.URL, secret string) {
	p.Auth.Apply(h, u, secret)
	for k, v := range p.DefaultHeaders {
		if h.Get(k) == "" {
			h.Set(k, v)
		}
	}
}

// CompatTarget returns the URL of an OpenAI-compatible API call; rest is
// escaped, like "chat/completions". A path CheckPath refuses gives its
// error.
func (p *Provider) CompatTarget(rest string, query url.Values) (*url.URL, error) {
	rest = strings.TrimLeft(rest, "/")
	if err := CheckPath(rest); err != nil {
		return nil, err
	}
	u := *p.Base
	raw := strings.TrimRight(u.EscapedPath(), "/") + p.CompatPath + "/" + rest
	path, err := url.PathUnescape(raw)
	if err != nil {
		return nil, ErrBadPath
	}
	u.Path, u.RawPath = path, raw
	if u.EscapedPath() != raw {
		u.RawPath = ""
	}
	u.RawQuery = query.Encode()
	return &u, nil
}

// ServesModel reports whether the front door sends model to p.
func (p *Provider) ServesModel(model string) bool {
	for _, pat := range p.Models {
		if ok, _ := path.Match(pat, model); ok {
			return true
		}
	}
	return false
}

// Registry is the set of providers the proxy serves, by name.
type Registry struct {
	byName map[string]*Provider
	names  []string
	order  []*Provider // for model routing: declaration order
	// aliases are the providers file's model aliases, by name.
	aliases map[string]Alias
}

// NewRegistry returns a registry of ps; names must be unique.
func NewRegistry(ps ...*Provider) (*Registry, error) {
	r := &Registry{byName: map[string]*Provider{}}
	for _, p := range ps {
		if _, dup := r.byName[p.Name]; dup {
			return nil, fmt.Errorf("provider %q declared twice", p.Name)
		}
		r.byName[p.Name] = p
		r.names = append(r.names, p.Name)
		r.order = append(r.order, p)
	}
	slices.Sort(r.names)
	return r, nil
}

// Get returns the named provider.
func (r *Registry) Get(name string) (*Provider, bool) {
	p, ok := r.byName[name]
	return p, ok
}

// Names returns the providers' names, sorted.
func (r *Registry) Names() []string { return r.names }

// ForModel returns the provider that serves model through its
// OpenAI-compatible API, and the model name to send it. "name/model" picks
// provider name explicitly; otherwise the first provider, in declaration
// order, whose Models patterns match.
func (r *Registry) ForModel(model string) (*Provider, string, bool) {
	if prefix, rest, ok := strings.Cut(model, "/"); ok && rest != "" {
		if p, ok := r.byName[prefix]; ok && p.Compat {
			return p, rest, true
		}
	}
	for _, p := range r.order {
		if p.Compat && p.ServesModel(model) {
			return p, model, true
		}
	}
	return nil, "", false
}

// All returns the providers in declaration order.
func (r *Registry) All() []*Provider { return r.order }
