package hold

import (
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/rstguard/rstguard/bench/frames"
	"github.com/rstguard/rstguard/dataplane"
	"github.com/rstguard/rstguard/internal/tcpflag"
)

var (
	client  = netip.MustParseAddrPort("192.0.2.10:40000")
	server  = netip.MustParseAddrPort("198.51.100.80:80")
	client6 = netip.MustParseAddrPort("[2001:db8::10]:40000")
	server6 = netip.MustParseAddrPort("[2001:db8:1::80]:80")
	macA    = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xa}
	macB    = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xb}
)

// decode parses a frame with gopacket, checking every checksum.
func decode(t *testing.T, f []byte) (*layers.Ethernet, *layers.TCP, gopacket.Packet) {
	t.Helper()
	p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		t.Fatalf("decode: %v", el.Error())
	}
	eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if eth == nil || tcp == nil {
		t.Fatalf("not Ethernet/TCP: %v", p)
	}
	var pseudo gopacket.NetworkLayer
	if ip4, ok := p.NetworkLayer().(*layers.IPv4); ok {
		// Recompute the IPv4 header checksum and compare.
		want := ip4.Checksum
		buf := gopacket.NewSerializeBuffer()
		ip4c := *ip4
		if err := ip4c.SerializeTo(buf, gopacket.SerializeOptions{ComputeChecksums: true}); err != nil {
			t.Fatal(err)
		}
		if ip4c.Checksum != want {
			t.Errorf("IPv4 checksum %#x, want %#x", want, ip4c.Checksum)
		}
		pseudo = ip4
	} else {
		pseudo = p.NetworkLayer()
	}
	tcpCopy := *tcp
	if err := tcpCopy.SetNetworkLayerForChecksum(pseudo); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, &tcpCopy, gopacket.Payload(tcp.Payload)); err != nil {
		t.Fatal(err)
	}
	if tcpCopy.Checksum != tcp.Checksum {
		t.Errorf("TCP checksum %#x, want %#x", tcp.Checksum, tcpCopy.Checksum)
	}
	return eth, tcp, p
}

func TestProbe(t *testing.T) {
	for _, tc := range []struct {
		name     string
		src, dst netip.AddrPort
		vlans    []uint16
	}{
		{"IPv4", client, server, nil},
		{"IPv6", client6, server6, nil},
		{"IPv4 in two VLAN tags", client, server, []uint16{100, 200}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The held RST: from the client (claimed sender) to the server,
			// with made-up L2 addresses, as a forgery may carry.
			rst := frames.Segment{Src: tc.src, Dst: tc.dst, Seq: 1000, Flags: tcpflag.RST, TTL: 60,
				SrcMAC: macA, DstMAC: macB, VLANs: tc.vlans}.MustFrame()
			seg, err := dataplane.ParseSegment(rst)
			if err != nil {
				t.Fatal(err)
			}
			toSender := dataplane.Hold{ProbeSeq: 5000 - 2, PeerNext: 5000, ProbeAck: 1000, Nonce: 977,
				ProbeSrc: net.HardwareAddr{2, 0, 0, 0, 2, 1}, ProbeDst: net.HardwareAddr{2, 0, 0, 0, 2, 2}}
			probe := Probe(seg, toSender)
			eth, tcp, p := decode(t, probe)
			if eth.SrcMAC.String() != toSender.ProbeSrc.String() || eth.DstMAC.String() != toSender.ProbeDst.String() {
				t.Errorf("L2 %s > %s, want the box's own route to the sender", eth.SrcMAC, eth.DstMAC)
			}
			if p.Layer(layers.LayerTypeDot1Q) != nil {
				t.Errorf("probe carries the held frame's VLAN tags")
			}
			got, err := dataplane.ParseSegment(probe)
			if err != nil {
				t.Fatal(err)
			}
			if got.Src != tc.dst || got.Dst != tc.src {
				t.Errorf("probe %s > %s, want %s > %s (in the other endpoint's name)", got.Src, got.Dst, tc.dst, tc.src)
			}
			// One byte of old data, ending below the sender's ACK.
			if !tcp.ACK || tcp.RST || tcp.SYN || tcp.FIN || tcp.PSH || len(tcp.Payload) != 1 || got.PayloadLen != 1 {
				t.Errorf("probe flags/payload: %+v", tcp)
			}
			if tcp.Seq != 4998 || tcp.Ack != 977 {
				t.Errorf("probe seq %d ack %d, want 4998 and the nonce 977", tcp.Seq, tcp.Ack)
			}
		})
	}
}

func TestForward(t *testing.T) {
	for _, tc := range []struct {
		name     string
		src, dst netip.AddrPort
		partial  bool
		vlans    []uint16
		hopByHop bool
	}{
		{"IPv4", client, server, false, nil, false},
		{"IPv6", client6, server6, false, nil, false},
		{"IPv6 with a hop-by-hop header: kept, hop limit less one", client6, server6, false, nil, true},
		{"IPv4 with a partial checksum (TX offload)", client, server, true, nil, false},
		{"IPv4 from a trunk: released untagged onto the egress", client, server, false, []uint16{100}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := frames.Segment{Src: tc.src, Dst: tc.dst, Seq: 1000, Ack: 77, Flags: tcpflag.RST | tcpflag.ACK, TTL: 60,
				Window: 501, SrcMAC: macA, DstMAC: macB, VLANs: tc.vlans, IPv6HopByHop: tc.hopByHop}.MustFrame()
			f = append(f, 0, 0, 0, 0) // Ethernet padding
			seg, err := dataplane.ParseSegment(f)
			if err != nil {
				t.Fatal(err)
			}
			if tc.partial {
				f[seg.L4Off+16], f[seg.L4Off+17] = 0x12, 0x34
			}
			egressSrc, egressDst := net.HardwareAddr{2, 0, 0, 0, 1, 1}, net.HardwareAddr{2, 0, 0, 0, 1, 2}
			out, err := Forward(f, seg, egressSrc, egressDst)
			if err != nil {
				t.Fatal(err)
			}
			if want := 14 + seg.L4Off - seg.L3Off + seg.L4Len; len(out) != want {
				t.Errorf("forwarded %d bytes, want %d (padding and tags cut)", len(out), want)
			}
			eth, tcp, p := decode(t, out)
			if p.Layer(layers.LayerTypeDot1Q) != nil {
				t.Errorf("released still tagged")
			}
			if eth.SrcMAC.String() != egressSrc.String() || eth.DstMAC.String() != egressDst.String() {
				t.Errorf("L2 %s > %s", eth.SrcMAC, eth.DstMAC)
			}
			if hbh := p.Layer(layers.LayerTypeIPv6HopByHop) != nil; hbh != tc.hopByHop {
				t.Errorf("hop-by-hop header in the released frame: %v", hbh)
			}
			got, _ := dataplane.ParseSegment(out)
			if got.TTL != 59 || tcp.Seq != 1000 || tcp.Ack != 77 || !tcp.RST || !tcp.ACK || tcp.Window != 501 {
				t.Errorf("forwarded ttl %d seq %d ack %d flags %+v", got.TTL, tcp.Seq, tcp.Ack, tcp)
			}
		})
	}
	f := frames.Segment{Src: client, Dst: server, Flags: tcpflag.RST, TTL: 1}.MustFrame()
	seg, _ := dataplane.ParseSegment(f)
	if _, err := Forward(f, seg, macA, macB); err != ErrTTLExpired {
		t.Errorf("TTL 1: %v, want ErrTTLExpired", err)
	}
}

// The answers a probe can draw, and what is no answer.
func TestAnswers(t *testing.T) {
	h := dataplane.Hold{ProbeSeq: 4998, PeerNext: 5000, ProbeAck: 1000, Nonce: 977}
	seg := func(flags uint8, seq, ack uint32, payload int) dataplane.Segment {
		return dataplane.Segment{Flags: flags, Seq: seq, Ack: ack, PayloadLen: payload}
	}
	for _, tc := range []struct {
		name     string
		s        dataplane.Segment
		ack, rst bool
	}{
		{"live stack: pure ACK at its next seq of all the other side sent", seg(tcpflag.ACK, 1000, 5000, 0), true, false},
		{"an ACK of the probe's byte only is no answer (the sender has all)", seg(tcpflag.ACK, 1000, 4999, 0), false, false},
		{"live stack ahead of what the gateway saw (request lost before it)", seg(tcpflag.ACK, 1100, 5000, 0), true, false},
		{"ACK of something else", seg(tcpflag.ACK, 1000, 4000, 0), false, false},
		{"ACK behind the sender's next seq", seg(tcpflag.ACK, 999, 5000, 0), false, false},
		{"data is no answer (the program judges it)", seg(tcpflag.ACK|0x08, 1000, 5000, 10), false, false},
		{"FIN is no answer", seg(tcpflag.ACK|tcpflag.FIN, 1000, 5000, 0), false, false},
		{"dead stack: RST at seq = the probe's ack, the nonce", seg(tcpflag.RST, 977, 0, 0), false, true},
		{"dead stack answering with RST/ACK, as some do", seg(tcpflag.RST|tcpflag.ACK, 977, 5000, 0), false, true},
		{"a volley at the sender's next seq is no answer", seg(tcpflag.RST, 1000, 0, 0), false, false},
		{"a RST/ACK volley at it neither", seg(tcpflag.RST|tcpflag.ACK, 1000, 5000, 0), false, false},
		{"RST at another seq is no answer", seg(tcpflag.RST, 2460, 0, 0), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsACKAnswer(tc.s, h); got != tc.ack {
				t.Errorf("IsACKAnswer %v, want %v", got, tc.ack)
			}
			if got := IsRSTAnswer(tc.s, h); got != tc.rst {
				t.Errorf("IsRSTAnswer %v, want %v", got, tc.rst)
			}
		})
	}
}
