package main

import (
	"net/url"
	"os"
	osexec "os/exec"
	"strings"
	"testing"
)

// The container image's health check runs `worker-proxy healthcheck`.
func TestHealthcheckSubcommand(t *testing.T) {
	p := startProxy(t, nil)
	u, _ := url.Parse(p.URL)
	run := func(port string) (int, string) {
		cmd := osexec.Command(proxyBin, "healthcheck")
		cmd.Env = []string{"PORT=" + port, "PATH=" + os.Getenv("PATH")}
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	if code, out := run(u.Port()); code != 0 {
		t.Fatalf("healthy proxy: exit %d %s", code, out)
	}
	if r := p.do("GET", "/readyz", nil, nil); r.Status != 200 || r.JSON(t)["status"] != "ready" {
		t.Fatalf("/readyz: %d %s", r.Status, r.Body)
	}
	p.stop()
	if code, out := run(u.Port()); code != 1 || !strings.Contains(out, "healthcheck") {
		t.Fatalf("stopped proxy: exit %d %s", code, out)
	}
}
