package dataplane

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/rstguard/rstguard/bench/frames"
	"github.com/rstguard/rstguard/internal/tcpflag"
)

// FuzzFrames feeds arbitrary frames, and sequences of them, through the real
// program: it must never drop a frame that is not a TCP RST or a tiny first
// fragment (RFC 1858), never fail, and count every frame in exactly one of
// the parse counters. The input is a sequence of frames, each a big-endian
// 16-bit length and that many bytes (any byte value can appear in a frame,
// broadcast addresses' 0xff included); a short last frame takes what is left.
func FuzzFrames(f *testing.F) {
	c := linuxPair(clientAddr, serverAddr)
	f.Add(joinFrames(append(c.Handshake(), forgedFromClient(c).MustFrame())...))
	f.Add(joinFrames(linuxPair(client6, server6).Segment(frames.Client, tcpflag.SYN, nil).MustFrame()))
	f.Add(joinFrames(ipv6ExtChain(3)))
	f.Add(joinFrames(arpFrame()))
	f.Add(joinFrames(tinyFirstFragment(forgedFromClient(c).MustFrame())))

	requireRoot(f)
	h := newHarness(f, ModeDrop)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, fr := range splitFrames(data) {
			if len(fr) < MinFrame {
				continue
			}
			before, err := h.dp.Counters()
			if err != nil {
				t.Fatal(err)
			}
			ret, err := h.dp.Run(fr, h.now.Add(time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			if ret != XDPPass && !(ret == XDPDrop && droppable(fr)) {
				t.Fatalf("verdict %d for a frame that is not a RST: %x", ret, fr)
			}
			after, err := h.dp.Counters()
			if err != nil {
				t.Fatal(err)
			}
			if got := after.Packets - before.Packets; got != 1 {
				t.Fatalf("the frame moved the parse counters by %d, want 1: %x", got, fr)
			}
		}
		if _, err := h.events.Drain(); err != nil {
			t.Fatal(err)
		}
	})
}

// joinFrames writes frames in FuzzFrames's input format.
func joinFrames(fs ...[]byte) []byte {
	var out []byte
	for _, f := range fs {
		out = binary.BigEndian.AppendUint16(out, uint16(len(f)))
		out = append(out, f...)
	}
	return out
}

// splitFrames reads FuzzFrames's input format.
func splitFrames(data []byte) [][]byte {
	var out [][]byte
	for len(data) >= 2 {
		n := int(binary.BigEndian.Uint16(data))
		data = data[2:]
		n = min(n, len(data))
		out = append(out, data[:n])
		data = data[n:]
	}
	return out
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
		return f[off+13]&tcpflag.RST != 0
	}
	return first
}
