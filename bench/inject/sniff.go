package inject

import (
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// sniffer reads the frames an interface receives (AF_PACKET). A router's
// forwarded packets also leave through another interface; those outgoing
// copies are skipped, so each packet is seen once, with the TTL it arrived with.
type sniffer struct{ fd int }

const ethPAll = 0x0003

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func openSniffer(ifname string) (*sniffer, error) {
	iface, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(ethPAll)))
	if err != nil {
		return nil, fmt.Errorf("AF_PACKET socket (needs CAP_NET_RAW): %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(ethPAll), Ifindex: iface.Index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind to %s: %w", ifname, err)
	}
	// A receive timeout lets the read loop notice cancellation.
	tv := unix.NsecToTimeval((200 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &sniffer{fd: fd}, nil
}

// errTimeout means nothing arrived within the receive timeout.
var errTimeout = errors.New("no frame yet")

// read returns the next received frame.
func (s *sniffer) read(buf []byte) (int, error) {
	for {
		n, from, err := unix.Recvfrom(s.fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			return 0, errTimeout
		}
		if err != nil {
			return 0, err
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		return n, nil
	}
}

func (s *sniffer) close() error { return unix.Close(s.fd) }
