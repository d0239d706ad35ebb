//go:build !linux

package residency

// DropPages is a no-op where a file mapping's resident pages are left to
// the operating system.
func DropPages(data uintptr, size int) {}

// ResidentKB is not known here: ok is false.
func ResidentKB(path string) (kb int, ok bool) { return 0, false }
