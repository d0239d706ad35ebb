//go:build !js

package main

import "github.com/keypool/keypool/worker-proxy/store/redisstore"

// redisDefaultPrefix is REDIS_PREFIX's default.
const redisDefaultPrefix = redisstore.DefaultPrefix

// checkRedisURL parses REDIS_URL as the store will (no connection made).
func checkRedisURL(u string) error {
	cl, err := redisstore.NewClient(u)
	if err != nil {
		return err
	}
	cl.Close()
	return nil
}
