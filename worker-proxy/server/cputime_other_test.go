//go:build !unix

package server

// cpuTime is unknown here; benchmarks report 0.
func cpuTime() int64 { return 0 }
