// Package testutil is what rstguard's tests share, and nothing else uses.
package testutil

import (
	"os"
	"testing"
)

// RequireRoot skips a test or benchmark that needs root, saying what for
// (namespaces, BPF programs and maps, bpffs, another user's files): run as
// any other user, such a test skips rather than fails.
func RequireRoot(tb testing.TB, what string) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root: " + what)
	}
}
