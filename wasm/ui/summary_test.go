//go:build !js

package ui

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/keypool/keypool/worker-proxy/adminapi"
	"github.com/keypool/keypool/worker-proxy/adminclient"
	"github.com/maxence-charriere/go-app/v10/pkg/app"
)

// countingWriter counts the bytes of an answer.
type countingWriter struct {
	http.ResponseWriter
	n int
}

func (w *countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n += n
	return n, err
}

// No tab downloads every key: the overview, the Keys tab (its filters
// list every tag and project from the summary), the drawer, the tokens,
// the requests and the playground (its answer names the masked key it
// got from the proxy) ask for the summary and pages only, and every
// answer is small.
func TestNoTabAsksForEveryKey(t *testing.T) {
	ts := startServerUpstream(t, &geminiUpstream{})
	c := adminclient.New(ts.URL, adminKey)
	pagedPool(t, c, 300)
	proj := "4242"
	if _, err := c.AddKey(t.Context(), adminapi.AddKeyRequest{Provider: "gemini", APIKey: "AIzaSyFakeSummaryRare0000001",
		Metadata: &adminapi.Metadata{Tags: &[]string{"rare"}}, Project: &proj}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var asked []string
	biggest := 0
	spy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &countingWriter{ResponseWriter: w}
		ts.Config.Handler.ServeHTTP(cw, r)
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, r.URL.RequestURI())
		biggest = max(biggest, cw.n)
	}))
	t.Cleanup(spy.Close)

	h := mount(t, &Dashboard{})
	h.connect(spy.URL, adminKey)
	if got := tileValue(t, h.html(), "tile-total"); got != "301" {
		t.Fatalf("total tile %q", got)
	}
	h.contains("gemini: 226 keys in 4 projects + 75 of unknown project")

	h.fire("tab-keys", "click")
	h.contains(`value="rare"`, `value="4242"`, `value="1001"`, "301 of 301 keys")
	var k adminapi.KeyStatus
	for _, id := range h.rowIDs() {
		if k, _ = h.d.findShown(id); k.Project != "" {
			break
		}
	}
	h.fire("open-"+k.ID, "click")
	n := len(serverIDs(t, c, Filter{Project: k.Project}))
	h.contains(fmt.Sprintf("shares one quota with %d other keys here", n-1))

	for _, tab := range []string{TabTokens, TabRequests, TabPlayground, TabOverview, TabKeys} {
		h.fire("tab-"+tab, "click")
		h.do(func(ctx app.Context) { h.d.refresh(ctx) })
	}
	h.fire("tab-"+TabPlayground, "click")
	h.d.play.Token, h.d.play.Prompt = clientToken, "hi"
	h.do(h.d.SendPrompt)
	if h.d.play.Status != 200 || h.d.play.KeyID == "" {
		t.Fatalf("playground: %+v", h.d.play)
	}
	served, err := c.GetKey(t.Context(), h.d.play.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(served.MaskedKey, "AIza") {
		t.Fatalf("served by %q", served.MaskedKey)
	}
	h.contains(fmt.Sprintf("served by %s (%s)", served.MaskedKey, served.ID))

	mu.Lock()
	defer mu.Unlock()
	summaries := 0
	for _, u := range asked {
		path, query, _ := strings.Cut(u, "?")
		switch path {
		case "/admin/status":
			if !strings.Contains(query, "limit=") {
				t.Errorf("asked for the whole status: %s", u)
			}
		case "/admin/summary":
			summaries++
		}
	}
	if summaries < 8 || biggest > 64<<10 {
		t.Errorf("%d summaries asked, biggest answer %d bytes: %v", summaries, biggest, asked)
	}
}
