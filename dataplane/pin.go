package dataplane

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"

	"github.com/rstguard/rstguard/xdp"
)

// pinnedMaps are the maps that outlive the daemon: flows and embryonic so
// that a restart keeps every tracked connection, policy and counters so that `rstguard set`
// and `rstguard status` work without it, events so that a new reader can
// attach to the running program, allow with the policy, holds and xsk_slots
// so that `rstguard status` shows what hold mode holds and where.
var pinnedMaps = []string{xdp.RstguardMapFlows, xdp.RstguardMapEmbryonic, xdp.RstguardMapPolicy,
	xdp.RstguardMapCounters, xdp.RstguardMapEvents, xdp.RstguardMapAllow, xdp.RstguardMapHolds, xdp.RstguardMapXskSlots}

func pinned(dir, name string) bool {
	_, err := os.Stat(filepath.Join(dir, name))
	return err == nil
}

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

// OpenPinned opens the maps a running (or killed) rstguard pinned in dir,
// without loading a program: for `status`, `flows`, `set` and `detach`.
func OpenPinned(dir string) (*Dataplane, error) {
	var d Dataplane
	targets := map[string]**ebpf.Map{
		xdp.RstguardMapFlows: &d.objs.Flows, xdp.RstguardMapEmbryonic: &d.objs.Embryonic,
		xdp.RstguardMapPolicy: &d.objs.Policy, xdp.RstguardMapCounters: &d.objs.Counters,
		xdp.RstguardMapEvents: &d.objs.Events, xdp.RstguardMapAllow: &d.objs.Allow,
		xdp.RstguardMapHolds: &d.objs.Holds, xdp.RstguardMapXskSlots: &d.objs.XskSlots,
	}
	for _, name := range pinnedMaps {
		m, err := ebpf.LoadPinnedMap(filepath.Join(dir, name), nil)
		if err != nil {
			d.Close()
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("%s: %w: is rstguard attached? (rstguard run or rstguard attach)", dir, ErrNotPinned)
			}
			return nil, fmt.Errorf("open pinned map %s: %w", name, err)
		}
		*targets[name] = m
	}
	if _, err := d.Policy(); err != nil {
		d.Close()
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return &d, nil
}

// ErrNotPinned means no rstguard maps are pinned where we looked.
var ErrNotPinned = errors.New("no rstguard maps pinned")

// Unpin removes the pinned maps from dir, and dir itself when empty.
func Unpin(dir string) error {
	var errs []error
	for _, name := range pinnedMaps {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
