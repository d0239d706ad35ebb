package provider

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path"
)

// File is the JSON document PROVIDERS_FILE names: providers to add (any
// OpenAI-compatible API) or built-ins to change.
//
//	{"providers": [
//	  {"name": "deepseek", "baseURL": "https://api.deepseek.com/v1", "models": ["deepseek-*"]},
//	  {"name": "groq", "baseURL": "https://api.groq.com/openai/v1", "auth": "bearer", "models": ["llama-*"]}
//	]}
type File struct {
	Providers []FileProvider `json:"providers"`
	// Aliases maps a model name clients send to "provider/model" (see
	// LoadAliases and Registry.ParseAlias).
	Aliases map[string]string `json:"aliases,omitempty"`
}

// FileProvider declares one provider. For a new provider, baseURL is
// required and the API is taken to be OpenAI-compatible at baseURL with
// the key as a Bearer token unless auth says otherwise. For a built-in
// (gemini, openai, anthropic), any field given replaces the built-in's.
type FileProvider struct {
	Name    string            `json:"name"`
	BaseURL string            `json:"baseURL"`
	Auth    string            `json:"auth,omitempty"`   // bearer | header:NAME | query:NAME
	Models  []string          `json:"models,omitempty"` // glob patterns
	Headers map[string]string `json:"headers,omitempty"`
}

// LoadFile reads a providers file and merges it into base (usually
// Defaults()), returning the result in declaration order: file providers
// first, so their model patterns win, then the remaining built-ins.
func LoadFile(name string, base []*Provider) ([]*Provider, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("providers file: %w", err)
	}
	return Merge(b, base)
}

// Merge is LoadFile on the document's bytes.
func Merge(doc []byte, base []*Provider) ([]*Provider, error) {
	var f File
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("providers file: %w", err)
	}
	byName := map[string]*Provider{}
	for _, p := range base {
		byName[p.Name] = p
	}
	var out []*Provider
	seen := map[string]bool{}
	for i, fp := range f.Providers {
		where := fmt.Sprintf("providers file: entry %d (%q)", i+1, fp.Name)
		if err := validName(fp.Name); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if seen[fp.Name] {
			return nil, fmt.Errorf("%s: declared twice", where)
		}
		seen[fp.Name] = true
		p, builtin := byName[fp.Name]
		if builtin {
			cp := *p
			p = &cp
		} else {
			if fp.BaseURL == "" {
				return nil, fmt.Errorf("%s: baseURL is required", where)
			}
			p = &Provider{Name: fp.Name, Auth: Bearer, Compat: true, CompatAuth: Bearer}
		}
		if fp.BaseURL != "" {
			u, err := ParseBase(fp.BaseURL)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			p.Base = u
			if !builtin {
				if seg := path.Base(u.Path); len(seg) > 1 && seg[0] == 'v' && seg[1] >= '0' && seg[1] <= '9' {
					p.Versions = []string{seg}
				}
			}
		}
		if fp.Auth != "" {
			a, err := ParseAuth(fp.Auth)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			p.Auth = a
			if !builtin {
				p.CompatAuth = a
			}
		}
		if fp.Models != nil {
			for _, m := range fp.Models {
				if _, err := path.Match(m, ""); err != nil {
					return nil, fmt.Errorf("%s: bad model pattern %q", where, m)
				}
			}
			p.Models = fp.Models
		}
		if fp.Headers != nil {
			p.DefaultHeaders = fp.Headers
		}
		out = append(out, p)
	}
	for _, p := range base {
		if !seen[p.Name] {
			out = append(out, p)
		}
	}
	return out, nil
}

func validName(name string) error {
	if name == "" || len(name) > 32 {
		return fmt.Errorf("name must be 1-32 characters")
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("name may only contain a-z, 0-9, '-' and '_'")
		}
	}
	return nil
}
