package dataplane

import (
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// XDP return codes rstguard uses, as the kernel defines them.
const (
	XDPDrop     = 1
	XDPPass     = 2
	XDPRedirect = 4
)

// MinFrame is the shortest frame BPF_PROG_TEST_RUN accepts for XDP: an
// Ethernet header.
const MinFrame = 14

// MaxFrame is the longest frame run through the program: test runs of a
// program without fragment support take one page less head and tail room.
// Longer frames are cut (their IP length still says how long they were).
const MaxFrame = 3072

// ErrShortFrame is returned for frames shorter than an Ethernet header. On a
// real interface such a frame never reaches XDP.
var ErrShortFrame = errors.New("frame shorter than an Ethernet header")

// Run feeds one frame through the program with BPF_PROG_TEST_RUN, with the
// program's clock set to at, and returns the XDP verdict. This is how
// `rstguard analyze` judges captures with the very program that runs inline.
func (d *Dataplane) Run(frame []byte, at time.Time) (uint32, error) {
	return d.run(frame, at, nil)
}

// xdpMD is struct xdp_md: BPF_PROG_TEST_RUN takes the ingress interface and
// RX queue from it (data and data_end must describe the whole frame).
type xdpMD struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

func (d *Dataplane) run(frame []byte, at time.Time, md *xdpMD) (uint32, error) {
	if len(frame) < MinFrame {
		return XDPPass, ErrShortFrame
	}
	if len(frame) > MaxFrame {
		frame = frame[:MaxFrame]
	}
	if err := d.objs.ClockOverrideNs.Set(uint64(at.UnixNano())); err != nil {
		return 0, fmt.Errorf("set program clock: %w", err)
	}
	opts := &ebpf.RunOptions{Data: frame}
	if md != nil {
		md.DataEnd = uint32(len(frame))
		opts.Context = *md
	}
	ret, err := d.objs.Rstguard.Run(opts)
	if err != nil {
		return 0, fmt.Errorf("run program on frame: %w", err)
	}
	return ret, nil
}

// Inject runs one frame through the program as if it had arrived on the
// interface (RX queue 0), with BPF_F_TEST_XDP_LIVE_FRAMES: what the program
// does with it really happens (a redirect reaches the AF_XDP socket, a pass
// goes up that interface's stack). Benchmarks drive the program with it.
func (d *Dataplane) Inject(frame []byte, ifindex int) error {
	if err := d.objs.ClockOverrideNs.Set(uint64(0)); err != nil {
		return fmt.Errorf("set program clock: %w", err)
	}
	_, err := d.objs.Rstguard.Run(&ebpf.RunOptions{Data: frame, Repeat: 1, Flags: unix.BPF_F_TEST_XDP_LIVE_FRAMES,
		Context: xdpMD{IngressIfindex: uint32(ifindex), DataEnd: uint32(len(frame))}})
	if err != nil {
		return fmt.Errorf("inject frame: %w", err)
	}
	return nil
}

// CaptureClock reads event times written while Run drove the program's clock.
func CaptureClock(ns uint64) time.Time { return time.Unix(0, int64(ns)).UTC() }

// MonotonicClock turns CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns) into
// wall time, for events from a live interface.
func MonotonicClock(ns uint64) time.Time {
	return time.Now().Add(-time.Duration(monotonicNow() - ns))
}

// monotonicNow is CLOCK_MONOTONIC, the program's clock on a live interface.
func monotonicNow() uint64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}
