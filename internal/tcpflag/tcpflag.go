// Package tcpflag names the TCP header's flag bits (RFC 9293 section 3.1) as
// xdp/bpf/rstguard.h defines them for the program: one set for the product,
// its tests and the lab's frames alike.
package tcpflag

import (
	"strings"

	"github.com/rstguard/rstguard/xdp"
)

// The flag bits, in the TCP header's flags byte.
const (
	FIN = uint8(xdp.RstguardTcpFlagTH_FIN)
	SYN = uint8(xdp.RstguardTcpFlagTH_SYN)
	RST = uint8(xdp.RstguardTcpFlagTH_RST)
	PSH = uint8(xdp.RstguardTcpFlagTH_PSH)
	ACK = uint8(xdp.RstguardTcpFlagTH_ACK)
	URG = uint8(xdp.RstguardTcpFlagTH_URG)
)

// String writes flags as tcpdump does: S F R P U and "." for ACK; "none"
// for none.
func String(f uint8) string {
	var b strings.Builder
	for _, x := range []struct {
		bit  uint8
		name byte
	}{{SYN, 'S'}, {FIN, 'F'}, {RST, 'R'}, {PSH, 'P'}, {URG, 'U'}, {ACK, '.'}} {
		if f&x.bit != 0 {
			b.WriteByte(x.name)
		}
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}
