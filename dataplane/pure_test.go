package dataplane

import (
	"net/netip"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/rstguard/rstguard/bench/frames"
	"github.com/rstguard/rstguard/internal/tcpflag"
	"github.com/rstguard/rstguard/xdp"
)

// Tests here need no kernel: they run as any user.

func rawEvent(r xdp.RstguardEvent) []byte {
	return append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(&r)), unsafe.Sizeof(r))...)
}

func TestDecodeEvent(t *testing.T) {
	var r xdp.RstguardEvent
	copy(r.Saddr[:], netip.MustParseAddr("::ffff:192.0.2.10").AsSlice())
	copy(r.Daddr[:], netip.MustParseAddr("::ffff:198.51.100.80").AsSlice())
	r.Sport, r.Dport, r.Seq, r.Ttl, r.Zone = 40000, 80, 1001, 55, 7
	r.Kind, r.Verdict, r.Action = uint8(EventRST), uint8(VerdictSpoofed), uint8(ActionDrop)
	r.ExpTtl, r.ExpSeq, r.ExpAck, r.RttNs = 61, 1001, 2002, 12000000
	r.CapLen, r.PktLen = 4, 60
	copy(r.Pkt[:], []byte{1, 2, 3, 4, 5})
	e, err := DecodeEvent(rawEvent(r), CaptureClock)
	if err != nil {
		t.Fatal(err)
	}
	if e.Src.String() != "192.0.2.10:40000" || e.Dst.Port() != 80 || e.Zone != 7 || e.Verdict != VerdictSpoofed ||
		*e.Expected.Seq != 1001 || *e.Expected.Ack != 2002 || e.Expected.RTT != 12*time.Millisecond ||
		len(e.Frame) != 4 || e.FrameLen != 60 || e.RST != nil {
		t.Errorf("decoded %+v", e)
	}
	r.Kind, r.RstSeq, r.RstTtl, r.RstVerdict = uint8(EventConfirmed), 999, 40, uint8(VerdictValid)
	if e, _ := DecodeEvent(rawEvent(r), CaptureClock); e.RST == nil || e.RST.TTL != 40 || e.RST.VerdictThen != VerdictValid || e.Expected.Seq != nil {
		t.Errorf("confirmation decoded %+v", e)
	}
	r.Kind, r.Verdict, r.ExpTtl = uint8(EventRST), uint8(VerdictValid), 0 // the sender never seen
	if e, _ := DecodeEvent(rawEvent(r), CaptureClock); e.Expected.Seq != nil || e.Expected.Ack == nil {
		t.Errorf("baseline of an unseen sender %+v", e.Expected)
	}
	if _, err := DecodeEvent(make([]byte, 10), CaptureClock); err == nil {
		t.Error("a short record decoded")
	}
}

func TestCountersFrom(t *testing.T) {
	raw := make([]uint64, xdp.RstguardCounterCNT_MAX)
	raw[xdp.RstguardCounterCNT_TCP], raw[xdp.RstguardCounterCNT_NOT_TCP], raw[xdp.RstguardCounterCNT_TINY_FRAGMENT] = 10, 5, 1
	raw[int(xdp.RstguardCounterCNT_VERDICT_BASE)+int(VerdictSpoofed)] = 3
	raw[int(xdp.RstguardCounterCNT_ACTION_BASE)+int(ActionHold)] = 2
	raw[int(xdp.RstguardCounterCNT_SIGNAL_BASE)+int(xdp.RstguardSignalSIG_TTL_OFF)] = 3
	raw[int(xdp.RstguardCounterCNT_CONFIRMED_ACTION_BASE)+int(ActionDrop)] = 4
	c := countersFrom(raw)
	if c.Packets != 16 || c.Verdicts["spoofed"] != 3 || c.Actions["hold"] != 2 || c.Signals["ttl_off"] != 3 ||
		c.ConfirmedByAction["drop"] != 4 || c.ConfirmedByAction["pass"] != 0 {
		t.Errorf("counters %+v", c)
	}
}

func TestAllowKey(t *testing.T) {
	k := allowKey(netip.MustParsePrefix("198.51.100.7/24"))
	if k.Prefixlen != 96+24 || netip.AddrFrom16(k.Addr).String() != "::ffff:198.51.100.0" {
		t.Errorf("IPv4 key %+v", k)
	}
	k = allowKey(netip.MustParsePrefix("2001:db8::/32"))
	if k.Prefixlen != 32 || netip.AddrFrom16(k.Addr).String() != "2001:db8::" {
		t.Errorf("IPv6 key %+v", k)
	}
}

// ParseSegment reads what the program's parse() reads, and both directions
// of a connection make the one key set_key() makes.
func TestParseSegmentKey(t *testing.T) {
	c := linuxPair(clientAddr, serverAddr)
	out := c.Data(frames.Client, []byte("GET /"))
	back := frames.Segment{Src: serverAddr, Dst: clientAddr, Flags: tcpflag.ACK, VLANs: []uint16{100, 200}}.MustFrame()
	a, err := ParseSegment(out)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseSegment(back)
	if err != nil {
		t.Fatal(err)
	}
	if a.Src != clientAddr || a.PayloadLen != 5 || a.TTL != 61 || a.VLAN != 0 || b.VLAN != 100 || b.L3Off != 22 {
		t.Errorf("parsed %+v and %+v", a, b)
	}
	ka, hiA := a.Key(3)
	kb, hiB := b.Key(3)
	if ka != kb || hiA == hiB || ka.Zone != 3 {
		t.Errorf("keys %+v (%v) and %+v (%v)", ka, hiA, kb, hiB)
	}
	// IPv6 with a hop-by-hop header, as hold mode holds it: walked to TCP.
	hbh := frames.Segment{Src: client6, Dst: server6, Seq: 7, Flags: tcpflag.RST, IPv6HopByHop: true}.MustFrame()
	if s, err := ParseSegment(hbh); err != nil || s.L4Off != 14+40+8 || s.L4Len != 20 || s.Seq != 7 || s.Src != client6 {
		t.Errorf("IPv6 with a hop-by-hop header: %+v %v", s, err)
	}
	routing := slices.Clone(hbh)
	routing[14+6] = 43 // a routing header instead: the program does not hold it, nor does the daemon parse it
	for _, bad := range [][]byte{out[:20], out[:14+20+10], frames.Segment{Src: clientAddr, Dst: serverAddr, Flags: tcpflag.RST, MoreFragments: true}.MustFrame()[:14+21],
		routing, hbh[:14+40+4]} {
		if _, err := ParseSegment(bad); err == nil {
			t.Errorf("parsed a broken frame %x", bad)
		}
	}
}

func TestPolicyRoundTrip(t *testing.T) {
	p := DefaultPolicy()
	if p.Mode != ModeMonitor || p.TTLTolerance != 2 || p.HoldMax != 250*time.Millisecond || p.ProbeRate == 0 {
		t.Errorf("defaults %+v", p)
	}
	p.Mode, p.HoldMin = ModeHold, 3*time.Millisecond
	if got := policyOf(configOf(p)); got != p {
		t.Errorf("round trip %+v, want %+v", got, p)
	}
	if m, err := ParseMode("hold"); err != nil || m != ModeHold {
		t.Errorf("ParseMode(hold) %v %v", m, err)
	}
	if _, err := ParseMode("block"); err == nil {
		t.Error("ParseMode accepted block")
	}
}

// The loopback device runs one queue; a missing interface falls back to one.
func TestRxQueues(t *testing.T) {
	if n := RxQueues("lo"); n != 1 {
		t.Errorf("lo runs %d RX queues", n)
	}
	if n := RxQueues("nosuch0"); n != 1 {
		t.Errorf("a missing interface: %d", n)
	}
}
