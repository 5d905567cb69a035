package daemon

import (
	"errors"
	"strings"
	"testing"

	"github.com/rstguard/rstguard/control/bpffs"
	"github.com/rstguard/rstguard/dataplane"
	"github.com/rstguard/rstguard/internal/testutil"
)

// Maps pinned by a run with another layout (here: another table size) are
// refused with a message that says what to do, never reused or overwritten;
// the same layout is reused with its policy intact.
func TestLoadPinnedChecksLayout(t *testing.T) {
	testutil.RequireRoot(t, "namespaces, BPF")
	dir := bpffs.DefaultRoot + "/rstguard-test-layout"
	t.Cleanup(func() { dataplane.Unpin(dir) })

	dp, unlock, err := LoadPinned(dir, 1024)
	if err != nil {
		t.Fatal(err)
	}
	pol := dataplane.DefaultPolicy()
	pol.Mode, pol.TTLTolerance, pol.EventBudget = dataplane.ModeDrop, 3, 5
	if err := dp.SetPolicy(pol); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadPinned(dir, 1024); !errors.Is(err, bpffs.ErrLocked) || !strings.Contains(err.Error(), dir) {
		t.Errorf("a second load while the first holds the lock: %v", err)
	}
	dp.Close()
	unlock()

	_, _, err = LoadPinned(dir, 2048)
	if !errors.Is(err, dataplane.ErrIncompatiblePin) || !strings.Contains(err.Error(), "purge") {
		t.Fatalf("other table size: %v", err)
	}

	dp, unlock, err = LoadPinned(dir, 1024)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	defer dp.Close()
	p, err := dp.Policy()
	if err != nil || p.Mode != dataplane.ModeDrop || p.TTLTolerance != 3 {
		t.Errorf("policy after reload: %+v %v", p, err)
	}
}
