// Command build produces the dashboard's static site (GitHub Pages):
//
//	go run ./wasm/build -out web/dist -prefix /REPO
//	go run ./wasm/build -serve 127.0.0.1:8081   # build, then serve it like Pages
//
// It builds app.wasm (GOOS=js GOARCH=wasm, -ldflags=-s -w), prerenders the
// pages with go-app, copies web/static, writes local PNG icons, 404.html
// (client routes survive a reload) and .nojekyll. The service worker
// fetches every resource with {cache: "reload"}, so a new deploy is picked
// up on reload instead of a stale app.wasm from the HTTP cache. The
// version is a hash of the built files: same input, same version.
package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/keypool/keypool/wasm/pages"
	"github.com/keypool/keypool/wasm/ui"
	"github.com/maxence-charriere/go-app/v10/pkg/app"
)

const marker = ".keypool-site"

func main() {
	out := flag.String("out", "web/dist", "output directory (replaced if it holds a previous build)")
	prefix := flag.String("prefix", "", `path the site is served under, e.g. "/keypool" for https://USER.github.io/keypool/; empty for a domain root`)
	proxy := flag.String("proxy", "", "default proxy URL shown on the connect screen (public: baked into app.js)")
	static := flag.String("static", "", "static assets directory (default: web/static in the module)")
	serve := flag.String("serve", "", "after the build, serve the site on this address (like 127.0.0.1:8081) the way GitHub Pages does")
	flag.Parse()
	if err := build(*out, *prefix, *proxy, *static); err != nil {
		log.Fatal(err)
	}
	if *serve != "" {
		ln, err := net.Listen("tcp", *serve)
		if err != nil {
			log.Fatal(err)
		}
		origin := "http://" + ln.Addr().String()
		fmt.Printf("dashboard: %s%s/\nallow it on the proxy: ALLOWED_ORIGINS=%s\n", origin, strings.TrimRight(*prefix, "/"), origin)
		log.Fatal(http.Serve(ln, pages.Handler(*out, *prefix)))
	}
}

func moduleRoot() (string, error) {
	b, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(b))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run inside the keypool module")
	}
	return filepath.Dir(mod), nil
}

func build(out, prefix, proxy, static string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if static == "" {
		static = filepath.Join(root, "web", "static")
	}
	prefix = strings.TrimRight(prefix, "/")
	if prefix != "" && !strings.HasPrefix(prefix, "/") {
		prefix = "/" + prefix
	}
	if err := cleanOut(out); err != nil {
		return err
	}
	webDir := filepath.Join(out, "web")
	if err := os.MkdirAll(webDir, 0o755); err != nil {
		return err
	}

	wasmPath := filepath.Join(webDir, "app.wasm")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", wasmPath, "./wasm")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building app.wasm: %w", err)
	}
	if err := copyDir(static, webDir); err != nil {
		return fmt.Errorf("copying %s: %w", static, err)
	}
	for _, n := range []int{192, 512} {
		if err := writeIcon(filepath.Join(webDir, fmt.Sprintf("icon-%d.png", n)), n); err != nil {
			return err
		}
	}
	version, err := hashDir(webDir)
	if err != nil {
		return err
	}
	wasmInfo, err := os.Stat(wasmPath)
	if err != nil {
		return err
	}

	h := &app.Handler{
		Name:            "KeyPool admin",
		ShortName:       "KeyPool",
		Title:           "KeyPool admin",
		Description:     "Manage the API keys and client tokens of a KeyPool proxy",
		Lang:            "en",
		BackgroundColor: "#f5f7fa",
		ThemeColor:      "#1f4e79",
		LoadingLabel:    "KeyPool {progress}%",
		Icon: app.Icon{
			Default: "/web/icon-192.png",
			Large:   "/web/icon-512.png",
			SVG:     "/web/icon.svg",
		},
		Styles:                []string{"/web/dashboard.css"},
		Env:                   map[string]string{ui.DefaultProxyEnv: proxy},
		Version:               version,
		WasmContentLength:     strconv.FormatInt(wasmInfo.Size(), 10),
		ServiceWorkerTemplate: ServiceWorker(),
	}
	if prefix != "" {
		h.Resources = app.PrefixedLocation(prefix)
	}
	ui.Register()
	if err := app.GenerateStaticWebsite(out, h); err != nil {
		return fmt.Errorf("generating the site: %w", err)
	}
	index, err := os.ReadFile(filepath.Join(out, "index.html"))
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{"404.html": index, ".nojekyll": nil, marker: []byte(version + "\n")} {
		if err := os.WriteFile(filepath.Join(out, name), data, 0o644); err != nil {
			return err
		}
	}
	gz, err := gzipSize(wasmPath)
	if err != nil {
		return err
	}
	fmt.Printf("site in %s (prefix %q, version %s)\napp.wasm: %d bytes raw, %d bytes gzip (budget 2.5 MB = 2621440)\n",
		out, prefix, version, wasmInfo.Size(), gz)
	if gz > 2_621_440 {
		return fmt.Errorf("app.wasm gzip size %d is over the 2.5 MB budget", gz)
	}
	return nil
}

// ServiceWorker is go-app's worker with the install step fetching each
// resource past the browser's HTTP cache (Pages sends max-age=600).
func ServiceWorker() string {
	const old = "await cache.addAll(resourcesToCache);"
	const fresh = `await Promise.all(resourcesToCache.map(async (url) => {
    const res = await fetch(url, { cache: "reload" });
    if (!res.ok) {
      throw new Error("fetching " + url + ": " + res.status);
    }
    await cache.put(url, res);
  }));`
	if !strings.Contains(app.DefaultAppWorkerJS, old) {
		panic("go-app's service worker changed: update the cache fix in wasm/build")
	}
	return strings.Replace(app.DefaultAppWorkerJS, old, fresh, 1)
}

// cleanOut empties out if it is missing, empty or a previous build.
func cleanOut(out string) error {
	entries, err := os.ReadDir(out)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		if _, err := os.Stat(filepath.Join(out, marker)); err != nil {
			return fmt.Errorf("%s is not empty and holds no previous build (%s); refusing to delete it", out, marker)
		}
	}
	return os.RemoveAll(out)
}

func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}

func hashDir(dir string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		io.WriteString(h, filepath.ToSlash(p)+"\x00")
		_, err = io.Copy(h, f)
		return err
	})
	return hex.EncodeToString(h.Sum(nil))[:16], err
}

func gzipSize(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(b)
	zw.Close()
	return buf.Len(), nil
}

// writeIcon draws the app icon (a rounded key-blue square with a white
// ring) as a PNG, so no icon is fetched from another host.
func writeIcon(path string, n int) error {
	img := image.NewRGBA(image.Rect(0, 0, n, n))
	blue := color.RGBA{0x1f, 0x4e, 0x79, 0xff}
	white := color.RGBA{0xff, 0xff, 0xff, 0xff}
	c, r := float64(n)/2.6, float64(n)/6
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			img.Set(x, y, blue)
			dx, dy := float64(x)-c, float64(y)-float64(n)/2
			d2 := dx*dx + dy*dy
			if d2 <= r*r && d2 >= (r*0.55)*(r*0.55) {
				img.Set(x, y, white)
			}
			if x > int(c+r) && x < n*7/8 && y > n/2-n/24 && y < n/2+n/24 {
				img.Set(x, y, white)
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}
