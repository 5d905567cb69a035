package dataplane

import (
	"testing"
	"time"

	"github.com/rstguard/rstguard/bench/frames"
	"github.com/rstguard/rstguard/internal/tcpflag"
	"github.com/rstguard/rstguard/xdp"
)

var (
	sigReply        = Signal(xdp.RstguardSignalSIG_REPLY)
	sigHarmless     = SignalHarmless
	sigOutOfWindow  = Signal(xdp.RstguardSignalSIG_SEQ_OUT_OF_WINDOW)
	sigBurst        = Signal(xdp.RstguardSignalSIG_RST_BURST)
	sigAckMismatch  = Signal(xdp.RstguardSignalSIG_ACK_MISMATCH)
	sigAckBelowSYN  = Signal(xdp.RstguardSignalSIG_ACK_BELOW_SYN)
	stateless       = func(s frames.Segment) frames.Segment { s.IPID, s.Window, s.TS = 0, 0, false; return s }
	plainRSTAtACKOf = func(c *frames.Conn, from frames.Side, trigger frames.Segment) frames.Segment {
		s := stateless(c.Segment(from, tcpflag.RST, nil))
		s.Seq = trigger.Ack // RFC 9293 3.10.7.1: <SEQ=SEG.ACK><CTL=RST>
		return s
	}
)

// exchange has the server send a segment and the client answer with one of
// its own, n times, so that each side's ACK advances n times; it returns the
// client's segments, each with the ACK it carried.
func exchange(h *harness, c *frames.Conn, n int, gap time.Duration) []frames.Segment {
	h.tb.Helper()
	var client []frames.Segment
	for range n {
		h.send(c.Data(frames.Server, make([]byte, 200)), gap)
		seg := c.Segment(frames.Client, tcpflag.PSH|tcpflag.ACK, make([]byte, 50))
		h.send(c.Send(frames.Client, seg), gap)
		client = append(client, seg)
	}
	return client
}

// judgeAll runs the RSTs 200 µs apart (a host answering a burst of late
// segments) and returns their events.
func judgeAll(h *harness, rsts []frames.Segment, want uint32) []Event {
	h.tb.Helper()
	h.drain()
	for i, r := range rsts {
		if ret := h.send(r.MustFrame(), 200*time.Microsecond); ret != want {
			h.tb.Errorf("RST %d: XDP verdict %d, want %d", i, ret, want)
		}
	}
	evs := h.drain()
	if len(evs) != len(rsts) {
		h.tb.Fatalf("%d events for %d RSTs", len(evs), len(rsts))
	}
	return evs
}

// Family 1 of issue 17: a host that has closed answers the peer's segments
// that were still in flight, one plain RST each at that segment's ACK, from
// its control socket (IP-ID 0, DF, no timestamps). They step through the
// peer's older ACKs, behind what the box saw last. Before the reply model
// this was seq_out_of_window + rst_burst = spoofed, dropped in drop mode.
func TestReplyToSegmentsInFlightAfterClose(t *testing.T) {
	h := newHarness(t, ModeDrop)
	c := linuxPair(clientAddr, serverAddr)
	established(h, c)
	late := exchange(h, c, 4, time.Millisecond)
	h.sendAll(c.FIN(frames.Server), c.ACK(frames.Client))
	var rsts []frames.Segment
	for _, seg := range late[:3] {
		rsts = append(rsts, plainRSTAtACKOf(c, frames.Server, seg))
	}
	for i, e := range judgeAll(h, rsts, XDPPass) {
		if e.Verdict == VerdictSpoofed || e.Action != ActionPass {
			t.Errorf("RST %d: %s/%s %v", i, e.Verdict, e.Action, e.Signals.Names())
		}
		for _, s := range []Signal{sigReply, sigHarmless} {
			if !e.Signals.Has(s) {
				t.Errorf("RST %d: %s missing from %v", i, s, e.Signals.Names())
			}
		}
		for _, s := range []Signal{sigOutOfWindow, sigBurst} {
			if e.Signals.Has(s) {
				t.Errorf("RST %d: %s in %v", i, s, e.Signals.Names())
			}
		}
	}
}

// Family 3: the client closed with the server's data in flight; each data
// segment that reaches it draws a plain RST at that segment's ACK. The same
// rule from the other side: the RSTs are the client's, the ACKs the server's.
func TestReplyToServerDataAfterClientClose(t *testing.T) {
	h := newHarness(t, ModeDrop)
	c := linuxPair(clientAddr, serverAddr)
	established(h, c)
	var server []frames.Segment
	for range 3 {
		h.send(c.Data(frames.Client, make([]byte, 30)), time.Millisecond)
		seg := c.Segment(frames.Server, tcpflag.PSH|tcpflag.ACK, make([]byte, 1000))
		h.send(c.Send(frames.Server, seg), time.Millisecond)
		server = append(server, seg)
	}
	var rsts []frames.Segment
	for _, seg := range server {
		rsts = append(rsts, plainRSTAtACKOf(c, frames.Client, seg))
	}
	for i, e := range judgeAll(h, rsts, XDPPass) {
		if e.Verdict == VerdictSpoofed || !e.Signals.Has(sigReply) || e.Signals.Has(sigBurst) {
			t.Errorf("RST %d: %s %v", i, e.Verdict, e.Signals.Names())
		}
	}
}

// Family 2: a RST/ACK reply (Windows' form: seq = the segment's ACK, ack =
// its end) to a late duplicate of a segment the server had acknowledged
// already. Before: seq_out_of_window + ack_mismatch = spoofed.
func TestRSTACKReplyToLateSegment(t *testing.T) {
	h := newHarness(t, ModeDrop)
	c := linuxPair(clientAddr, serverAddr)
	established(h, c)
	segs := exchange(h, c, 3, time.Millisecond)
	h.send(c.ACK(frames.Server), time.Millisecond)
	dup := segs[0]
	h.send(dup.MustFrame(), time.Millisecond) // the late duplicate passes the box
	rst := c.Segment(frames.Server, tcpflag.RST|tcpflag.ACK, nil)
	rst.Seq, rst.Ack, rst.TS, rst.Window = dup.Ack, dup.Seq+uint32(len(dup.Payload)), false, 0
	e := judgeAll(h, []frames.Segment{rst}, XDPPass)[0]
	if e.Verdict != VerdictValid || !e.Signals.Has(sigReply) || e.Signals.Has(sigAckMismatch) || e.Signals.Has(sigOutOfWindow) {
		t.Errorf("reply RST/ACK: %s %v", e.Verdict, e.Signals.Names())
	}
	// An ack beyond anything the client sent is no reply's.
	bad := rst
	bad.Ack = c.Peer(frames.Client).ISN + 1<<20
	if e := judgeAll(h, []frames.Segment{bad}, XDPPass)[0]; e.Signals.Has(sigReply) || !e.Signals.Has(sigAckMismatch) {
		t.Errorf("RST/ACK acking unsent data: %s %v", e.Verdict, e.Signals.Names())
	}
}

// The reply model's horizon: an ACK the client sent more than two horizons
// ago is no longer among its recent ones, so a RST at it is out of window
// (and still harmless: the client acknowledged beyond it). Two such RSTs
// with different seq are one cause, a stack answering crossed segments:
// seq_out_of_window + rst_burst make suspect, not spoofed.
func TestReplyHorizonAndOneCause(t *testing.T) {
	h := newHarness(t, ModeDrop)
	c := linuxPair(clientAddr, serverAddr)
	established(h, c)
	old := exchange(h, c, 2, time.Millisecond)
	exchange(h, c, 3, 1500*time.Millisecond) // the ACK moves on, a shift each time
	var rsts []frames.Segment
	for _, seg := range old {
		rsts = append(rsts, plainRSTAtACKOf(c, frames.Server, seg))
	}
	evs := judgeAll(h, rsts, XDPPass)
	for i, e := range evs {
		if e.Verdict != VerdictSuspect || e.Signals.Has(sigReply) || !e.Signals.Has(sigOutOfWindow) || !e.Signals.Has(sigHarmless) {
			t.Errorf("RST %d: %s %v", i, e.Verdict, e.Signals.Names())
		}
	}
	if !evs[1].Signals.Has(sigBurst) {
		t.Errorf("second RST lacks rst_burst: %v", evs[1].Signals.Names())
	}
}

// A volley of replies is no burst, but one from another hop count is
// (net4people #285's TTLs 65, 66, 67): the host's RSTs all leave one stack.
func TestReplyVolleyFromAnotherHopCountIsABurst(t *testing.T) {
	h := newHarness(t, ModeMonitor)
	c := linuxPair(clientAddr, serverAddr)
	established(h, c)
	first := stateless(c.Segment(frames.Server, tcpflag.RST, nil))
	second := first
	second.TTL = first.TTL - 3
	evs := judgeAll(h, []frames.Segment{first, first, second}, XDPPass)
	if evs[1].Signals.Has(sigBurst) || !evs[2].Signals.Has(sigBurst) {
		t.Errorf("burst: same TTL %v, other hop count %v", evs[1].Signals.Names(), evs[2].Signals.Names())
	}
}

// The harm model: a RST its receiver discards is passed in drop mode even
// when spoofed, and leaves the flow as it was, so that the injector's next,
// harmful RST is still judged against an open connection and dropped.
func TestHarmlessRSTPassesAndKeepsTheFlow(t *testing.T) {
	h := newHarness(t, ModeDrop)
	c := linuxPair(clientAddr, serverAddr)
	established(h, c)
	for _, tc := range []struct {
		name     string
		seq      func(exact uint32) uint32
		harmless bool
	}{
		{"below what the server acknowledged", func(x uint32) uint32 { return x - 100 }, true},
		{"in the window, not exact", func(x uint32) uint32 { return x + 1000 }, false},
		// The server's window 509 << 7, plus one largest window of that scale.
		{"beyond the window and one more", func(x uint32) uint32 { return x + 509<<7 + 0xffff<<7 }, true},
		{"just inside that bound", func(x uint32) uint32 { return x + 509<<7 + 0xffff<<7 - 1 }, false},
	} {
		f := forgedFromClient(c)
		f.Seq = tc.seq(f.Seq)
		want := uint32(XDPDrop)
		if tc.harmless {
			want = XDPPass
		}
		e := judgeAll(h, []frames.Segment{f}, want)[0]
		if e.Verdict != VerdictSpoofed || e.Signals.Has(sigHarmless) != tc.harmless {
			t.Errorf("%s: %s/%s %v", tc.name, e.Verdict, e.Action, e.Signals.Names())
		}
	}
	// The connection is still open in the program's view: the exact forgery is dropped.
	if e := judgeAll(h, []frames.Segment{forgedFromClient(c)}, XDPDrop)[0]; e.Signals.Has(sigHarmless) {
		t.Errorf("exact forgery: %v", e.Signals.Names())
	}
	if cnt := h.counters(); cnt.Signals["harmless"] != 2 {
		t.Errorf("harmless counted %d, want 2", cnt.Signals["harmless"])
	}
}

// RFC 9293 3.10.7.3: in SYN-SENT a RST is acceptable only if it
// acknowledges the SYN. rst-inject-rae.pcap's forgery acked the ISN itself.
func TestHarmlessTowardSYNSent(t *testing.T) {
	h := newHarness(t, ModeDrop)
	c := linuxPair(clientAddr, serverAddr)
	h.send(c.Handshake()[0], 0)
	isn := c.Peer(frames.Client).ISN
	for _, tc := range []struct {
		name     string
		flags    uint8
		ack      uint32
		harmless bool
	}{
		{"RST/ACK acking the ISN", tcpflag.RST | tcpflag.ACK, isn, true},
		{"plain RST", tcpflag.RST, 0, true},
		{"RST/ACK refusing the SYN", tcpflag.RST | tcpflag.ACK, isn + 1, false}, // last: it resets the flow
	} {
		r := stateless(c.Segment(frames.Server, tc.flags, nil))
		r.Seq, r.Ack = 0, tc.ack
		e := judgeAll(h, []frames.Segment{r}, XDPPass)[0]
		if e.Signals.Has(sigHarmless) != tc.harmless || e.Signals.Has(sigAckBelowSYN) != (tc.ack == isn && tc.flags&tcpflag.ACK != 0) {
			t.Errorf("%s: %s %v", tc.name, e.Verdict, e.Signals.Names())
		}
	}
}
