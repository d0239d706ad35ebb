package server

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tidwall/gjson"

	"github.com/keypool/keypool/worker-proxy/provider"
	"github.com/keypool/keypool/worker-proxy/store"
	"github.com/keypool/keypool/worker-proxy/store/sealed"
)

// Model aliases: a model name a client sends ("fast") stands for a
// provider and its model (gemini/gemini-2.5-flash). They come from the
// providers file and from the admin API (saved in the store); an admin
// alias overrides a file alias of the same name.

// aliases holds the model aliases. Lookups are one atomic load.
type aliases struct {
	store store.AliasStore // nil: the store keeps no aliases

	mu    sync.Mutex        // serializes admin changes
	admin map[string]string // the admin API's, name → "provider/model"; under mu

	merged atomic.Pointer[map[string]aliasEntry]
}

// aliasEntry is one alias as lookups see it.
type aliasEntry struct {
	provider.Alias
	source string // "file" or "admin"
}

// aliasStore finds the backend's AliasStore under store/sealed's wrapper.
func aliasStore(st store.Store) store.AliasStore {
	if as, ok := st.(store.AliasStore); ok {
		return as
	}
	as, _ := sealed.Unwrap(st).(store.AliasStore)
	return as
}

// loadAliases reads the admin aliases the store kept; ones that no longer
// parse (their provider is gone) are logged and left out.
func (s *Server) loadAliases(ctx context.Context) error {
	a := &aliases{store: aliasStore(s.store), admin: map[string]string{}}
	s.aliases = a
	if a.store != nil {
		stored, err := a.store.Aliases(ctx)
		if err != nil {
			return fmt.Errorf("load aliases: %w", err)
		}
		for name, target := range stored {
			if _, err := s.providers.ParseAlias(name, target); err != nil {
				s.log.Warn("ignoring a stored model alias", "alias", name, "error", err.Error())
				continue
			}
			a.admin[name] = target
		}
	}
	s.publishAliases()
	return nil
}

// publishAliases merges the file's and the admin aliases. a.mu is held or
// the server is not serving yet.
func (s *Server) publishAliases() {
	m := make(map[string]aliasEntry, len(s.providers.FileAliases())+len(s.aliases.admin))
	for name, al := range s.providers.FileAliases() {
		m[name] = aliasEntry{al, "file"}
	}
	for name, target := range s.aliases.admin {
		if al, err := s.providers.ParseAlias(name, target); err == nil {
			m[name] = aliasEntry{al, "admin"}
		}
	}
	s.aliases.merged.Store(&m)
}

// alias returns the alias named model.
func (s *Server) alias(model string) (provider.Alias, bool) {
	if model == "" {
		return provider.Alias{}, false
	}
	e, ok := (*s.aliases.merged.Load())[model]
	return e.Alias, ok
}

// aliasView is one alias as the admin API lists it.
type aliasView struct {
	Name     string `json:"name"`
	Target   string `json:"target"`
	Provider string `json:"provider"`
	Model    string `json:"model"`
	Source   string `json:"source"` // "file" or "admin"
}

func (s *Server) aliasList() []aliasView {
	m := *s.aliases.merged.Load()
	out := make([]aliasView, 0, len(m))
	for _, name := range slices.Sorted(maps.Keys(m)) {
		e := m[name]
		out = append(out, aliasView{Name: name, Target: e.Target(), Provider: e.Provider, Model: e.Model, Source: e.source})
	}
	return out
}

func (s *Server) handleListAliases(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"aliases": s.aliasList(), "persistent": s.aliases.store != nil})
}

// handlePutAlias sets an admin alias: PUT /admin/aliases/{name}
// {"target":"gemini/gemini-2.5-flash"}.
func (s *Server) handlePutAlias(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req struct {
		Target string `json:"target"`
	}
	if err := decodeJSON(w, r, maxAdminBody, &req); err != nil {
		badRequest(w, err)
		return
	}
	al, err := s.providers.ParseAlias(name, strings.TrimSpace(req.Target))
	if err != nil {
		writeError(w, http.StatusBadRequest, truncate(err.Error(), 300))
		return
	}
	a := s.aliases
	if a.store == nil {
		writeError(w, http.StatusNotImplemented, "This store keeps no model aliases; set them in the providers file (\"aliases\")")
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	next := maps.Clone(a.admin)
	next[al.Name] = al.Target()
	if len(next) > provider.MaxAliases {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("At most %d aliases", provider.MaxAliases))
		return
	}
	if err := a.store.PutAliases(r.Context(), next); err != nil {
		s.storeError(w, "put aliases", err)
		return
	}
	a.admin = next
	s.publishAliases()
	s.log.Info("model alias set", "alias", al.Name, "target", al.Target())
	writeJSON(w, http.StatusOK, map[string]any{"message": "Alias set", "alias": aliasView{Name: al.Name, Target: al.Target(), Provider: al.Provider, Model: al.Model, Source: "admin"}})
}

// handleDeleteAlias removes an admin alias (a file alias shows again, if
// the providers file has one of that name).
func (s *Server) handleDeleteAlias(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	a := s.aliases
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.admin[name]; !ok {
		if _, inFile := s.providers.FileAliases()[name]; inFile {
			writeError(w, http.StatusConflict, "Alias "+truncate(name, 80)+" comes from the providers file; change it there")
			return
		}
		writeError(w, http.StatusNotFound, "Unknown alias "+truncate(name, 80))
		return
	}
	next := maps.Clone(a.admin)
	delete(next, name)
	if err := a.store.PutAliases(r.Context(), next); err != nil {
		s.storeError(w, "put aliases", err)
		return
	}
	a.admin = next
	s.publishAliases()
	s.log.Info("model alias deleted", "alias", name)
	writeJSON(w, http.StatusOK, map[string]any{"message": "Alias deleted", "name": name})
}

// nativeAlias applies a model alias of prov to a native request: the
// model in Gemini's path (…/models/{alias}:{method}) or the body's
// "model". An alias of another provider is left alone: native APIs do not
// cross providers.
func (s *Server) nativeAlias(prov *provider.Provider, target *url.URL, body []byte) (*url.URL, []byte) {
	if len(*s.aliases.merged.Load()) == 0 {
		return target, body
	}
	p := target.Path
	if i := strings.LastIndex(p, "/models/"); i >= 0 {
		rest := p[i+len("/models/"):]
		if j := strings.IndexByte(rest, ':'); j > 0 {
			if al, ok := s.alias(rest[:j]); ok && al.Provider == prov.Name {
				u := *target
				u.Path, u.RawPath = p[:i+len("/models/")]+al.Model+rest[j:], ""
				return &u, body
			}
		}
	}
	if len(body) > 0 && body[0] == '{' {
		if m := gjson.GetBytes(body, "model"); m.Type == gjson.String {
			if al, ok := s.alias(m.Str); ok && al.Provider == prov.Name {
				if nb, err := setModel(body, al.Model); err == nil {
					return target, nb
				}
			}
		}
	}
	return target, body
}
