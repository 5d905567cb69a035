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
		Hold: &dataplane.HoldResult{Outcome: dataplane.HoldAnsweredACK, Waited: 248 * time.Microsecond, Frames: 3, Joined: 2,
			ProbeSeq: 2001, ProbeAck: 1001}}
	return []dataplane.Event{spoofed, confirmed, held}
}

// The event log's JSON is a scripting interface: add keys, never rename
// them. This pins it byte for byte.
func TestRecordJSONGolden(t *testing.T) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for i, e := range goldenEvents() {
		r := FromEvent(e, "eth0", "gw1")
		if i == 0 {
			r.File, r.Frame = "/var/log/rstguard/evidence.pcapng", 7
		}
		if err := enc.Encode(r); err != nil {
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

// Community ID v1 against the spec's published vectors (seed 0), in both
// directions: the value is the connection's, not the packet's.
func TestCommunityID(t *testing.T) {
	for _, tc := range []struct {
		src, dst string
		proto    uint8
		want     string
	}{
		{"128.232.110.120:34855", "66.35.250.204:80", 6, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="},
		{"192.168.1.52:54585", "8.8.8.8:53", 17, "1:d/FP5EW3wiY1vCndhwleRRKHowQ="},
		{"[2001:470:e5bf:dead:4957:2174:e82c:4887]:63943", "[2607:f8b0:400c:c03::1a]:25", 6, "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4="},
	} {
		src, dst := netip.MustParseAddrPort(tc.src), netip.MustParseAddrPort(tc.dst)
		if got := CommunityID(src, dst, tc.proto); got != tc.want {
			t.Errorf("%s > %s: %s, want %s", src, dst, got, tc.want)
		}
		if got := CommunityID(dst, src, tc.proto); got != tc.want {
			t.Errorf("%s > %s: %s, want %s", dst, src, got, tc.want)
		}
	}
}

// flow_id is one per connection: both directions share it, another port or
// zone does not.
func TestFlowID(t *testing.T) {
	a, b := netip.MustParseAddrPort("192.0.2.10:40000"), netip.MustParseAddrPort("198.51.100.80:80")
	id := FlowID(a, b, 0)
	if FlowID(b, a, 0) != id || id >= 1<<53 {
		t.Errorf("flow id %d not symmetric or too large", id)
	}
	if FlowID(a, b, 1) == id || FlowID(netip.AddrPortFrom(a.Addr(), 40001), b, 0) == id {
		t.Error("another zone or port has the same flow id")
	}
}

// The EVE keys a SIEM routes on.
func TestEVEKeys(t *testing.T) {
	evs := goldenEvents()
	spoofed, confirmed, held := FromEvent(evs[0], "eth0", "gw1"), FromEvent(evs[1], "eth0", "gw1"), FromEvent(evs[2], "eth0", "gw1")
	if spoofed.Timestamp != "2026-11-26T09:24:37.123456+0000" || spoofed.EventType != "rst" || spoofed.Proto != "TCP" ||
		spoofed.SrcIP.String() != "192.0.2.10" || spoofed.DestPort != 80 || spoofed.InIface != "eth0" || spoofed.Schema != Schema {
		t.Errorf("EVE keys: %+v", spoofed.EVE)
	}
	if spoofed.FlowID != confirmed.FlowID || spoofed.CommunityID != confirmed.CommunityID || spoofed.EventID == confirmed.EventID {
		t.Error("one connection's events must share flow_id and community_id, not event_id")
	}
	if spoofed.Severity != SeverityHigh || confirmed.Severity != SeverityHigh || held.Severity != SeverityHigh {
		t.Errorf("severities %d %d %d", spoofed.Severity, confirmed.Severity, held.Severity)
	}
	valid := evs[0]
	valid.Verdict = dataplane.VerdictValid
	if FromEvent(valid, "", "").Severity != SeverityLow {
		t.Error("a valid RST is not low severity")
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

func TestRecordText(t *testing.T) {
	evs := goldenEvents()
	for i, want := range []string{
		"eth0 192.0.2.10:40000 > 198.51.100.80:80 [R] seq 1001 ttl 55 id 4242 win 0: spoofed (seq_exact,ttl_off) -> drop; expected seq 1001 ttl 61 ip-id per_flow; injector ~9 hops away, real sender ~3",
		"CONFIRMED FORGED: 192.0.2.10:40000 > 198.51.100.80:80 kept sending after a RST in its name ([P.] seq 1001 ttl 61 after the RST seq 1001 ttl 55, judged spoofed then)",
		"HOLD 192.0.2.10:40000 > 198.51.100.80:80 [R] seq 1001 ttl 61: probe_answered_ack after 248µs (3 held) -> forged, dropped",
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
	// The first line's counts add up: 1 judged RST, 1 hold decision, 1 confirmation.
	if !strings.Contains(out.String(), "3 events: 1 RST judged (0 valid, 0 suspect, 1 spoofed, 0 unknown), 1 hold decision, 1 other\n2 RSTs dropped") ||
		!strings.Contains(out.String(), "held RSTs, by outcome") || !strings.Contains(out.String(), "~9 hops from this box") {
		t.Errorf("printed:\n%s", out.String())
	}
}

// Monitor mode's report says what drop mode would have dropped: RSTs passed
// although spoofed, but not the harmless or allow-listed ones.
func TestSummaryWouldDrop(t *testing.T) {
	rst := func(v dataplane.Verdict, a dataplane.Action, signals ...string) Record {
		return Record{Kind: dataplane.EventRST, Verdict: v, Action: a, Signals: signals}
	}
	s := Summarize([]Record{
		rst(dataplane.VerdictSpoofed, dataplane.ActionPass, "ttl_off"),
		rst(dataplane.VerdictSpoofed, dataplane.ActionPass, "ttl_off", dataplane.SignalHarmless.String()),
		rst(dataplane.VerdictSpoofed, dataplane.ActionPass, "ttl_off", dataplane.SignalAllowed.String()),
		rst(dataplane.VerdictSpoofed, dataplane.ActionDrop, "ttl_off"),
		rst(dataplane.VerdictSuspect, dataplane.ActionPass, "rst_burst"),
	}, 5)
	if s.WouldDrop != 1 || s.Dropped != 1 {
		t.Errorf("would drop %d, dropped %d; want 1 and 1", s.WouldDrop, s.Dropped)
	}
	var b strings.Builder
	s.Print(&b)
	if !strings.Contains(b.String(), "1 RST passed that drop mode would have dropped") {
		t.Errorf("report:\n%s", b.String())
	}
}
