package dataplane

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
)

// pinnedMaps are the maps that outlive the daemon: flows so that a restart
// keeps every tracked connection, policy and counters so that `rstguard set`
// and `rstguard status` work without it, events so that a new reader can
// attach to the running program.
var pinnedMaps = []string{"flows", "policy", "counters", "events"}

// ErrIncompatiblePin means maps pinned by another build have another layout.
var ErrIncompatiblePin = errors.New("pinned maps have an incompatible layout")

// checkPinnedLayout refuses pinned maps whose type, key, value or size differ
// from what this build would create, instead of letting the kernel reuse or
// the program corrupt them.
func checkPinnedLayout(dir string, spec *ebpf.CollectionSpec) error {
	for _, name := range pinnedMaps {
		path := filepath.Join(dir, name)
		m, err := ebpf.LoadPinnedMap(path, nil)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("open pinned map %s: %w", path, err)
		}
		info, err := m.Info()
		m.Close()
		if err != nil {
			return fmt.Errorf("inspect pinned map %s: %w", path, err)
		}
		want := spec.Maps[name]
		if info.Type != want.Type || info.KeySize != want.KeySize || info.ValueSize != want.ValueSize ||
			info.MaxEntries != want.MaxEntries {
			return fmt.Errorf("%s: %w (type %s key %d value %d entries %d, this build wants %s %d %d %d): "+
				"remove %s or run `rstguard detach --purge`",
				path, ErrIncompatiblePin, info.Type, info.KeySize, info.ValueSize, info.MaxEntries,
				want.Type, want.KeySize, want.ValueSize, want.MaxEntries, dir)
		}
	}
	return nil
}
