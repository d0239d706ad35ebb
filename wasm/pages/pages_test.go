package pages

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

func TestHandlerLikePages(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("index"), 0o644)
	os.WriteFile(filepath.Join(dir, "404.html"), []byte("fallback"), 0o644)
	os.MkdirAll(filepath.Join(dir, "web"), 0o755)
	os.WriteFile(filepath.Join(dir, "web", "app.wasm"), []byte("wasm"), 0o644)
	for _, prefix := range []string{"/keypool", ""} {
		srv := httptest.NewServer(Handler(dir, prefix))
		get := func(path string) (int, string, string) {
			c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			res, err := c.Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			return res.StatusCode, string(b), res.Header.Get("Location")
		}
		for _, tc := range []struct {
			path, body string
			status     int
		}{
			{prefix + "/", "index", 200},
			{prefix + "/web/app.wasm", "wasm", 200},
			{prefix + "/keys", "fallback", 404},
			{prefix + "/web/", "fallback", 404},
		} {
			if status, body, _ := get(tc.path); status != tc.status || body != tc.body {
				t.Errorf("prefix %q GET %s = %d %q, want %d %q", prefix, tc.path, status, body, tc.status, tc.body)
			}
		}
		if prefix != "" {
			if status, _, loc := get(prefix); status != 301 || loc != prefix+"/" {
				t.Errorf("GET %s = %d → %q, want a redirect to %s/", prefix, status, loc, prefix)
			}
			if status, _, _ := get("/other/"); status != 404 {
				t.Errorf("outside the prefix: %d", status)
			}
		}
		srv.Close()
	}
}
