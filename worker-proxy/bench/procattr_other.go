//go:build !linux

package main

import "syscall"

// childAttr: only Linux can tie a child's life to the harness. The harness
// measures through /proc, so it runs on Linux; this keeps the package
// building elsewhere.
func childAttr() *syscall.SysProcAttr { return nil }
