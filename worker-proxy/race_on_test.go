//go:build race

package main

// raceEnabled: the proxy binary under test is built with -race too.
const raceEnabled = true
