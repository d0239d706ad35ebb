# deploy.ps1: publish KeyPool (dashboard on GitHub Pages, KV namespace, push)
# and print what is left to set up. Windows PowerShell 5.1 and PowerShell 7;
# deploy.sh and deploy.bat do the same. This wrapper only checks git and Go
# and then runs `worker-proxy deploy` (worker-proxy/deploy) with all its
# arguments; .\deploy.ps1 --help lists them. Safe to rerun; --dry-run changes
# nothing. The Cloudflare token is read from CF_API_TOKEN only:
#   $env:CF_API_TOKEN = '...'
#   powershell -ExecutionPolicy Bypass -File .\deploy.ps1 your-name/keypool --cf-account ID
Set-StrictMode -Version 2.0

function Write-Err([string]$Message) { [Console]::Error.WriteLine($Message) }

function Stop-Deploy([int]$Code) {
    Pop-Location
    exit $Code
}

# Test-AtLeast HAVE NEED: HAVE >= NEED, both dotted numbers (1.26.8, 1.26).
function Test-AtLeast([string]$Have, [string]$Need) {
    $h = $Have.Split('.')
    $n = $Need.Split('.')
    for ($i = 0; $i -lt 3; $i++) {
        $a = 0
        $b = 0
        if ($i -lt $h.Length) { $a = [int]('0' + ($h[$i] -replace '[^0-9].*$', '')) }
        if ($i -lt $n.Length) { $b = [int]('0' + ($n[$i] -replace '[^0-9].*$', '')) }
        if ($a -gt $b) { return $true }
        if ($a -lt $b) { return $false }
    }
    return $true
}

function Write-GoHints([string]$Need) {
    Write-Err "  Install Go $Need or newer, then run deploy again:"
    Write-Err "  any system: https://go.dev/dl/"
    Write-Err "  macOS: brew install go    Windows: winget install --id GoLang.Go -e   (or: choco install golang)"
    Write-Err "  Debian/Ubuntu: apt's golang is often too old; use https://go.dev/dl/ (or: sudo snap install go --classic)"
}

Push-Location -LiteralPath $PSScriptRoot

$need = ''
foreach ($line in Get-Content -LiteralPath 'go.mod') {
    if ($line -match '^go\s+([0-9][0-9.]*)') { $need = $Matches[1]; break }
}

if (-not (Get-Command git -ErrorAction SilentlyContinue)) {
    Write-Err "deploy: git is not installed (or not on PATH)."
    Write-Err "  Install git, then run deploy again:"
    Write-Err "  Debian/Ubuntu: sudo apt-get install git    Fedora: sudo dnf install git"
    Write-Err "  macOS: xcode-select --install   (or: brew install git)"
    Write-Err "  Windows: winget install --id Git.Git -e   (or: choco install git)"
    Write-Err "  or https://git-scm.com/downloads"
    Stop-Deploy 1
}
if (-not (Get-Command go -ErrorAction SilentlyContinue)) {
    Write-Err "deploy: Go is not installed (or not on PATH); go.mod needs go $need."
    Write-GoHints $need
    Stop-Deploy 1
}
# In the module, so a newer toolchain go.mod asks for is used (GOTOOLCHAIN).
$have = ''
$out = & go env GOVERSION 2>$null
if ($LASTEXITCODE -eq 0 -and $out) { $have = (@($out)[0] -split '\s+')[0] }
if (-not $have -or -not (Test-AtLeast ($have -replace '^go', '') $need)) {
    $shown = $have
    if (-not $shown) { $shown = 'an older Go' }
    Write-Err "deploy: go.mod needs go $need, this is $shown."
    Write-GoHints $need
    Stop-Deploy 1
}

$tmp = Join-Path ([IO.Path]::GetTempPath()) ('keypool-deploy-' + [guid]::NewGuid().ToString('N'))
New-Item -ItemType Directory -Path $tmp | Out-Null
$exe = ''
if ($env:OS -eq 'Windows_NT') { $exe = '.exe' }
$bin = Join-Path $tmp ('worker-proxy' + $exe)
Write-Err "deploy: $have; building the deploy tool (go build ./worker-proxy)"
$cgo = $env:CGO_ENABLED
$env:CGO_ENABLED = '0'  # pure Go: no C compiler needed
& go build -trimpath -o $bin ./worker-proxy
$code = $LASTEXITCODE
$env:CGO_ENABLED = $cgo
if ($code -eq 0) {
    & $bin deploy @args
    $code = $LASTEXITCODE
}
Remove-Item -LiteralPath $tmp -Recurse -Force -ErrorAction SilentlyContinue
Stop-Deploy $code
