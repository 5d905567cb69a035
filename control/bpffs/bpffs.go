// Package bpffs makes sure a BPF filesystem is mounted where rstguard pins
// its maps, so that flows survive a restart of the daemon.
package bpffs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
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

// IsBPFFS reports whether path is on a BPF filesystem.
func IsBPFFS(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.BPF_FS_MAGIC
}
