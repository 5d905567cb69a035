package capture

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rstguard/rstguard/bench/frames"
)

func evidenceFrame(t *testing.T) []byte {
	t.Helper()
	return frames.Segment{Src: netip.MustParseAddrPort("192.0.2.1:1"), Dst: netip.MustParseAddrPort("192.0.2.2:2"), Flags: frames.RST}.MustFrame()
}

// count reads a pcap back and counts its frames; tcpdump must agree.
func count(t *testing.T, path string) int {
	t.Helper()
	r, err := Open(path)
	if err != nil {
		t.Fatalf("%s does not open: %v", path, err)
	}
	defer r.Close()
	n := 0
	for {
		if _, err := r.Next(); err != nil {
			break
		}
		n++
	}
	if out, err := exec.Command("tcpdump", "-nn", "-r", path).Output(); err == nil {
		if got := strings.Count(string(out), "\n"); got != n {
			t.Errorf("tcpdump reads %d frames of %s, we %d", got, path, n)
		}
	} else if !strings.Contains(err.Error(), "executable file not found") {
		t.Errorf("tcpdump -r %s: %v", path, err)
	}
	return n
}

func write(t *testing.T, w *Writer, n int) {
	t.Helper()
	f := evidenceFrame(t)
	for range n {
		if err := w.Write(time.Now(), f, len(f)); err != nil {
			t.Fatal(err)
		}
	}
}

// A restart appends: the evidence of earlier runs stays.
func TestWriterAppendsAcrossRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "evidence.pcap")
	for run := 1; run <= 3; run++ {
		w, err := OpenWriter(path, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		write(t, w, 5)
		w.Close()
		if n := count(t, path); n != 5*run {
			t.Errorf("after run %d: %d frames, want %d", run, n, 5*run)
		}
	}
}

// logrotate's copytruncate empties the file under the writer: the next
// frame starts it again with a header, and tcpdump opens it.
func TestWriterSurvivesCopytruncate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "evidence.pcap")
	w, err := OpenWriter(path, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	write(t, w, 3)
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	write(t, w, 2)
	if n := count(t, path); n != 2 {
		t.Errorf("%d frames after copytruncate, want 2", n)
	}
}

// A file that is not this writer's pcap is set aside, never overwritten.
func TestWriterSetsOtherFilesAside(t *testing.T) {
	path := filepath.Join(t.TempDir(), "evidence.pcap")
	os.WriteFile(path, []byte("not a pcap at all, but someone's data"), 0o600)
	w, err := OpenWriter(path, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	write(t, w, 1)
	if data, err := os.ReadFile(w.SetAside); err != nil || !strings.Contains(string(data), "someone's data") {
		t.Errorf("set aside as %q: %q %v", w.SetAside, data, err)
	}
	if n := count(t, path); n != 1 {
		t.Errorf("%d frames", n)
	}
}

// With a size limit the file rotates, keeping maxFiles old ones, each a
// valid pcap.
func TestWriterRotatesBySize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "evidence.pcap")
	w, err := OpenWriter(path, 1000, 2)
	if err != nil {
		t.Fatal(err)
	}
	write(t, w, 40) // about 70 bytes each: several files' worth
	w.Close()
	for _, p := range []string{path, path + ".1", path + ".2"} {
		fi, err := os.Stat(p)
		if err != nil || fi.Size() > 1000 {
			t.Errorf("%s: %v size %v", p, err, fi)
			continue
		}
		if count(t, p) == 0 {
			t.Errorf("%s holds no frame", p)
		}
	}
	if _, err := os.Stat(path + ".3"); err == nil {
		t.Errorf("%s.3 kept beyond max files", path)
	}
}
