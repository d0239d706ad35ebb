package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Process figures come from Linux's /proc: CPU time is utime+stime of
// /proc/PID/stat (all threads, in clock ticks), memory the VmRSS and VmHWM
// (peak RSS) lines of /proc/PID/status.

// procCPU returns the CPU time (user + system, all threads) process pid
// has used so far.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read CPU time of process %d: %w", pid, err)
	}
	return parseStatCPU(b, clockTick())
}

// parseStatCPU reads utime and stime (fields 14 and 15) of a /proc/PID/stat
// line. The command name (field 2) may hold spaces and parentheses, so
// fields are counted from the last ')'.
func parseStatCPU(stat []byte, tick time.Duration) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc stat: no command name in %q", truncate(string(stat), 80))
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 13 {
		return 0, fmt.Errorf("parse /proc stat: %d fields after the command name, want at least 13", len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse /proc stat: CPU field %q: %w", s, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * tick, nil
}

// procMem returns the resident set size of process pid now and its peak
// (VmHWM) since it started or since [resetPeakRSS], in bytes.
func procMem(pid int) (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("read memory of process %d: %w", pid, err)
	}
	rss, peak, err = parseStatusMem(b)
	if err != nil {
		return 0, 0, fmt.Errorf("process %d: %w", pid, err)
	}
	return rss, peak, nil
}

// parseStatusMem reads the VmRSS and VmHWM lines ("VmHWM:   14236 kB") of
// a /proc/PID/status file.
func parseStatusMem(status []byte) (rss, peak int64, err error) {
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != "VmRSS" && name != "VmHWM" {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("parse /proc status: unexpected %s line %q", name, val)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parse /proc status: %s: %w", name, err)
		}
		if name == "VmRSS" {
			rss = kb << 10
		} else {
			peak = kb << 10
		}
		found++
	}
	if found != 2 {
		return 0, 0, fmt.Errorf("parse /proc status: no VmRSS and VmHWM lines")
	}
	return rss, peak, nil
}

// resetPeakRSS sets the peak RSS (VmHWM) of process pid back to its current
// RSS (Linux 4.0 and later), so a later reading is the peak of what came
// in between.
func resetPeakRSS(pid int) error {
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		return fmt.Errorf("reset peak RSS of process %d: %w", pid, err)
	}
	return nil
}

// clockTick is the length of one clock tick of /proc CPU times: 1/AT_CLKTCK
// from the process's auxiliary vector, or 10 ms (USER_HZ 100, what Linux
// uses everywhere) when that cannot be read.
var clockTick = sync.OnceValue(func() time.Duration {
	if b, err := os.ReadFile("/proc/self/auxv"); err == nil {
		if hz := auxvValue(b, atClkTck); hz > 0 {
			return time.Second / time.Duration(hz)
		}
	}
	return 10 * time.Millisecond
})

const atClkTck = 17 // AT_CLKTCK, from <elf.h>

// auxvValue finds the value of entry typ in an auxiliary vector of native
// 64-bit (type, value) pairs; 0 if absent.
func auxvValue(auxv []byte, typ uint64) uint64 {
	for i := 0; i+16 <= len(auxv); i += 16 {
		t := binary.NativeEndian.Uint64(auxv[i:])
		if t == 0 {
			break
		}
		if t == typ {
			return binary.NativeEndian.Uint64(auxv[i+8:])
		}
	}
	return 0
}

// machineBusy returns the CPU time all processors of the machine have
// spent busy since boot (every state of the "cpu" line of /proc/stat but
// idle and iowait; steal counts as busy: another guest had the core).
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("read machine CPU time: %w", err)
	}
	return parseMachineBusy(b, clockTick())
}

func parseMachineBusy(stat []byte, tick time.Duration) (time.Duration, error) {
	line, _, _ := bytes.Cut(stat, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("parse /proc/stat: unexpected first line %q", truncate(string(line), 80))
	}
	var busy int64
	// user nice system idle iowait irq softirq steal (guest time is
	// already in user and nice).
	for i, s := range f[1:9] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse /proc/stat: %q: %w", s, err)
		}
		if i != 3 && i != 4 {
			busy += n
		}
	}
	return time.Duration(busy) * tick, nil
}

// machine describes the computer for the report.
type machine struct {
	CPU    string // model name of the first processor in /proc/cpuinfo
	Cores  int    // logical processors this process may use
	Kernel string // /proc/sys/kernel/osrelease
}

// readCPUModel returns the "model name" of /proc/cpuinfo, or "unknown".
func readCPUModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if name, val, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(val)
		}
	}
	return "unknown"
}

// readKernel returns the kernel release, or "unknown".
func readKernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
