//go:build !js

package failure

// The time zone database, for America/Los_Angeles on hosts without one
// (distroless images, Windows). The edge build leaves it out (450 KB of
// wasm) and uses pacificRule instead.
import (
	"sync"
	"time"
	_ "time/tzdata"
)

// pacific is America/Los_Angeles from the time zone database (embedded by
// the import above), or nil if it cannot be loaded.
var pacific = sync.OnceValue(func() *time.Location {
	loc, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		return nil
	}
	return loc
})
