package pool

import (
	"fmt"
	"strings"
)

// Strategy is how a Pool picks among the keys that can serve.
type Strategy uint8

const (
	// RoundRobin takes the keys in a stable order (by creation), each in turn.
	RoundRobin Strategy = iota
	// LeastUsed takes the key with the lowest request count; ties go to the
	// earlier key in the stable order.
	LeastUsed
	// Random takes a key uniformly at random.
	Random
	// Weighted takes a key at random with a probability proportional to
	// its weight (default 1).
	Weighted
	// LeastBusy draws two keys at random and takes the one with fewer
	// requests in flight ("power of two choices"): load-aware, lock-free.
	LeastBusy
)

// Strategies lists every strategy, in the order of their values.
var Strategies = []Strategy{RoundRobin, LeastUsed, Random, Weighted, LeastBusy}

// String returns the strategy's name as clients write it.
func (s Strategy) String() string {
	switch s {
	case RoundRobin:
		return "roundRobin"
	case LeastUsed:
		return "leastUsed"
	case Random:
		return "random"
	case Weighted:
		return "weighted"
	case LeastBusy:
		return "leastBusy"
	}
	return fmt.Sprintf("Strategy(%d)", uint8(s))
}

// ParseStrategy reads a strategy name. The empty name is RoundRobin. Names
// match case-insensitively, with or without '_' or '-' ("least_used").
func ParseStrategy(name string) (Strategy, error) {
	switch name { // the exact names, without allocating
	case "", "roundRobin":
		return RoundRobin, nil
	case "leastUsed":
		return LeastUsed, nil
	case "random":
		return Random, nil
	case "weighted":
		return Weighted, nil
	case "leastBusy":
		return LeastBusy, nil
	}
	n := strings.ToLower(nameFolder.Replace(name))
	switch n {
	case "", "roundrobin", "rr":
		return RoundRobin, nil
	case "leastused":
		return LeastUsed, nil
	case "random":
		return Random, nil
	case "weighted":
		return Weighted, nil
	case "leastbusy", "p2c", "poweroftwo", "leastinflight":
		return LeastBusy, nil
	}
	return 0, invalid("unknown strategy %q: use roundRobin, leastUsed, random, weighted or leastBusy", truncate(name, 40))
}

var nameFolder = strings.NewReplacer("_", "", "-", "")

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
