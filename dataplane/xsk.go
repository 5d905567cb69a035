package dataplane

import (
	"errors"
	"fmt"
	"sync"

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
}

// socketOptions size the rings for bursts of RSTs: the library's defaults
// (64 descriptors) lose frames at the fill ring under load (platform notes).
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
		s.xsk.Fill(s.xsk.GetDescs(s.xsk.NumFreeFillSlots()))
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
	s.xsk.Fill(s.xsk.GetDescs(s.xsk.NumFreeFillSlots()))
	return len(descs)
}

// ErrTxFull means the TX ring or the frame buffers are full for now.
var ErrTxFull = errors.New("AF_XDP TX ring full")

// Transmit sends one frame out of the socket's interface.
func (s *Socket) Transmit(frame []byte) (err error) {
	if n := s.xsk.NumCompleted(); n > 0 {
		s.xsk.Complete(n)
	}
	if len(frame) > socketOptions.FrameSize {
		return fmt.Errorf("transmit: frame of %d bytes is longer than a buffer", len(frame))
	}
	descs := s.xsk.GetDescs(1)
	if len(descs) == 0 || s.xsk.NumFreeTxSlots() == 0 {
		return ErrTxFull
	}
	d := descs[0]
	d.Len = uint32(copy(s.xsk.GetFrame(d), frame))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("transmit on ifindex %d: %v", s.Ifindex, r)
		}
	}()
	if s.xsk.Transmit([]afxdp.Desc{d}) != 1 {
		return ErrTxFull
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
