package daemon

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/rstguard/rstguard/control/bpffs"
	"github.com/rstguard/rstguard/dataplane"
)

// Maps pinned by a run with another layout (here: another table size) are
// refused with a message that says what to do, never reused or overwritten;
// the same layout is reused with its policy intact.
func TestLoadPinnedChecksLayout(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := bpffs.DefaultRoot + "/rstguard-test-layout"
	t.Cleanup(func() { dataplane.Unpin(dir) })

	dp, err := LoadPinned(dir, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if err := dp.SetPolicy(dataplane.Policy{Mode: dataplane.ModeDrop, TTLTolerance: 3, EventBudget: 5}); err != nil {
		t.Fatal(err)
	}
	dp.Close()

	_, err = LoadPinned(dir, 2048)
	if !errors.Is(err, dataplane.ErrIncompatiblePin) || !strings.Contains(err.Error(), "purge") {
		t.Fatalf("other table size: %v", err)
	}

	dp, err = LoadPinned(dir, 1024)
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	p, err := dp.Policy()
	if err != nil || p.Mode != dataplane.ModeDrop || p.TTLTolerance != 3 {
		t.Errorf("policy after reload: %+v %v", p, err)
	}
}
