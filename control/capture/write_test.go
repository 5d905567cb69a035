package capture

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rstguard/rstguard/bench/frames"
	"github.com/rstguard/rstguard/internal/tcpflag"
)

func evidenceFrame(t *testing.T) []byte {
	t.Helper()
	return frames.Segment{Src: netip.MustParseAddrPort("192.0.2.1:1"), Dst: netip.MustParseAddrPort("192.0.2.2:2"), Flags: tcpflag.RST}.MustFrame()
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
		if _, _, err := w.Write(EvidenceFrame{Time: time.Now(), Data: f, Length: len(f), Iface: "eth0"}); err != nil {
			t.Fatal(err)
		}
	}
}

func openWriter(t *testing.T, path string, opts WriterOptions) *Writer {
	t.Helper()
	w, err := OpenWriter(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// A restart appends: the evidence of earlier runs stays.
func TestWriterAppendsAcrossRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "evidence.pcapng")
	for run := 1; run <= 3; run++ {
		w := openWriter(t, path, WriterOptions{})
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
	path := filepath.Join(t.TempDir(), "evidence.pcapng")
	w := openWriter(t, path, WriterOptions{})
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
	path := filepath.Join(t.TempDir(), "evidence.pcapng")
	os.WriteFile(path, []byte("not a pcap at all, but someone's data"), 0o600)
	w := openWriter(t, path, WriterOptions{})
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
	path := filepath.Join(t.TempDir(), "evidence.pcapng")
	w := openWriter(t, path, WriterOptions{MaxSize: 4000, MaxFiles: 2})
	write(t, w, 150) // about 70 bytes each: several files' worth
	w.Close()
	for _, p := range []string{path, path + ".1", path + ".2"} {
		fi, err := os.Stat(p)
		if err != nil || fi.Size() > 4000 {
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

// An analyst opens the evidence without the event log: the section names
// the writer and the host, each attached interface has its block, and each
// frame carries its verdict as a comment; frame numbers run across
// sections as Wireshark counts them.
func TestEvidenceIsAnnotatedPcapng(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("tshark not installed")
	}
	path := filepath.Join(t.TempDir(), "evidence.pcapng")
	f := evidenceFrame(t)
	for run := range 2 {
		w := openWriter(t, path, WriterOptions{Application: "rstguard test", Host: "gw1", Interfaces: []string{"eth0", "eth1"}})
		for i, iface := range []string{"eth1", "eth0", "wan9"} {
			_, n, err := w.Write(EvidenceFrame{Time: time.Now(), Data: f, Length: len(f), Iface: iface,
				Comment: fmt.Sprintf("rstguard rst spoofed score %d: run %d", 4+i, run)})
			if want := uint64(3*run + i + 1); err != nil || n != want {
				t.Fatalf("frame %d: %v, want number %d", n, err, want)
			}
		}
		w.Close()
	}
	out, err := exec.Command("tshark", "-r", path, "-Y", `frame.comment contains "spoofed"`,
		"-T", "fields", "-e", "frame.number", "-e", "frame.interface_name", "-e", "frame.comment").Output()
	if err != nil {
		t.Fatalf("tshark: %v %s", err, out)
	}
	want := "1\teth1\trstguard rst spoofed score 4: run 0\n2\teth0\trstguard rst spoofed score 5: run 0\n" +
		"3\twan9\trstguard rst spoofed score 6: run 0\n4\teth1\trstguard rst spoofed score 4: run 1\n" +
		"5\teth0\trstguard rst spoofed score 5: run 1\n6\twan9\trstguard rst spoofed score 6: run 1\n"
	if string(out) != want {
		t.Errorf("tshark read\n%s\nwant\n%s", out, want)
	}
	info, err := exec.Command("capinfos", path).Output()
	if err == nil && (!strings.Contains(string(info), "rstguard test") || !strings.Contains(string(info), "host gw1")) {
		t.Errorf("capinfos: %s", info)
	}
}
