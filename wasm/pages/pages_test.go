package pages

import (
	"bytes"
	"compress/gzip"
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

// app.wasm and text files are sent gzip-compressed when the browser
// accepts it, as Pages does; as they are otherwise.
func TestHandlerGzipsLikePages(t *testing.T) {
	dir := t.TempDir()
	wasm := bytes.Repeat([]byte("fake wasm body for the gzip test "), 4096)
	os.MkdirAll(filepath.Join(dir, "web"), 0o755)
	os.WriteFile(filepath.Join(dir, "web", "app.wasm"), wasm, 0o644)
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("<p>index</p>"), 0o644)
	os.WriteFile(filepath.Join(dir, "404.html"), []byte("fallback"), 0o644)
	os.WriteFile(filepath.Join(dir, "web", "logo.png"), []byte("png"), 0o644)
	srv := httptest.NewServer(Handler(dir, "/keypool"))
	defer srv.Close()
	c := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	get := func(path, accept string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if accept != "" {
			req.Header.Set("Accept-Encoding", accept)
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, b
	}
	res, body := get("/keypool/web/app.wasm", "gzip, deflate, br")
	if res.Header.Get("Content-Encoding") != "gzip" || res.Header.Get("Content-Type") != "application/wasm" || res.Header.Get("Vary") != "Accept-Encoding" ||
		res.Header.Get("Cache-Control") != "max-age=600" || len(body) >= len(wasm)/10 {
		t.Fatalf("gzip: %v, %d bytes for %d", res.Header, len(body), len(wasm))
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if plain, _ := io.ReadAll(zr); !bytes.Equal(plain, wasm) {
		t.Fatal("the gzip body is not the file")
	}
	if res, body := get("/keypool/web/app.wasm", ""); res.Header.Get("Content-Encoding") != "" || !bytes.Equal(body, wasm) {
		t.Fatalf("without Accept-Encoding: %v", res.Header)
	}
	if res, _ := get("/keypool/web/app.wasm", "gzip;q=0"); res.Header.Get("Content-Encoding") != "" {
		t.Fatal("gzip;q=0 still compressed")
	}
	if res, _ := get("/keypool/web/logo.png", "gzip"); res.Header.Get("Content-Encoding") != "" {
		t.Fatal("an image was compressed")
	}
	res, body = get("/keypool/", "gzip")
	if zr, err := gzip.NewReader(bytes.NewReader(body)); err != nil || res.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("index: %v %v", err, res.Header)
	} else if plain, _ := io.ReadAll(zr); string(plain) != "<p>index</p>" {
		t.Fatalf("index body %q", plain)
	}
}
