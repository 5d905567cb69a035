// Package logfile opens the files rstguard writes as root (the event log,
// the evidence pcapng) so that they cannot be turned against root: no symlink
// is followed, a file someone else owns is refused, an existing file is made
// readable by root only, and writes append, so that a logrotate
// copytruncate leaves a file that starts again at its beginning.
package logfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrNotOurs means the file exists but belongs to another user.
var ErrNotOurs = errors.New("is owned by another user")

// Open opens path for appending, creating it (and its directory, 0700) with
// mode 0600. A symlink at path is refused, not followed; an existing file
// owned by another user is refused; one readable by others is made 0600.
func Open(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("%s is a symbolic link: refusing to follow it (remove it, or give another path)", path)
	}
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.Mode().IsRegular() || !ok {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if int(st.Uid) != os.Geteuid() {
		f.Close()
		return nil, fmt.Errorf("%s %w (uid %d): remove it, or give another path", path, ErrNotOurs, st.Uid)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := f.Chmod(0o600); err != nil {
			f.Close()
			return nil, fmt.Errorf("make %s private: %w", path, err)
		}
	}
	return f, nil
}
