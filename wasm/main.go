// Command wasm is the admin dashboard, built with
// GOOS=js GOARCH=wasm into the static site's web/app.wasm. Build the whole
// site with: go run ./wasm/build -out web/dist -prefix /REPO
package main

import (
	"github.com/keypool/keypool/wasm/ui"
	"github.com/maxence-charriere/go-app/v10/pkg/app"
)

func main() {
	ui.Register()
	app.RunWhenOnBrowser()
}
