// Package inject is the lab's on-path attacker: it sends forged TCP resets
// built by bench/frames through raw sockets, as the devices in the incident
// and the censorship studies do.
package inject

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// RawSender sends IP packets whose headers we wrote ourselves (IP_HDRINCL):
// the kernel routes them and fills in the link header, nothing else. Create
// it inside the namespace it should send from.
type RawSender struct{ fd4, fd6 int }

// NewRawSender opens raw IPv4 and IPv6 sockets (needs CAP_NET_RAW).
func NewRawSender() (*RawSender, error) {
	fd4, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW)
	if err != nil {
		return nil, fmt.Errorf("raw IPv4 socket: %w", err)
	}
	fd6, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW, unix.IPPROTO_RAW)
	if err != nil {
		unix.Close(fd4)
		return nil, fmt.Errorf("raw IPv6 socket: %w", err)
	}
	return &RawSender{fd4: fd4, fd6: fd6}, nil
}

// SendFrame sends the IP packet inside an untagged Ethernet frame. The
// packet is cut to its IP length first: with IP_HDRINCL the kernel sets the
// total length to what it is given, so Ethernet padding would become TCP
// payload and break the checksum.
func (s *RawSender) SendFrame(frame []byte) error {
	if len(frame) < 14+20 {
		return fmt.Errorf("frame of %d bytes is too short", len(frame))
	}
	pkt := frame[14:]
	n := len(pkt)
	switch pkt[0] >> 4 {
	case 4:
		n = int(binary.BigEndian.Uint16(pkt[2:4]))
	case 6:
		n = 40 + int(binary.BigEndian.Uint16(pkt[4:6]))
	}
	if n > len(pkt) {
		return fmt.Errorf("IP length %d exceeds the frame", n)
	}
	return s.Send(pkt[:n])
}

// Send sends one IPv4 or IPv6 packet to its destination address.
func (s *RawSender) Send(pkt []byte) error {
	switch pkt[0] >> 4 {
	case 4:
		dst := netip.AddrFrom4([4]byte(pkt[16:20]))
		return unix.Sendto(s.fd4, pkt, 0, &unix.SockaddrInet4{Addr: dst.As4()})
	case 6:
		if len(pkt) < 40 {
			return fmt.Errorf("short IPv6 packet")
		}
		var dst [16]byte
		copy(dst[:], pkt[24:40])
		return unix.Sendto(s.fd6, pkt, 0, &unix.SockaddrInet6{Addr: dst})
	}
	return fmt.Errorf("IP version %d", pkt[0]>>4)
}

// Close closes the sockets.
func (s *RawSender) Close() error {
	unix.Close(s.fd6)
	return unix.Close(s.fd4)
}
