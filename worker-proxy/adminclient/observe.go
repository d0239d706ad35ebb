package adminclient

import (
	"context"
	"net/url"
	"strconv"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
)

// RequestQuery filters GET /admin/requests; zero fields filter nothing.
type RequestQuery struct {
	Provider, KeyID, Token, Model string
	Status                        string // "2xx", "4xx", "5xx" or one status like "429"
	Since, Until                  time.Time
	Cursor                        string // a previous page's Next
	Limit                         int    // 1..500; 0 = the server's default (50)
}

// Values encodes q as the endpoint's query parameters.
func (q RequestQuery) Values() url.Values {
	v := url.Values{}
	for name, val := range map[string]string{"provider": q.Provider, "key": q.KeyID, "token": q.Token, "model": q.Model, "status": q.Status, "cursor": q.Cursor} {
		if val != "" {
			v.Set(name, val)
		}
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339Nano))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

// Requests returns one page of the request log, newest first.
func (c *Client) Requests(ctx context.Context, q RequestQuery) (*adminapi.RequestsResponse, error) {
	var out adminapi.RequestsResponse
	path := "/admin/requests"
	if v := q.Values().Encode(); v != "" {
		path += "?" + v
	}
	return &out, c.call(ctx, "GET", path, nil, &out)
}

// Alerts returns the alert settings and the last alerts sent.
func (c *Client) Alerts(ctx context.Context) (*adminapi.AlertSettings, error) {
	var out adminapi.AlertSettings
	return &out, c.call(ctx, "GET", "/admin/alerts", nil, &out)
}

// TestAlerts sends a test alert to every destination and returns each
// result.
func (c *Client) TestAlerts(ctx context.Context) (*adminapi.AlertTestResponse, error) {
	var out adminapi.AlertTestResponse
	return &out, c.call(ctx, "POST", "/admin/alerts/test", nil, &out)
}
