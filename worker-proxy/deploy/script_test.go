package deploy_test

// End-to-end tests of deploy.sh: the operator's checkout is a copy of this
// repository's files, GitHub is a local bare repository, Cloudflare is the
// KV emulator.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keypool/keypool/worker-proxy/internal/testenv"
	"github.com/keypool/keypool/worker-proxy/kvemu"
)

// Obviously fake credentials. The tokens are joined here so that no file
// of the checkout holds one: deploy refuses to commit a file that does.
const (
	testAccount   = "acc-deploy-test-0001"
	testToken     = "cf-deploy-test-" + "token-0000"
	readOnlyToken = "cf-deploy-test-" + "readonly-0000"
	wrongToken    = "cf-deploy-test-" + "wrong-0000"
	testProxyURL  = "https://proxy.example.test"
)

// repoRoot is the repository this test file is in.
var repoRoot = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}()

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Missing(t, tool)
		}
	}
}

// cloudflare is the KV emulator behind a handler that counts namespace
// creations.
type cloudflare struct {
	URL     string
	creates atomic.Int64
}

func startCloudflare(t *testing.T) *cloudflare {
	t.Helper()
	emu := kvemu.New(kvemu.Options{Tokens: map[string]kvemu.TokenInfo{
		testToken:     {AccountID: testAccount, CanRead: true, CanWrite: true},
		readOnlyToken: {AccountID: testAccount, CanRead: true},
	}})
	cf := &cloudflare{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/storage/kv/namespaces") {
			cf.creates.Add(1)
		}
		emu.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	cf.URL = srv.URL
	return cf
}

// namespaces maps title to id, read through the API.
func (cf *cloudflare) namespaces(t *testing.T) map[string]string {
	t.Helper()
	req, _ := http.NewRequest("GET", cf.URL+"/client/v4/accounts/"+testAccount+"/storage/kv/namespaces?per_page=100", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		Result []struct{ ID, Title string } `json:"result"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, n := range body.Result {
		m[n.Title] = n.ID
	}
	return m
}

// checkout copies the repository's files as they are on disk (tracked,
// and untracked ones .gitignore does not exclude; so no .git, web/dist or
// test binaries) into a new directory: an operator's fresh checkout
// without git history.
func checkout(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("git", "-C", repoRoot, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("listing the repository's files: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "keypool")
	for _, f := range strings.Split(string(out), "\x00") {
		if f == "" {
			continue
		}
		src := filepath.Join(repoRoot, f)
		info, err := os.Lstat(src)
		if err != nil || !info.Mode().IsRegular() {
			continue // deleted in the working tree
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// bareRemote is an empty bare repository standing in for GitHub.
func bareRemote(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "remote.git")
	if out, err := exec.Command("git", "init", "-q", "--bare", dir).CombinedOutput(); err != nil {
		t.Fatalf("git init --bare: %v %s", err, out)
	}
	return dir
}

// testEnv is the environment of a deploy run: this process's, without
// git, Cloudflare and admin settings, with an empty git configuration, an
// identity and the token.
func testEnv(t *testing.T) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "GIT_") || strings.HasPrefix(k, "CF_") || k == "ADMIN_KEY" {
			continue
		}
		env[k] = v
	}
	global := filepath.Join(t.TempDir(), "gitconfig")
	if err := os.WriteFile(global, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"GIT_CONFIG_GLOBAL": global, "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0",
		"GIT_AUTHOR_NAME": "Alice Operator", "GIT_AUTHOR_EMAIL": "alice@example.test",
		"GIT_COMMITTER_NAME": "Alice Operator", "GIT_COMMITTER_EMAIL": "alice@example.test",
		"CF_API_TOKEN": testToken,
	} {
		env[k] = v
	}
	return env
}

func environ(env map[string]string) []string {
	var out []string
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s\n--- stderr:\n%s", r.code, r.stdout, r.stderr)
}

// deploySh runs bash DIR/deploy.sh ARGS from DIR's parent (the script
// must find its own directory).
func deploySh(t *testing.T, dir string, env map[string]string, args ...string) result {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		testenv.Missing(t, "bash")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, append([]string{filepath.Join(dir, "deploy.sh")}, args...)...)
	cmd.Dir = filepath.Dir(dir)
	cmd.Env = environ(env)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	r := result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
	if err != nil && r.code <= 0 {
		t.Fatalf("deploy.sh did not run: %v\n%s", err, r)
	}
	t.Logf("deploy.sh %s: exit %d in %s", strings.Join(args, " "), r.code, time.Since(start).Round(time.Millisecond))
	return r
}

// git runs git in dir with env and returns its trimmed output.
func git(t *testing.T, env map[string]string, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir, cmd.Env = dir, environ(env)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("git %s in %s: %v %s", strings.Join(args, " "), dir, err, stderr)
	}
	return strings.TrimSpace(string(out))
}

// refs lists a repository's refs; "" for none.
func refs(t *testing.T, env map[string]string, repo string) string {
	t.Helper()
	return git(t, env, repo, "for-each-ref", "--format=%(refname) %(objectname)")
}

func mustContain(t *testing.T, r result, where string, wants ...string) {
	t.Helper()
	s := r.stdout
	if where == "stderr" {
		s = r.stderr
	}
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s lacks %q\n%s", where, w, r)
		}
	}
}

// noSecret checks the token shows nowhere in r.
func noSecret(t *testing.T, r result, secrets ...string) {
	t.Helper()
	for _, s := range append(secrets, testToken) {
		if strings.Contains(r.stdout+r.stderr, s) {
			t.Errorf("the output shows the secret %q\n%s", s, r)
		}
	}
}

// noSecretInHistory checks no commit of repo holds the token.
func noSecretInHistory(t *testing.T, env map[string]string, repo string) {
	t.Helper()
	cmd := exec.Command("git", "log", "--all", "-p", "--format=%H %an %s%n%b")
	cmd.Dir, cmd.Env = repo, environ(env)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git log: %v", err)
	}
	if bytes.Contains(out, []byte(testToken)) {
		t.Errorf("the token is in %s's history", repo)
	}
}

// snapshot fingerprints every file and directory under dir.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(&b, "%s %v %d", rel, info.Mode(), info.Size())
		if info.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " %x", sha256.Sum256(data))
		}
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestDeployScript runs deploy.sh on one checkout the way an operator
// would over time: first deploy, rerun, dry run, local edits, a file with
// the token, an origin elsewhere, and a remote that moved on.
func TestDeployScript(t *testing.T) {
	need(t, "bash", "git", "go")
	cf := startCloudflare(t)
	dir, remote, env := checkout(t), bareRemote(t), testEnv(t)
	args := []string{"--repo", "alice/keypool", "--remote", remote, "--cf-account", testAccount,
		"--cf-api-base", cf.URL, "--proxy-url", testProxyURL}

	var head string
	t.Run("first run", func(t *testing.T) {
		r := deploySh(t, dir, env, args...)
		if r.code != 0 {
			t.Fatalf("deploy failed: %s", r)
		}
		head = git(t, env, remote, "rev-parse", "refs/heads/main")
		if n := git(t, env, remote, "rev-list", "--count", "main"); n != "1" {
			t.Errorf("origin's main has %s commits, want 1", n)
		}
		if got := git(t, env, dir, "rev-parse", "HEAD"); got != head {
			t.Errorf("pushed %s, local HEAD is %s", head, got)
		}
		tree := git(t, env, remote, "ls-tree", "-r", "--name-only", "main")
		for _, f := range []string{"deploy.sh", "deploy.ps1", "deploy.bat", "go.mod", ".github/workflows/pages.yml", "worker-proxy/deploy/deploy.go"} {
			if !strings.Contains("\n"+tree+"\n", "\n"+f+"\n") {
				t.Errorf("%s was not committed", f)
			}
		}
		if strings.Contains(tree, "web/dist") {
			t.Error("web/dist was committed")
		}
		if git(t, env, dir, "status", "--porcelain") != "" {
			t.Error("the checkout is not clean after deploy")
		}
		if got := git(t, env, dir, "log", "-1", "--format=%s"); !strings.HasPrefix(got, "deploy: ") {
			t.Errorf("commit message %q", got)
		}

		ns := cf.namespaces(t)
		if cf.creates.Load() != 1 || len(ns) != 1 || ns["keypool"] == "" {
			t.Fatalf("namespaces %v after %d creations, want one keypool", ns, cf.creates.Load())
		}
		index, err := os.ReadFile(filepath.Join(dir, "web", "dist", "index.html"))
		if err != nil {
			t.Fatalf("the dashboard was not built: %v", err)
		}
		if !strings.Contains(string(index), `"/keypool/`) {
			t.Error("web/dist/index.html is not built for the /keypool prefix")
		}
		appJS, _ := os.ReadFile(filepath.Join(dir, "web", "dist", "app.js"))
		if !strings.Contains(string(appJS), testProxyURL) {
			t.Error("app.js does not carry the default proxy URL")
		}

		mustContain(t, r, "stdout",
			"created namespace \"keypool\" (id "+ns["keypool"]+")",
			"initialised a git repository (branch main)",
			"pushed "+head[:7]+" to origin's main",
			"Dashboard: https://alice.github.io/keypool/",
			"Source: GitHub Actions",
			"https://github.com/alice/keypool/settings/pages",
			"KEYPOOL_PROXY_URL = "+testProxyURL,
			"STORE=cfkv", "CF_ACCOUNT_ID="+testAccount, "CF_KV_NAMESPACE_ID="+ns["keypool"],
			"CF_API_TOKEN=<secret", "ADMIN_KEY=<secret", "openssl rand -hex 32",
			"ALLOWED_ORIGINS=https://alice.github.io\n",
			"ghcr.io/alice/keypool:latest", "Render", "Fly.io", "Koyeb", "Cloud Run", "systemd")
		noSecret(t, r)
		noSecretInHistory(t, env, remote)
		if b, _ := os.ReadFile(filepath.Join(dir, ".git", "config")); bytes.Contains(b, []byte(testToken)) {
			t.Error("the token is in .git/config")
		}
	})
	if head == "" {
		t.FailNow()
	}

	t.Run("rerun changes nothing", func(t *testing.T) {
		r := deploySh(t, dir, env, append(args, "--skip-build")...)
		if r.code != 0 {
			t.Fatalf("rerun failed: %s", r)
		}
		if got := git(t, env, remote, "rev-parse", "refs/heads/main"); got != head {
			t.Errorf("origin's main moved from %s to %s", head, got)
		}
		if n := cf.creates.Load(); n != 1 || len(cf.namespaces(t)) != 1 {
			t.Errorf("%d namespace creations, want still 1", n)
		}
		mustContain(t, r, "stdout", "found namespace \"keypool\"", "nothing to commit",
			"already at "+head[:7]+": nothing to push", "nothing changed")
		noSecret(t, r)
	})

	t.Run("dry run on a deployed checkout", func(t *testing.T) {
		before := snapshot(t, dir)
		r := deploySh(t, dir, env, append(args, "--dry-run")...)
		if r.code != 0 {
			t.Fatalf("dry run failed: %s", r)
		}
		mustContain(t, r, "stdout", "found namespace \"keypool\"", "nothing to commit", "nothing to push", "dry run: nothing was changed")
		if strings.Contains(r.stdout, "would: git") {
			t.Errorf("a deployed checkout needs no git step\n%s", r)
		}
		if after := snapshot(t, dir); after != before {
			t.Error("the dry run changed the checkout")
		}
	})

	t.Run("local changes are committed, not lost", func(t *testing.T) {
		readme := filepath.Join(dir, "README.md")
		old, _ := os.ReadFile(readme)
		edited := append(old, "\nA local note.\n"...)
		os.WriteFile(readme, edited, 0o644)
		os.WriteFile(filepath.Join(dir, "NOTES.md"), []byte("operator's notes\n"), 0o644)
		os.WriteFile(filepath.Join(dir, ".env"), []byte("CF_API_TOKEN="+testToken+"\n"), 0o600) // ignored
		r := deploySh(t, dir, env, append(args, "--skip-build")...)
		if r.code != 0 {
			t.Fatalf("deploy failed: %s", r)
		}
		newHead := git(t, env, remote, "rev-parse", "refs/heads/main")
		if parent := git(t, env, remote, "rev-parse", "main^"); parent != head {
			t.Errorf("origin's main is %s with parent %s, want a child of %s", newHead, parent, head)
		}
		if got := git(t, env, remote, "show", "main:NOTES.md"); got != "operator's notes" {
			t.Errorf("NOTES.md on origin: %q", got)
		}
		if got := git(t, env, remote, "show", "main:README.md"); !strings.HasSuffix(got, "A local note.") {
			t.Error("the README edit did not reach origin")
		}
		if b, _ := os.ReadFile(readme); !bytes.Equal(b, edited) {
			t.Error("the README edit is gone from the working tree")
		}
		if strings.Contains(git(t, env, remote, "ls-tree", "-r", "--name-only", "main"), ".env") {
			t.Error(".env was committed")
		}
		mustContain(t, r, "stdout", "committed 2 file(s)", "pushed "+newHead[:7])
		noSecret(t, r)
		noSecretInHistory(t, env, remote)
		head = newHead
	})

	t.Run("a file holding the token is not committed", func(t *testing.T) {
		leak := filepath.Join(dir, "leak.txt")
		os.WriteFile(leak, []byte("token: "+testToken+"\n"), 0o644)
		defer os.Remove(leak)
		r := deploySh(t, dir, env, append(args, "--skip-build")...)
		if r.code != 1 {
			t.Fatalf("want exit 1: %s", r)
		}
		mustContain(t, r, "stderr", "leak.txt contains the value of CF_API_TOKEN", "Nothing was committed")
		noSecret(t, r)
		if got := git(t, env, remote, "rev-parse", "refs/heads/main"); got != head {
			t.Error("origin's main moved")
		}
		if staged := git(t, env, dir, "diff", "--cached", "--name-only"); staged != "" {
			t.Errorf("files were staged: %s", staged)
		}
		if got := git(t, env, dir, "rev-parse", "HEAD"); got != head {
			t.Error("a commit was made")
		}
	})

	t.Run("an origin elsewhere is not rewritten", func(t *testing.T) {
		r := deploySh(t, dir, env, "--repo", "bob/keypool", "--skip-build", "--cf-account", testAccount, "--cf-api-base", cf.URL)
		if r.code != 1 {
			t.Fatalf("want exit 1: %s", r)
		}
		mustContain(t, r, "stderr", "origin is "+remote+", not bob/keypool", "git remote rename origin upstream")
		if got := git(t, env, dir, "remote", "get-url", "origin"); got != remote {
			t.Errorf("origin is now %s", got)
		}
		// The repository comes from origin when --remote names it.
		r = deploySh(t, dir, env, "--remote", filepath.Join(t.TempDir(), "other.git"), "--repo", "alice/keypool", "--skip-build",
			"--cf-account", testAccount, "--cf-api-base", cf.URL)
		if r.code != 1 || !strings.Contains(r.stderr, "origin is "+remote) {
			t.Errorf("a different --remote: want a refusal: %s", r)
		}
	})

	t.Run("a remote that moved on is not overwritten", func(t *testing.T) {
		// Someone else pushes to origin (an edit on GitHub, say).
		other := filepath.Join(t.TempDir(), "other")
		git(t, env, filepath.Dir(other), "clone", "-q", "-b", "main", remote, other)
		os.WriteFile(filepath.Join(other, "FROM-GITHUB.md"), []byte("edited on GitHub\n"), 0o644)
		git(t, env, other, "add", "FROM-GITHUB.md")
		git(t, env, other, "commit", "-q", "-m", "edit on GitHub")
		git(t, env, other, "push", "-q", "origin", "HEAD:main")
		theirs := git(t, env, remote, "rev-parse", "refs/heads/main")

		work := filepath.Join(dir, "LOCAL-WORK.md")
		os.WriteFile(work, []byte("my work\n"), 0o644)
		r := deploySh(t, dir, env, append(args, "--skip-build")...)
		if r.code != 1 {
			t.Fatalf("want exit 1: %s", r)
		}
		mustContain(t, r, "stderr", "never force-pushes", "git pull --rebase origin main")
		if got := git(t, env, remote, "rev-parse", "refs/heads/main"); got != theirs {
			t.Error("origin's main was overwritten")
		}
		if b, err := os.ReadFile(work); err != nil || string(b) != "my work\n" {
			t.Error("the local work is gone from the working tree")
		}
		if got := git(t, env, dir, "show", "HEAD:LOCAL-WORK.md"); got != "my work" {
			t.Error("the local work was not committed locally")
		}
		noSecret(t, r)

		// Following the hint works.
		git(t, env, dir, "pull", "-q", "--rebase", "origin", "main")
		r = deploySh(t, dir, env, append(args, "--skip-build")...)
		if r.code != 0 {
			t.Fatalf("after git pull --rebase: %s", r)
		}
		tree := git(t, env, remote, "ls-tree", "-r", "--name-only", "main")
		if !strings.Contains(tree, "FROM-GITHUB.md") || !strings.Contains(tree, "LOCAL-WORK.md") {
			t.Errorf("origin's main lacks one side's work:\n%s", tree)
		}
		if git(t, env, remote, "merge-base", "--is-ancestor", theirs, "main") != "" {
			t.Error("unexpected output")
		}
	})
}

// A dry run on a fresh checkout says what it would do and changes
// nothing: no .git, no files, no commit on origin, no namespace.
func TestDeployDryRun(t *testing.T) {
	need(t, "bash", "git", "go")
	cf := startCloudflare(t)
	dir, remote, env := checkout(t), bareRemote(t), testEnv(t)
	before := snapshot(t, dir)
	r := deploySh(t, dir, env, "alice/keypool", "--remote", remote, "--cf-account", testAccount,
		"--cf-api-base", cf.URL, "--proxy-url", testProxyURL, "--dry-run")
	if r.code != 0 {
		t.Fatalf("dry run failed: %s", r)
	}
	mustContain(t, r, "stdout",
		"would: go run -trimpath ./wasm/build -out web/dist -prefix /keypool -proxy "+testProxyURL,
		"would: create namespace \"keypool\" in account "+testAccount,
		"would: git init (branch main)",
		"would: git remote add origin "+remote,
		"would: commit ",
		"would: git push origin HEAD:refs/heads/main (a new branch on origin)",
		"dry run: nothing was changed",
		"https://alice.github.io/keypool/", "CF_KV_NAMESPACE_ID=<created by a real run")
	noSecret(t, r)
	if after := snapshot(t, dir); after != before {
		t.Error("the dry run changed the checkout")
	}
	if _, err := os.Stat(filepath.Join(dir, ".git")); err == nil {
		t.Error("the dry run created .git")
	}
	if got := refs(t, env, remote); got != "" {
		t.Errorf("origin has refs after a dry run: %s", got)
	}
	if n := cf.creates.Load(); n != 0 || len(cf.namespaces(t)) != 0 {
		t.Errorf("the dry run created %d namespaces", n)
	}
}

// A wrong token, or one without the KV Edit permission, stops deploy
// before git: a clear message, the token not echoed, nothing pushed.
func TestDeployBadToken(t *testing.T) {
	need(t, "bash", "git", "go")
	cf := startCloudflare(t)
	dir, remote := checkout(t), bareRemote(t)
	for _, tc := range []struct {
		token string
		want  []string
	}{
		{wrongToken, []string{"rejected the API token (401)", "Account → Workers KV Storage → Edit", "Nothing was committed or pushed"}},
		{readOnlyToken, []string{"403", "Account → Workers KV Storage → Edit"}},
	} {
		env := testEnv(t)
		env["CF_API_TOKEN"] = tc.token
		r := deploySh(t, dir, env, "--repo", "alice/keypool", "--remote", remote, "--cf-account", testAccount,
			"--cf-api-base", cf.URL, "--skip-build")
		if r.code != 1 {
			t.Fatalf("want exit 1: %s", r)
		}
		mustContain(t, r, "stderr", tc.want...)
		noSecret(t, r, tc.token)
		if _, err := os.Stat(filepath.Join(dir, ".git")); err == nil {
			t.Error(".git was created")
		}
		if got := refs(t, env, remote); got != "" {
			t.Errorf("something was pushed: %s", got)
		}
	}
	if n := cf.creates.Load(); n != 1 { // the read-only token's attempt, refused
		t.Errorf("%d namespace creations attempted, want 1", n)
	}
	if len(cf.namespaces(t)) != 0 {
		t.Error("a namespace was created")
	}
}

// Without a git identity deploy stops before changing anything and says
// how to set one.
func TestDeployNoIdentity(t *testing.T) {
	need(t, "bash", "git", "go")
	dir, remote, env := checkout(t), bareRemote(t), testEnv(t)
	for _, k := range []string{"GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL"} {
		delete(env, k)
	}
	// No guessing from the host name either.
	env["GIT_CONFIG_COUNT"], env["GIT_CONFIG_KEY_0"], env["GIT_CONFIG_VALUE_0"] = "1", "user.useConfigOnly", "true"
	delete(env, "CF_API_TOKEN")
	r := deploySh(t, dir, env, "alice/keypool", "--remote", remote)
	if r.code != 1 {
		t.Fatalf("want exit 1: %s", r)
	}
	mustContain(t, r, "stderr", "no identity", `git config --global user.name "Your Name"`)
	if _, err := os.Stat(filepath.Join(dir, ".git")); err == nil {
		t.Error(".git was created")
	}
}

// prereqDir holds what deploy.sh reads before it runs Go: itself and go.mod.
func prereqDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "keypool")
	os.MkdirAll(dir, 0o755)
	for _, f := range []string{"deploy.sh", "go.mod"} {
		b, err := os.ReadFile(filepath.Join(repoRoot, f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o755)
	}
	return dir
}

// binDir is a PATH of just the named tools (symlinks), plus fakes.
func binDir(t *testing.T, tools []string, fakes map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for _, tool := range tools {
		p, err := exec.LookPath(tool)
		if err != nil {
			testenv.Missing(t, tool)
		}
		if err := os.Symlink(p, filepath.Join(dir, tool)); err != nil {
			t.Fatal(err)
		}
	}
	for name, script := range fakes {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// deploy.sh checks git and Go before anything else and says how to
// install what is missing; Go versions compare as numbers.
func TestDeployPrerequisites(t *testing.T) {
	need(t, "bash", "git", "go")
	dir := prereqDir(t)
	base := []string{"bash", "dirname", "sed", "head", "mktemp", "rm"}
	goVersion := func(v string) string {
		return "#!/bin/sh\ncase \"$*\" in 'env GOVERSION') echo " + v + ";; *) echo 'go version " + v + " linux/amd64';; esac\n"
	}
	for _, tc := range []struct {
		name  string
		tools []string
		fakes map[string]string
		want  []string
	}{
		{"no git", append(base, "go"), nil,
			[]string{"git is not installed", "sudo apt-get install git", "brew install git", "winget install --id Git.Git", "https://git-scm.com/downloads"}},
		{"no go", append(base, "git"), nil,
			[]string{"Go is not installed", "https://go.dev/dl/", "brew install go", "winget install --id GoLang.Go"}},
		{"go1.20.3", append(base, "git"), map[string]string{"go": goVersion("go1.20.3")},
			[]string{"go.mod needs go 1.26", "this is go1.20.3", "https://go.dev/dl/"}},
		{"go1.3", append(base, "git"), map[string]string{"go": goVersion("go1.3")},
			[]string{"go.mod needs go 1.26", "this is go1.3."}},
		{"go1.25.9", append(base, "git"), map[string]string{"go": goVersion("go1.25.9")},
			[]string{"go.mod needs go 1.26", "this is go1.25.9."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := testEnv(t)
			env["PATH"] = binDir(t, tc.tools, tc.fakes)
			r := deploySh(t, dir, env, "--repo", "alice/keypool")
			if r.code != 1 {
				t.Fatalf("want exit 1: %s", r)
			}
			mustContain(t, r, "stderr", tc.want...)
			if r.stdout != "" {
				t.Errorf("stdout: %q", r.stdout)
			}
		})
	}

	// Versions at or above go.mod's pass, and the arguments reach deploy
	// unchanged, its exit code comes back.
	realGo, _ := exec.LookPath("go")
	co := checkout(t)
	for _, v := range []string{"go1.26.0", "go1.27rc1", "go1.100.0"} {
		t.Run(v, func(t *testing.T) {
			env := testEnv(t)
			delete(env, "CF_API_TOKEN")
			env["PATH"] = binDir(t, append(base, "git"), map[string]string{"go": "#!/bin/sh\n" +
				"if [ \"$*\" = 'env GOVERSION' ]; then echo " + v + "; exit 0; fi\nexec " + realGo + " \"$@\"\n"})
			r := deploySh(t, co, env, "--help")
			if r.code != 0 || !strings.HasPrefix(r.stdout, "Usage: deploy.sh [OWNER/NAME] [options]") {
				t.Errorf("--help: %s", r)
			}
			r = deploySh(t, co, env, "--proxy-url", "not a url")
			if r.code != 2 || !strings.Contains(r.stderr, `--proxy-url: "not a url" is not a URL`) {
				t.Errorf("want exit 2 and the argument intact: %s", r)
			}
		})
	}
}
