// Package hold is hold mode's user-space half: it owns the AF_XDP sockets,
// asks the claimed sender of every held RST whether its connection is
// alive, and drops or releases the RST on the answer (docs/HOLD.md).
package hold

import (
	"encoding/binary"
	"errors"
	"net"

	"github.com/rstguard/rstguard/dataplane"
	"github.com/rstguard/rstguard/internal/tcpflag"
)

// probeTTL is the probe's IP TTL or hop limit: Linux's default (64).
const probeTTL = 64

// probeWindow is the probe's window. The probe is old data, which the
// receiver drops after answering and never reads the window of (RFC 9293
// section 3.10.7.4); it only has to look ordinary.
const probeWindow = 65535

// probePayload is the probe's one byte of old data. Its value does not
// matter: a receiver trims data it has already (RFC 9293 section 3.10.7.4).
const probePayload = 0

// probeTCPLen is the probe's TCP segment: a header without options, and
// its byte.
const probeTCPLen = 20 + 1

// Probe builds the keepalive-style segment that asks a held RST's claimed
// sender whether its connection is alive. It is sent in the other endpoint's
// name: ACK, one byte of old data at hd.ProbeSeq, a byte the sender has
// acknowledged already (the program's hold_rst() says why that one), ack =
// the hold's nonce, valid checksums. A live stack answers old data with an
// ACK of all it has, whatever the ACK field (RFC 9293 section 3.10.7.4), and
// at once: its peer's retransmission recovery depends on that answer, so
// no rate limit applies (Linux's tcp_oow_rate_limited() exempts data). A
// stack without the connection answers with a RST whose seq is the probe's
// ack (section 3.10.7.1): the nonce, which an injector cannot know without
// reading the probe. Both answers are checked against Linux in
// cmd/rstguard's TestHoldMode. Its Ethernet header is the box's own route to the sender
// (hd.ProbeSrc, hd.ProbeDst from bpf_fib_lookup), untagged; in the wire,
// the MACs and outer VLAN the sender and the receiver showed in their
// handshake: nothing of the held frame's L2 header, which a forgery makes up.
func Probe(rst dataplane.Segment, hd dataplane.Hold) []byte {
	out := make([]byte, 0, 18+40+probeTCPLen)
	out = append(out, hd.ProbeDst...)
	out = append(out, hd.ProbeSrc...)
	if hd.ProbeVLAN != 0 {
		out = binary.BigEndian.AppendUint16(out, 0x8100) // IEEE 802.1Q
		out = binary.BigEndian.AppendUint16(out, hd.ProbeVLAN)
	}
	l2 := len(out) + 2
	if rst.IPv6 {
		out = binary.BigEndian.AppendUint16(out, 0x86dd)
	} else {
		out = binary.BigEndian.AppendUint16(out, 0x0800)
	}
	seq, ack := hd.ProbeSeq, hd.Nonce
	src, dst := rst.Dst.Addr(), rst.Src.Addr() // the probe goes back to the sender
	if rst.IPv6 {
		ip := make([]byte, 40)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], probeTCPLen)
		ip[6], ip[7] = 6, probeTTL
		s16, d16 := src.As16(), dst.As16()
		copy(ip[8:], s16[:])
		copy(ip[24:], d16[:])
		out = append(out, ip...)
	} else {
		ip := make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], 20+probeTCPLen)
		binary.BigEndian.PutUint16(ip[6:], 0x4000) // DF
		ip[8], ip[9] = probeTTL, 6
		s4, d4 := src.As4(), dst.As4()
		copy(ip[12:], s4[:])
		copy(ip[16:], d4[:])
		binary.BigEndian.PutUint16(ip[10:], ^checksum(ip, 0))
		out = append(out, ip...)
	}
	tcp := make([]byte, 20)
	binary.BigEndian.PutUint16(tcp[0:], rst.Dst.Port())
	binary.BigEndian.PutUint16(tcp[2:], rst.Src.Port())
	binary.BigEndian.PutUint32(tcp[4:], seq)
	binary.BigEndian.PutUint32(tcp[8:], ack)
	tcp[12], tcp[13] = 5<<4, tcpflag.ACK
	binary.BigEndian.PutUint16(tcp[14:], probeWindow)
	l4 := len(out)
	out = append(out, tcp...)
	out = append(out, probePayload)
	setTCPChecksum(out, l2, l4, rst.IPv6)
	return out
}

// ErrTTLExpired means a held frame would leave with TTL 0: the kernel would
// have dropped it too.
var ErrTTLExpired = errors.New("TTL expired in transit")

// Forward readies a held frame for its way on, changed only as forwarding
// changes it: the egress hop's Ethernet header (its addresses, and no VLAN
// tag: the egress interface's own tagging, as the kernel would send it),
// TTL or hop limit less one, the IPv4 header checksum. The TCP checksum is
// computed afresh: a frame from a local sender may carry only a partial one
// (TX offload), which no receiver accepts once the frame leaves without the
// skb that said so.
func Forward(held []byte, rst dataplane.Segment, src, dst net.HardwareAddr) ([]byte, error) {
	out := make([]byte, 0, 14+rst.L4Off-rst.L3Off+rst.L4Len)
	out = append(out, dst...)
	out = append(out, src...)
	out = append(out, held[rst.L3Off-2:rst.L4Off+rst.L4Len]...) // the ethertype, then IP; without padding
	rst.L4Off -= rst.L3Off - 14
	rst.L3Off = 14
	ip := out[rst.L3Off:]
	if rst.IPv6 {
		if ip[7] <= 1 {
			return nil, ErrTTLExpired
		}
		ip[7]--
	} else {
		if ip[8] <= 1 {
			return nil, ErrTTLExpired
		}
		ip[8]--
		ihl := int(ip[0]&0x0f) * 4
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:], ^checksum(ip[:ihl], 0))
	}
	setTCPChecksum(out, rst.L3Off, rst.L4Off, rst.IPv6)
	return out, nil
}

// IsACKAnswer: the live stack's answer to a probe, a pure ACK at the
// sender's next sequence of all the other side sent. The sender may be ahead of
// what the gateway saw of it (segments lost before the gateway), by at most
// a window: the same rule as the program's hold_answer().
func IsACKAnswer(s dataplane.Segment, h dataplane.Hold) bool {
	return s.Flags&(tcpflag.SYN|tcpflag.FIN|tcpflag.RST|tcpflag.ACK) == tcpflag.ACK &&
		s.PayloadLen == 0 && s.Seq-h.ProbeAck <= dataplane.HoldAnswerSeqSlack && s.Ack == h.PeerNext
}

// IsRSTAnswer: a stack without the connection answers a segment carrying an
// ACK with a RST at seq = that ACK (RFC 9293 section 3.10.7.1; Linux
// tcp_v4_send_reset, the BSDs' tcp_dropwithreset): the probe's nonce. An
// injector's RSTs, even a volley at the sender's exact sequence, cannot
// carry it unless the injector reads the probe and answers within the hold.
func IsRSTAnswer(s dataplane.Segment, h dataplane.Hold) bool {
	return s.Flags&(tcpflag.RST|tcpflag.SYN) == tcpflag.RST && s.Seq == h.Nonce
}

// setTCPChecksum fills the TCP checksum of the segment at l4 in frame, the
// IP header at l3 giving the pseudo-header (RFC 9293 section 3.1, RFC 8200
// section 8.1).
func setTCPChecksum(frame []byte, l3, l4 int, ipv6 bool) {
	seg := frame[l4:]
	var pseudo []byte
	if ipv6 {
		pseudo = make([]byte, 0, 40)
		pseudo = append(pseudo, frame[l3+8:l3+40]...)
		pseudo = binary.BigEndian.AppendUint32(pseudo, uint32(len(seg)))
		pseudo = binary.BigEndian.AppendUint32(pseudo, 6)
	} else {
		pseudo = make([]byte, 0, 12)
		pseudo = append(pseudo, frame[l3+12:l3+20]...)
		pseudo = append(pseudo, 0, 6)
		pseudo = binary.BigEndian.AppendUint16(pseudo, uint16(len(seg)))
	}
	seg[16], seg[17] = 0, 0
	binary.BigEndian.PutUint16(seg[16:], ^checksum(seg, uint32(checksum(pseudo, 0))))
}

// checksum is the folded one's-complement sum of b (RFC 1071), added to sum.
func checksum(b []byte, sum uint32) uint16 {
	for len(b) >= 2 {
		sum += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint32(b[0]) << 8
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}
