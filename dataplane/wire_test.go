package dataplane

import (
	"testing"
	"time"

	"github.com/rstguard/rstguard/bench/frames"
	"github.com/rstguard/rstguard/internal/tcpflag"
)

// arpRequest is a broadcast ARP request: a frame that is not IP.
func arpRequest() []byte {
	f := make([]byte, 42)
	copy(f[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(f[6:12], []byte{0x02, 0, 0, 0, 0, 1})
	f[12], f[13] = 0x08, 0x06                            // ARP
	copy(f[14:22], []byte{0, 1, 0x08, 0x00, 6, 4, 0, 1}) // Ethernet, IPv4, request
	copy(f[22:28], f[6:12])                              // sender MAC
	copy(f[28:32], []byte{192, 0, 2, 1})                 // sender IP
	copy(f[38:42], []byte{192, 0, 2, 2})                 // target IP
	return f
}

// On a wire port (forward in xdp/bpf/rstguard.c) whatever the program would
// pass leaves by the pair's other port, ARP, double-tagged frames and
// fragments as well as TCP; a forged RST is
// still dropped; a closed pair drops everything, counted; with no pair the
// program passes, as on a router. BPF_PROG_TEST_RUN's frames arrive on lo
// (ifindex 1), which is here both ports of the pair: the redirect is
// returned, not carried out.
func TestWireForwarding(t *testing.T) {
	const lo = 1
	h := newHarness(t, ModeDrop)
	if err := h.dp.SetWire([]WirePair{{A: lo, B: lo}}); err != nil {
		t.Fatal(err)
	}
	c := linuxPair(clientAddr, serverAddr)
	// Not IP, TCP in two VLAN tags, and a datagram's first fragment: all
	// carried across, as a cable carries them.
	tagged := c.Segment(frames.Client, tcpflag.ACK, nil)
	tagged.VLANs = []uint16{100, 200}
	fragment := c.Segment(frames.Client, tcpflag.ACK|tcpflag.PSH, []byte("part"))
	fragment.MoreFragments = true
	fs := append(c.Handshake(), arpRequest(), c.Data(frames.Client, []byte("GET / HTTP/1.1\r\n\r\n")),
		tagged.MustFrame(), fragment.MustFrame())
	for i, f := range fs {
		if ret := h.send(f, time.Millisecond); ret != XDPRedirect {
			t.Errorf("frame %d: XDP verdict %d, want redirect", i, ret)
		}
	}
	rst := c.Segment(frames.Client, tcpflag.RST, nil)
	rst.TTL, rst.IPID = 40, 4242 // the incident's: exact seq, an injector's TTL and IP-ID
	if ret := h.send(rst.MustFrame(), time.Millisecond); ret != XDPDrop {
		t.Errorf("forged RST: XDP verdict %d, want drop", ret)
	}
	if cnt := h.counters(); cnt.WireForwarded != 7 || cnt.WireNoPeer != 0 || cnt.WireClosed != 0 || cnt.Action(ActionDrop) != 1 {
		t.Errorf("counters: forwarded %d, no peer %d, closed %d, dropped %d; want 7 0 0 1",
			cnt.WireForwarded, cnt.WireNoPeer, cnt.WireClosed, cnt.Action(ActionDrop))
	}

	if err := h.dp.SetWire([]WirePair{{A: lo, B: lo, Closed: true}}); err != nil {
		t.Fatal(err)
	}
	for i, f := range [][]byte{arpRequest(), c.Data(frames.Server, []byte("HTTP/1.1 200 OK\r\n\r\n"))} {
		if ret := h.send(f, time.Millisecond); ret != XDPDrop {
			t.Errorf("closed pair, frame %d: XDP verdict %d, want drop", i, ret)
		}
	}
	if cnt := h.counters(); cnt.WireClosed != 2 {
		t.Errorf("closed pair: %d drops counted, want 2", cnt.WireClosed)
	}

	if err := h.dp.SetWire(nil); err != nil {
		t.Fatal(err)
	}
	if ret := h.send(arpRequest(), time.Millisecond); ret != XDPPass {
		t.Errorf("no pair: XDP verdict %d, want pass", ret)
	}
	if cnt := h.counters(); cnt.WireForwarded != 7 || cnt.WireClosed != 2 {
		t.Errorf("no pair: wire counters moved (%d, %d)", cnt.WireForwarded, cnt.WireClosed)
	}
}
