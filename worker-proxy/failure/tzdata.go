//go:build !js

package failure

// The time zone database, for America/Los_Angeles on hosts without one
// (distroless images, Windows). The edge build leaves it out (450 KB of
// wasm) and uses pacificRule instead.
import _ "time/tzdata"
