package edge

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/keypool/keypool/worker-proxy/internal/fakeupstream"
)

// BenchmarkEdgeFloor tells how much of the edge build's CPU per request is
// the proxy's own work and how much any Go relay pays on Deno: in one
// run, the proxy (native and edge) against testdata/floor, the least a Go
// relay does (httputil.ReverseProxy, one fixed key, nothing else), built
// natively and for the bridge, and the same bridge answering without an
// upstream (FLOOR=noop: Deno's server, the bridge and Go's wake-up, no
// fetch). floor-ratio is the bridged floor against the native proxy: the
// best ratio to native a Go relay on this bridge could reach. The cold
// start (median of coldStartRuns) and the resident memory after the load
// of the edge build and the bridged floor are reported too.
// Run: go test -run '^$' -bench EdgeFloor -benchtime 1x ./worker-proxy/edge/
func BenchmarkEdgeFloor(b *testing.B) {
	up, err := fakeupstream.Start(fakeupstream.Options{StreamChunks: 5})
	if err != nil {
		b.Fatal(err)
	}
	defer up.Close()
	env := upstreamEnv(up)
	env["LOG_LEVEL"] = "warn"
	dir := b.TempDir()
	build := func(out string, goEnv ...string) {
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./testdata/floor")
		cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0"), goEnv...)
		if msg, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("floor build %v: %v\n%s", goEnv, err, msg)
		}
	}
	proxyBin, floorBin := buildNative(b), filepath.Join(dir, "floor")
	build(floorBin)
	// The floor's edge folder: the proxy's, built by the same tool, with
	// the floor as its wasm.
	floorDir := filepath.Join(dir, "floor-edge")
	if msg, err := exec.Command("go", "run", "./build", "-package", "./testdata/floor", "-out", floorDir).CombinedOutput(); err != nil {
		b.Fatalf("floor edge build: %v\n%s", err, msg)
	}
	keyed := withStartKey(env)
	native, _ := coldStart(b, nativeStarter(b, proxyBin, keyed), false)
	nativeFloor, _ := coldStart(b, nativeStarter(b, floorBin, env), false)
	edge, edgeCold := coldStarts(b, coldStartRuns, denoStarter(b, filepath.Join(built(b), "main.js"), keyed), false)
	floor, floorCold := coldStarts(b, coldStartRuns, denoStarter(b, filepath.Join(floorDir, "main.js"), env), false)
	noop, _ := coldStart(b, denoStarter(b, filepath.Join(floorDir, "main.js"), withEnv(env, "FLOOR", "noop")), false)
	b.ResetTimer()
	nPlain, nSSE, _ := relayCost(b, native)
	nfPlain, nfSSE, _ := relayCost(b, nativeFloor)
	ePlain, eSSE, eRSS := relayCost(b, edge)
	fPlain, fSSE, fRSS := relayCost(b, floor)
	zPlain, _, _ := relayCost(b, noop) // a noop answers the stream request with its JSON too
	b.StopTimer()

	b.ReportMetric(float64(edgeCold.Microseconds())/1000, "deno-cold-ms")
	b.ReportMetric(float64(floorCold.Microseconds())/1000, "deno-floor-cold-ms")
	b.ReportMetric(float64(eRSS)/(1<<20), "deno-rss-MB")
	b.ReportMetric(float64(fRSS)/(1<<20), "deno-floor-rss-MB")

	b.ReportMetric(nPlain, "native-cpu-ms/req")
	b.ReportMetric(nfPlain, "native-floor-cpu-ms/req")
	b.ReportMetric(ePlain, "deno-cpu-ms/req")
	b.ReportMetric(fPlain, "deno-floor-cpu-ms/req")
	b.ReportMetric(zPlain, "deno-noop-cpu-ms/req")
	b.ReportMetric(ePlain/nPlain, "cpu-ratio-plain")
	b.ReportMetric(fPlain/nPlain, "floor-ratio-plain")
	b.ReportMetric(zPlain/nPlain, "noop-ratio-plain")
	b.ReportMetric(fPlain/nfPlain, "floor-vs-native-floor")
	b.ReportMetric(eSSE/nSSE, "cpu-ratio-sse")
	b.ReportMetric(fSSE/nSSE, "floor-ratio-sse")
	b.ReportMetric(fSSE/nfSSE, "floor-vs-native-floor-sse")
}

// TestFloorBuilds keeps testdata/floor (outside ./... patterns, so no
// build or vet reaches it otherwise) in step with the bridge: it must
// build for js/wasm and natively for BenchmarkEdgeFloor.
func TestFloorBuilds(t *testing.T) {
	for _, goos := range [][]string{{"GOOS=js", "GOARCH=wasm"}, nil} {
		cmd := exec.Command("go", "vet", "./testdata/floor")
		cmd.Env = append(append(os.Environ(), "CGO_ENABLED=0"), goos...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("go vet ./testdata/floor %v: %v\n%s", goos, err, out)
		}
	}
}
