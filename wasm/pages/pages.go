// Package pages serves a built dashboard site the way GitHub Pages does, for
// trying the dashboard locally (`go run ./wasm/build -serve …`) and for the
// end-to-end tests.
package pages

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// Handler serves dir under prefix ("" or "/REPO") like GitHub Pages: files
// as they are, prefix without its slash redirected, a missing path answered
// with 404.html and status 404 (so client routes survive a reload), and
// every response cacheable for 600 s, as Pages sends it.
func Handler(dir, prefix string) http.Handler {
	prefix = strings.TrimRight(prefix, "/")
	files := http.FileServer(http.Dir(dir))
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
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + rest
		files.ServeHTTP(w, r2)
	})
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }
