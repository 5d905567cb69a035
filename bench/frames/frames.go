// Package frames builds real Ethernet frames carrying TCP over IPv4 or IPv6,
// for fixture tests, benchmarks and the lab's injector. gopacket's
// layers serialise them, so lengths and checksums are those of a real stack.
package frames

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/rstguard/rstguard/internal/tcpflag"
)

// Segment describes one TCP segment and the headers around it.
type Segment struct {
	Src, Dst netip.AddrPort
	Seq, Ack uint32
	Flags    uint8
	Window   uint16
	TTL      uint8 // hop limit for IPv6; 64 when zero
	IPID     uint16
	DF       bool
	// FlowLabel is the IPv6 flow label.
	FlowLabel uint32
	// MSS, WScale and SACKPermitted add those options on SYNs; a zero
	// WScale adds no window-scale option.
	MSS           uint16
	WScale        uint8
	SACKPermitted bool
	// TS adds NOP, NOP, TS(TSval, TSecr), the layout Linux uses on every segment.
	TS           bool
	TSval, TSecr uint32
	// SACK adds NOP, NOP, SACK with these blocks (left and right edges),
	// after the timestamps, where Linux puts them; a D-SACK block first.
	SACK [][2]uint32
	// MD5 adds a TCP-MD5 signature option (RFC 2385; the signature is zeros).
	MD5     bool
	Payload []byte
	// VLANs are 802.1Q tags, outermost first.
	VLANs []uint16
	// IPOptions are raw IPv4 options, padded to 4 bytes.
	IPOptions []byte
	// MoreFragments marks an IPv4 datagram's first fragment (MF, offset 0).
	MoreFragments bool
	// IPv6HopByHop adds an empty hop-by-hop options header (IPv6).
	IPv6HopByHop bool
	// BadChecksum corrupts the TCP checksum.
	BadChecksum bool
	// SrcMAC and DstMAC default to fixed locally administered addresses.
	SrcMAC, DstMAC net.HardwareAddr
}

var (
	defaultSrcMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	defaultDstMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
)

// Frame serialises the segment into an Ethernet frame.
func (s Segment) Frame() ([]byte, error) {
	if s.Src.Addr().Is4() != s.Dst.Addr().Is4() {
		return nil, fmt.Errorf("mixed address families: %s > %s", s.Src, s.Dst)
	}
	ttl := s.TTL
	if ttl == 0 {
		ttl = 64
	}
	srcMAC, dstMAC := s.SrcMAC, s.DstMAC
	if srcMAC == nil {
		srcMAC = defaultSrcMAC
	}
	if dstMAC == nil {
		dstMAC = defaultDstMAC
	}

	tcp := &layers.TCP{
		SrcPort: layers.TCPPort(s.Src.Port()), DstPort: layers.TCPPort(s.Dst.Port()),
		Seq: s.Seq, Ack: s.Ack, Window: s.Window,
		FIN: s.Flags&tcpflag.FIN != 0, SYN: s.Flags&tcpflag.SYN != 0, RST: s.Flags&tcpflag.RST != 0,
		PSH: s.Flags&tcpflag.PSH != 0, ACK: s.Flags&tcpflag.ACK != 0,
		Options: s.options(),
	}

	var stack []gopacket.SerializableLayer
	eth := &layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC}
	stack = append(stack, eth)
	next := &eth.EthernetType
	for _, id := range s.VLANs {
		*next = layers.EthernetTypeDot1Q
		tag := &layers.Dot1Q{VLANIdentifier: id}
		stack = append(stack, tag)
		next = &tag.Type
	}

	if s.Src.Addr().Is4() {
		*next = layers.EthernetTypeIPv4
		ip := &layers.IPv4{
			Version: 4, TTL: ttl, Id: s.IPID, Protocol: layers.IPProtocolTCP,
			SrcIP: s.Src.Addr().AsSlice(), DstIP: s.Dst.Addr().AsSlice(),
		}
		if s.DF {
			ip.Flags = layers.IPv4DontFragment
		}
		if s.MoreFragments {
			ip.Flags = layers.IPv4MoreFragments
		}
		if len(s.IPOptions) > 0 {
			ip.Options = []layers.IPv4Option{{OptionType: s.IPOptions[0], OptionLength: uint8(len(s.IPOptions)),
				OptionData: s.IPOptions[2:]}}
		}
		if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
			return nil, err
		}
		stack = append(stack, ip)
	} else {
		*next = layers.EthernetTypeIPv6
		ip := &layers.IPv6{
			Version: 6, HopLimit: ttl, NextHeader: layers.IPProtocolTCP, FlowLabel: s.FlowLabel,
			SrcIP: s.Src.Addr().AsSlice(), DstIP: s.Dst.Addr().AsSlice(),
		}
		if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
			return nil, err
		}
		stack = append(stack, ip)
		if s.IPv6HopByHop {
			ip.NextHeader = layers.IPProtocolIPv6HopByHop
			stack = append(stack, hopByHop{})
		}
	}
	stack = append(stack, tcp, gopacket.Payload(s.Payload))

	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, stack...); err != nil {
		return nil, fmt.Errorf("serialise segment: %w", err)
	}
	frame := buf.Bytes()
	if s.BadChecksum {
		frame[s.tcpOffset()+16] ^= 0xff
	}
	return frame, nil
}

// MustFrame is Frame for fixtures built from constants; it panics on error.
func (s Segment) MustFrame() []byte {
	f, err := s.Frame()
	if err != nil {
		panic(err)
	}
	return f
}

func (s Segment) options() []layers.TCPOption {
	var opts []layers.TCPOption
	if s.MSS != 0 {
		opts = append(opts, layers.TCPOption{OptionType: layers.TCPOptionKindMSS, OptionLength: 4,
			OptionData: binary.BigEndian.AppendUint16(nil, s.MSS)})
	}
	if s.SACKPermitted {
		opts = append(opts, layers.TCPOption{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2})
	}
	if s.TS {
		data := binary.BigEndian.AppendUint32(nil, s.TSval)
		opts = append(opts,
			layers.TCPOption{OptionType: layers.TCPOptionKindNop},
			layers.TCPOption{OptionType: layers.TCPOptionKindNop},
			layers.TCPOption{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10,
				OptionData: binary.BigEndian.AppendUint32(data, s.TSecr)})
	}
	if len(s.SACK) > 0 {
		var blocks []byte
		for _, b := range s.SACK {
			blocks = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(blocks, b[0]), b[1])
		}
		opts = append(opts,
			layers.TCPOption{OptionType: layers.TCPOptionKindNop},
			layers.TCPOption{OptionType: layers.TCPOptionKindNop},
			layers.TCPOption{OptionType: layers.TCPOptionKindSACK, OptionLength: uint8(2 + len(blocks)), OptionData: blocks})
	}
	if s.MD5 {
		opts = append(opts, layers.TCPOption{OptionType: 19, OptionLength: 18, OptionData: make([]byte, 16)},
			layers.TCPOption{OptionType: layers.TCPOptionKindNop}, layers.TCPOption{OptionType: layers.TCPOptionKindNop})
	}
	if s.WScale != 0 && s.Flags&tcpflag.SYN != 0 {
		opts = append(opts, layers.TCPOption{OptionType: layers.TCPOptionKindNop},
			layers.TCPOption{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3,
				OptionData: []byte{s.WScale}})
	}
	return opts
}

// tcpOffset is where the TCP header starts in the frame (Ethernet pads short
// frames, so it cannot be counted from the end).
func (s Segment) tcpOffset() int {
	off := 14 + 4*len(s.VLANs)
	switch {
	case s.Src.Addr().Is4():
		off += 20 + len(s.IPOptions)
	case s.IPv6HopByHop:
		off += 40 + 8
	default:
		off += 40
	}
	return off
}

// hopByHop is an empty IPv6 hop-by-hop options header (PadN only), for
// fixtures that exercise extension-header skipping.
type hopByHop struct{}

func (hopByHop) LayerType() gopacket.LayerType { return layers.LayerTypeIPv6HopByHop }

func (hopByHop) SerializeTo(b gopacket.SerializeBuffer, _ gopacket.SerializeOptions) error {
	bytes, err := b.PrependBytes(8)
	if err != nil {
		return err
	}
	copy(bytes, []byte{byte(layers.IPProtocolTCP), 0, 1, 4, 0, 0, 0, 0})
	return nil
}
