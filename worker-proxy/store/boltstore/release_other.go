//go:build !linux

package boltstore

// dropPages is a no-op where the data file's resident pages are left to
// the operating system.
func dropPages(data uintptr, size int) {}
