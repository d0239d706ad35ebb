package residency

import "syscall"

// DropPages tells the kernel this process no longer needs the size bytes
// of the read-only file mapping at data resident (MADV_DONTNEED). The file
// and the page cache keep the data; a later read faults the page back in.
func DropPages(data uintptr, size int) {
	_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, data, uintptr(size), syscall.MADV_DONTNEED)
}
