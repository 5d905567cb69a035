package analyze

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/rstguard/rstguard/control/capture"
	"github.com/rstguard/rstguard/control/report"
	"github.com/rstguard/rstguard/dataplane"
	"github.com/rstguard/rstguard/internal/testutil"
)

func requireRoot(t *testing.T) {
	t.Helper()
	testutil.RequireRoot(t, "BPF programs")
}

// analyzeJSON runs the analysis with --json output and decodes it.
func analyzeJSON(t *testing.T, paths ...string) ([]report.Record, Summary, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	sum, err := Files(paths, Options{JSON: true, Out: &out}, &errOut)
	var recs []report.Record
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if line == "" {
			continue
		}
		var r report.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("bad JSON line %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	return recs, sum, err
}

// judged is kind:verdict per record, the shape the expectations use.
func judged(recs []report.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Kind.String() + ":" + r.Verdict.String()
	}
	return out
}

var captureExpectations = []struct {
	file string
	want []string
}{
	// The client's own capture: the server's RST answers a connection the
	// server believes dead. Legitimate.
	{"seed-client-side.pcap", []string{"rst:valid"}},
	// Zeek's injection trace: forged RST/ACK before the SYN/ACK, proven by
	// the SYN/ACK itself; then two legitimate server RSTs.
	{"rst-inject-rae.pcap", []string{"rst:spoofed", "data_after_rst:spoofed", "rst:valid", "rst:valid"}},
	{"syn-then-rst.pcap", []string{"rst:unknown"}},
	{"syn-then-stuff-then-rst.pcap", []string{"rst:unknown"}},
}

func TestSharedCaptures(t *testing.T) {
	requireRoot(t)
	for _, c := range captureExpectations {
		t.Run(c.file, func(t *testing.T) {
			recs, sum, err := analyzeJSON(t, filepath.Join("..", "..", "testdata", c.file))
			if err != nil {
				t.Fatal(err)
			}
			if got := judged(recs); !slices.Equal(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
			if sum.Verdicts["spoofed"] > 0 && sum.Confirmed == 0 {
				t.Errorf("spoofed without confirmation in %+v", sum)
			}
			// Offline no event is budgeted away, so the event log's tally
			// (rstguard report) is the counters' (rstguard status): one
			// type, one meaning.
			if fromEvents, fromCounters := nonzero(report.Summarize(recs, 0).Judged), nonzero(sum.Judged); !reflect.DeepEqual(fromEvents, fromCounters) {
				t.Errorf("events tally %+v, counters %+v", fromEvents, fromCounters)
			}
		})
	}
}

// One load judges many files, each from nothing: the same capture twice
// gives the same records twice and twice its counters, not a second pass
// that finds the first one's flows.
func TestFilesStartFresh(t *testing.T) {
	requireRoot(t)
	rae := filepath.Join("..", "..", "testdata", "rst-inject-rae.pcap")
	once, one, err := analyzeJSON(t, rae)
	if err != nil {
		t.Fatal(err)
	}
	twice, two, err := analyzeJSON(t, rae, rae)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := judged(twice), slices.Concat(judged(once), judged(once)); !slices.Equal(got, want) {
		t.Errorf("the same capture twice: %v, want %v", got, want)
	}
	if two.RSTs != 2*one.RSTs || two.FlowInserts != 2*one.FlowInserts || two.Confirmed != 2*one.Confirmed {
		t.Errorf("twice: %d RSTs, %d flows, %d confirmed; once: %d, %d, %d", two.RSTs, two.FlowInserts, two.Confirmed,
			one.RSTs, one.FlowInserts, one.Confirmed)
	}
}

// nonzero drops the counters' zero entries, which an event log cannot have.
func nonzero(j dataplane.Judged) dataplane.Judged {
	isZero := func(_ string, n uint64) bool { return n == 0 }
	j.Verdicts, j.Signals = maps.Clone(j.Verdicts), maps.Clone(j.Signals)
	maps.DeleteFunc(j.Verdicts, isZero)
	maps.DeleteFunc(j.Signals, isZero)
	return j
}

// The injected RST's details, as the incident brief describes them.
func TestRaeForgedRSTDetails(t *testing.T) {
	requireRoot(t)
	recs, _, err := analyzeJSON(t, "../../testdata/rst-inject-rae.pcap")
	if err != nil {
		t.Fatal(err)
	}
	f := recs[0]
	// ack = the client's ISN: below its SYN (ack_below_syn); a client in
	// SYN-SENT discards a RST that does not acknowledge its SYN
	// (RFC 9293 3.10.7.3), so it is harmless too.
	for _, s := range []string{"ack_below_syn", "ipid_mirrored", "window_mirrored", "harmless"} {
		if !slices.Contains(f.Signals, s) {
			t.Errorf("signal %s missing: %v", s, f.Signals)
		}
	}
	if f.Src.String() != "1.2.0.3:6649" || f.TTL != 46 || f.IPID != 5461 || f.Window != 16384 {
		t.Errorf("forged RST %+v", f)
	}
	c := recs[1]
	if c.RST == nil || c.RST.TTL != 46 || c.TTL != 49 || c.Hops == nil || c.Hops.TTLDelta != -3 {
		t.Errorf("confirmation %+v", c)
	}
}

// Every framing a capture may come in gives the same judgements.
func TestLinkTypes(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	for _, c := range captureExpectations[:2] {
		frames, times := readFrames(t, filepath.Join("..", "..", "testdata", c.file))
		variants := map[string]func() string{
			"raw-101":    func() string { return rewrite(t, dir, c.file, layers.LinkTypeRaw, frames, times, stripEthernet) },
			"ipv4-228":   func() string { return rewrite(t, dir, c.file, layers.LinkTypeIPv4, frames, times, stripEthernet) },
			"sll-113":    func() string { return rewrite(t, dir, c.file, layers.LinkTypeLinuxSLL, frames, times, toSLL) },
			"sll2-276":   func() string { return rewrite(t, dir, c.file, layers.LinkTypeLinuxSLL2, frames, times, toSLL2) },
			"null-0":     func() string { return rewrite(t, dir, c.file, layers.LinkTypeNull, frames, times, toNull) },
			"pcapng-eth": func() string { return rewriteNg(t, dir, c.file, frames, times) },
		}
		for name, make := range variants {
			t.Run(c.file+"/"+name, func(t *testing.T) {
				recs, _, err := analyzeJSON(t, make())
				if err != nil {
					t.Fatal(err)
				}
				if got := judged(recs); !slices.Equal(got, c.want) {
					t.Errorf("got %v, want %v", got, c.want)
				}
			})
		}
	}
}

func TestUnreadableInputs(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pcap")
	os.WriteFile(garbage, []byte("this is not a capture at all"), 0o600)
	empty := filepath.Join(dir, "empty.pcap")
	os.WriteFile(empty, nil, 0o600)
	good := "../../testdata/seed-client-side.pcap"
	whole, _ := os.ReadFile("../../testdata/rst-inject-rae.pcap")
	cut := filepath.Join(dir, "cut.pcap")
	os.WriteFile(cut, whole[:len(whole)-30], 0o600)

	recs, sum, err := analyzeJSON(t, garbage, empty, "/nonexistent.pcap", good, cut)
	if err == nil {
		t.Fatal("no error for unreadable files")
	}
	if sum.Files != 5 || sum.Unreadable != 4 {
		t.Errorf("files %d unreadable %d, want 5 4", sum.Files, sum.Unreadable)
	}
	// The good file and the readable part of the cut one are still judged.
	if got := judged(recs); !slices.Equal(got, []string{"rst:valid", "rst:spoofed", "data_after_rst:spoofed", "rst:valid"}) {
		t.Errorf("judged %v", got)
	}
	if !sum.Truncated {
		t.Error("cut capture not reported as truncated")
	}
}

func readFrames(t *testing.T, path string) ([][]byte, []gopacket.CaptureInfo) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	var cis []gopacket.CaptureInfo
	for {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			return frames, cis
		}
		frames = append(frames, data)
		cis = append(cis, ci)
	}
}

func rewrite(t *testing.T, dir, name string, lt layers.LinkType, frames [][]byte, cis []gopacket.CaptureInfo,
	conv func([]byte) []byte) string {
	t.Helper()
	path := filepath.Join(dir, name+"."+lt.String())
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, lt); err != nil {
		t.Fatal(err)
	}
	for i, fr := range frames {
		data := conv(fr)
		ci := cis[i]
		ci.CaptureLength, ci.Length = len(data), len(data)
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func rewriteNg(t *testing.T, dir, name string, frames [][]byte, cis []gopacket.CaptureInfo) string {
	t.Helper()
	path := filepath.Join(dir, name+".pcapng")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := pcapgo.NewNgWriter(f, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	for i, fr := range frames {
		if err := w.WritePacket(cis[i], fr); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return path
}

func stripEthernet(f []byte) []byte { return f[14:] }

func toSLL(f []byte) []byte {
	h := make([]byte, 16)
	binary.BigEndian.PutUint16(h[2:], 1) // ARPHRD_ETHER
	binary.BigEndian.PutUint16(h[4:], 6)
	copy(h[6:], f[6:12])
	copy(h[14:], f[12:14])
	return append(h, f[14:]...)
}

func toSLL2(f []byte) []byte {
	h := make([]byte, 20)
	copy(h[0:], f[12:14])
	binary.BigEndian.PutUint16(h[8:], 1)
	h[11] = 6
	copy(h[12:], f[6:12])
	return append(h, f[14:]...)
}

func toNull(f []byte) []byte {
	h := make([]byte, 4)
	binary.LittleEndian.PutUint32(h, 2) // AF_INET, little-endian host
	return append(h, f[14:]...)
}

// A capture of a link type rstguard cannot read is counted, and fails the
// run with the link type named: nothing judged is not nothing found.
func TestUnknownLinkTypeFails(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	frames, cis := readFrames(t, "../../testdata/seed-client-side.pcap")
	path := rewrite(t, dir, "seed", layers.LinkTypeIEEE802_11, frames, cis, func(f []byte) []byte { return f })
	_, sum, err := analyzeJSON(t, path)
	if err == nil || !strings.Contains(err.Error(), "link type 802.11 (105)") || !strings.Contains(err.Error(), "cannot read") {
		t.Errorf("error %v, want the link type named", err)
	}
	if sum.Skipped != uint64(len(frames)) || sum.RSTs != 0 {
		t.Errorf("summary %+v", sum)
	}
	r, err := capture.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fr, err := r.Next()
	if err != nil || !strings.Contains(fr.Skipped, "link type") {
		t.Errorf("frame %+v err %v", fr, err)
	}
}
