package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
)

// redisReady is redis-server's line once it accepts connections.
var redisReady = regexp.MustCompile(`Ready to accept connections`)

// findRedisServer returns the redis-server to use for -stores: path if
// set, else the one on PATH, else /usr/bin/redis-server.
func findRedisServer(path string) (string, error) {
	if path != "" {
		return path, nil
	}
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/bin/redis-server"); err == nil {
		return "/usr/bin/redis-server", nil
	}
	return "", fmt.Errorf("-stores needs redis-server (apt-get install redis-server, or -redis-server PATH)")
}

// startRedis starts a redis-server without persistence on a free port of
// 127.0.0.1 for the STORE=redis proxies; its URL is redis://host:port.
func startRedis(ctx context.Context, cs *children, dir, bin string) (*child, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	c, err := cs.startUntil(ctx, "redis-server", bin, []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no", "--daemonize", "no", "--loglevel", "notice",
	}, baseEnv(), filepath.Join(dir, "redis.log"), redisReady)
	if err != nil {
		return nil, err
	}
	c.URL = "redis://127.0.0.1:" + strconv.Itoa(port)
	return c, nil
}
