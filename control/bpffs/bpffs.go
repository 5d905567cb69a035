// Package bpffs makes sure a BPF filesystem is mounted where rstguard pins
// its maps, so that flows survive a restart of the daemon.
package bpffs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/rstguard/rstguard/dataplane"
)

// DefaultRoot is where Linux distributions mount bpffs.
const DefaultRoot = "/sys/fs/bpf"

// DefaultDir is rstguard's pin directory.
const DefaultDir = DefaultRoot + "/rstguard"

// Ensure mounts bpffs on the parent of dir when it is not one already, and
// creates dir readable by root only.
func Ensure(dir string) error {
	root := filepath.Dir(dir)
	if !IsBPFFS(root) {
		if err := os.MkdirAll(root, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", root, err)
		}
		if err := unix.Mount("bpf", root, "bpf", 0, "mode=0700"); err != nil {
			return fmt.Errorf("mount bpffs on %s (needs CAP_SYS_ADMIN): %w", root, err)
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create pin directory %s: %w", dir, err)
	}
	return nil
}

// PrivateMountNamespace says whether this process's mount namespace is not
// init's: a bpffs mounted here is seen by this namespace alone.
func PrivateMountNamespace() bool {
	self, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		return false
	}
	init, err := os.Readlink("/proc/1/ns/mnt")
	return err == nil && self != init
}

// IsBPFFS reports whether path is on a BPF filesystem.
func IsBPFFS(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.BPF_FS_MAGIC
}

// ErrLocked means a daemon (rstguard run) holds the pin directory.
var ErrLocked = errors.New("a daemon (rstguard run) is using")

// Lock takes the pin directory's exclusive lock, without waiting: one
// rstguard at a time loads, changes or removes its maps. The kernel drops
// the lock when the process dies, even by kill -9. unlock releases it.
func Lock(dir string) (unlock func(), err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w --pin-dir %s: stop it first, or give this one another --pin-dir", ErrLocked, dir)
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}

// OwnerOf finds the pin directory, among the directories of bpffs's root,
// whose pinned flow table is one of mapIDs (a program's maps): which
// rstguard owns an attached program. "" when none does.
func OwnerOf(mapIDs []uint32) string {
	dirs, err := os.ReadDir(DefaultRoot)
	if err != nil {
		return ""
	}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		id, err := PinnedMapID(filepath.Join(DefaultRoot, d.Name(), dataplane.FlowsMapName))
		if err != nil {
			continue
		}
		for _, m := range mapIDs {
			if m == id {
				return filepath.Join(DefaultRoot, d.Name())
			}
		}
	}
	return ""
}
