package pool

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/keypool/keypool/worker-proxy/internal/testenv"
)

// The dashboard compiles the shared packages to WebAssembly: they must
// build for js/wasm and import only the standard library (and not net/http,
// which would triple the dashboard's size).
func TestSharedPackagesBuildForWasm(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		testenv.Missing(t, "the go tool")
	}
	shared := []string{"github.com/keypool/keypool/worker-proxy/pool", "github.com/keypool/keypool/worker-proxy/adminapi", "github.com/keypool/keypool/worker-proxy/limits"}
	env := append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0")
	build := exec.Command("go", append([]string{"vet"}, shared...)...)
	build.Env = env
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("GOOS=js GOARCH=wasm go vet: %v\n%s", err, out)
	}
	list := exec.Command("go", append([]string{"list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}} {{.ImportPath}}"}, shared...)...)
	list.Env = env
	out, err := list.Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		nonStd, path, _ := strings.Cut(line, " ")
		if path == "" {
			path = nonStd
			nonStd = ""
		}
		if nonStd != "" && !slices.Contains(shared, nonStd) {
			t.Errorf("shared packages import %s", nonStd)
		}
		if strings.HasPrefix(path, "net/http") || path == "net" {
			t.Errorf("shared packages import %s", path)
		}
	}
}
