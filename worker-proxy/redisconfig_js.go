//go:build js

package main

import "errors"

// The edge build (edge_js.go) refuses STORE=redis, which needs TCP, so it
// leaves go-redis out: that alone is about 17 MB of the wasm.

// redisDefaultPrefix is redisstore.DefaultPrefix.
const redisDefaultPrefix = "keypool:"

func checkRedisURL(string) error {
	return errors.New("STORE=redis is not available in the edge build")
}
