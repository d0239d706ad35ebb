package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/internal/fakeupstream"
)

// With the default LOG_FLUSH_INTERVAL, request log lines arrive within the
// interval, and stopping the proxy writes out whatever still waits.
func TestLogLinesBatched(t *testing.T) {
	f, p := startFakeProxy(t, fakeupstream.Options{}, map[string]string{"LOG_FLUSH_INTERVAL": ""})
	addKeys(t, f, p, "openai", "sk-logbatch", fakeupstream.OK)
	count := func() int { return strings.Count(p.stderr.String(), "msg=relay ") }
	for range 3 {
		if r := p.do("POST", "/api/openai/chat/completions", chatBody, bearer()); r.Status != http.StatusOK {
			t.Fatalf("relay: %d %s", r.Status, r.Body)
		}
	}
	waitUntil(t, 5*time.Second, "3 relay log lines", func() bool { return count() == 3 })
	// A burst right before a stop is not lost.
	for range 5 {
		p.do("POST", "/api/openai/chat/completions", chatBody, bearer())
	}
	p.stop()
	if n := count(); n != 8 {
		t.Fatalf("%d relay log lines after the stop, want 8:\n%s", n, p.stderr.String())
	}
	p.assertNoSecretsLogged()
}
