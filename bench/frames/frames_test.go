package frames

import (
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/rstguard/rstguard/internal/tcpflag"
)

// Frames decode as real stacks' do, checksums included.
func TestSegmentFrame(t *testing.T) {
	c4 := netip.MustParseAddrPort("192.0.2.10:40000")
	s4 := netip.MustParseAddrPort("198.51.100.80:80")
	c6 := netip.MustParseAddrPort("[2001:db8::10]:40000")
	s6 := netip.MustParseAddrPort("[2001:db8:1::80]:80")
	for _, tc := range []struct {
		name string
		seg  Segment
	}{
		{"SYN with options, IPv4", Segment{Src: c4, Dst: s4, Flags: tcpflag.SYN, MSS: 1460, WScale: 7, SACKPermitted: true, TS: true, TSval: 5}},
		{"data in two VLAN tags", Segment{Src: c4, Dst: s4, Flags: tcpflag.PSH | tcpflag.ACK, Payload: []byte("GET /"), VLANs: []uint16{100, 200}}},
		{"RST over IPv6 behind hop-by-hop", Segment{Src: c6, Dst: s6, Flags: tcpflag.RST, IPv6HopByHop: true, FlowLabel: 0xbeef}},
		{"MD5-signed ACK", Segment{Src: c4, Dst: s4, Flags: tcpflag.ACK, MD5: true}},
	} {
		f := tc.seg.MustFrame()
		p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		tcp, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if p.ErrorLayer() != nil || !ok {
			t.Errorf("%s: does not decode: %v", tc.name, p.ErrorLayer())
			continue
		}
		if tcp.RST != (tc.seg.Flags&tcpflag.RST != 0) || tcp.SYN != (tc.seg.Flags&tcpflag.SYN != 0) || string(tcp.Payload) != string(tc.seg.Payload) {
			t.Errorf("%s: decoded %+v", tc.name, tcp)
		}
		// Recompute the checksum from the decoded layers: it must match.
		want := tcp.Checksum
		tcp.SetNetworkLayerForChecksum(p.NetworkLayer())
		buf := gopacket.NewSerializeBuffer()
		gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, tcp, gopacket.Payload(tcp.Payload))
		if tcp.Checksum != want {
			t.Errorf("%s: checksum %#x, want %#x", tc.name, want, tcp.Checksum)
		}
	}
	bad := Segment{Src: c4, Dst: s4, Flags: tcpflag.RST, BadChecksum: true}.MustFrame()
	good := Segment{Src: c4, Dst: s4, Flags: tcpflag.RST}.MustFrame()
	if string(bad) == string(good) {
		t.Error("BadChecksum changed nothing")
	}
	if _, err := (Segment{Src: c4, Dst: s6}).Frame(); err == nil {
		t.Error("mixed families accepted")
	}
}

// A Conn plays both ends as a stack does: sequence numbers follow data.
func TestConnAdvances(t *testing.T) {
	c := NewConn(Peer{Addr: netip.MustParseAddrPort("192.0.2.1:1"), ISN: 100, TTL: 64},
		Peer{Addr: netip.MustParseAddrPort("192.0.2.2:2"), ISN: 500, TTL: 64})
	c.Handshake()
	c.Data(Client, []byte("hello"))
	s := c.Segment(Server, tcpflag.ACK, nil)
	if s.Seq != 501 || s.Ack != 106 {
		t.Errorf("server's next segment seq %d ack %d, want 501 106", s.Seq, s.Ack)
	}
	if rst := c.Segment(Server, tcpflag.RST, nil); rst.Window != 0 || rst.IPID != 0 {
		t.Errorf("a plain RST is a stateless reset: %+v", rst)
	}
}
