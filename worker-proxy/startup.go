package main

// What the binary (main.go) and the edge build (edge_js.go) share from the
// start-up path.

import (
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// printBanner says where the proxy listens (all interfaces, loopback only,
// or one address), the URLs to use from this machine, and how to open the
// dashboard.
func printBanner(w io.Writer, cfg Config, addr *net.TCPAddr, adminKey string, generated bool) {
	port := strconv.Itoa(addr.Port)
	base := "http://" + net.JoinHostPort(addr.IP.String(), port)
	// One write, so a reader of the first line has the rest too.
	var b strings.Builder
	switch {
	case addr.IP.IsUnspecified():
		base = "http://" + net.JoinHostPort("127.0.0.1", port)
		fmt.Fprintf(&b, "API Key Pool proxy listening on all interfaces, port %s: %s from this machine, http://<this machine's address>:%s from others\n", port, base, port)
	case addr.IP.IsLoopback():
		fmt.Fprintf(&b, "API Key Pool proxy listening on %s (loopback only: other machines cannot connect; HOST=0.0.0.0 lets them)\n", base)
	default:
		fmt.Fprintf(&b, "API Key Pool proxy listening on %s (this address only)\n", base)
	}
	fmt.Fprintf(&b, "  relay:     %s/api/{gemini|openai|anthropic}/...  and  %s/v1 (OpenAI-compatible)\n", base, base)
	fmt.Fprintf(&b, "  admin API: %s/admin/status (header X-Admin-Key)\n", base)
	switch {
	case slices.Contains(cfg.AllowedOrigins, "*"):
		fmt.Fprintf(&b, "  dashboard: open it from any origin (ALLOWED_ORIGINS=*) and connect it to %s with the admin key\n", base)
	case len(cfg.AllowedOrigins) > 0:
		fmt.Fprintf(&b, "  dashboard: open %s and connect it to %s with the admin key\n", strings.Join(cfg.AllowedOrigins, " or "), base)
	default:
		fmt.Fprintf(&b, "  dashboard: no browser origin allowed yet; set ALLOWED_ORIGINS to the dashboard's origin (for the local one, `go run ./wasm/build -serve 127.0.0.1:8081`: ALLOWED_ORIGINS=http://127.0.0.1:8081)\n")
	}
	if generated {
		fmt.Fprintf(&b, "  admin key (generated, shown once, saved in %s): %s\n", filepath.Join(cfg.DataDir, adminKeyFile), adminKey)
	} else if cfg.AdminKey == "" {
		fmt.Fprintf(&b, "  admin key: read from %s\n", filepath.Join(cfg.DataDir, adminKeyFile))
	}
	io.WriteString(w, b.String())
}

// serverRetries maps MAX_RETRIES (0 = none) onto server.Config.MaxRetries,
// where 0 means the default and a negative number none.
func serverRetries(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
