package deploy

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
)

// Options are the command line of deploy, identical for the three scripts.
type Options struct {
	Repo      string // --repo or the one argument: OWNER/NAME or its GitHub URL; default read from origin
	Remote    string // --remote: URL to push to; default origin, else https://github.com/OWNER/NAME.git
	Branch    string // --branch: default the current branch, else main
	ProxyURL  string // --proxy-url: the proxy's public URL, the dashboard's default proxy
	CFAccount string // --cf-account, default CF_ACCOUNT_ID; with CF_API_TOKEN it enables the KV step
	CFBaseURL string // --cf-api-base, default CF_API_BASE_URL; empty is Cloudflare's API
	KVTitle   string // --kv-title: default "keypool"
	DryRun    bool   // --dry-run: read only, print what would happen
	SkipBuild bool   // --skip-build: do not build the dashboard locally
	Target    string // --target: pages (default), deno or workers
	Out       string // --out: the edge folder for deno and workers

	token string // CF_API_TOKEN; never from the command line
}

const usage = `Usage: deploy.sh [OWNER/NAME] [options]     (deploy.ps1 and deploy.bat take the same)

Publishes this checkout: builds the dashboard, finds or creates the Cloudflare KV
namespace, commits uncommitted work and pushes it to GitHub (never forced), then
prints the Pages URL and what is left to set up. Safe to run again.

Options:
  --repo OWNER/NAME   GitHub repository, or its URL (default: from the origin remote)
  --remote URL        where to push (default: origin, else https://github.com/OWNER/NAME.git)
  --branch NAME       branch to push (default: the current branch, else main)
  --proxy-url URL     the proxy's public URL: the dashboard's default proxy
  --cf-account ID     Cloudflare account id (or CF_ACCOUNT_ID); with CF_API_TOKEN,
                      the KV namespace is found or created
  --kv-title TITLE    KV namespace title (default: keypool)
  --cf-api-base URL   Cloudflare API origin (or CF_API_BASE_URL; for tests)
  --skip-build        do not build the dashboard here (GitHub Actions builds it anyway)
  --target T          pages (default): the dashboard on GitHub Pages and the container's steps;
                      deno or workers: build the proxy's edge folder (WebAssembly) and print the
                      exact commands that publish it (deno deploy, wrangler deploy); nothing is
                      committed or pushed. With --cf-account and CF_API_TOKEN the KV namespace is
                      found or created, and for workers its id goes into wrangler.toml.
  --out DIR           the edge folder (default: worker-proxy/edge/dist, ignored by git)
  --dry-run           print what would happen and change nothing
  --yes               accepted and ignored: deploy never asks anything
  -h, --help          this help

Environment:
  CF_API_TOKEN        Cloudflare API token with Account → Workers KV Storage → Edit.
                      Read only from the environment; never printed or written.
`

// errHelp asks for the usage text.
var errHelp = errors.New("help requested")

// tokenFlags are options people reach for to pass the token; refused with
// a pointer to CF_API_TOKEN, and without repeating what followed them.
var tokenFlags = []string{"token", "cf-token", "api-token", "cf-api-token"}

// parseArgs reads args (flags and at most one repository argument, in any
// order) and the environment through env.
func parseArgs(args []string, env func(string) string) (Options, error) {
	for _, a := range args {
		name := strings.TrimLeft(a, "-")
		name, _, _ = strings.Cut(name, "=")
		if strings.HasPrefix(a, "-") {
			for _, t := range tokenFlags {
				if strings.EqualFold(name, t) {
					return Options{}, errors.New("the API token is read only from the environment variable CF_API_TOKEN, never from an option (it would stay in the shell history)")
				}
			}
		}
	}
	var o Options
	fs := flag.NewFlagSet("deploy", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.Repo, "repo", "", "")
	fs.StringVar(&o.Remote, "remote", "", "")
	fs.StringVar(&o.Branch, "branch", "", "")
	fs.StringVar(&o.ProxyURL, "proxy-url", "", "")
	fs.StringVar(&o.CFAccount, "cf-account", env("CF_ACCOUNT_ID"), "")
	fs.StringVar(&o.CFBaseURL, "cf-api-base", env("CF_API_BASE_URL"), "")
	fs.StringVar(&o.KVTitle, "kv-title", "keypool", "")
	fs.BoolVar(&o.DryRun, "dry-run", false, "")
	fs.BoolVar(&o.SkipBuild, "skip-build", false, "")
	fs.StringVar(&o.Target, "target", targetPages, "")
	fs.StringVar(&o.Out, "out", defaultEdgeOut, "")
	fs.Bool("yes", false, "")
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return o, errHelp
			}
			return o, err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	switch {
	case len(positional) > 1:
		return o, fmt.Errorf("one repository argument expected, got %d: %s", len(positional), strings.Join(positional, " "))
	case len(positional) == 1 && o.Repo != "" && o.Repo != positional[0]:
		return o, fmt.Errorf("the argument %s and --repo %s disagree", positional[0], o.Repo)
	case len(positional) == 1:
		o.Repo = positional[0]
	}
	o.token = env("CF_API_TOKEN")
	if o.KVTitle == "" {
		return o, errors.New("--kv-title must not be empty")
	}
	switch o.Target {
	case targetPages, targetDeno, targetWorkers:
	default:
		return o, fmt.Errorf("--target %q: want pages, deno or workers", o.Target)
	}
	if o.Out = strings.TrimSpace(o.Out); o.Out == "" || o.Out == "." || o.Out == "/" {
		return o, fmt.Errorf("--out %q: name a folder of its own for the edge build", o.Out)
	}
	if o.token != "" && o.CFAccount == "" {
		return o, errors.New("CF_API_TOKEN is set but no account id: pass --cf-account ID (or set CF_ACCOUNT_ID), or unset CF_API_TOKEN to skip the KV step")
	}
	if o.CFAccount != "" && o.token == "" {
		return o, errors.New("an account id is given but CF_API_TOKEN is not set: export the token (Account → Workers KV Storage → Edit) in this shell first")
	}
	if o.ProxyURL != "" {
		p, err := checkURL(o.ProxyURL)
		if err != nil {
			return o, fmt.Errorf("--proxy-url: %w", err)
		}
		o.ProxyURL = p
	}
	if o.CFBaseURL != "" {
		if _, err := checkURL(o.CFBaseURL); err != nil {
			return o, fmt.Errorf("--cf-api-base: %w", err)
		}
	}
	return o, nil
}

// checkURL accepts an http(s) URL with a host and no query, and returns it
// without a trailing slash.
func checkURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%q is not a URL like https://proxy.example.com", redact(s))
	}
	return strings.TrimRight(s, "/"), nil
}

// kvEnabled reports whether the KV step runs.
func (o Options) kvEnabled() bool { return o.CFAccount != "" && o.token != "" }
