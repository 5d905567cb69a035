package pktgen

import "encoding/binary"

// Template is one frame of the template connection. Flow i of a run is the
// same frame with the client's address moved by i/Ports and its port by
// i%Ports (FirstPort up): the last 32 bits of the address, so IPv4 and IPv6
// rewrite alike. Both engines that send templates rewrite them the same
// way: the live engine in xdp/bpf/pktgen.c, the afxdp engine in Rewrite.
type Template struct {
	Kind  string
	Frame []byte
	// ClientIsDst: the frame goes to the client (the server sent it).
	ClientIsDst bool
	IPv6        bool
	// Offsets of the client's address (last 32 bits) and port, of the
	// IPv4 and TCP checksums, and of the TTL or hop limit, in Frame.
	addrOff, portOff, ipCheckOff, tcpCheckOff, ttlOff int
}

// Flow numbering: client ports FirstPort .. FirstPort+Ports-1 on each
// client address.
const (
	FirstPort = 10000
	Ports     = 50000
)

// MaxFlows is the most flows a run can have: the client addresses stay in
// one /16 (IPv4) from the template's.
const MaxFlows = 10_000_000

// newTemplate finds the offsets in a frame that bench/frames built: Ethernet,
// IPv4 without options or IPv6 without extension headers, TCP.
func newTemplate(kind string, frame []byte, clientIsDst bool) *Template {
	const eth = 14
	t := &Template{Kind: kind, Frame: frame, ClientIsDst: clientIsDst, IPv6: frame[12] == 0x86 && frame[13] == 0xdd}
	tcp, src, dst := eth+20, eth+12, eth+16
	t.ipCheckOff, t.ttlOff = eth+10, eth+8
	if t.IPv6 {
		tcp, src, dst = eth+40, eth+8+12, eth+24+12
		t.ipCheckOff, t.ttlOff = -1, eth+7 // the hop limit
	}
	t.addrOff, t.portOff = src, tcp
	if clientIsDst {
		t.addrOff, t.portOff = dst, tcp+2
	}
	t.tcpCheckOff = tcp + 16
	return t
}

// flowAddrPort is flow i's client address (last 32 bits) and port.
func (t *Template) flowAddrPort(i uint32) (uint32, uint16) {
	return binary.BigEndian.Uint32(t.Frame[t.addrOff:]) + i/Ports, uint16(FirstPort + i%Ports)
}

// Rewrite writes flow i's frame into dst (len(dst) >= len(t.Frame)) and
// returns it: the template with the client's address and port moved and
// both checksums updated from the template's (RFC 1624).
func (t *Template) Rewrite(dst []byte, i uint32) []byte {
	dst = dst[:len(t.Frame)]
	copy(dst, t.Frame)
	oldAddr := binary.BigEndian.Uint32(t.Frame[t.addrOff:])
	oldPort := binary.BigEndian.Uint16(t.Frame[t.portOff:])
	addr, port := t.flowAddrPort(i)
	binary.BigEndian.PutUint32(dst[t.addrOff:], addr)
	binary.BigEndian.PutUint16(dst[t.portOff:], port)
	if t.ipCheckOff >= 0 {
		check := binary.BigEndian.Uint16(t.Frame[t.ipCheckOff:])
		binary.BigEndian.PutUint16(dst[t.ipCheckOff:], csumReplace(check, oldAddr, addr))
	}
	check := binary.BigEndian.Uint16(t.Frame[t.tcpCheckOff:])
	check = csumReplace(csumReplace(check, oldAddr, addr), uint32(oldPort), uint32(port))
	binary.BigEndian.PutUint16(dst[t.tcpCheckOff:], check)
	return dst
}

// csumReplace updates a ones'-complement checksum for a 32-bit field that
// changed from old to new (RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m')).
func csumReplace(check uint16, old, new uint32) uint16 {
	sum := uint32(^check)
	sum += uint32(^uint16(old>>16)) + uint32(^uint16(old)) + new>>16 + new&0xffff
	sum = sum&0xffff + sum>>16
	sum = sum&0xffff + sum>>16
	return ^uint16(sum)
}
