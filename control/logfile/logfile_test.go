package logfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rstguard/rstguard/internal/testutil"
)

func TestOpenRefusesSymlinks(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "precious")
	os.WriteFile(target, []byte("keep me"), 0o644)
	link := filepath.Join(dir, "events.jsonl")
	os.Symlink(target, link)
	if f, err := Open(link); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		f.Close()
		t.Fatalf("symlink followed: %v", err)
	}
	if data, _ := os.ReadFile(target); string(data) != "keep me" {
		t.Errorf("target changed: %q", data)
	}
}

func TestOpenMakesExistingFilesPrivateAndAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "events.jsonl")
	os.MkdirAll(filepath.Dir(path), 0o755)
	os.WriteFile(path, []byte("old\n"), 0o644)
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("new\n")
	f.Close()
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if data, _ := os.ReadFile(path); string(data) != "old\nnew\n" {
		t.Errorf("contents %q: not appended", data)
	}
}

func TestOpenRefusesAnotherUsersFile(t *testing.T) {
	testutil.RequireRoot(t, "give a file to another user")
	path := filepath.Join(t.TempDir(), "events.jsonl")
	os.WriteFile(path, nil, 0o600)
	os.Chown(path, 65534, 65534)
	if f, err := Open(path); err == nil || !strings.Contains(err.Error(), "owned by another user") {
		f.Close()
		t.Errorf("another user's file opened: %v", err)
	}
}
