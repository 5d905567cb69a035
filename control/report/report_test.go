package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rstguard/rstguard/dataplane"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func seqPtr(v uint32) *uint32 { return &v }

// goldenEvents are one event of each kind, as the program and hold mode
// emit them.
func goldenEvents() []dataplane.Event {
	at := time.Date(2026, 11, 26, 9, 24, 37, 123456000, time.UTC)
	client, server := netip.MustParseAddrPort("192.0.2.10:40000"), netip.MustParseAddrPort("198.51.100.80:80")
	spoofed := dataplane.Event{Time: at, Kind: dataplane.EventRST, Src: client, Dst: server, Flags: 0x04, Seq: 1001,
		TTL: 55, IPID: 4242, Verdict: dataplane.VerdictSpoofed, Signals: 1<<4 | 1<<0, Action: dataplane.ActionDrop,
		Score: 4, Expected: dataplane.Expected{Seq: seqPtr(1001), Ack: seqPtr(2002), TTL: 61, Window: 509,
			IPIDModel: 2, RTT: 12 * time.Millisecond}}
	confirmed := dataplane.Event{Time: at.Add(time.Second), Kind: dataplane.EventConfirmed, Src: client, Dst: server,
		Flags: 0x18, Seq: 1001, Ack: 2002, TTL: 61, IPID: 3093, Window: 502, Verdict: dataplane.VerdictSpoofed,
		Action: dataplane.ActionDrop, Expected: dataplane.Expected{TTL: 61, IPIDModel: 2},
		RST: &dataplane.ForgedRST{Seq: 1001, TTL: 55, VerdictThen: dataplane.VerdictSpoofed}}
	held := dataplane.Event{Time: at.Add(2 * time.Second), Kind: dataplane.EventHold, Src: client, Dst: server,
		Zone: 3, Flags: 0x04, Seq: 1001, TTL: 61, Verdict: dataplane.VerdictSpoofed, Action: dataplane.ActionDrop,
		Hold: &dataplane.HoldResult{Outcome: dataplane.HoldAnsweredACK, Waited: 248 * time.Microsecond, Frames: 1,
			ProbeSeq: 2001, ProbeAck: 1001}}
	return []dataplane.Event{spoofed, confirmed, held}
}

// The event log's JSON is a scripting interface: add keys, never rename
// them. This pins it byte for byte.
func TestRecordJSONGolden(t *testing.T) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, e := range goldenEvents() {
		if err := enc.Encode(FromEvent(e, "eth0", "gw1")); err != nil {
			t.Fatal(err)
		}
	}
	const golden = "testdata/records.golden.jsonl"
	if *update {
		os.WriteFile(golden, b.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("JSON changed:\n got %s\nwant %s", b.Bytes(), want)
	}
	// And it reads back to the same records.
	recs, bad, err := ReadRecords(bytes.NewReader(want))
	if err != nil || bad != 0 || len(recs) != 3 {
		t.Fatalf("read back %d records, %d bad, %v", len(recs), bad, err)
	}
	if recs[2].Kind != dataplane.EventHold || recs[2].Hold.Outcome != dataplane.HoldAnsweredACK || recs[0].Src.Port() != 40000 {
		t.Errorf("read back %+v", recs)
	}
}

func TestEstimateHops(t *testing.T) {
	for _, tc := range []struct {
		forged, real     uint8
		injector, sender int
	}{
		{63, 60, 1, 4},   // the demo: injector 1 hop from the gateway, client 4
		{46, 49, 18, 15}, // rst-inject-rae.pcap
		{110, 52, 18, 12},
	} {
		h := EstimateHops(tc.forged, tc.real)
		if h.Injector != tc.injector || h.RealSender != tc.sender || h.TTLDelta != int(tc.forged)-int(tc.real) {
			t.Errorf("%d vs %d: %+v", tc.forged, tc.real, h)
		}
	}
}

func TestFlags(t *testing.T) {
	for flags, want := range map[uint8]string{0x02: "S", 0x12: "S.", 0x04: "R", 0x14: "R.", 0x18: "P.", 0x11: "F.", 0: "none"} {
		if got := Flags(flags); got != want {
			t.Errorf("Flags(%#x) = %q, want %q", flags, got, want)
		}
	}
}

func TestRecordText(t *testing.T) {
	evs := goldenEvents()
	for i, want := range []string{
		"eth0 192.0.2.10:40000 > 198.51.100.80:80 [R] seq 1001 ttl 55 id 4242 win 0: spoofed (seq_exact,ttl_off) -> drop; expected seq 1001 ttl 61 ip-id per_flow; injector ~9 hops away, real sender ~3",
		"CONFIRMED FORGED: 192.0.2.10:40000 > 198.51.100.80:80 kept sending after a RST in its name ([P.] seq 1001 ttl 61 after the RST seq 1001 ttl 55, judged spoofed then)",
		"HOLD 192.0.2.10:40000 > 198.51.100.80:80 [R] seq 1001 ttl 61: probe_answered_ack after 248µs (1 held) -> forged, dropped",
	} {
		if got := FromEvent(evs[i], "eth0", "").Text(); !strings.Contains(got, want) {
			t.Errorf("text\n got %s\nwant ...%s", got, want)
		}
	}
}

func TestSummarize(t *testing.T) {
	var recs []Record
	for _, e := range goldenEvents() {
		recs = append(recs, FromEvent(e, "", ""))
	}
	s := Summarize(recs, 5)
	if s.Events != 3 || s.Verdicts["spoofed"] != 1 || s.Confirmed != 1 || s.Dropped != 2 || s.Holds["probe_answered_ack"] != 1 {
		t.Errorf("summary %+v", s)
	}
	if len(s.TopTargets) != 1 || s.TopTargets[0].Key != "198.51.100.80" || s.Injector == nil || s.Injector.MedianHops != 9 {
		t.Errorf("top %+v injector %+v", s.TopTargets, s.Injector)
	}
	var out bytes.Buffer
	s.Print(&out)
	if !strings.Contains(out.String(), "held RSTs, by outcome") || !strings.Contains(out.String(), "~9 hops from this box") {
		t.Errorf("printed:\n%s", out.String())
	}
}
