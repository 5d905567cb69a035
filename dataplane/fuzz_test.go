package dataplane

import (
	"testing"
	"time"

	"github.com/rstguard/rstguard/bench/frames"
)

// FuzzFrames feeds arbitrary frames, and sequences of them, through the real
// program: it must never drop a frame that is not a TCP RST, and never fail.
// The input is split into frames at 0xffff 0xffff markers.
func FuzzFrames(f *testing.F) {
	c := linuxPair(clientAddr, serverAddr)
	var seq []byte
	for _, fr := range c.Handshake() {
		seq = append(append(seq, fr...), 0xff, 0xff, 0xff, 0xff)
	}
	f.Add(append(seq, forgedFromClient(c).MustFrame()...))
	f.Add(linuxPair(client6, server6).Segment(frames.Client, frames.SYN, nil).MustFrame())
	f.Add(ipv6ExtChain(3))
	f.Add(arpFrame())

	requireRoot(f)
	h := newHarness(f, ModeDrop)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, fr := range splitFrames(data) {
			if len(fr) < MinFrame {
				continue
			}
			ret, err := h.dp.Run(fr, h.now.Add(time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			if ret != XDPPass && !(ret == XDPDrop && isTCPRST(fr)) {
				t.Fatalf("verdict %d for a frame that is not a RST: %x", ret, fr)
			}
		}
		if _, err := h.events.Drain(); err != nil {
			t.Fatal(err)
		}
	})
}

func splitFrames(data []byte) [][]byte {
	var out [][]byte
	start := 0
	for i := 0; i+4 <= len(data); i++ {
		if data[i] == 0xff && data[i+1] == 0xff && data[i+2] == 0xff && data[i+3] == 0xff {
			out = append(out, data[start:i])
			start = i + 4
			i += 3
		}
	}
	return append(out, data[start:])
}

// isTCPRST decodes a frame independently of the program: Ethernet, up to two
// VLAN tags, IPv4 or IPv6 with extension headers, then the TCP RST flag.
func isTCPRST(f []byte) bool {
	off := 12
	if len(f) < off+2 {
		return false
	}
	proto := uint16(f[off])<<8 | uint16(f[off+1])
	off += 2
	for i := 0; i < 2 && (proto == 0x8100 || proto == 0x88a8); i++ {
		if len(f) < off+4 {
			return false
		}
		proto = uint16(f[off+2])<<8 | uint16(f[off+3])
		off += 4
	}
	var l4 byte
	switch proto {
	case 0x0800:
		if len(f) < off+20 {
			return false
		}
		l4 = f[off+9]
		off += int(f[off]&0x0f) * 4
	case 0x86dd:
		if len(f) < off+40 {
			return false
		}
		l4 = f[off+6]
		off += 40
		for l4 == 0 || l4 == 43 || l4 == 60 || l4 == 44 || l4 == 51 {
			if len(f) < off+8 {
				return false
			}
			switch l4 {
			case 44:
				l4, off = f[off], off+8
			case 51:
				l4, off = f[off], off+(int(f[off+1])+2)*4
			default:
				l4, off = f[off], off+(int(f[off+1])+1)*8
			}
		}
	default:
		return false
	}
	return l4 == 6 && len(f) >= off+14 && f[off+13]&frames.RST != 0
}
