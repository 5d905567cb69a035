package dataplane

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/rstguard/rstguard/bench/frames"
	"github.com/rstguard/rstguard/internal/tcpflag"
)

// Frames the program cannot or need not judge: each passes and is counted
// under its reason, and none creates a flow.
func TestMalformedFramesPassCounted(t *testing.T) {
	c := linuxPair(clientAddr, serverAddr)
	rst := c.Segment(frames.Client, tcpflag.RST, nil).MustFrame()
	syn6 := linuxPair(client6, server6).Segment(frames.Client, tcpflag.SYN, nil).MustFrame()

	cases := []struct {
		name   string
		frame  []byte
		reason func(Counters) uint64
	}{
		{"ARP", arpFrame(), func(c Counters) uint64 { return c.NotTCP }},
		{"UDP", withIPProto(rst, 17), func(c Counters) uint64 { return c.NotTCP }},
		{"Ethernet header only", rst[:14], func(c Counters) uint64 { return c.ParseErrors }},
		{"IPv4 header cut", rst[:20], func(c Counters) uint64 { return c.ParseErrors }},
		{"TCP header cut", rst[:40], func(c Counters) uint64 { return c.ParseErrors }},
		{"IHL below 5", withByte(rst, 14, 0x44), func(c Counters) uint64 { return c.ParseErrors }},
		{"TCP data offset below 5", withByte(rst, 14+20+12, 0x40), func(c Counters) uint64 { return c.ParseErrors }},
		{"IP length shorter than headers", withU16(rst, 16, 30), func(c Counters) uint64 { return c.ParseErrors }},
		{"non-first fragment", withU16(rst, 20, 0x0010), func(c Counters) uint64 { return c.Fragments }},
		{"IPv6 header cut", syn6[:50], func(c Counters) uint64 { return c.ParseErrors }},
		{"IPv6 extension chain too long", ipv6ExtChain(5), func(c Counters) uint64 { return c.IPv6ExtLimit }},
		{"IPv6 non-first fragment", ipv6Fragment(8), func(c Counters) uint64 { return c.Fragments }},
		{"VLAN tag cut", vlanCut(), func(c Counters) uint64 { return c.ParseErrors }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, ModeDrop)
			before := h.counters()
			if ret := h.send(tc.frame, time.Millisecond); ret != XDPPass {
				t.Fatalf("XDP verdict %d, want pass", ret)
			}
			after := h.counters()
			if d := tc.reason(after) - tc.reason(before); d != 1 {
				t.Errorf("reason counter moved by %d, want 1 (%+v)", d, after)
			}
			if after.FlowInserts != 0 || after.RSTs != 0 {
				t.Errorf("frame reached the flow table: %+v", after)
			}
		})
	}
}

func withByte(f []byte, off int, b byte) []byte {
	out := append([]byte(nil), f...)
	out[off] = b
	return out
}

func withU16(f []byte, off int, v uint16) []byte {
	out := append([]byte(nil), f...)
	binary.BigEndian.PutUint16(out[off:], v)
	return out
}

func withIPProto(f []byte, proto byte) []byte { return withByte(f, 14+9, proto) }

func arpFrame() []byte {
	f := make([]byte, 42)
	binary.BigEndian.PutUint16(f[12:], 0x0806)
	return f
}

// ipv6ExtChain is an IPv6 frame whose n destination-options headers precede TCP.
func ipv6ExtChain(n int) []byte {
	f := make([]byte, 14+40+8*n+20)
	binary.BigEndian.PutUint16(f[12:], 0x86dd)
	f[14] = 0x60
	binary.BigEndian.PutUint16(f[14+4:], uint16(8*n+20))
	f[14+6] = 60
	for i := range n {
		next := byte(60)
		if i == n-1 {
			next = 6
		}
		f[14+40+8*i] = next
	}
	return f
}

// ipv6Fragment is an IPv6 frame with a fragment header at the given offset.
func ipv6Fragment(offset uint16) []byte {
	f := make([]byte, 14+40+8+20)
	binary.BigEndian.PutUint16(f[12:], 0x86dd)
	f[14] = 0x60
	binary.BigEndian.PutUint16(f[14+4:], 28)
	f[14+6] = 44
	f[14+40] = 6
	binary.BigEndian.PutUint16(f[14+40+2:], offset<<3)
	return f
}

func vlanCut() []byte {
	f := make([]byte, 16)
	binary.BigEndian.PutUint16(f[12:], 0x8100)
	return f
}
