package pktgen

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/rstguard/rstguard/dataplane"
	"github.com/rstguard/rstguard/xdp"
)

// Engine sends n frames of a template, flows first .. first+n-1 (mod the
// run's flow count), out of its interface. Round is how many packets a
// round of the mix should have for the engine to run at full speed.
type Engine interface {
	Send(t *Template, first uint32, n int) error
	Round() int
	Close() error
}

// Engines by the name --engine takes.
var Engines = []string{"live", "afxdp", "kernel"}

// OpenEngine opens the named engine on the interface for a run of flows.
func OpenEngine(name string, iface *net.Interface, flows uint32) (Engine, error) {
	switch name {
	case "live":
		return openLive(iface, flows)
	case "afxdp":
		return openAFXDP(iface, flows)
	case "kernel":
		return nil, kernelPktgen()
	}
	return nil, fmt.Errorf("unknown engine %q", name)
}

// live runs xdp/bpf/pktgen.c with BPF_F_TEST_XDP_LIVE_FRAMES (kernel 5.18):
// the kernel repeats the template, the program rewrites each repetition's
// flow and redirects it out of the interface, in batches of liveBatch, with
// no copy to or from user space (xdp-trafficgen's method). Measured here:
// 5.3 Mpps of 64-byte frames into a veth whose end runs XDP_DROP, every one
// arriving (the receiving end runs on the same core); 2.7 Mpps while
// kernel.bpf_stats_enabled times both programs, as make bench's live
// measurements have it.
type live struct {
	objs    xdp.PktgenObjects
	ifindex int
}

// liveBatch is how many frames the kernel runs the program on before it
// flushes them to the driver (the kernel's default; at most 256).
const liveBatch = 64

// liveRound: each run costs about 24 ms whatever its length here (measured:
// 64 frames and 65536 frames took the same), so a round of the mix must be
// millions of frames for that to vanish beside about 6 Mpps.
const liveRound = 1 << 23

func openLive(iface *net.Interface, flows uint32) (*live, error) {
	l := &live{ifindex: iface.Index}
	if err := xdp.LoadPktgenObjects(&l.objs, nil); err != nil {
		return nil, fmt.Errorf("load the live engine's program: %w", err)
	}
	for _, set := range []struct {
		v     *ebpf.Variable
		value any
	}{
		{l.objs.TxIfindex, uint32(iface.Index)},
		{l.objs.Flows, flows},
		{l.objs.Ports, uint32(Ports)},
		{l.objs.FirstPort, uint32(FirstPort)},
	} {
		if err := set.v.Set(set.value); err != nil {
			l.objs.Close()
			return nil, fmt.Errorf("live engine: %w", err)
		}
	}
	return l, nil
}

func (l *live) Send(t *Template, first uint32, n int) error {
	if err := l.setTemplate(t, first); err != nil {
		return err
	}
	if err := l.objs.Budget.Set(uint32(n)); err != nil {
		return fmt.Errorf("live engine: %w", err)
	}
	// The kernel runs the program on the calling thread; keep it on one.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	_, err := l.objs.Pktgen.Run(&ebpf.RunOptions{
		Data: t.Frame, Repeat: uint32(n), BatchSize: liveBatch, Flags: unix.BPF_F_TEST_XDP_LIVE_FRAMES,
		Context: xdpContext(len(t.Frame), l.ifindex),
	})
	if err != nil {
		return fmt.Errorf("live engine: run: %w", err)
	}
	return nil
}

// setTemplate points the program at a template, from flow first on.
func (l *live) setTemplate(t *Template, first uint32) error {
	// The variables hold network-order fields as the frame has them.
	raw32 := func(off int) uint32 { return binary.NativeEndian.Uint32(t.Frame[off:]) }
	raw16 := func(off int) uint16 { return binary.NativeEndian.Uint16(t.Frame[off:]) }
	ipCheck := uint16(0)
	if !t.IPv6 {
		ipCheck = raw16(t.ipCheckOff)
	}
	var macs [12]byte
	copy(macs[:], t.Frame)
	for _, set := range []struct {
		v     *ebpf.Variable
		value any
	}{
		{l.objs.NextFlow, first},
		{l.objs.ClientIsDst, boolByte(t.ClientIsDst)},
		{l.objs.Ipv6, boolByte(t.IPv6)},
		{l.objs.TmplAddr, raw32(t.addrOff)},
		{l.objs.TmplPort, raw16(t.portOff)},
		{l.objs.TmplIpCheck, ipCheck},
		{l.objs.TmplTcpCheck, raw16(t.tcpCheckOff)},
		{l.objs.TmplMacs, macs},
		{l.objs.TmplTtl, t.Frame[t.ttlOff]},
	} {
		if err := set.v.Set(set.value); err != nil {
			return fmt.Errorf("live engine: %w", err)
		}
	}
	return nil
}

func (l *live) Round() int { return liveRound }

func (l *live) Close() error { return l.objs.Close() }

// xdpContext is the struct xdp_md a live run starts from: the frame's end
// and the interface it claims to arrive on (any with XDP support will do).
func xdpContext(length, ifindex int) []byte {
	ctx := make([]byte, 24) // data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex
	binary.NativeEndian.PutUint32(ctx[4:], uint32(length))
	binary.NativeEndian.PutUint32(ctx[12:], uint32(ifindex))
	return ctx
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// afxdp sends through an AF_XDP socket on the interface's queue 0 with the
// asavie/xdp wrapper hold mode uses (dataplane.Socket), rewriting each flow's
// frame in Go. On veth (copy mode, no zero-copy) the kernel builds an skb per
// frame: expect about 1 Mpps (xdp-tutorial #110).
type afxdp struct {
	sock  *dataplane.Socket
	buf   []byte
	flows uint32
}

func openAFXDP(iface *net.Interface, flows uint32) (*afxdp, error) {
	s, err := dataplane.OpenSocket(iface.Index, 0)
	if err != nil {
		return nil, fmt.Errorf("cannot send on %s with AF_XDP: %w", iface.Name, err)
	}
	return &afxdp{sock: s, buf: make([]byte, MaxSize), flows: flows}, nil
}

func (a *afxdp) Send(t *Template, first uint32, n int) error {
	flow := first
	for sent := 0; sent < n; {
		err := a.sock.Transmit(t.Rewrite(a.buf, flow))
		if errors.Is(err, dataplane.ErrTxFull) {
			if err := a.flush(); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		sent++
		if flow++; flow == a.flows {
			flow = 0
		}
	}
	return a.flush()
}

// flush sends what is queued; a full ring only means the kernel is behind.
func (a *afxdp) flush() error {
	if err := a.sock.Flush(); err != nil && !errors.Is(err, dataplane.ErrTxFull) {
		return err
	}
	return nil
}

func (a *afxdp) Round() int { return cycle }

func (a *afxdp) Close() error { return a.sock.Close() }

// kernelPktgen explains why the kernel engine cannot run. Kernel pktgen
// (/proc/net/pktgen, module pktgen) is how gateways are usually load-tested,
// but it sends UDP only, one fixed flow pattern, so it cannot carry
// handshakes or resets; it measures raw forwarding next to rstguard. The
// kernels here have neither the module nor the code built in.
func kernelPktgen() error {
	if _, err := os.Stat("/proc/net/pktgen"); err == nil {
		return fmt.Errorf("cannot send with kernel pktgen: it sends UDP only, and rstguard judges TCP: " +
			"drive /proc/net/pktgen directly (samples/pktgen in the kernel tree) for a forwarding baseline, " +
			"and use --engine live or afxdp for TCP")
	}
	return fmt.Errorf("cannot send with kernel pktgen: this kernel has no /proc/net/pktgen (CONFIG_NET_PKTGEN is off " +
		"or the module is not loaded: try modprobe pktgen): use --engine live or afxdp")
}
