package dataplane

import (
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/rstguard/rstguard/bench/frames"
	"github.com/rstguard/rstguard/bench/netbox"
	"github.com/rstguard/rstguard/internal/tcpflag"
	"github.com/rstguard/rstguard/internal/testutil"
)

// holdBox is a forwarding box in its own namespace: veth0 with two RX
// queues toward the client, a route to the server through a neighbour on
// veth0 (so that bpf_fib_lookup finds an egress), and an AF_XDP socket bound
// to veth0's queue 1 only.
type holdBox struct {
	ifindex int
	q1      *Socket
}

func newHoldBox(t *testing.T, h *harness) *holdBox {
	t.Helper()
	box, err := netbox.New(2, "198.51.100.0/24")
	if err != nil {
		t.Fatal(err)
	}
	if n := RxQueues("veth0"); n != 2 {
		t.Errorf("veth0 runs %d RX queues, ethtool -L set 2", n)
	}
	q1, err := OpenSocket(box.Ifindex, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q1.Close() })
	if err := h.dp.RegisterSocket(0, q1); err != nil {
		t.Fatal(err)
	}
	return &holdBox{ifindex: box.Ifindex, q1: q1}
}

func mustSegment(t *testing.T, f []byte) Segment {
	t.Helper()
	s, err := ParseSegment(f)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sendOn runs a frame as if it arrived on the box's queue.
func (h *harness) sendOn(frame []byte, gap time.Duration, b *holdBox, queue uint32) uint32 {
	h.tb.Helper()
	h.now = h.now.Add(gap)
	ret, err := h.dp.run(frame, h.now, &xdpMD{IngressIfindex: uint32(b.ifindex), RxQueueIndex: queue})
	if err != nil {
		h.tb.Fatal(err)
	}
	return ret
}

// sendLive runs a frame in live-frames mode, so that what the program does
// with it (pass, redirect into a socket) really happens. The kernel runs live
// frames on queue 0.
func (h *harness) sendLive(frame []byte, gap time.Duration, b *holdBox) {
	h.tb.Helper()
	h.now = h.now.Add(gap)
	if err := h.dp.objs.ClockOverrideNs.Set(uint64(h.now.UnixNano())); err != nil {
		h.tb.Fatal(err)
	}
	if _, err := h.dp.objs.Rstguard.Run(&ebpf.RunOptions{Data: frame, Repeat: 1, Flags: unix.BPF_F_TEST_XDP_LIVE_FRAMES,
		Context: xdpMD{IngressIfindex: uint32(b.ifindex), DataEnd: uint32(len(frame))}}); err != nil {
		h.tb.Fatal(err)
	}
}

// received waits a moment for frames on a socket.
func received(s *Socket) [][]byte {
	var out [][]byte
	for range 50 {
		s.Receive(func(f []byte) { out = append(out, append([]byte(nil), f...)) })
		if len(out) > 0 {
			return out
		}
		time.Sleep(2 * time.Millisecond)
	}
	return out
}

// Hold mode's datapath, frame by frame through the real program on a real
// veth: what is held, what fails open, what answers a probe.
func TestHoldDatapath(t *testing.T) {
	requireRoot(t)
	testutil.InFreshNetns(t, func(run func(string, func(*testing.T))) {
		h := newHarness(t, ModeHold)
		box := newHoldBox(t, h)
		open := func(client netip.AddrPort) *frames.Conn {
			c := linuxPair(client, serverAddr)
			for _, f := range append(c.Handshake(), c.Data(frames.Client, []byte("GET / HTTP/1.1\r\n\r\n")), c.ACK(frames.Server)) {
				if ret := h.sendOn(f, 10*time.Millisecond, box, 0); ret != XDPPass {
					t.Fatalf("setup frame: XDP %d", ret)
				}
			}
			h.drain()
			return c
		}
		// A RST that copies every header (ttl-forge): valid, so held.
		forgedRST := func(c *frames.Conn) (frames.Segment, []byte) {
			s := c.Segment(frames.Client, tcpflag.RST, nil)
			s.IPID = c.Peer(frames.Client).IPID
			return s, s.MustFrame()
		}

		run("a socket only on another queue: passed, counted", func(t *testing.T) {
			_, rst := forgedRST(open(netip.AddrPortFrom(clientAddr.Addr(), 40001)))
			before := h.counters()
			if ret := h.sendOn(rst, time.Millisecond, box, 0); ret != XDPPass {
				t.Errorf("XDP %d, want pass", ret)
			}
			after := h.counters()
			if after.HoldNoSocket-before.HoldNoSocket != 1 || after.HoldStarted != before.HoldStarted {
				t.Errorf("no-socket %d started %d", after.HoldNoSocket-before.HoldNoSocket, after.HoldStarted-before.HoldStarted)
			}
			if evs := h.drain(); len(evs) != 1 || evs[0].Verdict != VerdictValid || evs[0].Action != ActionPass {
				t.Errorf("events %+v", evs)
			}
		})

		c := open(clientAddr)
		forged, rst := forgedRST(c)
		key, fromHi := mustSegment(t, rst).Key(0)

		run("no socket where the kernel would forward it: passed, counted", func(t *testing.T) {
			before := h.counters()
			// veth0's queue 1 has a socket, but the egress (veth0 itself) has none on queue 0.
			c2 := open(netip.AddrPortFrom(clientAddr.Addr(), 40002))
			_, rst2 := forgedRST(c2)
			if ret := h.sendOn(rst2, time.Millisecond, box, 1); ret != XDPPass {
				t.Errorf("XDP %d, want pass", ret)
			}
			if d := h.counters().HoldNoSocket - before.HoldNoSocket; d != 1 {
				t.Errorf("no-socket %d", d)
			}
			h.drain()
		})

		q0, err := OpenSocket(box.ifindex, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer q0.Close()
		if err := h.dp.RegisterSocket(1, q0); err != nil {
			t.Fatal(err)
		}
		// heldForged holds c's forged RST live and returns its hold.
		heldForged := func(t *testing.T, c *frames.Conn) (FlowKey, Hold) {
			t.Helper()
			_, rst := forgedRST(c)
			h.sendLive(rst, time.Millisecond, box)
			if got := received(q0); len(got) != 1 {
				t.Fatalf("socket received %d frames, want the held RST", len(got))
			}
			h.drain()
			key, _ := mustSegment(t, rst).Key(0)
			hd, _, _ := h.dp.LookupHold(key)
			return key, hd
		}

		run("a RST this box would not forward: passed, counted", func(t *testing.T) {
			// To the box's own address: delivered here, not forwarded.
			c3 := linuxPair(netip.MustParseAddrPort("192.0.2.10:40003"), netip.MustParseAddrPort("192.0.2.1:80"))
			for _, f := range append(c3.Handshake(), c3.ACK(frames.Server)) {
				h.sendOn(f, 10*time.Millisecond, box, 0)
			}
			before := h.counters()
			_, rst3 := forgedRST(c3)
			if ret := h.sendOn(rst3, time.Millisecond, box, 0); ret != XDPPass {
				t.Errorf("XDP %d, want pass", ret)
			}
			if d := h.counters().HoldUnrouted - before.HoldUnrouted; d != 1 {
				t.Errorf("unrouted %d", d)
			}
			h.drain()
		})

		run("what the daemon could not release is not held: passed, counted", func(t *testing.T) {
			frag, _ := forgedRST(open(netip.AddrPortFrom(clientAddr.Addr(), 40005)))
			frag.MoreFragments = true
			before := h.counters()
			if ret := h.sendOn(frag.MustFrame(), time.Millisecond, box, 0); ret != XDPPass {
				t.Errorf("an IPv4 first fragment: XDP %d, want pass", ret)
			}
			after := h.counters()
			if after.HoldUnreleasable-before.HoldUnreleasable != 1 || after.HoldStarted != before.HoldStarted {
				t.Errorf("an IPv4 first fragment: unreleasable %d, started %d", after.HoldUnreleasable-before.HoldUnreleasable,
					after.HoldStarted-before.HoldStarted)
			}
			h.drain()
		})

		run("an IPv6 RST with a hop-by-hop header is the daemon's to release: it goes on to be held", func(t *testing.T) {
			c6 := linuxPair(netip.MustParseAddrPort("[2001:db8::10]:40004"), server6)
			for _, f := range append(c6.Handshake(), c6.ACK(frames.Server)) {
				h.sendOn(f, 10*time.Millisecond, box, 0)
			}
			ext, _ := forgedRST(c6)
			ext.IPv6HopByHop = true
			before := h.counters()
			h.sendOn(ext.MustFrame(), time.Millisecond, box, 0)
			after := h.counters()
			// This box routes no IPv6: the next step, the route lookup,
			// is where it stops.
			if after.HoldUnreleasable != before.HoldUnreleasable || after.HoldUnrouted-before.HoldUnrouted != 1 {
				t.Errorf("unreleasable %d, unrouted %d: want it past the unreleasable check, at the route lookup",
					after.HoldUnreleasable-before.HoldUnreleasable, after.HoldUnrouted-before.HoldUnrouted)
			}
			h.drain()
		})

		run("a socket on the frame's queue and the egress: held, with where it was going", func(t *testing.T) {
			before := h.counters()
			h.sendLive(rst, time.Millisecond, box)
			if got := received(q0); len(got) != 1 || string(got[0]) != string(rst) {
				t.Fatalf("socket received %d frames, want the RST", len(got))
			}
			if d := h.counters().HoldStarted - before.HoldStarted; d != 1 {
				t.Errorf("holds started %d", d)
			}
			hd, ok, err := h.dp.LookupHold(key)
			if err != nil || !ok {
				t.Fatalf("no hold record: %v", err)
			}
			if hd.Egress != box.ifindex || hd.EgressDst.String() != netbox.GatewayMAC.String() || hd.FromHi != fromHi {
				t.Errorf("egress %d %s from_hi %v", hd.Egress, hd.EgressDst, hd.FromHi)
			}
			// The probe goes where the box's own tables say the client is,
			// not back along the held frame's L2 header.
			if hd.Probe != box.ifindex || hd.ProbeDst.String() != netbox.ClientMAC.String() {
				t.Errorf("probe out of %d to %s, want %d to %s", hd.Probe, hd.ProbeDst, box.ifindex, netbox.ClientMAC)
			}
			// The nonce: below the client's next sequence, within the span.
			if below := hd.ProbeAck - hd.Nonce; below < 1 || below > 0xffff+1 {
				t.Errorf("nonce %d, %d below the probe's ack %d", hd.Nonce, below, hd.ProbeAck)
			}
			// The probe: the server's next sequence - 1, acknowledging the client's next.
			serverNext := c.Segment(frames.Server, tcpflag.ACK, nil).Seq
			// The probe: one byte the client acknowledged already, ending
			// below its ACK of all the server sent; its answer acknowledges
			// the server's next.
			if hd.ProbeSeq != serverNext-2 || hd.PeerNext != serverNext || hd.ProbeAck != forged.Seq {
				t.Errorf("probe seq %d, peer next %d, ack %d, want %d %d %d", hd.ProbeSeq, hd.PeerNext, hd.ProbeAck,
					serverNext-2, serverNext, forged.Seq)
			}
			if n, _, _ := h.dp.Holding(); n != 1 {
				t.Errorf("holding %d", n)
			}
			if evs := h.drain(); len(evs) != 1 || evs[0].Verdict != VerdictValid || evs[0].Action != ActionHold {
				t.Errorf("events %+v", evs)
			}
		})

		run("a RST of a held flow's claimed sender joins the hold: in its count, not in the socket", func(t *testing.T) {
			before := h.counters()
			if ret := h.sendOn(rst, 100*time.Microsecond, box, 0); ret != XDPDrop {
				t.Errorf("XDP %d, want drop", ret)
			}
			if got := received(q0); len(got) != 0 {
				t.Errorf("socket received %d frames, want none", len(got))
			}
			if d := h.counters().HoldJoined - before.HoldJoined; d != 1 {
				t.Errorf("joined %d", d)
			}
			if hd, _, _ := h.dp.LookupHold(key); hd.Joined != 1 {
				t.Errorf("the hold record counts %d joined, want 1", hd.Joined)
			}
			if evs := h.drain(); len(evs) != 1 || evs[0].Verdict != VerdictValid || evs[0].Action != ActionDrop {
				t.Errorf("events %+v", evs)
			}
		})

		hd, _, _ := h.dp.LookupHold(key)
		run("data from the claimed sender passes and is recorded on the hold", func(t *testing.T) {
			if ret := h.sendOn(c.Data(frames.Client, []byte("GET /2 HTTP/1.1\r\n\r\n")), time.Millisecond, box, 0); ret != XDPPass {
				t.Errorf("data: XDP %d, want pass", ret)
			}
			if hd, _, _ := h.dp.LookupHold(key); !hd.DataSeen {
				t.Error("data not recorded on the hold")
			}
			if evs := h.drain(); len(evs) != 1 || evs[0].Kind != EventConfirmed {
				t.Errorf("events %+v", evs)
			}
		})

		answer := c.Segment(frames.Client, tcpflag.ACK, nil)
		answer.Ack = hd.PeerNext
		run("an ACK sooner than half the sender's leg RTT crossed the probe: passed", func(t *testing.T) {
			if ret := h.sendOn(answer.MustFrame(), time.Millisecond, box, 0); ret != XDPPass {
				t.Errorf("XDP %d, want pass", ret)
			}
		})
		// An early ACK that reports the probe's byte as a duplicate (a
		// D-SACK block, RFC 2883) was sent after the probe reached its
		// sender: the answer, however soon. Linux puts the block after the
		// timestamps, or first without them.
		run("an early ACK whose first SACK block is the probe's byte answers it: to the daemon", func(t *testing.T) {
			for _, ts := range []bool{true, false} {
				early := answer
				early.TS, early.TSval = ts, 77
				early.SACK = [][2]uint32{{hd.ProbeSeq, hd.ProbeSeq + 1}}
				h.sendLive(early.MustFrame(), 0, box)
				if got := received(q0); len(got) != 1 {
					t.Errorf("timestamps %v: socket received %d frames, want the answer", ts, len(got))
				}
				// The byte after it is a keepalive's (snd.una - 1), and a
				// block after the first reports no duplicate: no proof.
				for _, sack := range [][][2]uint32{{{hd.ProbeSeq + 1, hd.ProbeSeq + 2}}, {{hd.ProbeSeq - 100, hd.ProbeSeq - 50}, {hd.ProbeSeq, hd.ProbeSeq + 1}}} {
					early.SACK = sack
					if ret := h.sendOn(early.MustFrame(), 0, box, 0); ret != XDPPass {
						t.Errorf("timestamps %v, SACK %v: XDP %d, want pass", ts, sack, ret)
					}
				}
			}
		})
		run("the probe's answer goes to the daemon", func(t *testing.T) {
			before := h.counters()
			h.sendLive(answer.MustFrame(), hd.RTT, box)
			if got := received(q0); len(got) != 1 || mustSegment(t, got[0]).Ack != hd.PeerNext {
				t.Errorf("socket received %d frames, want the answer", len(got))
			}
			if d := h.counters().HoldAnswers - before.HoldAnswers; d != 1 {
				t.Errorf("answers %d", d)
			}
			// An ACK of less than all the server sent answers no probe. (One
			// of exactly all is the probe's answer, or a duplicate ACK that
			// crossed it: the daemon sends either on.)
			other := answer
			other.Ack--
			if ret := h.sendOn(other.MustFrame(), time.Millisecond, box, 0); ret != XDPPass {
				t.Errorf("an ACK of something else: XDP %d, want pass", ret)
			}
			// What the daemon could not parse, and so not send on, passes.
			frag := answer
			frag.MoreFragments = true
			if ret := h.sendOn(frag.MustFrame(), time.Millisecond, box, 0); ret != XDPPass {
				t.Errorf("the answer as a first fragment: XDP %d, want pass", ret)
			}
		})

		run("a RST at the nonce answers the probe: to the socket", func(t *testing.T) {
			before := h.counters()
			ans := forged
			ans.Seq = hd.Nonce
			h.sendLive(ans.MustFrame(), time.Millisecond, box)
			if got := received(q0); len(got) != 1 || mustSegment(t, got[0]).Seq != hd.Nonce {
				t.Errorf("socket received %d frames, want the RST answer", len(got))
			}
			if d := h.counters().HoldAnswers - before.HoldAnswers; d != 1 {
				t.Errorf("answers %d", d)
			}
			h.drain()
		})

		run("proven alive: the sender's next RSTs are dropped without a probe, for a while", func(t *testing.T) {
			decided := uint64(h.now.UnixNano()) // the program's clock is the capture clock here
			if err := h.dp.ProvenAlive(key, hd.Held, decided); err != nil {
				t.Fatal(err)
			}
			before := h.counters()
			if ret := h.sendOn(rst, 5*time.Millisecond, box, 0); ret != XDPDrop {
				t.Errorf("a second forged RST 5 ms later: XDP %d, want drop", ret)
			}
			if d := h.counters().HoldProvenDrop - before.HoldProvenDrop; d != 1 {
				t.Errorf("proven drops %d", d)
			}
			// A decided hold asks nothing: an ACK like the answer (a window
			// update) passes to the endpoint.
			if ret := h.sendOn(answer.MustFrame(), time.Millisecond, box, 0); ret != XDPPass {
				t.Errorf("an ACK like the answer after the decision: XDP %d, want pass", ret)
			}

			// Past the bound it is asked again: a new hold.
			h.sendLive(rst, ProvenAliveFor(hd.RTT), box)
			if got := received(q0); len(got) != 1 {
				t.Errorf("after the bound: socket received %d frames, want a new hold's RST", len(got))
			}
			if nd, ok, _ := h.dp.LookupHold(key); !ok || nd.Held <= hd.Held || nd.DataSeen {
				t.Errorf("after the bound: hold %+v, want a new one", nd)
			}
			h.drain()
		})

		run("the sender's data after a forged decision confirms it and keeps the proven mark", func(t *testing.T) {
			c7 := open(netip.AddrPortFrom(clientAddr.Addr(), 40007))
			key7, hd7 := heldForged(t, c7)
			if err := h.dp.ProvenAlive(key7, hd7.Held, uint64(h.now.UnixNano())); err != nil {
				t.Fatal(err)
			}
			before := h.counters()
			h.sendOn(c7.Data(frames.Client, []byte("GET /2 HTTP/1.1\r\n\r\n")), time.Millisecond, box, 0)
			if nd, _, _ := h.dp.LookupHold(key7); nd.DataSeen || h.counters().Confirmed == before.Confirmed {
				t.Errorf("data after the decision: confirmed %d, record %+v: want it confirming, the proven mark kept",
					h.counters().Confirmed-before.Confirmed, nd)
			}
			if _, rst7 := forgedRST(c7); h.sendOn(rst7, time.Millisecond, box, 0) != XDPDrop {
				t.Error("the next forged RST passed, want drop (proven)")
			}
			h.drain()
		})

		run("coarse clock: a leg timed a tick long by one sample; its answer 100 µs into the hold is the answer", func(t *testing.T) {
			const tick = 4 * time.Millisecond
			if err := h.dp.SetCoarseTick(tick); err != nil {
				t.Fatal(err)
			}
			defer h.dp.SetCoarseTick(0)
			c8 := linuxPair(netip.AddrPortFrom(clientAddr.Addr(), 40008), serverAddr)
			// The handshake's ACK comes 50 ms late; then the server's data
			// just before a tick and the client's ACK 100 µs later, after it:
			// the coarse clock reads a tick between them.
			h.sendOn(c8.Send(frames.Client, c8.Segment(frames.Client, tcpflag.SYN, nil)), 10*time.Millisecond, box, 0)
			h.sendOn(c8.Send(frames.Server, c8.Segment(frames.Server, tcpflag.SYN|tcpflag.ACK, nil)), time.Millisecond, box, 0)
			h.sendOn(c8.Send(frames.Client, c8.Segment(frames.Client, tcpflag.ACK, nil)), 50*time.Millisecond, box, 0)
			beforeTick := h.now.Truncate(tick).Add(2*tick - 50*time.Microsecond)
			h.sendOn(c8.Data(frames.Server, []byte("HTTP/1.1 200 OK\r\n\r\n")), beforeTick.Sub(h.now), box, 0)
			h.sendOn(c8.ACK(frames.Client), 100*time.Microsecond, box, 0)
			_, hd8 := heldForged(t, c8)
			if hd8.RTT.Round(time.Millisecond) != tick {
				t.Fatalf("the leg's RTT %s, want the straddled sample's tick %s", hd8.RTT, tick)
			}
			ans := c8.Segment(frames.Client, tcpflag.ACK, nil)
			ans.Ack = hd8.PeerNext
			h.sendLive(ans.MustFrame(), 100*time.Microsecond, box)
			if got := received(q0); len(got) != 1 || mustSegment(t, got[0]).Ack != hd8.PeerNext {
				t.Errorf("socket received %d frames, want the answer", len(got))
			}
		})

		run("the hold ended: the same ACK passes", func(t *testing.T) {
			if err := h.dp.EndHold(key); err != nil {
				t.Fatal(err)
			}
			if ret := h.sendOn(answer.MustFrame(), time.Millisecond, box, 0); ret != XDPPass {
				t.Errorf("XDP %d, want pass", ret)
			}
		})

		run("the daemon's sockets gone: RSTs pass", func(t *testing.T) {
			if err := h.dp.ClearHolds(); err != nil {
				t.Fatal(err)
			}
			before := h.counters()
			if ret := h.sendOn(rst, time.Millisecond, box, 0); ret != XDPPass {
				t.Errorf("XDP %d, want pass", ret)
			}
			if d := h.counters().HoldNoSocket - before.HoldNoSocket; d != 1 {
				t.Errorf("no-socket %d", d)
			}
		})
	})
}
