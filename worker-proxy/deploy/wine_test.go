package deploy_test

// deploy.bat under Wine's cmd.exe. What runs: the checks for git and Go
// (with the install hints), the Go version comparison, and, with a Windows
// build of worker-proxy standing in for `go build`, the arguments and exit
// code passed through. What does not: the deploy steps. Git for Windows is
// not available here, and under Wine a Windows program cannot wait for a
// Linux git (WaitForSingleObject: invalid handle), so those are tested
// with deploy.sh only; it is the same Go code.

import (
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// winPath is p on Wine's Z: drive.
func winPath(p string) string { return "Z:" + strings.ReplaceAll(p, "/", `\`) }

type wine struct {
	env []string
}

// startWine makes a Wine prefix for t and keeps a wineserver for it.
func startWine(t *testing.T) *wine {
	t.Helper()
	need(t, "wine", "wineserver", "go")
	prefix := filepath.Join(t.TempDir(), "wineprefix")
	env := testEnv(t)
	delete(env, "CF_API_TOKEN") // Wine passes the Unix environment on
	env["WINEPREFIX"] = prefix
	env["WINEDEBUG"] = "-all"
	env["WINEDLLOVERRIDES"] = "mscoree,mshtml=" // no Mono or Gecko install prompts
	w := &wine{env: environ(env)}
	t.Cleanup(func() { // stop the prefix's server and background services
		k := exec.Command("wineserver", "-k")
		k.Env = w.env
		k.Run()
	})
	start := time.Now()
	if r := w.cmd(t, "", "echo", "ready"); r.code != 0 || !strings.Contains(r.stdout, "ready") {
		t.Fatalf("wine cmd does not run: %s", r)
	}
	t.Logf("wine prefix ready in %s", time.Since(start).Round(time.Millisecond))
	// Go programs since 1.22 need bcryptprimitives.dll (ProcessPrng), which
	// Wine 8 lacks: stand in a DLL that forwards it to RtlGenRandom.
	sys32 := filepath.Join(prefix, "drive_c", "windows", "system32")
	if err := os.WriteFile(filepath.Join(sys32, "bcryptprimitives.dll"),
		forwarderDLL("bcryptprimitives.dll", "ProcessPrng", "advapi32.SystemFunction036"), 0o644); err != nil {
		t.Fatal(err)
	}
	return w
}

// cmd runs `wine cmd /c ARGS` with path (Windows directories, ;-separated)
// in front of Wine's PATH.
func (w *wine) cmd(t *testing.T, path string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "wine", append([]string{"cmd", "/c"}, args...)...)
	cmd.Env = append(w.env, "WINEPATH="+path)
	// Files, not pipes: Wine's background services inherit the output and
	// keep a pipe open long after cmd has exited.
	stdout, stderr := tempFile(t), tempFile(t)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err := cmd.Run()
	read := func(f *os.File) string {
		b, _ := os.ReadFile(f.Name())
		return strings.ReplaceAll(string(b), "\r\n", "\n")
	}
	r := result{code: cmd.ProcessState.ExitCode(), stdout: read(stdout), stderr: read(stderr)}
	if err != nil && r.code <= 0 {
		t.Fatalf("wine did not run: %v\n%s", err, r)
	}
	return r
}

func tempFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestDeployBatUnderWine(t *testing.T) {
	w := startWine(t)

	// What deploy.bat reads before Go runs: itself and go.mod.
	dir := filepath.Join(t.TempDir(), "keypool")
	os.MkdirAll(dir, 0o755)
	for _, f := range []string{"deploy.bat", "go.mod"} {
		b, err := os.ReadFile(filepath.Join(repoRoot, f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	bat := winPath(filepath.Join(dir, "deploy.bat"))

	// The real `worker-proxy deploy`, built for Windows; a fake go.bat
	// reports a version and "builds" by copying it.
	exe := filepath.Join(t.TempDir(), "worker-proxy.exe")
	build := exec.Command("go", "build", "-trimpath", "-o", exe, "./worker-proxy")
	build.Dir = repoRoot
	build.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	start := time.Now()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building worker-proxy.exe: %v %s", err, out)
	}
	t.Logf("worker-proxy.exe built in %s", time.Since(start).Round(time.Millisecond))
	fakeGo := func(version string) string {
		d := t.TempDir()
		script := "@echo off\r\n" +
			"if \"%1\"==\"env\" if \"%2\"==\"GOVERSION\" (\r\n  echo " + version + "\r\n  exit /b 0\r\n)\r\n" +
			"if \"%1\"==\"build\" (\r\n  copy /y \"" + winPath(exe) + "\" %4 >nul\r\n  if errorlevel 1 exit /b 1\r\n  exit /b 0\r\n)\r\n" +
			">&2 echo fake go: unexpected arguments %*\r\nexit /b 3\r\n"
		if err := os.WriteFile(filepath.Join(d, "go.bat"), []byte(script), 0o644); err != nil {
			t.Fatal(err)
		}
		return winPath(d)
	}
	gitDir := t.TempDir() // only looked up, never run
	os.WriteFile(filepath.Join(gitDir, "git.bat"), []byte("@exit /b 0\r\n"), 0o644)
	gitPath := winPath(gitDir)

	for _, tc := range []struct {
		name string
		path string
		want []string
	}{
		{"no git", fakeGo("go1.26.8"), []string{"git is not installed", "winget install --id Git.Git -e", "https://git-scm.com/downloads"}},
		{"no go", gitPath, []string{"Go is not installed", "go.mod needs go 1.26", "winget install --id GoLang.Go -e", "https://go.dev/dl/"}},
		{"go1.20.3", gitPath + ";" + fakeGo("go1.20.3"), []string{"go.mod needs go 1.26", "this is go1.20.3.", "https://go.dev/dl/"}},
		{"go1.3", gitPath + ";" + fakeGo("go1.3"), []string{"this is go1.3."}},
		{"go1.25.9", gitPath + ";" + fakeGo("go1.25.9"), []string{"this is go1.25.9."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := w.cmd(t, tc.path, bat, "--repo", "alice/keypool")
			if r.code != 1 {
				t.Fatalf("want exit 1: %s", r)
			}
			mustContain(t, r, "stderr", tc.want...)
			if r.stdout != "" {
				t.Errorf("stdout: %q", r.stdout)
			}
		})
	}
	for _, v := range []string{"go1.26.0", "go1.27rc1", "go1.100.0"} {
		t.Run(v, func(t *testing.T) {
			path := gitPath + ";" + fakeGo(v)
			r := w.cmd(t, path, bat, "--help")
			if r.code != 0 || !strings.HasPrefix(r.stdout, "Usage: deploy.sh [OWNER/NAME] [options]") {
				t.Errorf("--help: %s", r)
			}
			r = w.cmd(t, path, bat, "--proxy-url", "not a url")
			if r.code != 2 || !strings.Contains(r.stderr, `--proxy-url: "not a url" is not a URL`) {
				t.Errorf("want exit 2 and the argument intact: %s", r)
			}
			r = w.cmd(t, path, bat, "--cf-token="+testToken)
			if r.code != 2 || !strings.Contains(r.stderr, "only from the environment variable CF_API_TOKEN") || strings.Contains(r.stdout+r.stderr, testToken) {
				t.Errorf("a token option: %s", r)
			}
		})
	}
}

// forwarderDLL returns a minimal PE32+ (amd64) DLL called name whose one
// export, export, forwards to target ("module.Function"). It has no code.
func forwarderDLL(name, export, target string) []byte {
	const (
		fileAlign = 0x200
		rva       = 0x1000 // of the one section, .edata
	)
	le := binary.LittleEndian
	// Export directory (40 bytes), address table, name pointer, ordinal, strings.
	edata := make([]byte, 40+4+4+2)
	str := func(s string) uint32 {
		off := uint32(len(edata))
		edata = append(append(edata, s...), 0)
		return rva + off
	}
	nameRVA, exportRVA, targetRVA := str(name), str(export), str(target)
	le.PutUint32(edata[12:], nameRVA)
	le.PutUint32(edata[16:], 1)         // ordinal base
	le.PutUint32(edata[20:], 1)         // functions
	le.PutUint32(edata[24:], 1)         // names
	le.PutUint32(edata[28:], rva+40)    // address table
	le.PutUint32(edata[32:], rva+44)    // name pointers
	le.PutUint32(edata[36:], rva+48)    // ordinals
	le.PutUint32(edata[40:], targetRVA) // inside the directory's range: a forwarder
	le.PutUint32(edata[44:], exportRVA)
	size := len(edata)
	raw := (size + fileAlign - 1) / fileAlign * fileAlign

	h := make([]byte, fileAlign)
	copy(h, "MZ")
	le.PutUint32(h[0x3c:], 0x40)
	copy(h[0x40:], "PE\x00\x00")
	coff := h[0x44:]
	le.PutUint16(coff[0:], 0x8664)  // amd64
	le.PutUint16(coff[2:], 1)       // sections
	le.PutUint16(coff[16:], 240)    // optional header size
	le.PutUint16(coff[18:], 0x2022) // executable image, large address aware, DLL
	opt := coff[20:]
	le.PutUint16(opt[0:], 0x20b) // PE32+
	le.PutUint32(opt[8:], uint32(raw))
	le.PutUint32(opt[20:], rva)
	le.PutUint64(opt[24:], 0x180000000) // image base
	le.PutUint32(opt[32:], 0x1000)      // section alignment
	le.PutUint32(opt[36:], fileAlign)
	le.PutUint16(opt[40:], 6) // OS version
	le.PutUint16(opt[48:], 6) // subsystem version
	le.PutUint32(opt[56:], rva+uint32((size+0xfff)/0x1000*0x1000))
	le.PutUint32(opt[60:], fileAlign) // headers
	le.PutUint16(opt[68:], 3)         // console subsystem
	le.PutUint16(opt[70:], 0x100)     // NX compatible
	le.PutUint64(opt[72:], 0x100000)  // stack reserve
	le.PutUint64(opt[80:], 0x1000)    // stack commit
	le.PutUint64(opt[88:], 0x100000)  // heap reserve
	le.PutUint64(opt[96:], 0x1000)    // heap commit
	le.PutUint32(opt[108:], 16)       // data directories
	le.PutUint32(opt[112:], rva)      // export table
	le.PutUint32(opt[116:], uint32(size))
	sec := opt[240:]
	copy(sec, ".edata")
	le.PutUint32(sec[8:], uint32(size))
	le.PutUint32(sec[12:], rva)
	le.PutUint32(sec[16:], uint32(raw))
	le.PutUint32(sec[20:], fileAlign)
	le.PutUint32(sec[36:], 0x40000040) // initialised data, readable
	return append(h, append(edata, make([]byte, raw-size)...)...)
}
