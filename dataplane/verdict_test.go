package dataplane

import (
	"encoding/binary"
	"maps"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/rstguard/rstguard/bench/frames"
	"github.com/rstguard/rstguard/internal/tcpflag"
	"github.com/rstguard/rstguard/xdp"
)

func sig(names ...xdp.RstguardSignal) []Signal {
	out := make([]Signal, len(names))
	for i, n := range names {
		out[i] = Signal(n)
	}
	return out
}

// rstFixture: a connection is set up, then one RST is judged.
type rstFixture struct {
	name    string
	mode    Mode
	v6      bool
	conn    func(client, server netip.AddrPort) *frames.Conn // defaults to linuxPair
	setup   func(h *harness, c *frames.Conn)                 // defaults to established()
	rst     func(c *frames.Conn) frames.Segment              // the RST under judgement
	gap     time.Duration                                    // before the RST; 10 ms when zero
	verdict Verdict
	action  Action
	has     []Signal // must be present
	lacks   []Signal // must be absent
}

// timedHandshake runs c's handshake, the SYN/ACK synAck after the SYN and
// the ACK ack after that: each leg's first RTT sample.
func timedHandshake(h *harness, c *frames.Conn, synAck, ack time.Duration) {
	h.send(c.Send(frames.Client, c.Segment(frames.Client, tcpflag.SYN, nil)), 0)
	h.send(c.Send(frames.Server, c.Segment(frames.Server, tcpflag.SYN|tcpflag.ACK, nil)), synAck)
	h.send(c.Send(frames.Client, c.Segment(frames.Client, tcpflag.ACK, nil)), ack)
}

// coarseTick makes the program's coarse clock a live gateway's: the
// fixtures' clock rounded down to a 4 ms tick (HZ=250).
func coarseTick(h *harness) {
	if err := h.dp.SetCoarseTick(4 * time.Millisecond); err != nil {
		h.tb.Fatal(err)
	}
}

// forgedFromClient is the incident's packet: a plain RST toward the server,
// exact sequence, but with the injector's TTL and its own IP-ID.
func forgedFromClient(c *frames.Conn) frames.Segment {
	s := c.Segment(frames.Client, tcpflag.RST, nil)
	s.TTL = 55
	s.IPID = 4242
	s.Window = 0
	return s
}

// scanTTL is a TTL nmap draws for a raw probe (37-59): the same initial TTL
// as the client's kernel (64), a dozen hops off.
const scanTTL = 48

// scan is a SYN scan's probe: a SYN written by a raw socket, with nmap's
// TTL, window and lone MSS option, and the server's SYN/ACK; acked, the
// client's kernel then sends its handshake's ACK (a real connection, not a
// scan).
func scan(h *harness, c *frames.Conn, acked bool) {
	syn := c.Segment(frames.Client, tcpflag.SYN, nil)
	syn.TTL, syn.Window, syn.IPID, syn.TS, syn.WScale, syn.SACKPermitted = scanTTL, 1024, 31337, false, 0, false
	h.sendAll(c.Send(frames.Client, syn))
	h.sendAll(c.Send(frames.Server, c.Segment(frames.Server, tcpflag.SYN|tcpflag.ACK, nil)))
	if acked {
		h.sendAll(c.Send(frames.Client, c.Segment(frames.Client, tcpflag.ACK, nil)))
	}
}

// scannerKernelRST is the scanning host's kernel answering a SYN/ACK it
// holds no connection for (RFC 9293 3.10.7.1): a plain RST at the SYN/ACK's
// ack, from its control socket: its own TTL, IP-ID 0 with DF, window 0, no
// options.
func scannerKernelRST(c *frames.Conn) frames.Segment {
	s := c.Segment(frames.Client, tcpflag.RST, nil)
	s.IPID, s.Window, s.TS = 0, 0, false
	return s
}

// abortFrom is a side's abort: a RST/ACK at its next sequence, every header
// as its stack sends them.
func abortFrom(side frames.Side) func(*frames.Conn) frames.Segment {
	return func(c *frames.Conn) frames.Segment { return c.Segment(side, tcpflag.RST|tcpflag.ACK, nil) }
}

var rstFixtures = []rstFixture{
	{
		name:    "abort with SO_LINGER 0: RST/ACK, window, timestamps",
		mode:    ModeDrop,
		rst:     abortFrom(frames.Server),
		verdict: VerdictValid, action: ActionPass,
		has:   sig(xdp.RstguardSignalSIG_SEQ_EXACT),
		lacks: sig(xdp.RstguardSignalSIG_ACK_MISMATCH, xdp.RstguardSignalSIG_TTL_OFF, xdp.RstguardSignalSIG_TS_MISSING),
	},
	{
		name: "Linux stateless RST: DF, IP-ID 0, no timestamps, window 0",
		mode: ModeDrop,
		rst: func(c *frames.Conn) frames.Segment {
			s := c.Segment(frames.Server, tcpflag.RST, nil)
			s.IPID, s.Window, s.TS = 0, 0, false
			return s
		},
		verdict: VerdictValid, action: ActionPass,
		has: sig(xdp.RstguardSignalSIG_SEQ_EXACT),
		// A plain RST is a stateless reply: missing timestamps are its nature.
		lacks: sig(xdp.RstguardSignalSIG_IPID_OFF_MODEL, xdp.RstguardSignalSIG_TS_MISSING),
	},
	{
		name: "connection refused: RST/ACK to a SYN",
		mode: ModeDrop,
		setup: func(h *harness, c *frames.Conn) {
			h.sendAll(c.Send(frames.Client, c.Segment(frames.Client, tcpflag.SYN, nil)))
		},
		rst: func(c *frames.Conn) frames.Segment {
			s := c.Segment(frames.Server, tcpflag.RST|tcpflag.ACK, nil)
			s.Seq, s.IPID, s.Window, s.TS = 0, 0, 0, false
			return s
		},
		verdict: VerdictValid, action: ActionPass,
		lacks: sig(xdp.RstguardSignalSIG_ACK_MISMATCH),
	},
	{
		name:    "incident: client spoofed with the injector's TTL",
		mode:    ModeDrop,
		rst:     forgedFromClient,
		verdict: VerdictSpoofed, action: ActionDrop,
		has: sig(xdp.RstguardSignalSIG_TTL_OFF, xdp.RstguardSignalSIG_SEQ_EXACT),
	},
	{
		name:    "incident in monitor mode: judged, passed",
		mode:    ModeMonitor,
		rst:     forgedFromClient,
		verdict: VerdictSpoofed, action: ActionPass,
		has: sig(xdp.RstguardSignalSIG_TTL_OFF),
	},
	{
		name: "TTL within the tolerance alone: weak, valid",
		mode: ModeDrop,
		rst: func(c *frames.Conn) frames.Segment {
			s := c.Segment(frames.Server, tcpflag.RST|tcpflag.ACK, nil)
			s.TTL--
			return s
		},
		verdict: VerdictValid, action: ActionPass,
		has:   sig(xdp.RstguardSignalSIG_TTL_DRIFT),
		lacks: sig(xdp.RstguardSignalSIG_TTL_OFF),
	},
	{
		name: "in window but not exact, other TTL",
		mode: ModeDrop,
		rst: func(c *frames.Conn) frames.Segment {
			s := c.Segment(frames.Server, tcpflag.RST, nil)
			s.Seq += 1000
			s.TTL = 45
			s.TS = false
			return s
		},
		verdict: VerdictSpoofed, action: ActionDrop,
		has: sig(xdp.RstguardSignalSIG_SEQ_IN_WINDOW, xdp.RstguardSignalSIG_TTL_OFF),
	},
	{
		name: "blind: out of window, right TTL",
		mode: ModeDrop,
		rst: func(c *frames.Conn) frames.Segment {
			s := c.Segment(frames.Server, tcpflag.RST, nil)
			s.Seq += 1 << 30
			s.TS = false
			return s
		},
		verdict: VerdictSuspect, action: ActionPass,
		has: sig(xdp.RstguardSignalSIG_SEQ_OUT_OF_WINDOW),
	},
	{
		name: "GFW type-2: plain RST with a window, other TTL",
		mode: ModeDrop,
		rst: func(c *frames.Conn) frames.Segment {
			s := c.Segment(frames.Server, tcpflag.RST, nil)
			s.Window, s.TTL, s.TS = 2050, 104, false
			return s
		},
		verdict: VerdictSpoofed, action: ActionDrop,
		has: sig(xdp.RstguardSignalSIG_WINDOW_NONZERO, xdp.RstguardSignalSIG_TTL_OFF),
	},
	{
		name: "RST/ACK acknowledging data never sent",
		mode: ModeDrop,
		rst: func(c *frames.Conn) frames.Segment {
			s := c.Segment(frames.Server, tcpflag.RST|tcpflag.ACK, nil)
			s.Ack += 5000
			return s
		},
		verdict: VerdictSuspect, action: ActionPass,
		has: sig(xdp.RstguardSignalSIG_ACK_MISMATCH),
	},
	{
		name: "timestamps running backwards",
		mode: ModeDrop,
		rst: func(c *frames.Conn) frames.Segment {
			s := c.Segment(frames.Server, tcpflag.RST|tcpflag.ACK, nil)
			s.TS, s.TSval = true, 100
			return s
		},
		verdict: VerdictSuspect, action: ActionPass,
		has: sig(xdp.RstguardSignalSIG_TS_BACKWARDS),
	},
	{
		name: "insertion RST with a bad checksum: reported, never scored",
		mode: ModeDrop,
		rst: func(c *frames.Conn) frames.Segment {
			s := forgedFromClient(c)
			s.BadChecksum = true
			return s
		},
		verdict: VerdictUnknown, action: ActionPass,
		has:   sig(xdp.RstguardSignalSIG_BAD_CHECKSUM),
		lacks: sig(xdp.RstguardSignalSIG_TTL_OFF),
	},
	{
		name: "IPv6: hop limit off",
		mode: ModeDrop, v6: true,
		rst: func(c *frames.Conn) frames.Segment {
			s := c.Segment(frames.Client, tcpflag.RST, nil)
			s.TTL = 40
			return s
		},
		verdict: VerdictSpoofed, action: ActionDrop,
		has: sig(xdp.RstguardSignalSIG_TTL_OFF),
	},
	{
		name: "IPv6 behind a hop-by-hop header: abort is valid",
		mode: ModeDrop, v6: true,
		rst: func(c *frames.Conn) frames.Segment {
			s := c.Segment(frames.Server, tcpflag.RST|tcpflag.ACK, nil)
			s.IPv6HopByHop = true
			return s
		},
		verdict: VerdictValid, action: ActionPass,
		has: sig(xdp.RstguardSignalSIG_SEQ_EXACT),
	},
	{
		name: "IPv6 flow label changed: weak only",
		mode: ModeDrop, v6: true,
		rst: func(c *frames.Conn) frames.Segment {
			s := c.Segment(frames.Server, tcpflag.RST|tcpflag.ACK, nil)
			s.FlowLabel = 0xbeef
			return s
		},
		verdict: VerdictValid, action: ActionPass,
		has: sig(xdp.RstguardSignalSIG_FLOWLABEL_OFF),
	},
	{
		name: "IP-ID far from the sender's per-flow counter: weak only",
		mode: ModeDrop,
		rst: func(c *frames.Conn) frames.Segment {
			s := c.Segment(frames.Server, tcpflag.RST|tcpflag.ACK, nil)
			s.IPID += 20000
			return s
		},
		verdict: VerdictValid, action: ActionPass,
		has: sig(xdp.RstguardSignalSIG_IPID_OFF_MODEL),
	},
	{
		name: "mirror: IP-ID and window copied from the client's request, ack = ISN",
		mode: ModeDrop,
		rst: func(c *frames.Conn) frames.Segment {
			s := c.Segment(frames.Server, tcpflag.RST|tcpflag.ACK, nil)
			client := c.Peer(frames.Client)
			s.IPID, s.Window, s.Ack, s.TS = client.IPID-1, client.Window, client.ISN, false
			return s
		},
		verdict: VerdictSpoofed, action: ActionDrop,
		has: sig(xdp.RstguardSignalSIG_IPID_MIRRORED, xdp.RstguardSignalSIG_WINDOW_MIRRORED,
			xdp.RstguardSignalSIG_ACK_BELOW_SYN),
		lacks: sig(xdp.RstguardSignalSIG_TTL_OFF, xdp.RstguardSignalSIG_ACK_MISMATCH),
	},
	{
		name: "two VLAN tags and IPv4 options: still judged",
		mode: ModeDrop,
		setup: func(h *harness, c *frames.Conn) {
			for _, f := range [][]byte{
				tagged(c, frames.Client, tcpflag.SYN), tagged(c, frames.Server, tcpflag.SYN|tcpflag.ACK),
				tagged(c, frames.Client, tcpflag.ACK),
			} {
				h.sendAll(f)
			}
		},
		rst: func(c *frames.Conn) frames.Segment {
			s := forgedFromClient(c)
			s.VLANs = []uint16{100, 200}
			s.IPOptions = []byte{0x94, 4, 0, 0} // router alert
			return s
		},
		verdict: VerdictSpoofed, action: ActionDrop,
		has: sig(xdp.RstguardSignalSIG_TTL_OFF),
	},
	{
		name: "flow picked up mid-stream: TTL still judged",
		mode: ModeDrop,
		setup: func(h *harness, c *frames.Conn) {
			h.sendAll(c.Data(frames.Client, []byte("GET /")), c.ACK(frames.Server))
		},
		rst:     forgedFromClient,
		verdict: VerdictSpoofed, action: ActionDrop,
		has: sig(xdp.RstguardSignalSIG_MIDSTREAM, xdp.RstguardSignalSIG_TTL_OFF),
	},
	{
		name: "RST/ACK sooner than the server's RTT allows",
		mode: ModeDrop,
		setup: func(h *harness, c *frames.Conn) {
			timedHandshake(h, c, 80*time.Millisecond, 20*time.Millisecond)
			h.send(c.Data(frames.Client, []byte("GET / HTTP/1.1\r\n\r\n")), time.Millisecond)
		},
		gap:     2 * time.Millisecond,
		rst:     abortFrom(frames.Server),
		verdict: VerdictSuspect, action: ActionPass,
		has: sig(xdp.RstguardSignalSIG_TOO_SOON),
	},
	{
		name: "handshake RTT inflated (ARP), refined by a later ACK: an abort soon after data is valid",
		mode: ModeDrop,
		setup: func(h *harness, c *frames.Conn) {
			timedHandshake(h, c, 80*time.Millisecond, 200*time.Microsecond)
			h.send(c.Data(frames.Client, []byte("GET / HTTP/1.1\r\n\r\n")), time.Millisecond)
			h.send(c.ACK(frames.Server), time.Millisecond) // the server answers in 1 ms
			h.send(c.Data(frames.Client, []byte("GET /2 HTTP/1.1\r\n\r\n")), time.Millisecond)
		},
		gap:     800 * time.Microsecond,
		rst:     abortFrom(frames.Server),
		verdict: VerdictValid, action: ActionPass,
		lacks: sig(xdp.RstguardSignalSIG_TOO_SOON),
	},
	{
		name: "sub-millisecond leg: host processing, not the path, makes the RTT: timing not judged",
		mode: ModeDrop,
		setup: func(h *harness, c *frames.Conn) {
			timedHandshake(h, c, 300*time.Microsecond, 20*time.Microsecond)
			h.send(c.Data(frames.Client, []byte("GET / HTTP/1.1\r\n\r\n")), 10*time.Microsecond)
		},
		gap:     5 * time.Microsecond,
		rst:     abortFrom(frames.Server),
		verdict: VerdictValid, action: ActionPass,
		lacks: sig(xdp.RstguardSignalSIG_TOO_SOON),
	},
	// A live gateway times legs on its coarse clock (xdp/bpf/packet.h),
	// here a 4 ms tick (HZ=250): the fixtures' clock rounded down to it.
	{
		name: "coarse clock: a nearby client's answers read zero ticks; its abort after a slow request is not too soon",
		mode: ModeDrop,
		setup: func(h *harness, c *frames.Conn) {
			coarseTick(h)
			timedHandshake(h, c, 16500*time.Microsecond, 60*time.Microsecond)
			h.send(c.Data(frames.Client, []byte("GET / HTTP/1.1\r\n\r\n")), 200*time.Microsecond)
			h.send(c.Data(frames.Server, []byte("HTTP/1.1 200 OK\r\n\r\n")), 34*time.Millisecond)
			h.send(c.ACK(frames.Client), 20*time.Microsecond) // within the tick: zero
			// The next request, 32 ms after the server's push (its
			// application's time, not the path's), is the first to
			// acknowledge it: a 32 ms sample.
			h.send(c.Data(frames.Server, []byte("event: 1\r\n")), 100*time.Millisecond)
			h.send(c.Data(frames.Client, []byte("GET /2 HTTP/1.1\r\n\r\n")), 32*time.Millisecond)
			h.send(c.Data(frames.Server, []byte("HTTP/1.1 200 OK\r\n\r\n")), 20*time.Millisecond)
		},
		gap:     66 * time.Microsecond,
		rst:     abortFrom(frames.Client),
		verdict: VerdictValid, action: ActionPass,
		lacks: sig(xdp.RstguardSignalSIG_TOO_SOON),
	},
	{
		name: "coarse clock: a leg timed a tick long by a sample across a tick: an abort 1 ms after data is not too soon",
		mode: ModeDrop,
		setup: func(h *harness, c *frames.Conn) {
			coarseTick(h)
			timedHandshake(h, c, 10*time.Millisecond, 50*time.Millisecond)
			h.send(c.Data(frames.Client, []byte("GET / HTTP/1.1\r\n\r\n")), time.Millisecond)
			// The server's data 50 µs before a tick, the client's ACK
			// 100 µs after it: the coarse clock reads 4 ms between them.
			h.send(c.Data(frames.Server, []byte("HTTP/1.1 200 OK\r\n\r\n")), 2950*time.Microsecond)
			h.send(c.ACK(frames.Client), 100*time.Microsecond)
			h.send(c.Data(frames.Server, []byte("HTTP/1.1 200 OK\r\n\r\n")), 20*time.Millisecond)
		},
		gap:     time.Millisecond,
		rst:     abortFrom(frames.Client),
		verdict: VerdictValid, action: ActionPass,
		lacks: sig(xdp.RstguardSignalSIG_TOO_SOON),
	},
	{
		name: "coarse clock: a 30 ms leg is still timed: a RST/ACK 1 ms after the server's data is too soon",
		mode: ModeDrop,
		setup: func(h *harness, c *frames.Conn) {
			coarseTick(h)
			timedHandshake(h, c, 1100*time.Microsecond, 30*time.Millisecond)
			h.send(c.Data(frames.Client, []byte("GET / HTTP/1.1\r\n\r\n")), 100*time.Microsecond)
			h.send(c.Data(frames.Server, []byte("HTTP/1.1 200 OK\r\n\r\n")), time.Millisecond)
			h.send(c.ACK(frames.Client), 30*time.Millisecond)
			h.send(c.Data(frames.Server, []byte("HTTP/1.1 200 OK\r\n\r\n")), 10*time.Millisecond)
		},
		gap:     time.Millisecond,
		rst:     abortFrom(frames.Client),
		verdict: VerdictSuspect, action: ActionPass,
		has: sig(xdp.RstguardSignalSIG_TOO_SOON),
	},
	{
		name: "time running backwards (merged capture taps) never makes a huge RTT",
		mode: ModeDrop,
		setup: func(h *harness, c *frames.Conn) {
			timedHandshake(h, c, 50*time.Millisecond, -time.Millisecond)
			h.send(c.Data(frames.Server, []byte("HTTP/1.1 200 OK\r\n\r\n")), 2*time.Millisecond)
		},
		gap:     500 * time.Microsecond,
		rst:     abortFrom(frames.Client),
		verdict: VerdictValid, action: ActionPass,
		lacks: sig(xdp.RstguardSignalSIG_TOO_SOON),
	},
	// Real traffic the rules once convicted (issue 7): each must stay not spoofed.
	{
		name: "an old stack's RST after its short record and FIN were lost before the gateway: not spoofed",
		mode: ModeDrop,
		setup: func(h *harness, c *frames.Conn) {
			established(h, c)
			// The server closes with a record and FIN that never reach the
			// gateway (nor the client, which sends more).
			h.sendAll(c.Data(frames.Client, []byte("GET /next HTTP/1.1\r\n\r\n")))
		},
		rst: func(c *frames.Conn) frames.Segment {
			// A plain RST at the server's real next sequence, ahead of what
			// the gateway saw by the lost record and FIN; its usual window, no
			// timestamps, and an IP-ID jumped as after idle time.
			s := c.Segment(frames.Server, tcpflag.RST, nil)
			s.Seq += uint32(len("bye\r\n")) + 1
			s.Window, s.TS, s.IPID = c.Peer(frames.Server).Window, false, c.Peer(frames.Server).IPID+3000
			return s
		},
		verdict: VerdictSuspect, action: ActionPass,
		has:   sig(xdp.RstguardSignalSIG_SEQ_IN_WINDOW),
		lacks: sig(xdp.RstguardSignalSIG_WINDOW_NONZERO, xdp.RstguardSignalSIG_TS_MISSING),
	},
	{
		name: "a host's stateless RSTs to late segments after both FINs, TTL 64 against its sockets' 128: valid",
		mode: ModeDrop, conn: ttl128Server,
		setup: func(h *harness, c *frames.Conn) {
			established(h, c)
			h.sendAll(c.FIN(frames.Server), c.ACK(frames.Client), c.FIN(frames.Client), c.ACK(frames.Server))
			// A late segment from the client, and the server kernel's answer.
			late := c.Segment(frames.Client, tcpflag.ACK, nil)
			late.Ack--
			h.sendAll(late.MustFrame(), lateAnswer(c, late).MustFrame())
			// The client's next late segment acknowledges more.
			h.sendAll(c.Segment(frames.Client, tcpflag.ACK, nil).MustFrame())
		},
		rst: func(c *frames.Conn) frames.Segment {
			return lateAnswer(c, c.Segment(frames.Client, tcpflag.ACK, nil))
		},
		verdict: VerdictValid, action: ActionPass,
		has:   sig(xdp.RstguardSignalSIG_SEQ_EXACT),
		lacks: sig(xdp.RstguardSignalSIG_TTL_OFF, xdp.RstguardSignalSIG_RST_BURST, xdp.RstguardSignalSIG_SEQ_OUT_OF_WINDOW),
	},
	{
		name: "the same over IPv6, with the control socket's own flow label: valid",
		mode: ModeDrop, v6: true, conn: ttl128Server,
		setup: func(h *harness, c *frames.Conn) {
			established(h, c)
			h.sendAll(c.FIN(frames.Server), c.ACK(frames.Client), c.FIN(frames.Client), c.ACK(frames.Server))
			late := c.Segment(frames.Client, tcpflag.ACK, nil)
			h.sendAll(late.MustFrame())
		},
		rst: func(c *frames.Conn) frames.Segment {
			s := lateAnswer(c, c.Segment(frames.Client, tcpflag.ACK, nil))
			s.FlowLabel = 0x5eed
			return s
		},
		verdict: VerdictValid, action: ActionPass,
		lacks: sig(xdp.RstguardSignalSIG_TTL_OFF),
	},
	{
		name:    "a port scan: the scanner's kernel resets the SYN/ACK its raw SYN drew (nmap's TTL 37-59): suspect, never spoofed",
		mode:    ModeDrop,
		setup:   func(h *harness, c *frames.Conn) { scan(h, c, false) },
		rst:     scannerKernelRST,
		verdict: VerdictSuspect, action: ActionPass,
		has: sig(xdp.RstguardSignalSIG_SEQ_EXACT, xdp.RstguardSignalSIG_TTL_OFF),
	},
	{
		name: "the same over IPv6 (nmap draws the hop limit alike)",
		mode: ModeDrop, v6: true,
		setup:   func(h *harness, c *frames.Conn) { scan(h, c, false) },
		rst:     scannerKernelRST,
		verdict: VerdictSuspect, action: ActionPass,
		has: sig(xdp.RstguardSignalSIG_TTL_OFF),
	},
	{
		name:  "once the client has sent its handshake's ACK, its kernel set the TTL baseline: a RST at the SYN's TTL is spoofed",
		mode:  ModeDrop,
		setup: func(h *harness, c *frames.Conn) { scan(h, c, true) },
		rst: func(c *frames.Conn) frames.Segment {
			s := scannerKernelRST(c)
			s.TTL = scanTTL
			return s
		},
		verdict: VerdictSpoofed, action: ActionDrop,
		has: sig(xdp.RstguardSignalSIG_TTL_OFF),
	},
	{
		name: "weak signals adding up: constant IP-IDs on both sides, equal windows, a stateless RST: valid",
		mode: ModeDrop, conn: constantIDs,
		setup: func(h *harness, c *frames.Conn) {
			established(h, c)
		},
		rst: func(c *frames.Conn) frames.Segment {
			s := c.Segment(frames.Server, tcpflag.RST|tcpflag.ACK, nil)
			s.TS = false
			return s
		},
		verdict: VerdictValid, action: ActionPass,
		lacks: sig(xdp.RstguardSignalSIG_IPID_MIRRORED, xdp.RstguardSignalSIG_WINDOW_MIRRORED),
	},
	{
		name: "a TCP-MD5 option the connection never negotiated: an insertion decoy, never scored",
		mode: ModeDrop,
		rst: func(c *frames.Conn) frames.Segment {
			s := forgedFromClient(c)
			s.MD5 = true
			return s
		},
		verdict: VerdictUnknown, action: ActionPass,
		has:   sig(xdp.RstguardSignalSIG_AUTH_DECOY),
		lacks: sig(xdp.RstguardSignalSIG_TTL_OFF),
	},
	{
		name: "TCP-MD5 negotiated in the handshake: a signed forgery is judged as any",
		mode: ModeDrop,
		conn: func(client, server netip.AddrPort) *frames.Conn {
			c := linuxPair(client, server)
			cl, sv := c.Peer(frames.Client), c.Peer(frames.Server)
			// Linux leaves timestamps out when MD5 takes the option space.
			cl.MD5, sv.MD5, cl.TS, sv.TS = true, true, false, false
			return frames.NewConn(cl, sv)
		},
		rst:     forgedFromClient,
		verdict: VerdictSpoofed, action: ActionDrop,
		has:   sig(xdp.RstguardSignalSIG_TTL_OFF),
		lacks: sig(xdp.RstguardSignalSIG_AUTH_DECOY),
	},
	{
		name: "Karn's rule: a SYN/ACK after a retransmitted SYN times nothing, so an abort soon after data is valid",
		mode: ModeDrop,
		setup: func(h *harness, c *frames.Conn) {
			syn := c.Send(frames.Client, c.Segment(frames.Client, tcpflag.SYN, nil))
			h.send(syn, 0)
			h.send(syn, time.Second) // the first SYN was lost beyond the gateway
			h.send(c.Send(frames.Server, c.Segment(frames.Server, tcpflag.SYN|tcpflag.ACK, nil)), 80*time.Millisecond)
			h.send(c.Send(frames.Client, c.Segment(frames.Client, tcpflag.ACK, nil)), 80*time.Millisecond)
			h.send(c.Data(frames.Client, []byte("GET / HTTP/1.1\r\n\r\n")), time.Millisecond)
		},
		gap:     5 * time.Millisecond,
		rst:     abortFrom(frames.Server),
		verdict: VerdictValid, action: ActionPass,
		lacks: sig(xdp.RstguardSignalSIG_TOO_SOON),
	},
	{
		name: "a data segment with the RST bit and a bad checksum, longer than one checksum chunk: not a RST",
		mode: ModeDrop,
		rst: func(c *frames.Conn) frames.Segment {
			s := forgedFromClient(c)
			s.Payload, s.BadChecksum = make([]byte, 1200), true
			return s
		},
		verdict: VerdictUnknown, action: ActionPass,
		has: sig(xdp.RstguardSignalSIG_BAD_CHECKSUM),
	},
	{
		name: "a RST with 1,400 bytes of payload and a right checksum: verified in chunks, judged",
		mode: ModeDrop,
		rst: func(c *frames.Conn) frames.Segment {
			s := forgedFromClient(c)
			s.Payload = make([]byte, 1400)
			for i := range s.Payload {
				s.Payload[i] = byte(i * 7)
			}
			return s
		},
		verdict: VerdictSpoofed, action: ActionDrop,
		lacks: sig(xdp.RstguardSignalSIG_BAD_CHECKSUM),
	},
	{
		name:    "no flow: nothing to judge against",
		mode:    ModeDrop,
		setup:   func(*harness, *frames.Conn) {},
		rst:     forgedFromClient,
		verdict: VerdictUnknown, action: ActionPass,
	},
}

// lateAnswer is a Linux host's answer to a segment for a socket that is gone,
// from its per-namespace control socket (tcp_v4_send_reset): a plain RST at
// seq = the segment's ACK, the system's default TTL 64 (the application's
// sockets here send with 128, so both arrive the same hop count away), DF
// with IP-ID 0, window 0, no timestamps.
func lateAnswer(c *frames.Conn, late frames.Segment) frames.Segment {
	hops := 128 - c.Peer(frames.Server).TTL
	s := c.Segment(frames.Server, tcpflag.RST, nil)
	s.Seq, s.TTL = late.Ack, 64-hops
	return s
}

// ttl128Server is linuxPair with a server whose application sockets send with
// TTL 128 (IP_TTL), 12 hops away.
func ttl128Server(client, server netip.AddrPort) *frames.Conn {
	c := linuxPair(client, server)
	cl, sv := c.Peer(frames.Client), c.Peer(frames.Server)
	sv.TTL = 128 - 12
	return frames.NewConn(cl, sv)
}

// constantIDs is a pair of stacks that both send one constant IP-ID and the
// same window.
func constantIDs(client, server netip.AddrPort) *frames.Conn {
	c := linuxPair(client, server)
	cl, sv := c.Peer(frames.Client), c.Peer(frames.Server)
	cl.IPID, cl.IPIDStep, sv.IPID, sv.IPIDStep = 4660, 0, 4660, 0
	sv.Window = cl.Window
	return frames.NewConn(cl, sv)
}

// tagged is a handshake segment inside two VLAN tags.
func tagged(c *frames.Conn, s frames.Side, flags uint8) []byte {
	seg := c.Segment(s, flags, nil)
	seg.VLANs = []uint16{100, 200}
	return c.Send(s, seg)
}

func TestRSTVerdicts(t *testing.T) {
	for _, fx := range rstFixtures {
		t.Run(fx.name, func(t *testing.T) {
			h := newHarness(t, fx.mode)
			pair := fx.conn
			if pair == nil {
				pair = linuxPair
			}
			c := pair(clientAddr, serverAddr)
			if fx.v6 {
				c = pair(client6, server6)
			}
			if fx.setup != nil {
				fx.setup(h, c)
			} else {
				established(h, c)
			}
			h.drain()
			before := h.counters()

			gap := fx.gap
			if gap == 0 {
				gap = 10 * time.Millisecond
			}
			ret := h.send(fx.rst(c).MustFrame(), gap)
			wantRet := uint32(XDPPass)
			if fx.action == ActionDrop {
				wantRet = XDPDrop
			}
			if ret != wantRet {
				t.Errorf("XDP verdict %d, want %d", ret, wantRet)
			}

			evs := h.drain()
			if len(evs) != 1 {
				t.Fatalf("%d events, want 1: %+v", len(evs), evs)
			}
			e := evs[0]
			if e.Verdict != fx.verdict || e.Action != fx.action {
				t.Errorf("verdict %s action %s, want %s %s (signals %v, score %d)",
					e.Verdict, e.Action, fx.verdict, fx.action, e.Signals.Names(), e.Score)
			}
			for _, s := range fx.has {
				if !e.Signals.Has(s) {
					t.Errorf("signal %s missing from %v", s, e.Signals.Names())
				}
			}
			for _, s := range fx.lacks {
				if e.Signals.Has(s) {
					t.Errorf("signal %s present in %v", s, e.Signals.Names())
				}
			}

			after := h.counters()
			if d := after.RSTs - before.RSTs; d != 1 {
				t.Errorf("rst counter moved by %d", d)
			}
			if d := after.Verdicts[fx.verdict.String()] - before.Verdicts[fx.verdict.String()]; d != 1 {
				t.Errorf("%s counter moved by %d", fx.verdict, d)
			}
			if d := after.Actions[fx.action.String()] - before.Actions[fx.action.String()]; d != 1 {
				t.Errorf("%s counter moved by %d", fx.action, d)
			}
			for _, s := range fx.has {
				if d := after.Signals[s.String()] - before.Signals[s.String()]; d != 1 {
					t.Errorf("signal %s counter moved by %d", s, d)
				}
			}
		})
	}
}

// The incident from the server's side, in monitor mode: the forged RST, the
// real client's retransmission that proves it forged, and the server's
// collateral reset of the real client.
func TestIncidentEvidenceAfterTheFact(t *testing.T) {
	h := newHarness(t, ModeMonitor)
	c := linuxPair(clientAddr, serverAddr)
	h.sendAll(c.Handshake()...)
	request := c.Segment(frames.Client, tcpflag.PSH|tcpflag.ACK, []byte("HEAD / HTTP/1.1\r\nHost: www.testaaa.com\r\n\r\n"))
	// The device swallowed the request and reset the server in the client's name.
	h.sendAll(forgedFromClient(c).MustFrame())
	// The client's retransmission after its RTO.
	h.send(request.MustFrame(), 240*time.Millisecond)
	// The server, already reset, resets the client.
	h.send(c.Send(frames.Server, func() frames.Segment {
		s := c.Segment(frames.Server, tcpflag.RST, nil)
		s.TS, s.IPID, s.Window = false, 0, 0
		return s
	}()), 40*time.Millisecond)

	evs := h.drain()
	kinds := make([]EventKind, len(evs))
	for i, e := range evs {
		kinds[i] = e.Kind
	}
	want := []EventKind{EventRST, EventConfirmed, EventCollateral}
	if !slices.Equal(kinds, want) {
		t.Fatalf("event kinds %v, want %v", kinds, want)
	}
	if evs[0].Verdict != VerdictSpoofed {
		t.Errorf("forged RST judged %s", evs[0].Verdict)
	}
	if c := evs[1]; c.RST == nil || c.RST.TTL != 55 || c.TTL != 61 || c.Src != clientAddr ||
		c.RST.VerdictThen != VerdictSpoofed {
		t.Errorf("confirmation: %+v rst %+v", c, c.RST)
	}
	if col := evs[2]; col.Verdict != VerdictValid || !col.Signals.Has(Signal(xdp.RstguardSignalSIG_COLLATERAL)) {
		t.Errorf("collateral reset: %s %v", col.Verdict, col.Signals.Names())
	}
	cnt := h.counters()
	if cnt.Confirmed != 1 || cnt.Collateral != 1 {
		t.Errorf("confirmed %d collateral %d, want 1 1", cnt.Confirmed, cnt.Collateral)
	}
	// Monitor mode let the forged RST through: the confirmation says so.
	if cnt.ConfirmedByAction["pass"] != 1 || cnt.ConfirmedByAction["drop"] != 0 || evs[1].Action != ActionPass {
		t.Errorf("confirmed by action %v, event action %s", cnt.ConfirmedByAction, evs[1].Action)
	}
}

// Each interface's frames are counted in its own set, and the totals are
// their sum; interfaces that share a slot are named together.
// BPF_PROG_TEST_RUN runs frames as if they arrived on lo (ifindex 1).
func TestInterfaceCounters(t *testing.T) {
	h := newHarness(t, ModeMonitor)
	h.sendAll(linuxPair(clientAddr, serverAddr).Handshake()...)
	const lo = 1
	for _, tc := range []struct {
		names map[int]string
		want  map[string]uint64 // TCP segments
	}{
		{map[int]string{lo: "lo"}, map[string]uint64{"lo": 3}},
		{map[int]string{lo: "lo", lo + 1: "eth9"}, map[string]uint64{"lo": 3, "eth9": 0}},
		{map[int]string{lo + 1: "eth9"}, map[string]uint64{"eth9": 0, "other": 3}},
		{map[int]string{lo: "lo", lo + IfaceSlots: "wan0"}, map[string]uint64{"lo+wan0": 3}},
	} {
		per, err := h.dp.InterfaceCounters(tc.names)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]uint64{}
		for name, c := range per {
			got[name] = c.TCP
		}
		if !maps.Equal(got, tc.want) {
			t.Errorf("interfaces %v: TCP segments %v, want %v", tc.names, got, tc.want)
		}
	}
	if h.counters().TCP != 3 {
		t.Errorf("total %d", h.counters().TCP)
	}
}

// Three RST/ACKs with one sequence number and TTLs 65, 66, 67 (net4people
// #285): every one is dropped, and the later ones carry rst_burst.
func TestGFWVolley(t *testing.T) {
	h := newHarness(t, ModeDrop)
	c := linuxPair(clientAddr, serverAddr)
	established(h, c)
	h.drain()
	for i, ttl := range []uint8{65, 66, 67} {
		s := c.Segment(frames.Server, tcpflag.RST|tcpflag.ACK, nil)
		s.TTL, s.TS = ttl, false
		if ret := h.send(s.MustFrame(), time.Millisecond); ret != XDPDrop {
			t.Errorf("RST %d (TTL %d): XDP verdict %d, want drop", i, ttl, ret)
		}
	}
	evs := h.drain()
	if len(evs) != 3 {
		t.Fatalf("%d events", len(evs))
	}
	for i, e := range evs {
		if e.Verdict != VerdictSpoofed {
			t.Errorf("RST %d: %s", i, e.Verdict)
		}
		if burst := e.Signals.Has(Signal(xdp.RstguardSignalSIG_RST_BURST)); burst != (i > 0) {
			t.Errorf("RST %d: rst_burst %v", i, burst)
		}
	}
}

// The flow keeps working after a dropped forgery: data, FIN and the real
// close pass, and the real RST that follows is valid.
func TestDropModeNeverDropsNonRST(t *testing.T) {
	h := newHarness(t, ModeDrop)
	c := linuxPair(clientAddr, serverAddr)
	established(h, c)
	if ret := h.send(forgedFromClient(c).MustFrame(), time.Millisecond); ret != XDPDrop {
		t.Fatalf("forged RST not dropped: %d", ret)
	}
	h.sendAll(c.Data(frames.Server, make([]byte, 1400)), c.ACK(frames.Client), c.FIN(frames.Server),
		c.FIN(frames.Client), c.ACK(frames.Server))
	if ret := h.send(c.Send(frames.Server, c.Segment(frames.Server, tcpflag.RST|tcpflag.ACK, nil)), time.Millisecond); ret != XDPPass {
		t.Fatalf("real RST after the close dropped")
	}
	cnt := h.counters()
	if cnt.Actions["drop"] != 1 {
		t.Errorf("drops %d, want 1", cnt.Actions["drop"])
	}
}

// The operator's own firewall resets on the server's behalf: allow-listed, it
// is judged and reported but never dropped.
func TestAllowListNeverDrops(t *testing.T) {
	h := newHarness(t, ModeDrop)
	if err := h.dp.SetAllow([]netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}); err != nil {
		t.Fatal(err)
	}
	got, err := h.dp.Allow()
	if err != nil || len(got) != 1 || got[0].String() != "198.51.100.0/24" {
		t.Fatalf("allow-list %v %v", got, err)
	}
	c := linuxPair(clientAddr, serverAddr)
	established(h, c)
	h.drain()
	if ret := h.send(forgedFromClient(c).MustFrame(), time.Millisecond); ret != XDPPass {
		t.Errorf("allow-listed RST dropped")
	}
	evs := h.drain()
	if len(evs) != 1 || evs[0].Verdict != VerdictSpoofed || !evs[0].Signals.Has(Signal(xdp.RstguardSignalSIG_ALLOWED)) {
		t.Errorf("events %+v", evs)
	}
}

// A flood of forged RSTs on one flow: events are rate-limited, counters exact.
func TestEventBudget(t *testing.T) {
	h := newHarness(t, ModeDrop)
	c := linuxPair(clientAddr, serverAddr)
	established(h, c)
	h.drain()
	const flood = 200
	for range flood {
		h.send(forgedFromClient(c).MustFrame(), 100*time.Microsecond)
	}
	cnt := h.counters()
	evs := h.drain()
	budget := int(DefaultPolicy().EventBudget)
	if len(evs) != budget {
		t.Errorf("%d events, want the budget %d", len(evs), budget)
	}
	if cnt.Verdicts["spoofed"] != flood || cnt.Actions["drop"] != flood {
		t.Errorf("spoofed %d dropped %d, want %d", cnt.Verdicts["spoofed"], cnt.Actions["drop"], flood)
	}
	if cnt.EventsSuppress != uint64(flood-budget) {
		t.Errorf("suppressed %d, want %d", cnt.EventsSuppress, flood-budget)
	}
}

// A blind flood of RSTs for flows nobody opened: every one is counted, but
// their events stay within the per-CPU budget for RSTs of no flow.
// onOneCPU keeps the calling goroutine on the CPU it runs on now, for tests
// of per-CPU budgets, and undoes it at the end of the test.
func onOneCPU(t *testing.T) {
	t.Helper()
	runtime.LockOSThread()
	var all, one unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		t.Fatal(err)
	}
	var cpu uint32
	if _, _, errno := unix.RawSyscall(unix.SYS_GETCPU, uintptr(unsafe.Pointer(&cpu)), 0, 0); errno != 0 {
		t.Fatal(errno)
	}
	one.Set(int(cpu))
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unix.SchedSetaffinity(0, &all)
		runtime.UnlockOSThread()
	})
}

// A blind flood of RSTs for flows nobody opened: every one is counted, but
// their events stay within the per-CPU budget for RSTs of no flow.
func TestNoFlowEventBudget(t *testing.T) {
	onOneCPU(t)
	h := newHarness(t, ModeDrop)
	const flood = 1000
	for i := range flood {
		c := linuxPair(netip.AddrPortFrom(clientAddr.Addr(), uint16(1024+i)), serverAddr)
		if ret := h.send(forgedFromClient(c).MustFrame(), time.Microsecond); ret != XDPPass {
			t.Fatalf("RST of no flow dropped")
		}
	}
	cnt := h.counters()
	evs := h.drain()
	budget := int(xdp.RstguardEventBudgetsNO_FLOW_EVENT_BUDGET)
	if cnt.RSTsNoFlow != flood || cnt.Verdicts["unknown"] != flood {
		t.Errorf("no-flow %d unknown %d, want %d", cnt.RSTsNoFlow, cnt.Verdicts["unknown"], flood)
	}
	if len(evs) != budget || cnt.EventsSuppress != uint64(flood-budget) {
		t.Errorf("%d events, %d suppressed; want %d and %d", len(evs), cnt.EventsSuppress, budget, flood-budget)
	}
}

// A flood of forged RSTs spread over many flows, each within its own
// budget: the per-CPU budget for all events still bounds what reaches the
// ring buffer, and counts the rest.
func TestGlobalEventBudget(t *testing.T) {
	onOneCPU(t)
	h := newHarness(t, ModeDrop)
	const flows = 6000
	var rsts [][]byte
	for i := range flows {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], 0x0a000000+uint32(i))
		c := linuxPair(netip.AddrPortFrom(netip.AddrFrom4(a), 40000), serverAddr)
		for _, f := range c.Handshake() {
			h.send(f, time.Microsecond)
		}
		rsts = append(rsts, forgedFromClient(c).MustFrame())
	}
	h.drain()
	before := h.counters()
	for _, f := range rsts {
		if ret := h.send(f, time.Microsecond); ret != XDPDrop {
			t.Fatalf("forged RST: XDP %d", ret)
		}
	}
	cnt := h.counters()
	evs := h.drain()
	budget := int(xdp.RstguardEventBudgetsGLOBAL_EVENT_BUDGET)
	if len(evs) != budget || cnt.EventsSuppress-before.EventsSuppress != uint64(flows-budget) {
		t.Errorf("%d events, %d suppressed; want %d and %d", len(evs), cnt.EventsSuppress-before.EventsSuppress,
			budget, flows-budget)
	}
	if cnt.Actions["drop"]-before.Actions["drop"] != flows {
		t.Errorf("dropped %d of %d", cnt.Actions["drop"]-before.Actions["drop"], flows)
	}
}

// A RST whose checksum field holds only the pseudo-header sum (TX offload on
// the sending host or a veth) is not an insertion packet.
func TestPartialChecksumIsNotBad(t *testing.T) {
	h := newHarness(t, ModeDrop)
	c := linuxPair(clientAddr, serverAddr)
	established(h, c)
	h.drain()
	frame := forgedFromClient(c).MustFrame()
	setPartialChecksum(t, frame)
	if ret := h.send(frame, time.Millisecond); ret != XDPDrop {
		t.Errorf("XDP verdict %d, want drop", ret)
	}
	evs := h.drain()
	if len(evs) != 1 || evs[0].Signals.Has(Signal(xdp.RstguardSignalSIG_BAD_CHECKSUM)) {
		t.Errorf("events %+v", evs)
	}
}

// setPartialChecksum rewrites an untagged IPv4 TCP frame's checksum the way
// CHECKSUM_PARTIAL leaves it: the folded pseudo-header sum, not complemented.
func setPartialChecksum(t *testing.T, f []byte) {
	t.Helper()
	ihl := int(f[14]&0x0f) * 4
	l4 := 14 + ihl
	tcpLen := int(f[16])<<8 | int(f[17]) - ihl
	sum := uint32(0)
	for i := 26; i < 34; i += 2 {
		sum += uint32(f[i])<<8 | uint32(f[i+1])
	}
	sum += 6 + uint32(tcpLen)
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	f[l4+16], f[l4+17] = byte(sum>>8), byte(sum)
}

// A confirmation (data_after_rst) is proof that a RST was forged: only the
// claimed sender's payload going on from the RST's seq, soon, with its own
// TTL and IP-ID model, or a SYN/ACK after a RST that refused its SYN.
func TestConfirmationIsProof(t *testing.T) {
	request := []byte("HEAD / HTTP/1.1\r\nHost: www.testaaa.com\r\n\r\n")
	for _, tc := range []struct {
		name    string
		rst     func(c *frames.Conn) frames.Segment
		after   func(c *frames.Conn) frames.Segment
		gap     time.Duration
		confirm bool
	}{
		{"the client's retransmission with payload: proof", forgedFromClient,
			func(c *frames.Conn) frames.Segment { return c.Segment(frames.Client, tcpflag.PSH|tcpflag.ACK, request) },
			240 * time.Millisecond, true},
		{"a pure ACK: no proof (it may have crossed the RST)", forgedFromClient,
			func(c *frames.Conn) frames.Segment { return c.Segment(frames.Client, tcpflag.ACK, nil) },
			10 * time.Millisecond, false},
		{"a FIN without payload: no proof", forgedFromClient,
			func(c *frames.Conn) frames.Segment { return c.Segment(frames.Client, tcpflag.FIN|tcpflag.ACK, nil) },
			10 * time.Millisecond, false},
		{"payload 15 s later (a scanner reusing the port): no proof", forgedFromClient,
			func(c *frames.Conn) frames.Segment { return c.Segment(frames.Client, tcpflag.PSH|tcpflag.ACK, request) },
			15 * time.Second, false},
		{"payload from a raw-socket tool on the client, TTL 64 and a random IP-ID: no proof", forgedFromClient,
			func(c *frames.Conn) frames.Segment {
				s := c.Segment(frames.Client, tcpflag.PSH|tcpflag.ACK, request)
				s.TTL, s.IPID = 64, 31337
				return s
			}, 10 * time.Millisecond, false},
		{"payload that does not reach the RST's seq: no proof", forgedFromClient,
			func(c *frames.Conn) frames.Segment {
				s := c.Segment(frames.Client, tcpflag.PSH|tcpflag.ACK, request)
				s.Seq -= 1000
				return s
			}, 240 * time.Millisecond, false},
		{"payload acknowledging data the server never sent: no proof", forgedFromClient,
			func(c *frames.Conn) frames.Segment {
				s := c.Segment(frames.Client, tcpflag.PSH|tcpflag.ACK, request)
				s.Ack += 100000
				return s
			}, 240 * time.Millisecond, false},
		{"payload after a RST with a bad checksum (judged unknown): no proof",
			func(c *frames.Conn) frames.Segment {
				s := forgedFromClient(c)
				s.BadChecksum = true
				return s
			},
			func(c *frames.Conn) frames.Segment { return c.Segment(frames.Client, tcpflag.PSH|tcpflag.ACK, request) },
			240 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, ModeMonitor)
			c := linuxPair(clientAddr, serverAddr)
			h.sendAll(c.Handshake()...)
			h.send(tc.rst(c).MustFrame(), 10*time.Millisecond)
			h.send(tc.after(c).MustFrame(), tc.gap)
			confirmed := 0
			for _, e := range h.drain() {
				if e.Kind == EventConfirmed {
					confirmed++
				}
			}
			if got := confirmed == 1; got != tc.confirm || confirmed > 1 {
				t.Errorf("%d confirmations, want confirmed=%v", confirmed, tc.confirm)
			}
		})
	}

	t.Run("a SYN/ACK after a RST that refused the SYN: proof (rst-inject-rae.pcap)", func(t *testing.T) {
		h := newHarness(t, ModeMonitor)
		c := linuxPair(clientAddr, serverAddr)
		h.sendAll(c.Send(frames.Client, c.Segment(frames.Client, tcpflag.SYN, nil)))
		refusal := c.Segment(frames.Server, tcpflag.RST|tcpflag.ACK, nil)
		refusal.Seq, refusal.Ack, refusal.TTL = 0, c.Peer(frames.Client).ISN, 46 // ack = ISN, not ISN+1
		h.send(refusal.MustFrame(), 5*time.Millisecond)
		h.send(c.Send(frames.Server, c.Segment(frames.Server, tcpflag.SYN|tcpflag.ACK, nil)), time.Second)
		evs := h.drain()
		if len(evs) != 2 || evs[1].Kind != EventConfirmed {
			t.Errorf("events %+v", evs)
		}
	})
}

// firstFragment4 makes an untagged IPv4 frame the first fragment of its
// datagram (MF, offset 0), the last cut bytes of its segment left for the
// next fragment: the TCP checksum no longer adds up in this one.
func firstFragment4(f []byte, cut int) []byte {
	out := append([]byte(nil), f[:len(f)-cut]...)
	total := int(out[16])<<8 | int(out[17]) - cut
	out[16], out[17] = byte(total>>8), byte(total)
	out[20], out[21] = 0x20, 0 // MF, offset 0
	return out
}

// firstFragment6 puts an IPv6 fragment header (offset 0, more fragments)
// between an untagged frame's IPv6 and TCP headers, the last cut bytes of
// the segment left for the next fragment.
func firstFragment6(f []byte, cut int) []byte {
	out := append([]byte(nil), f[:54]...)
	out[20] = 44 // next header: fragment
	plen := int(out[18])<<8 | int(out[19]) + 8 - cut
	out[18], out[19] = byte(plen>>8), byte(plen)
	out = append(out, 6, 0, 0, 1, 0, 0, 0x12, 0x34) // TCP, offset 0, M, id
	return append(out, f[54:len(f)-cut]...)
}

// tinyFirstFragment cuts an untagged IPv4 frame to its first 8 bytes of TCP
// (no flags), as a first fragment (MF, offset 0): RFC 1858's tiny fragment.
func tinyFirstFragment(f []byte) []byte {
	out := append([]byte(nil), f[:14+20+8]...)
	out[16], out[17] = 0, 28   // total length
	out[20], out[21] = 0x20, 0 // MF, offset 0
	return out
}

// First fragments: one holding the whole TCP header is judged; one too short
// for it (RFC 1858, RFC 3128) is counted, reported, and dropped outside
// monitor mode. A non-first fragment always passes.
func TestFragments(t *testing.T) {
	for _, tc := range []struct {
		name     string
		client   netip.AddrPort
		fragment func(f []byte, cut int) []byte
	}{
		{"IPv4", clientAddr, firstFragment4},
		{"IPv6", client6, firstFragment6},
	} {
		t.Run(tc.name+": a forged RST in a first fragment is judged, and dropped with its datagram", func(t *testing.T) {
			h := newHarness(t, ModeDrop)
			server := serverAddr
			if tc.client.Addr().Is6() {
				server = server6
			}
			c := linuxPair(tc.client, server)
			established(h, c)
			h.drain()
			s := c.Segment(frames.Client, tcpflag.RST, nil)
			s.TTL, s.Payload = 40, make([]byte, 24)
			if ret := h.send(tc.fragment(s.MustFrame(), 16), time.Millisecond); ret != XDPDrop {
				t.Errorf("XDP %d, want drop", ret)
			}
			evs := h.drain()
			if len(evs) != 1 || evs[0].Verdict != VerdictSpoofed || evs[0].Signals.Has(Signal(xdp.RstguardSignalSIG_BAD_CHECKSUM)) {
				t.Errorf("events %+v", evs)
			}
		})
	}
	for _, mode := range Modes {
		t.Run("a tiny first fragment in "+mode.String()+" mode", func(t *testing.T) {
			h := newHarness(t, mode)
			c := linuxPair(clientAddr, serverAddr)
			established(h, c)
			h.drain()
			want := uint32(XDPDrop)
			if mode == ModeMonitor {
				want = XDPPass
			}
			before := h.counters()
			if ret := h.send(tinyFirstFragment(forgedFromClient(c).MustFrame()), time.Millisecond); ret != want {
				t.Errorf("XDP %d, want %d", ret, want)
			}
			after := h.counters()
			if after.TinyFragments-before.TinyFragments != 1 || after.Packets-before.Packets != 1 {
				t.Errorf("tiny %d packets %d", after.TinyFragments-before.TinyFragments, after.Packets-before.Packets)
			}
			if evs := h.drain(); len(evs) != 1 || evs[0].Kind != EventTinyFragment || evs[0].Src.Addr() != clientAddr.Addr() {
				t.Errorf("events %+v", evs)
			}
		})
	}
	t.Run("a non-first fragment passes, counted", func(t *testing.T) {
		h := newHarness(t, ModeDrop)
		f := tinyFirstFragment(forgedFromClient(linuxPair(clientAddr, serverAddr)).MustFrame())
		f[20], f[21] = 0, 3 // offset 24 bytes, last fragment
		before := h.counters()
		if ret := h.send(f, time.Millisecond); ret != XDPPass {
			t.Errorf("XDP %d, want pass", ret)
		}
		if d := h.counters().Fragments - before.Fragments; d != 1 {
			t.Errorf("fragments %d", d)
		}
	})
}

// A flood of half-open flows (spoofed SYN and ACK pairs, or one-way packets
// of made-up flows) lands in the embryonic table and cannot evict the
// connections the gateway saw open: a forged RST against one is still judged.
func TestHalfOpenFloodCannotEvict(t *testing.T) {
	h := newHarness(t, ModeDrop) // a 16,384-flow table, 4,096 embryonic
	victim := linuxPair(clientAddr, serverAddr)
	established(h, victim)
	midstream := linuxPair(netip.MustParseAddrPort("192.0.2.11:40001"), serverAddr)
	h.sendAll(midstream.Data(frames.Client, []byte("GET /")), midstream.Data(frames.Server, []byte("HTTP/1.1 200")),
		midstream.ACK(frames.Client))
	if c := h.counters(); c.FlowPromoted != 2 {
		t.Fatalf("%d flows promoted, want the handshake and the two-way exchange", c.FlowPromoted)
	}
	for i := range 20000 {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], 0x0b000000+uint32(i))
		c := linuxPair(netip.AddrPortFrom(netip.AddrFrom4(a), uint16(1024+i%60000)), serverAddr)
		syn := c.Send(frames.Client, c.Segment(frames.Client, tcpflag.SYN, nil))
		ack := c.Segment(frames.Client, tcpflag.ACK, nil)
		ack.Ack = 12345
		h.send(syn, time.Microsecond)
		h.send(ack.MustFrame(), time.Microsecond)
		if i < 4000 {
			oneWay := linuxPair(netip.AddrPortFrom(netip.AddrFrom4(a), 9), serverAddr)
			h.send(oneWay.Data(frames.Client, []byte("x")), time.Microsecond)
		}
	}
	h.drain()
	if c := h.counters(); c.FlowPromoted != 2 {
		t.Errorf("the flood promoted %d flows", c.FlowPromoted-2)
	}
	for _, c := range []*frames.Conn{victim, midstream} {
		if ret := h.send(forgedFromClient(c).MustFrame(), time.Millisecond); ret != XDPDrop {
			t.Errorf("forged RST after the flood: XDP %d, want drop (flow evicted?)", ret)
		}
	}
}

// withVLAN tags an untagged frame with one 802.1Q tag.
func withVLAN(f []byte, id uint16) []byte {
	out := append([]byte(nil), f[:12]...)
	out = append(out, 0x81, 0x00, byte(id>>8), byte(id))
	return append(out, f[12:]...)
}

// Two tenants behind one gateway use the same addresses and ports (VRFs or
// VLANs with overlapping address space): in two zones they are two
// connections, and one tenant's real RST is judged against its own state.
func TestZonesKeepOverlappingTenantsApart(t *testing.T) {
	for _, zoned := range []bool{false, true} {
		name := "without zones: the tenants share one entry, and a real RST is convicted"
		if zoned {
			name = "with zones: each tenant its own entry, the real RST valid"
		}
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, ModeDrop)
			if zoned {
				// BPF_PROG_TEST_RUN runs frames as from the loopback device.
				lo, err := net.InterfaceByName("lo")
				if err != nil {
					t.Fatal(err)
				}
				if err := h.dp.SetZones(map[ZoneKey]uint16{{lo.Index, 100}: 1, {lo.Index, 200}: 2}); err != nil {
					t.Fatal(err)
				}
			}
			a := linuxPair(clientAddr, serverAddr)
			b := frames.NewConn(
				frames.Peer{Addr: clientAddr, TTL: 45, ISN: 900000, IPID: 50, IPIDStep: 1, Window: 1000},
				frames.Peer{Addr: serverAddr, TTL: 40, ISN: 77777777, IPID: 9000, IPIDStep: 1, Window: 2000})
			tag := func(vlan uint16, fs ...[]byte) [][]byte {
				for i := range fs {
					fs[i] = withVLAN(fs[i], vlan)
				}
				return fs
			}
			h.sendAll(tag(100, a.Handshake()...)...)
			h.sendAll(tag(100, a.Data(frames.Client, []byte("GET /")), a.ACK(frames.Server))...)
			h.sendAll(tag(200, b.Handshake()...)...)
			h.drain()
			abort := withVLAN(a.Segment(frames.Server, tcpflag.RST|tcpflag.ACK, nil).MustFrame(), 100)
			ret := h.send(abort, time.Millisecond)
			evs := h.drain()
			if len(evs) != 1 {
				t.Fatalf("events %+v", evs)
			}
			if zoned {
				if ret != XDPPass || evs[0].Verdict != VerdictValid || evs[0].Zone != 1 {
					t.Errorf("XDP %d, %s in zone %d (%v), want a valid RST in zone 1", ret, evs[0].Verdict, evs[0].Zone, evs[0].Signals.Names())
				}
				if _, used, _ := h.dp.FlowTable(); used != 2 {
					t.Errorf("%d flows, want one per tenant", used)
				}
			} else if evs[0].Verdict != VerdictSpoofed {
				t.Errorf("without zones the real RST was %s: this test no longer shows why zones matter", evs[0].Verdict)
			}
		})
	}
}

// A leg RTT above 4.3 s saturates in the event instead of wrapping to a
// small, wrong one.
func TestEventRTTSaturates(t *testing.T) {
	h := newHarness(t, ModeMonitor)
	c := linuxPair(clientAddr, serverAddr)
	timedHandshake(h, c, 6*time.Second, time.Millisecond)
	h.drain()
	h.send(c.Segment(frames.Server, tcpflag.RST|tcpflag.ACK, nil).MustFrame(), time.Millisecond)
	evs := h.drain()
	if len(evs) != 1 || evs[0].Expected.RTT != time.Duration(0xffffffff) {
		t.Errorf("events %+v, want rtt_ns saturated at %d", evs, uint32(0xffffffff))
	}
}

// After a suspect or spoofed RST the flow's next packets go out as context
// (Suricata's tag:session), at most CONTEXT_PACKETS of them within
// CONTEXT_SECONDS; the packet that proves the RST forged is in its
// confirmation, not repeated; a valid RST starts no context.
func TestContextAfterSuspectRST(t *testing.T) {
	kinds := func(evs []Event) map[EventKind]int {
		m := map[EventKind]int{}
		for _, e := range evs {
			m[e.Kind]++
		}
		return m
	}
	h := newHarness(t, ModeMonitor)
	c := linuxPair(clientAddr, serverAddr)
	established(h, c)
	h.drain()
	h.sendAll(forgedFromClient(c).MustFrame())
	h.send(c.Send(frames.Client, c.Segment(frames.Client, tcpflag.PSH|tcpflag.ACK, []byte("GET / HTTP/1.1\r\n\r\n"))), 50*time.Millisecond)
	for range 2 * xdp.RstguardContextLimitsCONTEXT_PACKETS {
		h.send(c.Send(frames.Server, c.Segment(frames.Server, tcpflag.ACK, nil)), 10*time.Millisecond)
	}
	evs := h.drain()
	got := kinds(evs)
	if got[EventRST] != 1 || got[EventConfirmed] != 1 || got[EventContext] != int(xdp.RstguardContextLimitsCONTEXT_PACKETS) {
		t.Errorf("events %v, want the RST, its confirmation and %d context packets", got, xdp.RstguardContextLimitsCONTEXT_PACKETS)
	}
	for _, e := range evs {
		if e.Kind == EventContext && (e.Verdict != VerdictSpoofed || e.Src != serverAddr || len(e.Frame) == 0) {
			t.Errorf("context event %+v", e)
		}
	}

	// Context ends CONTEXT_SECONDS after the RST.
	c = linuxPair(netip.MustParseAddrPort("192.0.2.11:40001"), serverAddr)
	established(h, c)
	h.sendAll(forgedFromClient(c).MustFrame())
	h.send(c.Send(frames.Server, c.Segment(frames.Server, tcpflag.ACK, nil)), time.Duration(xdp.RstguardContextLimitsCONTEXT_SECONDS+1)*time.Second)
	if got := kinds(h.drain()); got[EventContext] != 0 {
		t.Errorf("context %d after the window", got[EventContext])
	}

	// A valid RST (the server's own) starts none.
	c = linuxPair(netip.MustParseAddrPort("192.0.2.12:40002"), serverAddr)
	established(h, c)
	h.sendAll(c.Send(frames.Server, c.Segment(frames.Server, tcpflag.RST, nil)))
	h.sendAll(c.Send(frames.Client, c.Segment(frames.Client, tcpflag.ACK, nil)))
	if got := kinds(h.drain()); got[EventContext] != 0 {
		t.Errorf("context after a valid RST: %v", got)
	}
}
