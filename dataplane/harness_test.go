package dataplane

import (
	"net/netip"
	"testing"
	"time"

	"github.com/rstguard/rstguard/bench/frames"
	"github.com/rstguard/rstguard/internal/testutil"
)

// t0 is the fixtures' clock origin; frames are 10 ms apart unless they say.
var t0 = time.Date(2026, 11, 26, 9, 24, 36, 0, time.UTC)

func requireRoot(tb testing.TB) {
	tb.Helper()
	testutil.RequireRoot(tb, "BPF programs (CAP_BPF, CAP_NET_ADMIN)")
}

// harness is one freshly loaded program and a reader of its events.
type harness struct {
	tb     testing.TB
	dp     *Dataplane
	events *EventReader
	now    time.Time
}

func newHarness(tb testing.TB, mode Mode) *harness {
	tb.Helper()
	requireRoot(tb)
	dp, err := Load(Options{FlowTableSize: 16384})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { dp.Close() })
	// The fixtures' clock is exact unless one emulates the coarse clock.
	if err := dp.SetCoarseTick(0); err != nil {
		tb.Fatal(err)
	}
	p := DefaultPolicy()
	p.Mode = mode
	if err := dp.SetPolicy(p); err != nil {
		tb.Fatal(err)
	}
	rd, err := dp.NewEventReader(CaptureClock)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { rd.Close() })
	return &harness{tb: tb, dp: dp, events: rd, now: t0}
}

// send runs one frame gap after the previous one and returns the XDP verdict.
func (h *harness) send(frame []byte, gap time.Duration) uint32 {
	h.tb.Helper()
	h.now = h.now.Add(gap)
	ret, err := h.dp.Run(frame, h.now)
	if err != nil {
		h.tb.Fatal(err)
	}
	return ret
}

// sendAll runs frames 10 ms apart; none may be dropped.
func (h *harness) sendAll(fs ...[]byte) {
	h.tb.Helper()
	for i, f := range fs {
		if ret := h.send(f, 10*time.Millisecond); ret != XDPPass {
			h.tb.Fatalf("frame %d: XDP verdict %d, want pass", i, ret)
		}
	}
}

func (h *harness) drain() []Event {
	h.tb.Helper()
	evs, err := h.events.Drain()
	if err != nil {
		h.tb.Fatal(err)
	}
	return evs
}

func (h *harness) counters() Counters {
	h.tb.Helper()
	c, err := h.dp.Counters()
	if err != nil {
		h.tb.Fatal(err)
	}
	return c
}

var (
	clientAddr = netip.MustParseAddrPort("192.0.2.10:40000")
	serverAddr = netip.MustParseAddrPort("198.51.100.80:80")
	client6    = netip.MustParseAddrPort("[2001:db8::10]:40000")
	server6    = netip.MustParseAddrPort("[2001:db8:1::80]:80")
)

// linuxPair is two Linux-like stacks a few hops apart: per-flow IP-IDs,
// timestamps, window scaling.
func linuxPair(client, server netip.AddrPort) *frames.Conn {
	return frames.NewConn(
		frames.Peer{Addr: client, TTL: 61, ISN: 1000, IPID: 3092, IPIDStep: 1, Window: 502, WScale: 7,
			TS: true, TSval: 949598155, FlowLabel: 0x1c0de},
		frames.Peer{Addr: server, TTL: 52, ISN: 1671696166, IPID: 1216, IPIDStep: 1, Window: 509, WScale: 7,
			TS: true, TSval: 12345, FlowLabel: 0x2beef},
	)
}

// established opens a connection and exchanges a request and a response.
func established(h *harness, c *frames.Conn) {
	h.tb.Helper()
	h.sendAll(c.Handshake()...)
	h.sendAll(c.Data(frames.Client, []byte("HEAD / HTTP/1.1\r\nHost: www.testaaa.com\r\n\r\n")))
	h.sendAll(c.ACK(frames.Server))
}
