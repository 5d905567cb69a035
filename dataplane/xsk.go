package dataplane

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"

	afxdp "github.com/asavie/xdp"
	"golang.org/x/sys/unix"
)

// Socket is one AF_XDP socket bound to an interface's RX queue: hold mode
// receives held RSTs and probe answers on it and sends probes and released
// RSTs through it. It keeps github.com/asavie/xdp (archived) behind the few
// calls hold mode needs, with that library's traps handled here: Receive
// frees frames at once (Receive copies them out), Transmit panics on send
// errors (recovered into an error), options are package globals (set under
// a lock), and a socket is not safe for concurrent use (one goroutine owns it).
type Socket struct {
	xsk      *afxdp.Socket
	Ifindex  int
	Queue    int
	ZeroCopy bool
	// TX uses the upper half of the frames, round robin, and RX the lower
	// half, refilled with the very frames it received: asavie's GetDescs
	// scans every frame for free ones on each call.
	txNext    int
	pending   []afxdp.Desc // queued by Transmit, sent by Flush
	submitted uint32       // descriptors put on the TX ring, ever (its producer index)
}

// rxFrames is how many frames the fill ring gets; the rest serve TX.
const rxFrames = 2048

// socketOptions size the rings for bursts of RSTs: the library's defaults
// (64 descriptors) lost 31% of a 2.5 Mpps burst at the fill ring here.
var socketOptions = afxdp.SocketOptions{
	NumFrames:              4096,
	FrameSize:              2048,
	FillRingNumDescs:       2048,
	CompletionRingNumDescs: 2048,
	RxRingNumDescs:         2048,
	TxRingNumDescs:         2048,
}

// bindFlags guards afxdp.DefaultSocketFlags, a package global.
var bindFlags sync.Mutex

// OpenSocket binds an AF_XDP socket to the interface's RX queue, zero-copy
// where the driver allows it and in copy mode elsewhere (veth has no
// zero-copy). Needs CAP_NET_RAW and CAP_BPF.
func OpenSocket(ifindex, queue int) (*Socket, error) {
	bindFlags.Lock()
	defer bindFlags.Unlock()
	var errs []error
	for _, mode := range []struct {
		flags    uint16
		zeroCopy bool
	}{{unix.XDP_ZEROCOPY, true}, {unix.XDP_COPY, false}} {
		afxdp.DefaultSocketFlags = mode.flags
		xsk, err := afxdp.NewSocket(ifindex, queue, &socketOptions)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s := &Socket{xsk: xsk, Ifindex: ifindex, Queue: queue, ZeroCopy: mode.zeroCopy}
		fill := make([]afxdp.Desc, rxFrames)
		for i := range fill {
			fill[i] = afxdp.Desc{Addr: uint64(i * socketOptions.FrameSize)}
		}
		s.xsk.Fill(fill)
		return s, nil
	}
	return nil, fmt.Errorf("AF_XDP socket on ifindex %d queue %d: %w", ifindex, queue, errors.Join(errs...))
}

// FD is the socket's descriptor, for poll(2).
func (s *Socket) FD() int { return s.xsk.FD() }

// Mode names the bind mode: "zerocopy" or "copy".
func (s *Socket) Mode() string {
	if s.ZeroCopy {
		return "zerocopy"
	}
	return "copy"
}

// Receive hands every frame waiting on the socket to fn, which must copy
// what it keeps, then gives the buffers back to the kernel.
func (s *Socket) Receive(fn func(frame []byte)) int {
	descs := s.xsk.Receive(s.xsk.NumReceived())
	for _, d := range descs {
		fn(s.xsk.GetFrame(d))
	}
	for i := range descs {
		descs[i].Len = 0
	}
	s.xsk.Fill(descs)
	return len(descs)
}

// ErrTxFull means the TX ring is full for now.
var ErrTxFull = errors.New("AF_XDP TX ring full")

// Transmit queues one frame to go out of the socket's interface with the
// next Flush.
func (s *Socket) Transmit(frame []byte) error {
	if len(frame) > socketOptions.FrameSize {
		return fmt.Errorf("transmit: frame of %d bytes is longer than a buffer", len(frame))
	}
	if n := s.xsk.NumCompleted(); n > 0 {
		s.xsk.Complete(n)
	}
	// A TX frame is reused only once every frame sent before it completed:
	// frames in flight never exceed the TX half.
	if len(s.pending) >= s.xsk.NumFreeTxSlots() ||
		s.xsk.NumTransmitted()+len(s.pending) >= socketOptions.NumFrames-rxFrames {
		return ErrTxFull
	}
	d := afxdp.Desc{Addr: uint64((rxFrames + s.txNext) * socketOptions.FrameSize)}
	s.txNext = (s.txNext + 1) % (socketOptions.NumFrames - rxFrames)
	d.Len = uint32(copy(s.xsk.GetFrame(afxdp.Desc{Addr: d.Addr, Len: uint32(socketOptions.FrameSize)}), frame))
	s.pending = append(s.pending, d)
	return nil
}

// Flush sends every queued frame: one system call, more in copy mode when
// the kernel leaves frames on the TX ring (it sends at most 32 a call,
// xsk_generic_xmit's budget, and leaves the rest until the next call: a
// burst's tail would wait for the next Flush, or forever).
func (s *Socket) Flush() (err error) {
	if len(s.pending) == 0 {
		return nil
	}
	defer func() {
		if r := recover(); r != nil { // asavie/xdp panics on send errors
			err = fmt.Errorf("transmit on ifindex %d: %v", s.Ifindex, r)
		}
		s.pending = s.pending[:0]
	}()
	n := s.xsk.Transmit(s.pending)
	s.submitted += uint32(n)
	if n != len(s.pending) {
		return fmt.Errorf("transmit on ifindex %d: %d of %d frames: %w", s.Ifindex, n, len(s.pending), ErrTxFull)
	}
	if s.ZeroCopy {
		return nil // the driver drains the ring itself; sendto only wakes it
	}
	// Each kick sends up to 32 more; a ring's worth of kicks at most.
	for range socketOptions.TxRingNumDescs/32 + 1 {
		st, err := s.xsk.Stats()
		if err != nil {
			return fmt.Errorf("transmit on ifindex %d: %w", s.Ifindex, err)
		}
		if uint32(st.Transmitted) == s.submitted {
			return nil
		}
		s.xsk.Transmit(nil)
	}
	return nil
}

// Dropped is what the kernel could not deliver to the socket: RX ring full
// or no fill buffer. Such frames are lost; they are counted, never silent.
func (s *Socket) Dropped() uint64 {
	st, err := s.xsk.Stats()
	if err != nil {
		return 0
	}
	return st.KernelStats.Rx_dropped + st.KernelStats.Rx_ring_full
}

// Close closes the socket's descriptor and frees its frames. asavie/xdp
// leaves its rings mapped, so the kernel socket lives, and stays in the
// XSKMAP, until the process exits: take it out first (Dataplane.ClearHolds).
// A process that dies loses every mapping, and the kernel empties the XSKMAP.
func (s *Socket) Close() error { return s.xsk.Close() }

// RxQueues is how many RX queues the interface runs now, as `ethtool -l`
// shows them (ETHTOOL_GCHANNELS); 1 when the driver does not say. A driver
// may have more queues than it runs (veth: one runs of as many as CPUs), and
// a socket bound to a queue that does not run fails.
func RxQueues(ifname string) int {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 1
	}
	defer unix.Close(fd)
	// struct ethtool_channels: cmd, then max and current rx, tx, other, combined.
	var ch struct{ cmd, maxRx, maxTx, maxOther, maxCombined, rx, tx, other, combined uint32 }
	ch.cmd = unix.ETHTOOL_GCHANNELS
	var ifr struct {
		name [unix.IFNAMSIZ]byte
		data unsafe.Pointer // a pointer, not a uintptr: stack moves adjust it
		_    [16]byte
	}
	copy(ifr.name[:], ifname)
	ifr.data = unsafe.Pointer(&ch)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); errno != 0 {
		return 1
	}
	return max(int(ch.rx), int(ch.combined), 1)
}
