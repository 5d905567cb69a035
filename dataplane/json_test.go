package dataplane

import (
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"testing"

	"github.com/rstguard/rstguard/xdp"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// golden compares v's JSON with a committed file: the JSON of dataplane's
// types (status --json, flows --json, analyze's summary) is a scripting
// interface, so keys are added, never renamed.
func golden(t *testing.T, name string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := "testdata/" + name + ".golden.json"
	if *update {
		os.WriteFile(path, append(got, '\n'), 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got)+"\n" != string(want) {
		t.Errorf("%s JSON changed:\n got %s\nwant %s", name, got, want)
	}
}

func TestCountersJSONGolden(t *testing.T) {
	raw := make([]uint64, xdp.RstguardCounterCNT_MAX)
	for i := range raw {
		raw[i] = uint64(i)
	}
	golden(t, "counters", countersFrom(raw))
}

// Every counter of the header, by its name there, up to the families.
func TestCountersEach(t *testing.T) {
	raw := make([]uint64, xdp.RstguardCounterCNT_MAX)
	for i := range raw {
		raw[i] = uint64(i)
	}
	got := map[string]uint64{}
	countersFrom(raw).Each(func(name string, v uint64) { got[name] = v })
	if len(got) != int(xdp.RstguardCounterCNT_VERDICT_BASE) {
		t.Errorf("%d counters, want the %d before the families", len(got), xdp.RstguardCounterCNT_VERDICT_BASE)
	}
	for name, want := range map[string]xdp.RstguardCounter{"tcp": xdp.RstguardCounterCNT_TCP,
		"hold_no_socket": xdp.RstguardCounterCNT_HOLD_NO_SOCKET, "hold_forged": xdp.RstguardCounterCNT_HOLD_FORGED,
		"event_suppressed": xdp.RstguardCounterCNT_EVENT_SUPPRESSED} {
		if v, ok := got[name]; !ok || v != uint64(want) {
			t.Errorf("%s = %d (present %v), want %d", name, v, ok, want)
		}
	}
}

func TestFlowJSONGolden(t *testing.T) {
	var k xdp.RstguardFlowKey
	var v xdp.RstguardFlowValue
	k.AddrLo = netip.MustParseAddr("::ffff:192.0.2.10").As16()
	k.AddrHi = netip.MustParseAddr("::ffff:198.51.100.80").As16()
	k.PortLo, k.PortHi, k.Zone = ntohs(40000), ntohs(80), 2
	v.State = uint8(xdp.RstguardFlowStateSTATE_ESTABLISHED)
	v.Flags = uint8(xdp.RstguardFlowFlagFLOW_RST_PENDING)
	v.Dir[0] = xdp.RstguardDirState{Isn: 1000, NextSeq: 1100, MaxAck: 5001, Ttl: 61, Window: 502, Wscale: 7,
		IpidModel: 2, Flags: uint8(xdp.RstguardDirFlagDIR_SEEN | xdp.RstguardDirFlagDIR_SYN | xdp.RstguardDirFlagDIR_WSCALE | xdp.RstguardDirFlagDIR_TS),
		Rtt: 10000, LastDataT: 1000}
	v.Dir[1] = xdp.RstguardDirState{Isn: 5000, NextSeq: 5001, MaxAck: 1100, Ttl: 52, Window: 509,
		Flags: uint8(xdp.RstguardDirFlagDIR_SEEN | xdp.RstguardDirFlagDIR_SYN)}
	v.RstSeq, v.RstTtl, v.RstVerdict = 1100, 55, uint8(VerdictSpoofed)
	golden(t, "flow", decodeFlow(&k, &v, 2000))
}
