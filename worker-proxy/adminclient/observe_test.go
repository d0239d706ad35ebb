//go:build !js

package adminclient_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/adminclient"
	"github.com/keypool/keypool/worker-proxy/alerts"
	"github.com/keypool/keypool/worker-proxy/provider"
	"github.com/keypool/keypool/worker-proxy/reqlog"
	"github.com/keypool/keypool/worker-proxy/server"
	"github.com/keypool/keypool/worker-proxy/store/boltstore"
)

func TestRequestQueryValues(t *testing.T) {
	since := time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)
	got := adminclient.RequestQuery{Provider: "gemini", KeyID: "key_1", Token: "team a", Status: "5xx", Since: since, Limit: 20, Cursor: "00000000000000ff"}.Values().Encode()
	want := "cursor=00000000000000ff&key=key_1&limit=20&provider=gemini&since=2026-01-15T10%3A00%3A00Z&status=5xx&token=team+a"
	if got != want {
		t.Fatalf("Values = %q, want %q", got, want)
	}
	if v := (adminclient.RequestQuery{}).Values().Encode(); v != "" {
		t.Fatalf("empty query encodes as %q", v)
	}
}

// The client reads the request log, the alert settings and a test alert's
// results from the real server; a bad filter is a 400 with its message.
func TestRequestsAndAlerts(t *testing.T) {
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer hook.Close()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "keypool.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l := reqlog.New(reqlog.NewRing(reqlog.Bounds{}, nil), "memory", reqlog.Options{})
	defer l.Close()
	reg, _ := provider.NewRegistry(provider.Defaults()...)
	s, err := server.New(t.Context(), server.Config{
		AdminKey: adminKey, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), RequestLog: l,
		Alerts: alerts.New(alerts.Config{Destinations: []alerts.Destination{{Format: "slack", URL: hook.URL + "/T0/secret-fake"}}}),
	}, st, reg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	defer ts.Close()
	c := adminclient.New(ts.URL, adminKey)
	l.Add(adminapi.RequestRecord{Time: time.Now(), Provider: "openai", Status: 503})
	l.Add(adminapi.RequestRecord{Time: time.Now(), Provider: "gemini", Status: 200})
	l.Flush()

	r, err := c.Requests(t.Context(), adminclient.RequestQuery{Status: "5xx"})
	if err != nil || len(r.Records) != 1 || r.Records[0].Provider != "openai" || r.Backend != "memory" {
		t.Fatalf("Requests = %+v, %v", r, err)
	}
	if _, err := c.Requests(t.Context(), adminclient.RequestQuery{Status: "9xx"}); err == nil || !strings.Contains(err.Error(), "400: invalid filter: status") {
		t.Fatalf("bad filter: %v", err)
	}
	res, err := c.TestAlerts(t.Context())
	if err != nil || !res.OK || len(res.Results) != 1 || res.Results[0].Destination != "slack "+hook.URL+"/…" {
		t.Fatalf("TestAlerts = %+v, %v", res, err)
	}
	al, err := c.Alerts(t.Context())
	if err != nil || !al.Enabled || len(al.Recent) != 1 || al.Recent[0].Alert.Kind != "test" || al.MinAvailable != "1" || al.Interval != "10m0s" {
		t.Fatalf("Alerts = %+v, %v", al, err)
	}
}
