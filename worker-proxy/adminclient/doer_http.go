//go:build !js

package adminclient

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"

	"github.com/keypool/keypool/worker-proxy/adminapi"
)

// HTTPDoer sends requests with net/http. Origin, when set, is sent as the
// Origin header and the answer is checked the way a browser checks CORS,
// so tests can see what a page on that origin would see.
type HTTPDoer struct {
	Client *http.Client // default http.DefaultClient
	Origin string
}

// DefaultDoer returns an HTTPDoer on http.DefaultClient.
func DefaultDoer() Doer { return &HTTPDoer{} }

// Do implements Doer.
func (d *HTTPDoer) Do(ctx context.Context, method, url string, headers map[string]string, body []byte) (int, []byte, error) {
	status, _, b, err := d.DoHeaders(ctx, method, url, headers, body)
	return status, b, err
}

// DoHeaders implements HeaderDoer.
func (d *HTTPDoer) DoHeaders(ctx context.Context, method, url string, headers map[string]string, body []byte) (int, map[string]string, []byte, error) {
	hc := d.Client
	if hc == nil {
		hc = http.DefaultClient
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, nil, &TransportError{Err: err}
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if d.Origin != "" {
		req.Header.Set("Origin", d.Origin)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, nil, &TransportError{Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, &TransportError{Err: err}
	}
	if d.Origin != "" {
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != d.Origin && got != "*" {
			return 0, nil, nil, &TransportError{CORS: true, Err: errCORS}
		}
	}
	rh := make(map[string]string, len(resp.Header))
	for k := range resp.Header {
		rh[k] = resp.Header.Get(k)
	}
	return resp.StatusCode, rh, b, nil
}

// decodeStatus decodes a status answer with encoding/json.
func decodeStatus(b []byte, out *adminapi.StatusResponse) error { return json.Unmarshal(b, out) }
