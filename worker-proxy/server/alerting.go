package server

import (
	"context"
	"net/http"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/alerts"
	"github.com/keypool/keypool/worker-proxy/pool"
)

// AlertState is the pool as the alert checks see it: per provider, its
// keys, those that can serve, those disabled (masked), and the requests
// and 5xx answers counted so far.
func (s *Server) AlertState() []alerts.ProviderState {
	now := s.cfg.Now()
	totals := s.metrics.RequestTotals()
	var out []alerts.ProviderState
	for _, p := range s.providerNames() {
		ps := alerts.ProviderState{Provider: p, Requests: totals[p].Requests, ServerErrors: totals[p].ServerErrors}
		for _, e := range s.pool.Entries(p) {
			ps.Total++
			if e.AvailableAt(now) {
				ps.Available++
			}
			if k := e.Key(); k.DisabledReason != "" {
				ps.Disabled = append(ps.Disabled, alerts.KeyRef{ID: k.ID, Masked: pool.Mask(k.Secret), Reason: truncate(k.DisabledReason, 200)})
			}
		}
		out = append(out, ps)
	}
	return out
}

// RunAlerts checks the pool every interval and sends alerts until ctx
// ends; without a notifier it returns at once.
func (s *Server) RunAlerts(ctx context.Context, interval time.Duration) {
	if s.alerts == nil {
		return
	}
	s.alerts.Run(ctx, interval, s.AlertState)
}

func (s *Server) handleAlerts(w http.ResponseWriter, r *http.Request) {
	out := adminapi.AlertSettings{Destinations: []string{}, Recent: []adminapi.AlertSent{}}
	if s.alerts != nil {
		c := s.alerts.Config()
		out.Enabled = true
		for _, d := range c.Destinations {
			out.Destinations = append(out.Destinations, d.String())
		}
		out.MinAvailable, out.Interval = c.MinAvailable.String(), c.Interval.String()
		if c.ErrorRate > 0 {
			out.ErrorRate, out.ErrorWindow, out.ErrorMinRequests = c.ErrorRate, c.ErrorWindow.String(), c.ErrorMinRequests
		}
		out.Recent = s.alerts.Recent()
	}
	writeJSON(w, http.StatusOK, out)
}

// handleAlertTest is POST /admin/alerts/test: a test alert to every
// destination now, and each one's result.
func (s *Server) handleAlertTest(w http.ResponseWriter, r *http.Request) {
	if s.alerts == nil {
		writeError(w, http.StatusBadRequest, "No alert destination is configured: set ALERT_WEBHOOK_URL, or ALERT_TELEGRAM_BOT_TOKEN and ALERT_TELEGRAM_CHAT_ID, and restart the proxy")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	res := s.alerts.Test(ctx)
	ok := true
	for _, x := range res {
		ok = ok && x.OK
	}
	writeJSON(w, http.StatusOK, adminapi.AlertTestResponse{OK: ok, Results: res})
}
