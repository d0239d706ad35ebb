package provider

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Alias maps a model name a client sends to a provider and the model to
// ask it for: "fast" → gemini/gemini-2.5-flash.
type Alias struct {
	Name     string `json:"name"`
	Provider string `json:"provider"`
	Model    string `json:"model"`
}

// Target is the alias's "provider/model".
func (a Alias) Target() string { return a.Provider + "/" + a.Model }

// MaxAliasLen bounds alias names and target models.
const MaxAliasLen = 128

// MaxAliases bounds how many aliases the providers file and the admin API
// may hold.
const MaxAliases = 1000

// modelName checks a model name or alias: 1-MaxAliasLen characters of
// valid UTF-8 without spaces or control characters.
func modelName(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%s is empty", what)
	case len(s) > MaxAliasLen:
		return fmt.Errorf("%s is longer than %d bytes", what, MaxAliasLen)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s is not valid UTF-8", what)
	}
	for _, c := range s {
		if unicode.IsSpace(c) || unicode.IsControl(c) {
			return fmt.Errorf("%s contains spaces or control characters", what)
		}
	}
	return nil
}

// ParseAlias checks alias name → target ("provider/model") against r's
// providers. A name may not contain "/": "provider/model" already names a
// model of a provider.
func (r *Registry) ParseAlias(name, target string) (Alias, error) {
	if err := modelName("alias name", name); err != nil {
		return Alias{}, err
	}
	if strings.Contains(name, "/") {
		return Alias{}, fmt.Errorf("alias name %q contains '/': provider/model names are routed as they are", name)
	}
	prov, model, ok := strings.Cut(target, "/")
	if !ok {
		return Alias{}, fmt.Errorf("alias %q: target %q is not provider/model, e.g. gemini/gemini-2.5-flash", name, target)
	}
	if _, ok := r.byName[prov]; !ok {
		return Alias{}, fmt.Errorf("alias %q: unknown provider %q (providers: %s)", name, prov, strings.Join(r.names, ", "))
	}
	if err := modelName("model", model); err != nil {
		return Alias{}, fmt.Errorf("alias %q: %w", name, err)
	}
	return Alias{Name: name, Provider: prov, Model: model}, nil
}

// SetFileAliases sets the aliases of the providers file, checked with
// ParseAlias. Call it before the registry is shared.
func (r *Registry) SetFileAliases(m map[string]string) error {
	if len(m) > MaxAliases {
		return fmt.Errorf("providers file: more than %d aliases", MaxAliases)
	}
	out := make(map[string]Alias, len(m))
	for name, target := range m {
		a, err := r.ParseAlias(name, target)
		if err != nil {
			return fmt.Errorf("providers file: %w", err)
		}
		out[name] = a
	}
	r.aliases = out
	return nil
}

// FileAliases returns the aliases set by SetFileAliases, by name. The map
// is shared: do not modify it.
func (r *Registry) FileAliases() map[string]Alias { return r.aliases }

// LoadAliases reads the "aliases" object of a providers file:
//
//	{"providers": [...], "aliases": {"fast": "gemini/gemini-2.5-flash"}}
func LoadAliases(name string) (map[string]string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("providers file: %w", err)
	}
	var f File
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&f); err != nil {
		return nil, fmt.Errorf("providers file: %w", err)
	}
	return f.Aliases, nil
}
