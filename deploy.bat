@echo off
rem deploy.bat: publish KeyPool (dashboard on GitHub Pages, KV namespace, push)
rem and print what is left to set up. cmd.exe; deploy.sh and deploy.ps1 do the
rem same. This wrapper only checks git and Go and then runs
rem `worker-proxy deploy` (worker-proxy/deploy) with all its arguments;
rem deploy.bat --help lists them. Safe to rerun; --dry-run changes nothing.
rem The Cloudflare token is read from CF_API_TOKEN only: set CF_API_TOKEN=...
setlocal EnableExtensions DisableDelayedExpansion
cd /d "%~dp0"

set "NEED="
for /f "usebackq tokens=1,2" %%a in ("go.mod") do if "%%a"=="go" if not defined NEED set "NEED=%%b"

call :which git
if errorlevel 1 goto :nogit
call :which go
if errorlevel 1 goto :nogo
rem In the module, so a newer toolchain go.mod asks for is used (GOTOOLCHAIN).
set "HAVE="
for /f "tokens=1" %%v in ('go env GOVERSION 2^>nul') do if not defined HAVE set "HAVE=%%v"
if not defined HAVE goto :oldgo
call :atleast "%HAVE:go=%" "%NEED%"
if errorlevel 1 goto :oldgo

set "TMPBIN=%TEMP%\keypool-deploy-%RANDOM%%RANDOM%"
mkdir "%TMPBIN%"
if errorlevel 1 exit /b 1
>&2 echo deploy: %HAVE%; building the deploy tool (go build ./worker-proxy)
rem Pure Go: no C compiler needed.
set CGO_ENABLED=0
call go build -trimpath -o "%TMPBIN%\worker-proxy.exe" ./worker-proxy
if errorlevel 1 goto :buildfailed
"%TMPBIN%\worker-proxy.exe" deploy %*
set "CODE=%ERRORLEVEL%"
rmdir /s /q "%TMPBIN%" >nul 2>nul
exit /b %CODE%

:buildfailed
rmdir /s /q "%TMPBIN%" >nul 2>nul
exit /b 1

:nogit
>&2 echo deploy: git is not installed (or not on PATH).
>&2 echo   Install git, then run deploy again:
>&2 echo   Debian/Ubuntu: sudo apt-get install git    Fedora: sudo dnf install git
>&2 echo   macOS: xcode-select --install   (or: brew install git)
>&2 echo   Windows: winget install --id Git.Git -e   (or: choco install git)
>&2 echo   or https://git-scm.com/downloads
exit /b 1

:nogo
>&2 echo deploy: Go is not installed (or not on PATH); go.mod needs go %NEED%.
call :gohints
exit /b 1

:oldgo
if not defined HAVE set "HAVE=an older Go"
>&2 echo deploy: go.mod needs go %NEED%, this is %HAVE%.
call :gohints
exit /b 1

:gohints
>&2 echo   Install Go %NEED% or newer, then run deploy again:
>&2 echo   any system: https://go.dev/dl/
>&2 echo   macOS: brew install go    Windows: winget install --id GoLang.Go -e   (or: choco install golang)
>&2 echo   Debian/Ubuntu: apt's golang is often too old; use https://go.dev/dl/ (or: sudo snap install go --classic)
exit /b 0

rem :which NAME sets errorlevel 0 if NAME (with an extension of PATHEXT) is on PATH.
:which
setlocal
set "FOUND="
for %%e in (%PATHEXT%) do if not defined FOUND call :which1 "%~1%%e"
if defined FOUND exit /b 0
exit /b 1

:which1
for %%i in (%1) do if not "%%~$PATH:i"=="" set "FOUND=%%~$PATH:i"
exit /b 0

rem :atleast HAVE NEED sets errorlevel 0 if HAVE >= NEED (dotted numbers).
:atleast
setlocal
for /f "tokens=1-3 delims=." %%a in ("%~1") do call :nums H "%%a" "%%b" "%%c"
for /f "tokens=1-3 delims=." %%a in ("%~2") do call :nums N "%%a" "%%b" "%%c"
if %H1% GTR %N1% exit /b 0
if %H1% LSS %N1% exit /b 1
if %H2% GTR %N2% exit /b 0
if %H2% LSS %N2% exit /b 1
if %H3% LSS %N3% exit /b 1
exit /b 0

rem :nums P A B C sets P1, P2, P3 to the leading digits of A, B, C (0 if none).
:nums
call :digits %~11 "%~2"
call :digits %~12 "%~3"
call :digits %~13 "%~4"
exit /b 0

:digits
set "%~1=0"
if "%~2"=="" exit /b 0
for /f "delims=abcdefghijklmnopqrstuvwxyz%%" %%d in ("%~2") do set /a "%~1=%%d" >nul 2>nul
exit /b 0
