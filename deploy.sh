#!/usr/bin/env bash
# deploy.sh: publish KeyPool (dashboard on GitHub Pages, KV namespace, push)
# and print what is left to set up. Linux and macOS; deploy.ps1 and
# deploy.bat are the same for Windows. This wrapper only checks git and Go
# and then runs `worker-proxy deploy` (worker-proxy/deploy) with all its
# arguments; ./deploy.sh --help lists them. Safe to rerun; --dry-run
# changes nothing. The Cloudflare token is read from CF_API_TOKEN only.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

say() { printf '%s\n' "$*" >&2; }

# ver_ge HAVE NEED: HAVE >= NEED, both dotted numbers (1.26.8, 1.26).
ver_ge() {
  local IFS=. i a b
  local -a h n
  read -r -a h <<<"$1"
  read -r -a n <<<"$2"
  for i in 0 1 2; do
    a=${h[i]:-0} b=${n[i]:-0}
    a=${a%%[!0-9]*} b=${b%%[!0-9]*}
    a=${a:-0} b=${b:-0}
    if ((10#$a > 10#$b)); then return 0; fi
    if ((10#$a < 10#$b)); then return 1; fi
  done
  return 0
}

need=$(sed -n 's/^go \([0-9][0-9.]*\).*/\1/p' go.mod | head -n 1)

if ! command -v git >/dev/null 2>&1; then
  say "deploy: git is not installed (or not on PATH)."
  say "  Install git, then run deploy again:"
  say "  Debian/Ubuntu: sudo apt-get install git    Fedora: sudo dnf install git"
  say "  macOS: xcode-select --install   (or: brew install git)"
  say "  Windows: winget install --id Git.Git -e   (or: choco install git)"
  say "  or https://git-scm.com/downloads"
  exit 1
fi

go_hints() {
  say "  Install Go $need or newer, then run deploy again:"
  say "  any system: https://go.dev/dl/"
  say "  macOS: brew install go    Windows: winget install --id GoLang.Go -e   (or: choco install golang)"
  say "  Debian/Ubuntu: apt's golang is often too old; use https://go.dev/dl/ (or: sudo snap install go --classic)"
}
if ! command -v go >/dev/null 2>&1; then
  say "deploy: Go is not installed (or not on PATH); go.mod needs go $need."
  go_hints
  exit 1
fi
# In the module, so a newer toolchain go.mod asks for is used (GOTOOLCHAIN).
have=$(go env GOVERSION 2>/dev/null || true)
have=${have%% *}
if [ -z "$have" ] || ! ver_ge "${have#go}" "$need"; then
  say "deploy: go.mod needs go $need, this is ${have:-an older Go ($(go version 2>/dev/null || echo 'go version fails'))}."
  go_hints
  exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/keypool-deploy.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
say "deploy: $have; building the deploy tool (go build ./worker-proxy)"
# Pure Go: no C compiler needed, whatever CGO_ENABLED says.
CGO_ENABLED=0 go build -trimpath -o "$tmp/worker-proxy" ./worker-proxy
set +e
"$tmp/worker-proxy" deploy "$@"
code=$?
set -e
exit "$code"
