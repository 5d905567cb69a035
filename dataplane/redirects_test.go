package dataplane

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rstguard/rstguard/internal/testutil"
)

// The program reads the tracepoints' records as this kernel lays them out,
// and a layout that moved is refused rather than misread.
func TestRedirectRecordsMatchTheKernel(t *testing.T) {
	testutil.RequireRoot(t, "tracefs")
	root, err := tracefs()
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range redirectTracepoints {
		format := filepath.Join(root, "events", "xdp", tp.name, "format")
		if err := checkRecord(format, tp.record); err != nil {
			t.Errorf("%s: %v", tp.name, err)
		}
		text, err := os.ReadFile(format)
		if err != nil {
			t.Fatal(err)
		}
		// Every offset rewritten (8 reads 48): the layout of another kernel.
		moved := strings.ReplaceAll(string(text), "offset:", "offset:4")
		other := filepath.Join(t.TempDir(), "format")
		if err := os.WriteFile(other, []byte(moved), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := checkRecord(other, tp.record); err == nil || !strings.Contains(err.Error(), "not the one it reads") {
			t.Errorf("%s with every offset moved: %v, want a refusal", tp.name, err)
		}
	}
}
