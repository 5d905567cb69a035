// Package pktgen is rstguard-pktgen: it sends a gateway's TCP traffic (many
// concurrent flows, handshakes, data both ways, FINs, legitimate and forged
// resets) out of an interface, so that an inline box can be measured under
// load before it goes on a gateway. Frames come from bench/frames and the
// lab's injector profiles; the engines (live, afxdp, kernel) only repeat them
// across flows, rewriting the client's address and port.
package pktgen

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/rstguard/rstguard/bench/frames"
	"github.com/rstguard/rstguard/bench/inject"
	"github.com/rstguard/rstguard/internal/tcpflag"
)

// Kinds of segment in a mix, by the name --mix uses.
const (
	KindSYN    = "syn"    // a client's SYN (on its own: a SYN flood)
	KindSYNACK = "synack" // the server's SYN/ACK
	KindACK    = "ack"    // a client's pure ACK
	KindData   = "data"   // client data, --size bytes
	KindReply  = "reply"  // server data, --size bytes
	KindFIN    = "fin"    // a client's FIN/ACK
	KindRST    = "rst"    // legitimate resets: the server's abort, its stateless reset, the client's abort
	KindForged = "forged" // each injector profile's forged resets (bench/inject)
)

// Kinds lists every kind, in --mix's order.
var Kinds = []string{KindSYN, KindSYNACK, KindACK, KindData, KindReply, KindFIN, KindRST, KindForged}

// Presets are named mixes. A gateway's flows open with a handshake each
// before the mix runs; floods have no handshake.
var Presets = map[string]Mix{
	"gateway":   {Weights: map[string]int{KindData: 60, KindReply: 25, KindACK: 10, KindFIN: 2, KindSYN: 1, KindRST: 1, KindForged: 1}, Handshake: true},
	"syn-flood": {Weights: map[string]int{KindSYN: 1}, ClientOffset: 1 << 23},
	"rst-flood": {Weights: map[string]int{KindForged: 1}},
}

// Mix is how often each kind is sent, and whether every flow opens with a
// handshake (SYN, SYN/ACK, ACK) first.
type Mix struct {
	Weights   map[string]int
	Handshake bool
	// ClientOffset moves the clients' addresses (their last 32 bits): a
	// flood's sources are not the gateway mix's clients (10.128.0.1 up,
	// fd00::80:1 up, for the SYN flood).
	ClientOffset uint32
}

// ParseMix reads "data=90,rst=1,forged=1": weights of kinds. A mix with any
// kind but syn opens each flow with a handshake, as a gateway's flows do.
func ParseMix(s string) (Mix, error) {
	m := Mix{Weights: map[string]int{}}
	for _, part := range strings.Split(s, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return Mix{}, fmt.Errorf("mix: %q is not KIND=WEIGHT", part)
		}
		if !slices.Contains(Kinds, name) {
			return Mix{}, fmt.Errorf("mix: unknown kind %q: one of %s", name, strings.Join(Kinds, ", "))
		}
		w, err := strconv.Atoi(value)
		if err != nil || w < 0 || w > 1000000 {
			return Mix{}, fmt.Errorf("mix: weight of %s must be 0 to 1000000, not %q", name, value)
		}
		m.Weights[name] += w
		if w > 0 && name != KindSYN {
			m.Handshake = true
		}
	}
	if m.total() == 0 {
		return Mix{}, fmt.Errorf("mix: every weight is zero")
	}
	return m, nil
}

func (m Mix) total() int {
	n := 0
	for _, w := range m.Weights {
		n += w
	}
	return n
}

// Traffic is what a run sends: the handshake templates (one pass over every
// flow each) and the mix's templates with their share of the packets.
type Traffic struct {
	Handshake []*Template
	Mix       []*Template
	Shares    []float64 // of Mix, summing to 1
}

// The template connection's ends; each flow moves the client's address and
// port (see Template).
var (
	clientV4 = netip.MustParseAddrPort("10.0.0.1:10000")
	serverV4 = netip.MustParseAddrPort("10.255.0.1:80")
	clientV6 = netip.MustParseAddrPort("[fd00::1]:10000")
	serverV6 = netip.MustParseAddrPort("[fd00:ff::1]:80")
)

// FCS is the Ethernet frame check sequence the NIC appends: a 64-byte frame
// on the wire is 60 bytes handed to the driver.
const FCS = 4

// Frame sizes --size accepts, on the wire with the FCS.
const (
	MinSize = 64
	MaxSize = 1518
)

// BuildTraffic makes the templates for a mix: frames of size bytes on the
// wire (data and reply carry payload to fill them; the rest are padded),
// src and dst the Ethernet addresses.
func BuildTraffic(mix Mix, size int, ipv6 bool, src, dst []byte) (*Traffic, error) {
	if size < MinSize || size > MaxSize {
		return nil, fmt.Errorf("size must be %d to %d bytes, not %d", MinSize, MaxSize, size)
	}
	client, server := clientV4, serverV4
	if ipv6 {
		client, server = clientV6, serverV6
	}
	a := client.Addr().As16()
	binary.BigEndian.PutUint32(a[12:], binary.BigEndian.Uint32(a[12:])+mix.ClientOffset)
	client = netip.AddrPortFrom(netip.AddrFrom16(a).Unmap(), client.Port())
	// Linux stacks, each with its own IP-ID counter and window: a reset that
	// copies the other side's IP-ID or window looks forged (SIGNALS.md).
	peer := func(a netip.AddrPort, isn uint32, ipid, window uint16) frames.Peer {
		return frames.Peer{Addr: a, TTL: 64, ISN: isn, IPID: ipid, IPIDStep: 1, Window: window, WScale: 7, TS: true, TSval: isn / 7}
	}
	c := frames.NewConn(peer(client, 1_000_000, 1000, 502), peer(server, 2_000_000, 30000, 509))
	b := builder{client: client, size: size, src: src, dst: dst}

	syn := c.Segment(frames.Client, tcpflag.SYN, nil)
	c.Send(frames.Client, syn)
	synack := c.Segment(frames.Server, tcpflag.SYN|tcpflag.ACK, nil)
	c.Send(frames.Server, synack)
	ack := c.Segment(frames.Client, tcpflag.ACK, nil)
	c.Send(frames.Client, ack)
	t := &Traffic{Handshake: []*Template{b.template(KindSYN, syn), b.template(KindSYNACK, synack), b.template(KindACK, ack)}}

	headers := len(ack.MustFrame())
	payload := make([]byte, max(size-FCS-headers, 0))
	data := c.Segment(frames.Client, tcpflag.PSH|tcpflag.ACK, payload)
	reply := c.Segment(frames.Server, tcpflag.PSH|tcpflag.ACK, payload)
	segments := map[string][]frames.Segment{
		KindSYN:    {syn},
		KindSYNACK: {synack},
		KindACK:    {ack},
		KindData:   {data},
		KindReply:  {reply},
		KindFIN:    {c.Segment(frames.Client, tcpflag.FIN|tcpflag.ACK, nil)},
		KindRST: {
			c.Segment(frames.Server, tcpflag.RST|tcpflag.ACK, nil), // the server's abort
			c.Segment(frames.Server, tcpflag.RST, nil),             // its stateless reset
			c.Segment(frames.Client, tcpflag.RST|tcpflag.ACK, nil), // the client's abort
		},
	}
	trigger := inject.Trigger{Client: client, Server: server, Seq: data.Seq, Ack: data.Ack, PayloadLen: len(payload),
		TTL: 64, IPID: data.IPID, Window: data.Window, ClientISN: 1_000_000}
	for _, name := range inject.ProfileNames() {
		p, _ := inject.Lookup(name)
		segments[KindForged] = append(segments[KindForged], p.Forge(trigger, 64)...)
	}

	total := float64(mix.total())
	for _, kind := range Kinds {
		w := mix.Weights[kind]
		if w == 0 {
			continue
		}
		for _, s := range segments[kind] {
			t.Mix = append(t.Mix, b.template(kind, s))
			t.Shares = append(t.Shares, float64(w)/total/float64(len(segments[kind])))
		}
	}
	if !mix.Handshake {
		t.Handshake = nil
	}
	return t, nil
}

type builder struct {
	client   netip.AddrPort
	size     int
	src, dst []byte
}

func (b builder) template(kind string, s frames.Segment) *Template {
	s.SrcMAC, s.DstMAC = b.src, b.dst
	frame := s.MustFrame()
	if pad := b.size - FCS - len(frame); pad > 0 {
		frame = append(frame, make([]byte, pad)...) // Ethernet padding, after the IP datagram
	}
	return newTemplate(kind, frame, s.Dst == b.client)
}
