package dataplane

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/rstguard/rstguard/xdp"
)

// Segment is what hold mode reads of a TCP frame the program redirected to
// the daemon: the same fields, and the same flow key, that the program's
// parse() yields.
type Segment struct {
	Src, Dst   netip.AddrPort
	Seq, Ack   uint32
	Flags      uint8 // TCP flags
	TTL        uint8
	IPv6       bool
	VLAN       uint16 // the outer VLAN ID; 0 untagged
	L3Off      int    // where the IP header starts (after Ethernet and VLAN tags)
	L4Off      int    // where the TCP header starts
	L4Len      int    // TCP header and payload, from the IP length
	PayloadLen int
}

// ErrNotTCP is returned for frames that are not an unfragmented TCP segment.
var ErrNotTCP = errors.New("not a TCP segment")

// ParseSegment reads an Ethernet frame (up to two VLAN tags, IPv4 with
// options, IPv6 with up to four hop-by-hop or destination-options headers:
// what hold mode is given) carrying TCP.
func ParseSegment(f []byte) (Segment, error) {
	var s Segment
	if len(f) < 14 {
		return s, ErrNotTCP
	}
	off, etype := 14, binary.BigEndian.Uint16(f[12:])
	for i := range int(xdp.RstguardParseLimitsMAX_VLAN) {
		if etype != 0x8100 && etype != 0x88a8 {
			break
		}
		if len(f) < off+4 {
			return s, ErrNotTCP
		}
		if i == 0 {
			s.VLAN = binary.BigEndian.Uint16(f[off:]) & 0x0fff
		}
		etype, off = binary.BigEndian.Uint16(f[off+2:]), off+4
	}
	s.L3Off = off
	var src, dst netip.Addr
	switch etype {
	case 0x0800:
		if len(f) < off+20 || f[off+9] != 6 || binary.BigEndian.Uint16(f[off+6:])&0x3fff != 0 {
			return s, ErrNotTCP
		}
		ihl := int(f[off]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(f[off+2:]))
		if ihl < 20 || total < ihl {
			return s, ErrNotTCP
		}
		src, dst = netip.AddrFrom4([4]byte(f[off+12:])), netip.AddrFrom4([4]byte(f[off+16:]))
		s.TTL, s.L4Off, s.L4Len = f[off+8], off+ihl, total-ihl
	case 0x86dd:
		if len(f) < off+40 {
			return s, ErrNotTCP
		}
		src, dst = netip.AddrFrom16([16]byte(f[off+8:])), netip.AddrFrom16([16]byte(f[off+24:]))
		s.TTL, s.L4Off, s.L4Len, s.IPv6 = f[off+7], off+40, int(binary.BigEndian.Uint16(f[off+4:])), true
		// Hop-by-hop (0) and destination options (60), as the program
		// holds them: 8 + 8n bytes each (RFC 8200 4.3, 4.6).
		next := f[off+6]
		for i := 0; i < int(xdp.RstguardParseLimitsMAX_IPV6EXT) && (next == 0 || next == 60); i++ {
			if len(f) < s.L4Off+8 {
				return s, ErrNotTCP
			}
			n := 8 + 8*int(f[s.L4Off+1])
			next, s.L4Off, s.L4Len = f[s.L4Off], s.L4Off+n, s.L4Len-n
		}
		if next != 6 {
			return s, ErrNotTCP
		}
	default:
		return s, ErrNotTCP
	}
	t := s.L4Off
	if len(f) < t+20 || s.L4Len < 20 || len(f) < t+s.L4Len {
		return s, ErrNotTCP
	}
	hdr := int(f[t+12]>>4) * 4
	if hdr < 20 || hdr > s.L4Len {
		return s, ErrNotTCP
	}
	s.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(f[t:]))
	s.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(f[t+2:]))
	s.Seq, s.Ack = binary.BigEndian.Uint32(f[t+4:]), binary.BigEndian.Uint32(f[t+8:])
	s.Flags = f[t+13]
	s.PayloadLen = s.L4Len - hdr
	return s, nil
}

// Key is the flow's key in the program's tables in a zone, and whether the
// segment's sender is the key's addr_hi side (set_key() in xdp/bpf/parse.h).
func (s Segment) Key(zone uint16) (key xdp.RstguardFlowKey, fromHi bool) {
	key.Zone = zone
	src, dst := s.Src.Addr().As16(), s.Dst.Addr().As16()
	srcIsLo := bytes.Compare(src[:], dst[:]) < 0 || (src == dst && s.Src.Port() <= s.Dst.Port())
	lo, hi := s.Src, s.Dst
	if !srcIsLo {
		lo, hi = s.Dst, s.Src
	}
	key.AddrLo, key.AddrHi = lo.Addr().As16(), hi.Addr().As16()
	// Ports are stored in network order.
	key.PortLo, key.PortHi = ntohs(lo.Port()), ntohs(hi.Port())
	return key, !srcIsLo
}
