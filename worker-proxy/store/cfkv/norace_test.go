//go:build !race

package cfkv_test

// raceEnabled: the test binary runs under the race detector.
const raceEnabled = false
