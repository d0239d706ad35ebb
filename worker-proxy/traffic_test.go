package main

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/internal/fakeupstream"
)

// GET /admin/traffic counts each client request once, by how it ended:
// a success after a failover (with its retry), a client error passed
// through, and a 503 when the provider has no key.
func TestTrafficCountsRelayedRequests(t *testing.T) {
	f, p := startFakeProxy(t, fakeupstream.Options{}, nil)
	addKeys(t, f, p, "openai", "sk-traffic", fakeupstream.RateLimited, fakeupstream.OK)
	if r := p.do("POST", "/api/openai/chat/completions", chatBody, bearer()); r.Status != http.StatusOK {
		t.Fatalf("relay: %d %s", r.Status, r.Body)
	}
	if r := p.do("POST", "/api/openai/chat/completions", `{"model":`, bearer()); r.Status != http.StatusBadRequest {
		t.Fatalf("bad json: %d %s", r.Status, r.Body)
	}
	gem := map[string]string{"x-goog-api-key": testClientToken}
	if r := p.do("POST", "/api/gemini/models/gemini-2.5-flash:generateContent", `{}`, gem); r.Status != http.StatusServiceUnavailable {
		t.Fatalf("gemini without keys: %d %s", r.Status, r.Body)
	}

	r := p.admin("GET", "/admin/traffic?minutes=5", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("traffic: %d %s", r.Status, r.Body)
	}
	var got adminapi.TrafficResponse
	if err := json.Unmarshal(r.Body, &got); err != nil {
		t.Fatal(err)
	}
	sum := map[string]adminapi.TrafficBucket{}
	for _, pt := range got.Providers {
		if len(pt.Buckets) != 5 {
			t.Fatalf("%s: %d buckets, want 5", pt.Provider, len(pt.Buckets))
		}
		var s adminapi.TrafficBucket
		for _, b := range pt.Buckets {
			s.Add(b)
		}
		sum[pt.Provider] = s
	}
	if s := sum["openai"]; s != (adminapi.TrafficBucket{Requests: 2, Success: 1, Errors: 1, Retries: 1}) {
		t.Errorf("openai: %+v, want 2 requests: 1 success after 1 retry, 1 error", s)
	}
	if s := sum["gemini"]; s != (adminapi.TrafficBucket{Requests: 1, Errors: 1, Unserved: 1}) {
		t.Errorf("gemini: %+v, want 1 unserved request", s)
	}
	if got.BucketSeconds != 60 || got.Start == "" || got.Since == "" {
		t.Errorf("header: %+v", got)
	}

	for _, q := range []string{"0", "1441", "x", "-3"} {
		if r := p.admin("GET", "/admin/traffic?minutes="+q, nil); r.Status != http.StatusBadRequest || r.JSON(t)["error"] == nil {
			t.Errorf("minutes=%s: %d %s, want a JSON 400", q, r.Status, r.Body)
		}
	}
	if r := p.do("GET", "/admin/traffic", nil, map[string]string{"X-Admin-Key": "wrong-admin-key-0000000000"}); r.Status != http.StatusUnauthorized {
		t.Errorf("wrong admin key: %d", r.Status)
	}
}
