package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Config is one harness run. The zero value is not usable; start from
// [DefaultConfig].
type Config struct {
	Conns    int           // concurrent connections (and request loops) per measured round
	Duration time.Duration // length of one measured round of one target and mode
	Warmup   time.Duration // unmeasured load right before each measured round
	Rounds   int           // rounds; each round measures every target once per mode

	SmallKeys int // keys in the small pool, split evenly between OpenAI and Gemini
	Keys      int // keys in the large pool, split likewise

	Chunks        int           // text chunks per streamed answer of the fake upstream
	ChunkInterval time.Duration // delay between two streamed chunks

	Modes    []string      // request kinds to run, see [modeNames]
	QuietLog bool          // also run the small-pool proxy with LOG_LEVEL=warn (no request log)
	Idle     time.Duration // how long the servers sit idle after the load to measure idle CPU

	// Stores also runs each pool with maxRequests on every key, and both
	// ways on STORE=redis (a redis-server the harness starts), to compare
	// the stores' relay cost (issue 13). RedisServer is its binary; ""
	// finds one.
	Stores      bool
	RedisServer string

	// KV also starts a proxy with STORE=cfkv on the repository's KV
	// emulator (run inside the harness, on 127.0.0.1) with Keys keys, and
	// times its restart over them (issue 17: at most 10 s). It takes no
	// load.
	KV bool

	ProxyBin string        // a proxy binary to use instead of building one
	Race     bool          // build the proxy with the race detector (for tests: slow to run, quick to build there)
	Timeout  time.Duration // hard limit of the whole run; 0 derives one from the settings

	// Progress receives one line per measured round and setup step; nil
	// discards them.
	Progress io.Writer
}

// DefaultConfig returns the settings of a plain `go run ./worker-proxy/bench`.
func DefaultConfig() Config {
	return Config{
		Conns: 32, Duration: 5 * time.Second, Warmup: 500 * time.Millisecond, Rounds: 3,
		SmallKeys: 10, Keys: 100000,
		Chunks: 5, ChunkInterval: 2 * time.Millisecond,
		Modes:    slices.Clone(modeNames),
		QuietLog: true,
		Idle:     3 * time.Second,
	}
}

// registerFlags binds the command-line flags to c, whose values are the
// defaults.
func (c *Config) registerFlags(fs *flag.FlagSet) {
	fs.IntVar(&c.Conns, "conns", c.Conns, "concurrent connections per measured round")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "length of one measured round of one target and mode")
	fs.DurationVar(&c.Warmup, "warmup", c.Warmup, "unmeasured load before each measured round")
	fs.IntVar(&c.Rounds, "rounds", c.Rounds, "rounds; targets are interleaved within each round")
	fs.IntVar(&c.SmallKeys, "small-keys", c.SmallKeys, "keys in the small pool, split evenly between OpenAI and Gemini")
	fs.IntVar(&c.Keys, "keys", c.Keys, "keys in the large pool, split evenly between OpenAI and Gemini")
	fs.IntVar(&c.Chunks, "chunks", c.Chunks, "text chunks per streamed answer of the fake upstream")
	fs.DurationVar(&c.ChunkInterval, "chunk-interval", c.ChunkInterval, "delay between two streamed chunks of the fake upstream")
	fs.Func("modes", "comma-separated request kinds: "+strings.Join(modeNames, ",")+" (default all)", func(s string) error {
		c.Modes = nil
		for m := range strings.SplitSeq(s, ",") {
			if m = strings.TrimSpace(m); m != "" {
				c.Modes = append(c.Modes, m)
			}
		}
		return nil
	})
	fs.BoolVar(&c.QuietLog, "nolog", c.QuietLog, "also run the small-pool proxy with LOG_LEVEL=warn, without the request log (its cost)")
	fs.DurationVar(&c.Idle, "idle", c.Idle, "idle time after the load over which idle CPU is measured")
	fs.BoolVar(&c.Stores, "stores", c.Stores, "also run each pool with maxRequests on every key, and both ways on STORE=redis (needs redis-server)")
	fs.BoolVar(&c.KV, "kv", c.KV, "also time a restart with STORE=cfkv over -keys keys on the KV emulator (no load)")
	fs.StringVar(&c.RedisServer, "redis-server", c.RedisServer, "redis-server binary for -stores (default: from PATH)")
	fs.StringVar(&c.ProxyBin, "proxy-bin", c.ProxyBin, "use this proxy binary instead of building ./worker-proxy")
	fs.BoolVar(&c.Race, "race", c.Race, "build the proxy with the race detector (its figures then mean little)")
	fs.DurationVar(&c.Timeout, "timeout", c.Timeout, "hard limit of the whole run (0: derived from the settings)")
}

// Flags renders c as the command-line flags that reproduce it.
func (c Config) Flags() string {
	f := fmt.Sprintf("-conns=%d -duration=%s -warmup=%s -rounds=%d -small-keys=%d -keys=%d -chunks=%d -chunk-interval=%s -modes=%s -nolog=%t -idle=%s",
		c.Conns, c.Duration, c.Warmup, c.Rounds, c.SmallKeys, c.Keys, c.Chunks, c.ChunkInterval, strings.Join(c.Modes, ","), c.QuietLog, c.Idle)
	if c.Stores {
		f += " -stores"
	}
	if c.KV {
		f += " -kv"
	}
	if c.ProxyBin != "" {
		f += " -proxy-bin=" + c.ProxyBin
	}
	if c.Race {
		f += " -race"
	}
	if c.Timeout != 0 {
		f += " -timeout=" + c.Timeout.String()
	}
	return f
}

// Check reports every setting out of its bounds. The bounds keep a run
// finite and within what one loopback machine can hold.
func (c Config) Check() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Conns < 1 || c.Conns > 1024 {
		bad("-conns %d: want 1 to 1024", c.Conns)
	}
	if c.Duration <= 0 || c.Duration > 10*time.Minute {
		bad("-duration %s: want more than 0 and at most 10m", c.Duration)
	}
	if c.Warmup < 0 || c.Warmup > time.Minute {
		bad("-warmup %s: want 0 to 1m", c.Warmup)
	}
	if c.Rounds < 1 || c.Rounds > 100 {
		bad("-rounds %d: want 1 to 100", c.Rounds)
	}
	if c.SmallKeys < 2 || c.SmallKeys > maxKeys {
		bad("-small-keys %d: want 2 (one per provider) to %d", c.SmallKeys, maxKeys)
	}
	if c.Keys < 2 || c.Keys > maxKeys {
		bad("-keys %d: want 2 (one per provider) to %d", c.Keys, maxKeys)
	}
	if c.Chunks < 1 || c.Chunks > 1000 {
		bad("-chunks %d: want 1 to 1000", c.Chunks)
	}
	if c.ChunkInterval < 0 || c.ChunkInterval > time.Second {
		bad("-chunk-interval %s: want 0 to 1s", c.ChunkInterval)
	}
	if len(c.Modes) == 0 {
		bad("-modes: name at least one of %s", strings.Join(modeNames, ","))
	}
	for _, m := range c.Modes {
		if !slices.Contains(modeNames, m) {
			bad("-modes: unknown mode %q (known: %s)", m, strings.Join(modeNames, ","))
		}
	}
	if c.Idle < 0 || c.Idle > time.Minute {
		bad("-idle %s: want 0 to 1m", c.Idle)
	}
	if c.Timeout < 0 {
		bad("-timeout %s: want 0 (automatic) or more", c.Timeout)
	}
	return errors.Join(errs...)
}

// maxKeys bounds the pool sizes, so an import stays a few bulk calls.
const maxKeys = 200000

// limit is the hard limit of a run: the configured one, else twice the
// planned load time plus two minutes for building and starting.
func (c Config) limit(cells int) time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	planned := time.Duration(c.Rounds*cells)*(c.Duration+c.Warmup) + c.Idle
	if c.KV {
		planned += time.Minute // importing the keys into KV and restarting over them
	}
	return 2*planned + 2*time.Minute
}
