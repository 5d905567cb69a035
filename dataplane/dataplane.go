// Package dataplane loads rstguard's XDP program, sets its policy, reads its
// counters, flow table and event ring buffer, and runs it over single frames
// with BPF_PROG_TEST_RUN. It needs Linux 5.18 or later (bpf_loop, bpf_xdp_load_bytes) and BTF.
package dataplane

import (
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/rstguard/rstguard/xdp"
)

// DefaultFlowTableSize is the flow table's size when Options leave it unset.
const DefaultFlowTableSize = uint32(xdp.RstguardPolicyDefaultDEFAULT_FLOW_TABLE_SIZE)

// time32Shift turns the program's time32 units into nanoseconds.
const time32Shift = xdp.RstguardTimeUnitTIME32SHIFT

// EmbryonicTableSize is the size of the table of flows not yet established
// that goes with a flow table: a quarter of it, and at least 1,024 entries.
func EmbryonicTableSize(flows uint32) uint32 { return max(flows/4, 1024) }

// FlowKey is a flow's key in the program's tables: both directions of a
// connection, in a zone (Segment.Key makes it).
type FlowKey = xdp.RstguardFlowKey

// ProgramName is the program's name in the kernel (bpftool, xdp-loader);
// FlowsMapName its flow table's, which names a pin directory's maps.
const (
	ProgramName  = xdp.RstguardProgRstguard
	FlowsMapName = xdp.RstguardMapFlows
)

// FlowTableMaps are the names of the two tables a flow is tracked in: the
// established flows' and the embryonic ones' (their memory is the table's).
var FlowTableMaps = []string{FlowsMapName, xdp.RstguardMapEmbryonic}

// ABI is the version of the map layouts in xdp/rstguard.h. Pinned maps of
// another ABI are refused rather than reused.
const ABI = uint32(xdp.RstguardAbiRSTGUARD_ABI)

// Options choose how the program is loaded.
type Options struct {
	// FlowTableSize is the flow table's capacity in connections.
	// Zero means DefaultFlowTableSize.
	FlowTableSize uint32
	// PinDir, when set, is a directory on bpffs where the maps are pinned,
	// or reused from, so that flows survive a restart of the daemon.
	PinDir string
}

// Dataplane is a loaded rstguard program and its maps.
type Dataplane struct {
	objs xdp.RstguardObjects
	// zones is what SetZones wrote, for ZoneOf: hold mode keys held frames
	// without a map lookup.
	zones map[ZoneKey]uint16
}

// Load loads the XDP program and its maps into the kernel. With
// Options.PinDir it reuses maps pinned there by an earlier run, after checking
// that their layout matches this build.
func Load(opts Options) (*Dataplane, error) {
	spec, err := xdp.LoadRstguard()
	if err != nil {
		return nil, fmt.Errorf("read embedded program: %w", err)
	}
	size := opts.FlowTableSize
	if size == 0 {
		size = DefaultFlowTableSize
	}
	spec.Maps[xdp.RstguardMapFlows].MaxEntries = size
	spec.Maps[xdp.RstguardMapEmbryonic].MaxEntries = EmbryonicTableSize(size)
	// A new policy map is born with the default policy, so that readers of
	// freshly pinned maps never see it empty. A reused pinned map keeps its
	// own: cilium/ebpf would write Contents into it too.
	if opts.PinDir == "" || !pinned(opts.PinDir, xdp.RstguardMapPolicy) {
		spec.Maps[xdp.RstguardMapPolicy].Contents = []ebpf.MapKV{{Key: uint32(0), Value: configOf(DefaultPolicy())}}
	}

	collOpts := &ebpf.CollectionOptions{}
	if opts.PinDir != "" {
		if err := checkPinnedLayout(opts.PinDir, spec); err != nil {
			return nil, err
		}
		collOpts.Maps.PinPath = opts.PinDir
		for _, name := range pinnedMaps {
			spec.Maps[name].Pinning = ebpf.PinByName
		}
	}

	var d Dataplane
	if err := spec.LoadAndAssign(&d.objs, collOpts); err != nil {
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			return nil, fmt.Errorf("load xdp program: %+v", verr)
		}
		return nil, fmt.Errorf("load xdp program: %w", err)
	}
	if err := d.SetCoarseTick(hostCoarseTick()); err != nil {
		d.Close()
		return nil, err
	}
	return &d, nil
}

// hostCoarseTick is the resolution of this host's coarse clock, which the
// program reads on the data path: one scheduler tick (4 ms at HZ=250).
func hostCoarseTick() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGetres(unix.CLOCK_MONOTONIC_COARSE, &ts); err != nil {
		return time.Second / 100 // the coarsest tick a kernel is built with (HZ=100)
	}
	return time.Duration(ts.Nano())
}

// SetCoarseTick sets the tick the program allows for in RTTs it measured on
// its coarse clock (rtt_floor() in xdp/bpf/packet.h). Load sets the host's.
// Under Run's clock, which is a capture's, the coarse clock is that clock
// rounded down to the tick: 0 makes it exact, as `rstguard analyze` wants,
// and a tick emulates the live clock.
func (d *Dataplane) SetCoarseTick(tick time.Duration) error {
	if err := d.objs.CoarseTickNs.Set(uint64(tick)); err != nil {
		return fmt.Errorf("set the coarse clock's tick: %w", err)
	}
	return nil
}

// Close releases the program and the maps (pinned maps stay on bpffs).
func (d *Dataplane) Close() error {
	return d.objs.Close()
}

// Program is the XDP program, for attaching.
func (d *Dataplane) Program() *ebpf.Program {
	return d.objs.Rstguard
}

// FlowsMapID is the kernel's ID of the flow table: programs that use it
// belong to this pin directory.
func (d *Dataplane) FlowsMapID() uint32 {
	info, err := d.objs.Flows.Info()
	if err != nil {
		return 0
	}
	id, _ := info.ID()
	return uint32(id)
}
