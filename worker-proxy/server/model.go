package server

import (
	"strings"

	"github.com/keypool/keypool/worker-proxy/failure"
	"github.com/keypool/keypool/worker-proxy/pool"
)

// cleanModel is the model name the pool keeps rests under: without
// Gemini's "models/" prefix, "" when too long to be one.
func cleanModel(m string) string {
	m = strings.TrimPrefix(strings.TrimSpace(m), "models/")
	if len(m) > pool.MaxModelLen {
		return ""
	}
	return m
}

// pickModel is the model whose resting pairs a pick must skip: the
// request's model while some key of the provider rests for a model, else
// "" (the request's model is then not looked for).
func (s *Server) pickModel(st *relayState) string {
	if !s.pool.ModelRestsActive(st.prov.Name) {
		return ""
	}
	return cleanModel(st.requestModel())
}

// restModels returns the models whose (key, model) pair a cooldown after v
// rests instead of the whole key, or nil for the whole key. Providers
// count rate limits per model, and Gemini's daily quota too
// (…PerDayPerProjectPerModel): a rate limit rests the pair of the
// request's model (and of the model the quota names, when it differs); a
// long quota rests the pair only when the quota names a model (Anthropic's
// usage limit is the account's, so it rests the key).
func restModels(st *relayState, v failure.Verdict) []string {
	var out []string
	add := func(m string) {
		if m = cleanModel(m); m != "" && (len(out) == 0 || out[0] != m) {
			out = append(out, m)
		}
	}
	switch v.Class {
	case failure.RateLimited:
		add(st.requestModel())
		add(v.Model)
	case failure.QuotaExhausted:
		if v.Model != "" {
			add(st.requestModel())
			add(v.Model)
		}
	}
	return out
}
