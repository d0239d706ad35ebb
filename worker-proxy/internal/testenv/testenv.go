// Package testenv decides what a test does when something it needs (a
// browser, a server, a tool) is missing on this machine.
package testenv

import (
	"os"
	"testing"
)

// RequireAllVar, when set to 1 (as .ci/run does), turns every skip for a
// missing dependency into a failure.
const RequireAllVar = "KEYPOOL_REQUIRE_ALL"

// Missing skips t because what is missing, or fails it under RequireAllVar.
func Missing(t testing.TB, what string) {
	t.Helper()
	if os.Getenv(RequireAllVar) == "1" {
		t.Fatalf("%s is missing and %s=1 forbids skipping", what, RequireAllVar)
	}
	t.Skipf("%s is missing; skipping (set %s=1 to fail instead)", what, RequireAllVar)
}
