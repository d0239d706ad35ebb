// Package pages serves a built dashboard site the way GitHub Pages does, for
// trying the dashboard locally (`go run ./wasm/build -serve …`) and for the
// end-to-end tests.
package pages

import (
	"bytes"
	"compress/gzip"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Handler serves dir under prefix ("" or "/REPO") like GitHub Pages: files
// as they are, prefix without its slash redirected, a missing path answered
// with 404.html and status 404 (so client routes survive a reload), and
// every response cacheable for 600 s, as Pages sends it, and text and
// wasm files gzip-compressed when the browser accepts it (Pages compresses
// on the fly; compressed bodies are kept until the file changes).
func Handler(dir, prefix string) http.Handler {
	prefix = strings.TrimRight(prefix, "/")
	files := http.FileServer(http.Dir(dir))
	var gz gzipCache
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if prefix != "" && r.URL.Path == prefix {
			http.Redirect(w, r, prefix+"/", http.StatusMovedPermanently)
			return
		}
		rest, ok := strings.CutPrefix(r.URL.Path, prefix+"/")
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "max-age=600")
		p := filepath.Join(dir, filepath.FromSlash(rest))
		if st, err := os.Stat(p); err != nil || (st.IsDir() && !exists(filepath.Join(p, "index.html"))) {
			b, _ := os.ReadFile(filepath.Join(dir, "404.html"))
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusNotFound)
			w.Write(b)
			return
		}
		if st, _ := os.Stat(p); st != nil && st.IsDir() {
			p = filepath.Join(p, "index.html")
		}
		if compressible(p) && acceptsGzip(r) && (strings.HasSuffix(r.URL.Path, "/") || !strings.HasSuffix(p, "index.html")) {
			if body, mod, err := gz.get(p); err == nil {
				h := w.Header()
				ct := mime.TypeByExtension(filepath.Ext(p))
				if ct == "" {
					ct = "application/octet-stream"
				}
				h.Set("Content-Type", ct)
				h.Set("Content-Encoding", "gzip")
				h.Set("Vary", "Accept-Encoding")
				h.Set("Last-Modified", mod.UTC().Format(http.TimeFormat))
				h.Set("Content-Length", strconv.Itoa(len(body)))
				if r.Method != http.MethodHead {
					w.Write(body)
				}
				return
			}
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + rest
		files.ServeHTTP(w, r2)
	})
}

// compressible reports whether Pages would gzip the file: text and wasm.
func compressible(p string) bool {
	switch strings.ToLower(filepath.Ext(p)) {
	case ".wasm", ".js", ".css", ".html", ".json", ".webmanifest", ".svg", ".txt":
		return true
	}
	return false
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") && strings.ReplaceAll(strings.TrimSpace(params), " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// gzipCache holds each file's gzip body until the file changes.
type gzipCache struct {
	mu sync.Mutex
	m  map[string]gzipEntry
}

type gzipEntry struct {
	mod  time.Time
	size int64
	body []byte
}

func (c *gzipCache) get(p string) ([]byte, time.Time, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, time.Time{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[p]; ok && e.mod.Equal(st.ModTime()) && e.size == st.Size() {
		return e.body, e.mod, nil
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		return nil, time.Time{}, err
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	zw.Write(raw)
	if err := zw.Close(); err != nil {
		return nil, time.Time{}, err
	}
	if c.m == nil {
		c.m = map[string]gzipEntry{}
	}
	c.m[p] = gzipEntry{mod: st.ModTime(), size: st.Size(), body: buf.Bytes()}
	return buf.Bytes(), st.ModTime(), nil
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }
