// Command bench is the relay benchmark harness (issue 7): in one run on
// 127.0.0.1 it builds the proxy, starts a fake upstream, a bare
// httputil.ReverseProxy baseline and the real proxy with a small and a
// large key pool (and once with the request log on), drives each with the
// same load from an in-process generator, interleaving targets round by
// round, and prints a markdown table of throughput, latency, CPU per
// request and peak RSS, with the proxy/baseline ratios, and the idle CPU.
//
//	go run ./worker-proxy/bench [flags]
//
// Progress goes to stderr, the report to stdout. The run is bounded in
// time (-timeout) and connections (-conns), and stops every process it
// started when it ends, fails or is interrupted. It needs Linux (/proc).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if role := os.Getenv(envRole); role != "" {
		if err := runRole(role, os.Getenv, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: go run ./worker-proxy/bench [flags]\n\nBenchmarks the proxy against a bare reverse proxy on 127.0.0.1 and prints a markdown report.\n\n")
		fs.PrintDefaults()
	}
	cfg.registerFlags(fs)
	fs.Parse(os.Args[1:])
	if fs.NArg() > 0 {
		fs.Usage()
		os.Exit(2)
	}
	cfg.Progress = os.Stderr

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// run benchmarks with cfg and writes the report to stdout.
func run(ctx context.Context, cfg Config, stdout io.Writer) error {
	res, err := bench(ctx, cfg)
	if err != nil {
		return err
	}
	return writeReport(stdout, res)
}
