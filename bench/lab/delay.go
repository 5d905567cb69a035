package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// A delayLine is a long leg in a lab: a namespace of its own that passes
// every frame between its two interfaces, each one delay after it arrived,
// as a cable of that length would. This kernel has no netem (nor fq, for
// departure times set by a program), so the line is two AF_PACKET sockets
// and a queue per direction in this process. It has no addresses and no
// IPv6, so its own kernel neither answers nor sends anything: the two hosts
// it joins share one link (ARP, neighbour discovery and all) and see the
// delay in their RTT. It moves a test's traffic (a few thousand frames a
// second), not a benchmark's.
type delayLine struct {
	host  *Host
	fds   [2]int
	ifidx [2]int
	// oneWay is each direction's delay now (SetDelay).
	oneWay atomic.Int64
	stop   chan struct{}
	wg     sync.WaitGroup
}

// delayQueue is how many frames each direction holds in flight: at a lab's
// rates, far more than one delay's worth. A full queue drops, as a router's.
const delayQueue = 4096

// ConnectDelayed joins two hosts as Connect does, through a delay line in a
// namespace named line: each frame crosses oneWay later, so the hosts' RTT
// gains twice that. The ends copy nothing to the line that the line could
// not pass on as it is: their transmit checksums are computed in software and
// TCP segments are cut to the MTU before they leave (a frame read from an
// AF_PACKET socket keeps a partial checksum and a segment of any size, and
// sent again as it was it would be dropped).
func ConnectDelayed(a *Host, aIf string, aAddr netip.Prefix, b *Host, bIf string, bAddr netip.Prefix, line *Host, oneWay time.Duration) (*delayLine, error) {
	if err := line.Sysctl("net.ipv6.conf.all.disable_ipv6", "1"); err != nil {
		return nil, err
	}
	if err := line.Sysctl("net.ipv6.conf.default.disable_ipv6", "1"); err != nil {
		return nil, err
	}
	if err := Connect(a, aIf, aAddr, line, "la", netip.Prefix{}); err != nil {
		return nil, err
	}
	if err := Connect(line, "lb", netip.Prefix{}, b, bIf, bAddr); err != nil {
		return nil, err
	}
	for _, end := range []struct {
		host   *Host
		ifname string
	}{{a, aIf}, {b, bIf}, {line, "la"}, {line, "lb"}} {
		out, err := end.host.Command(context.Background(), "ethtool", "-K", end.ifname, "tx", "off", "tso", "off", "gso", "off", "gro", "off").CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("%s: ethtool -K %s: %v: %s", end.host.Name, end.ifname, err, out)
		}
	}
	d := &delayLine{host: line, stop: make(chan struct{})}
	d.oneWay.Store(int64(oneWay))
	err := line.Do(func() error {
		for i, name := range []string{"la", "lb"} {
			fd, ifindex, err := packetSocket(line, name)
			if err != nil {
				return err
			}
			d.fds[i], d.ifidx[i] = fd, ifindex
		}
		return nil
	})
	if err != nil {
		d.closeFDs()
		return nil, err
	}
	d.run(0, 1)
	d.run(1, 0)
	return d, nil
}

// packetSocket is a raw AF_PACKET socket bound to one interface: it reads
// every frame that arrives there, not those sent, and its reads give up
// every 100 ms so that Close is heard.
func packetSocket(h *Host, ifname string) (fd, ifindex int, err error) {
	link, err := h.nl.LinkByName(ifname)
	if err != nil {
		return -1, 0, fmt.Errorf("%s: %s: %w", h.Name, ifname, err)
	}
	ifindex = link.Attrs().Index
	fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return -1, 0, fmt.Errorf("AF_PACKET socket: %w", err)
	}
	tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
	for _, err = range []error{
		unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1),
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv),
		unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}),
	} {
		if err != nil {
			unix.Close(fd)
			return -1, 0, fmt.Errorf("%s: AF_PACKET socket on %s: %w", h.Name, ifname, err)
		}
	}
	return fd, ifindex, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// run carries frames from interface in to interface out, each the line's
// delay after it arrived, in the order they came.
func (d *delayLine) run(in, out int) {
	type frame struct {
		due  time.Time
		data []byte
	}
	queue := make(chan frame, delayQueue)
	d.wg.Go(func() {
		defer close(queue)
		buf := make([]byte, 1<<16)
		for {
			n, _, err := unix.Recvfrom(d.fds[in], buf, 0)
			select {
			case <-d.stop:
				return
			default:
			}
			if err != nil {
				if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
					return
				}
				continue
			}
			select {
			case queue <- frame{time.Now().Add(time.Duration(d.oneWay.Load())), append([]byte(nil), buf[:n]...)}:
			default: // full: dropped
			}
		}
	})
	d.wg.Go(func() {
		to := &unix.SockaddrLinklayer{Ifindex: d.ifidx[out]}
		for f := range queue {
			time.Sleep(time.Until(f.due))
			unix.Sendto(d.fds[out], f.data, 0, to) // a frame the line cannot send is lost, as on a wire
		}
	})
}

// Close stops the line; the namespace goes with the chain.
func (d *delayLine) Close() {
	close(d.stop)
	d.wg.Wait()
	d.closeFDs()
}

func (d *delayLine) closeFDs() {
	for _, fd := range d.fds {
		if fd > 0 {
			unix.Close(fd)
		}
	}
}
