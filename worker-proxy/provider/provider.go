// Package provider describes the upstream AI APIs the proxy relays to: where
// each lives, how a pooled key is sent to it, and how a relay path maps onto
// its URL.
package provider

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

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
	// KeyHeader is the header that carries the key, KeyPrefix what precedes
	// it there ("Bearer "). If KeyQuery is set the key goes in that query
	// parameter instead.
	KeyHeader string
	KeyPrefix string
	KeyQuery  string
	// DefaultHeaders are set on upstream requests that lack them.
	DefaultHeaders map[string]string
}

// Defaults are the built-in providers with their public base URLs.
func Defaults() []*Provider {
	return []*Provider{
		{
			Name: "gemini", Base: mustParse("https://generativelanguage.googleapis.com/v1beta"),
			Versions: []string{"v1beta", "v1", "v1alpha"}, KeyHeader: "X-Goog-Api-Key",
		},
		{
			Name: "openai", Base: mustParse("https://api.openai.com/v1"),
			Versions: []string{"v1"}, KeyHeader: "Authorization", KeyPrefix: "Bearer ",
		},
		{
			Name: "anthropic", Base: mustParse("https://api.anthropic.com/v1"),
			Versions: []string{"v1"}, KeyHeader: "X-Api-Key",
			DefaultHeaders: map[string]string{"Anthropic-Version": "2023-06-01"},
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

// ErrBadPath is returned for relay paths that cannot be mapped.
var ErrBadPath = errors.New("invalid relay path")

// Target returns the upstream URL for a relay path (the escaped path after
// /api/{name}/) and the client's query, less the parameters in drop.
func (p *Provider) Target(escapedRest string, query url.Values, drop ...string) (*url.URL, error) {
	rest := strings.TrimLeft(escapedRest, "/")
	for seg := range strings.SplitSeq(rest, "/") {
		dec, err := url.PathUnescape(seg)
		if err != nil || dec == "." || dec == ".." || strings.ContainsAny(dec, "/\\") && seg != dec {
			return nil, ErrBadPath
		}
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
	q := url.Values{}
	for k, v := range query {
		if !slices.Contains(drop, k) {
			q[k] = v
		}
	}
	u.RawQuery = q.Encode()
	return &u, nil
}

// SetKey puts secret where the provider expects it.
func (p *Provider) SetKey(h http.Header, u *url.URL, secret string) {
	if p.KeyQuery != "" {
		q := u.Query()
		q.Set(p.KeyQuery, secret)
		u.RawQuery = q.Encode()
		return
	}
	h.Set(p.KeyHeader, p.KeyPrefix+secret)
	for k, v := range p.DefaultHeaders {
		if h.Get(k) == "" {
			h.Set(k, v)
		}
	}
}

// Registry is the set of providers the proxy serves, by name.
type Registry struct {
	byName map[string]*Provider
	names  []string
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
