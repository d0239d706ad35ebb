package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keypool/keypool/worker-proxy/limits"
	"github.com/keypool/keypool/worker-proxy/pool"
	"github.com/keypool/keypool/worker-proxy/provider"
)

// The OpenAI-compatible front door: /v1/chat/completions, /v1/embeddings,
// /v1/models and any other /v1/ call whose JSON body names a model. The
// model picks the provider (provider.Registry.ForModel), whose
// OpenAI-compatible API gets the call with a pooled key, so one base URL
// and one client token reach every pooled provider.

// openAIError writes an error in OpenAI's shape, which OpenAI SDKs parse.
func openAIError(w http.ResponseWriter, status int, msg, typ, code string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": code}})
}

func (s *Server) handleFrontDoor(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	client, token, ok := s.authorizeClient(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	strategy, err := pool.ParseStrategy(q.Get("strategy"))
	if err != nil {
		openAIError(w, http.StatusBadRequest, errorText(err), "invalid_request_error", "invalid_strategy")
		return
	}
	q.Del("strategy")
	q.Del("key")
	rest := strings.TrimPrefix(r.URL.EscapedPath(), "/v1/")
	if r.Method == http.MethodGet && rest == "models" {
		if !s.admitListing(w, client) {
			return
		}
		var allowed []string
		if client != nil {
			allowed = client.token.Providers
		}
		s.listModels(w, r, strategy, allowed)
		return
	}
	var model string
	var body []byte
	if id, ok := strings.CutPrefix(rest, "models/"); ok && r.Method == http.MethodGet {
		model, err = url.PathUnescape(id)
		if err != nil {
			badPath(w, r, provider.ErrBadPath)
			return
		}
	} else {
		var status int
		var msg string
		body, status, msg = s.readBody(w, r)
		if status != 0 {
			openAIError(w, status, msg, "invalid_request_error", "")
			return
		}
		var m struct {
			Model string `json:"model"`
		}
		if json.Unmarshal(body, &m) != nil || m.Model == "" {
			openAIError(w, http.StatusBadRequest, "The request body must be JSON with a \"model\" field; the model picks the provider", "invalid_request_error", "missing_model")
			return
		}
		model = m.Model
		if client != nil && len(client.token.Models) > 0 {
			// The token restricts models: the model checked must be the one
			// the upstream reads.
			if exact, err := bodyModel(body); err != nil || exact != model {
				openAIError(w, http.StatusBadRequest, "The request body must name one \"model\"", "invalid_request_error", "invalid_model")
				return
			}
		}
	}
	prov, upstreamModel, ok := s.providers.ForModel(model)
	if !ok {
		openAIError(w, http.StatusNotFound, "No configured provider serves model "+truncate(model, 80)+
			"; name it as provider/model (providers: "+strings.Join(s.compatNames(), ", ")+") or add a models pattern in the providers file",
			"invalid_request_error", "model_not_found")
		return
	}
	if upstreamModel != model {
		if body != nil {
			if body, err = setModel(body, upstreamModel); err != nil {
				openAIError(w, http.StatusBadRequest, "Invalid JSON body", "invalid_request_error", "")
				return
			}
		} else {
			rest = "models/" + escapeSegments(upstreamModel)
		}
	}
	target, err := prov.CompatTarget(rest, q)
	if err != nil {
		badPath(w, r, err)
		return
	}
	st := &relayState{prov: prov, compat: true, strategy: strategy, target: target, body: body, start: start, token: token,
		route: "v1", client: client, model: upstreamModel}
	if !s.admitScope(w, st, styleOpenAI) || !s.admitRequest(w, st, styleOpenAI) {
		return
	}
	s.forward(w, r, st)
}

// escapeSegments percent-encodes each "/"-separated segment of p, keeping
// the slashes, so CheckPath sees the segments as they were named.
func escapeSegments(p string) string {
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	return strings.Join(segs, "/")
}

// setModel rewrites the body's "model" field, keeping the rest as it is.
func setModel(body []byte, model string) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, err
	}
	v, _ := json.Marshal(model)
	m["model"] = v
	return json.Marshal(m)
}

func (s *Server) compatNames() []string {
	var out []string
	for _, p := range s.providers.All() {
		if p.Compat {
			out = append(out, p.Name)
		}
	}
	slices.Sort(out)
	return out
}

// listModels answers GET /v1/models with every pooled provider's models
// (those of allowed only, when it is not empty).
func (s *Server) listModels(w http.ResponseWriter, r *http.Request, strategy pool.Strategy, allowed []string) {
	type model map[string]any
	var (
		mu     sync.Mutex
		all    []model
		failed []string
		wg     sync.WaitGroup
	)
	for _, p := range s.providers.All() {
		if !p.Compat || s.pool.Servable(p.Name) == 0 || !limits.Allowed(allowed, p.Name) {
			continue
		}
		wg.Go(func() {
			ms, err := s.providerModels(r.Context(), p, strategy)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = append(failed, p.Name)
				return
			}
			for _, m := range ms {
				id, _ := m["id"].(string)
				id = strings.TrimPrefix(id, "models/")
				// Name the model so the front door routes it back here.
				if q, same, ok := s.providers.ForModel(id); !ok || q != p || same != id {
					id = p.Name + "/" + id
				}
				m["id"] = id
				if _, ok := m["owned_by"]; !ok {
					m["owned_by"] = p.Name
				}
				m["object"] = "model"
				all = append(all, m)
			}
		})
	}
	wg.Wait()
	if len(all) == 0 && len(failed) > 0 {
		openAIError(w, http.StatusBadGateway, "No provider answered the model list: "+strings.Join(failed, ", "), "api_error", "")
		return
	}
	slices.SortFunc(all, func(a, b model) int { return strings.Compare(a["id"].(string), b["id"].(string)) })
	if all == nil {
		all = []model{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": all})
}

// providerModels lists one provider's models through its OpenAI-compatible
// API with a pooled key.
func (s *Server) providerModels(ctx context.Context, p *provider.Provider, strategy pool.Strategy) ([]map[string]any, error) {
	e := s.pool.Pick(p.Name, strategy)
	if e == nil {
		return nil, errNoKey
	}
	ctx, cancel := context.WithTimeout(ctx, testTimeout)
	defer cancel()
	target, _ := p.CompatTarget("models", nil)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
	p.CompatAuth.Apply(req.Header, req.URL, e.Secret())
	res, err := s.cfg.Transport.RoundTrip(req)
	if err != nil {
		e.Finish(pool.Outcome{Error: &pool.LastError{Status: http.StatusBadGateway, Message: transportDetail(err, e.Secret()), At: s.cfg.Now().UTC()}})
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	if err != nil || res.StatusCode >= 400 {
		e.Finish(pool.Outcome{Error: &pool.LastError{Status: res.StatusCode, Message: scrub(upstreamMessage(b, res.StatusCode), e.Secret()), At: s.cfg.Now().UTC()}})
		return nil, errUpstream
	}
	e.Finish(pool.Outcome{Success: true})
	var list struct {
		Data []map[string]any `json:"data"`
	}
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&list); err != nil {
		return nil, err
	}
	return list.Data, nil
}

type relayErr string

func (e relayErr) Error() string { return string(e) }

const (
	errNoKey    = relayErr("no available key")
	errUpstream = relayErr("upstream error")
)
