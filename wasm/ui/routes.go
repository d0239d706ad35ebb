package ui

import "github.com/maxence-charriere/go-app/v10/pkg/app"

// Register declares the app's routes; the wasm main and the site
// generator both call it so prerendered pages match the client.
func Register() {
	app.Route("/", func() app.Composer { return &Dashboard{} })
}
