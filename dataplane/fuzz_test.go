package dataplane

import (
	"testing"
	"time"

	"github.com/rstguard/rstguard/bench/frames"
)

// FuzzFrames feeds arbitrary frames, and sequences of them, through the real
// program: it must never drop a frame that is not a TCP RST or a tiny first
// fragment (RFC 1858), and never fail.
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
			if ret != XDPPass && !(ret == XDPDrop && droppable(fr)) {
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

// droppable decodes a frame independently of the program: Ethernet, up to
// two VLAN tags, IPv4 or IPv6 with extension headers, then TCP. It says
// whether the frame is a TCP RST, or a first fragment too short for the whole
// TCP header: the only frames the program may drop.
func droppable(f []byte) bool {
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
	var l3len int
	first := false
	switch proto {
	case 0x0800:
		if len(f) < off+20 {
			return false
		}
		ihl := int(f[off]&0x0f) * 4
		l4, first = f[off+9], f[off+6]&0x20 != 0 && (int(f[off+6]&0x1f)<<8|int(f[off+7])) == 0
		l3len = (int(f[off+2])<<8 | int(f[off+3])) - ihl
		off += ihl
	case 0x86dd:
		if len(f) < off+40 {
			return false
		}
		l4 = f[off+6]
		l3len = int(f[off+4])<<8 | int(f[off+5])
		off += 40
		for l4 == 0 || l4 == 43 || l4 == 60 || l4 == 44 || l4 == 51 {
			if len(f) < off+8 {
				return false
			}
			n := (int(f[off+1]) + 1) * 8
			switch l4 {
			case 44:
				n, first = 8, f[off+3]&1 != 0 && (int(f[off+2])<<8|int(f[off+3]))&0xfff8 == 0
			case 51:
				n = (int(f[off+1]) + 2) * 4
			}
			l4, off, l3len = f[off], off+n, l3len-n
		}
	default:
		return false
	}
	if l4 != 6 {
		return false
	}
	if len(f) >= off+20 && l3len >= 20 && int(f[off+12]>>4)*4 <= l3len {
		return f[off+13]&frames.RST != 0
	}
	return first
}
