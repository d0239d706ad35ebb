package main

import (
	"runtime"
	"testing"
)

// Allocations are sampled for heap profiles only when PPROF serves them.
func TestMemProfileRate(t *testing.T) {
	def := runtime.MemProfileRate
	if def == 0 {
		t.Fatal("this test process samples no allocations: cannot tell the default from off")
	}
	for env, want := range map[string]int{"": 0, "false": 0, "0": 0, "maybe": 0, "true": def, "1": def, "TRUE": def} {
		getenv := func(k string) string {
			if k == "PPROF" {
				return env
			}
			return ""
		}
		if got := memProfileRate(getenv); got != want {
			t.Errorf("PPROF=%q: MemProfileRate %d, want %d", env, got, want)
		}
	}
}
