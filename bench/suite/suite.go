// Package suite is `make bench`: rstguard under a gateway's load from
// rstguard-pktgen's live engine, at 1 k to 10 M flows, every figure beside a
// baseline measured in the same run (../shared/reference/performance.md:
// these machines are shared and noisy). It writes a dated markdown report
// and PNG plots. The per-path costs through BPF_PROG_TEST_RUN are the
// dataplane package's Go benchmarks; this suite measures live traffic.
package suite

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/rstguard/rstguard/bench/lab"
	"github.com/rstguard/rstguard/bench/pktgen"
	"github.com/rstguard/rstguard/dataplane"
)

// Options are one run of the suite.
type Options struct {
	Rstguard string // the rstguard binary
	Short    bool   // small counts: make test's run, so that the suite never rots
	Log      io.Writer
}

// sizes are one run's flow counts and packet counts.
type sizes struct {
	flows     []uint32
	packets   uint64 // of the mix, per measurement
	floodSize uint32 // the SYN flood's table
	// The forwarding rate's flow counts and frame sizes.
	forwardFlows []uint32
	forwardSizes []int
}

func (o Options) sizes() sizes {
	if o.Short {
		return sizes{flows: []uint32{1000, 10_000}, packets: 200_000, floodSize: 8192,
			forwardFlows: []uint32{1000}, forwardSizes: []int{pktgen.MinSize}}
	}
	return sizes{flows: []uint32{1000, 100_000, 1_000_000, 10_000_000}, packets: 20_000_000, floodSize: 1 << 16,
		forwardFlows: []uint32{1000, 100_000, 1_000_000}, forwardSizes: []int{pktgen.MinSize, pktgen.MaxSize}}
}

// Subjects of the live measurements: the baselines, then rstguard's modes.
var subjects = []string{"pass", "lookup", "monitor", "drop", "hold"}

// Live is one measurement: a subject on dut0 under a workload.
type Live struct {
	Subject  string
	Flows    uint32
	GenPPS   float64 // what the generator sent per second
	PPS      float64 // what the subject's program ran on per second
	NsPerPkt float64 // the program's own run time per packet (bpf_stats)
	// The daemon's, for rstguard's modes.
	Tracked  int
	TableMem uint64 // bytes the kernel charges for both flow tables
	TableCap uint64
	RSS      uint64
}

// workload is what one measurement sends.
type workload struct {
	mix   pktgen.Mix
	flows uint32
	count uint64 // packets of the mix
	// size is the frames' size (0: pktgen.MinSize); dst their destination
	// MAC (nil: gen0's own).
	size int
	dst  net.HardwareAddr
	// trim, when set, changes the traffic before it is sent.
	trim func(*pktgen.Traffic)
	// afterHandshake, when set, runs between the handshakes and the mix.
	afterHandshake func() error
}

// steadyMix is established flows' traffic, the common path: data both
// ways and pure ACKs, after every flow's handshake. The gateway preset's
// resets would end flows that its data then picks up again mid-stream,
// which no real flow does; resets are measured by the floods and the
// per-path benchmarks.
var steadyMix = pktgen.Mix{Weights: map[string]int{pktgen.KindData: 60, pktgen.KindReply: 25, pktgen.KindACK: 15}, Handshake: true}

// measure runs every flow's handshake through the subject, then the mix,
// and reads the program's statistics over the mix.
func measure(b *box, s subject, w workload) (Live, error) {
	res := Live{Flows: w.flows}
	ifc, err := b.genInterface()
	if err != nil {
		return res, err
	}
	size, dst := w.size, w.dst
	if size == 0 {
		size = pktgen.MinSize
	}
	if dst == nil {
		dst = ifc.HardwareAddr
	}
	tr, err := pktgen.BuildTraffic(w.mix, size, false, ifc.HardwareAddr, dst)
	if err != nil {
		return res, err
	}
	if w.trim != nil {
		w.trim(tr)
	}
	prog, err := s.program()
	if err != nil {
		return res, err
	}
	err = b.host.Do(func() error {
		eng, err := pktgen.OpenEngine("live", ifc, w.flows)
		if err != nil {
			return err
		}
		defer eng.Close()
		handshake := *tr
		handshake.Mix = nil
		burst := dataplane.EmbryonicTableSize(w.flows) / 2
		if _, err := pktgen.Run(context.Background(), eng, &handshake, pktgen.Config{Flows: w.flows, HandshakeBurst: burst}); err != nil {
			return err
		}
		settle(prog)
		if w.afterHandshake != nil {
			if err := w.afterHandshake(); err != nil {
				return err
			}
		}
		before, err := prog.Stats()
		if err != nil {
			return err
		}
		tr.Handshake = nil
		st, err := pktgen.Run(context.Background(), eng, tr, pktgen.Config{Flows: w.flows, Count: w.count})
		if err != nil {
			return err
		}
		settle(prog)
		after, err := prog.Stats()
		if err != nil {
			return err
		}
		runs := after.RunCount - before.RunCount
		res.GenPPS = st.PPS
		res.PPS = float64(runs) / st.Seconds
		if runs > 0 {
			res.NsPerPkt = float64(after.Runtime-before.Runtime) / float64(runs)
		}
		return nil
	})
	return res, err
}

// settle waits until the program stops running: the receiving end of a
// veth drains its ring after the generator has returned.
func settle(prog *ebpf.Program) {
	var last uint64
	for range 100 {
		st, err := prog.Stats()
		if err != nil || st.RunCount == last {
			return
		}
		last = st.RunCount
		time.Sleep(10 * time.Millisecond)
	}
}

// Run runs the suite and returns its report.
func Run(o Options) (*Report, error) {
	sz := o.sizes()
	r := &Report{Date: time.Now().UTC(), Short: o.Short, Kernel: kernelRelease()}
	prefix := lab.UniquePrefix()

	err := timed(func() error {
		for _, flows := range sz.flows {
			for _, name := range subjects {
				fmt.Fprintf(o.Log, "live: %s at %d flows\n", name, flows)
				res, err := o.live(prefix, name, flows, sz.packets)
				if err != nil {
					return fmt.Errorf("live %s at %d flows: %w", name, flows, err)
				}
				r.Live = append(r.Live, res)
			}
		}
		return nil
	})
	if err != nil {
		return r, err
	}
	err = timed(func() error {
		for _, flows := range sz.forwardFlows {
			for _, size := range sz.forwardSizes {
				for _, name := range forwarders {
					fmt.Fprintf(o.Log, "forwarding: %s at %d flows, %d-byte frames\n", name, flows, size)
					res, err := o.forward(prefix, name, flows, size, sz.packets/2)
					if err != nil {
						return fmt.Errorf("forwarding %s at %d flows, %d bytes: %w", name, flows, size, err)
					}
					r.Forwarding = append(r.Forwarding, res)
				}
			}
		}
		return nil
	})
	if err != nil {
		return r, err
	}
	fmt.Fprintf(o.Log, "hold costs (BenchmarkHold)\n")
	if r.Holds, err = o.holdCosts(); err != nil {
		return r, err
	}
	fmt.Fprintf(o.Log, "analyze costs\n")
	if r.Analyze, err = o.analyzeCost(); err != nil {
		return r, err
	}
	fmt.Fprintf(o.Log, "generator\n")
	if r.Generator, err = o.generator(prefix, sz); err != nil {
		return r, fmt.Errorf("generator: %w", err)
	}
	return r, timed(func() (err error) {
		for _, flows := range sz.floodFlows() {
			fmt.Fprintf(o.Log, "flood: forged RSTs over %d flows\n", flows)
			f, err := o.rstFlood(prefix, sz, flows)
			if err != nil {
				return fmt.Errorf("RST flood over %d flows: %w", flows, err)
			}
			r.Floods = append(r.Floods, f)
		}
		fmt.Fprintf(o.Log, "flood: SYNs against a full table\n")
		if r.SYNFlood, err = o.synFlood(prefix, sz); err != nil {
			return fmt.Errorf("SYN flood: %w", err)
		}
		return nil
	})
}

// timed runs f while the kernel times every program run (bpf_stats: two
// clock reads each, for every program alike). The kernel counts who asked
// and stops when the last lets go, so a run that is killed, or two at once,
// leave kernel.bpf_stats_enabled as they found it.
func timed(f func() error) error {
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return fmt.Errorf("enable bpf_stats: %w", err)
	}
	defer stats.Close()
	return f()
}

// live is one subject at one flow count, in a box of its own.
func (o Options) live(prefix, name string, flows uint32, count uint64) (Live, error) {
	b, err := newBox(prefix + "bench")
	if err != nil {
		return Live{}, err
	}
	defer b.close()
	var s subject
	var d *daemon
	if name == "pass" || name == "lookup" {
		s, err = attachBaseline(b, name, tableSize(flows))
	} else {
		d, err = startDaemon(b, o.Rstguard, name, tableSize(flows))
		s = d
	}
	if err != nil {
		return Live{}, err
	}
	defer s.stop()
	w := workload{mix: steadyMix, flows: flows, count: count}
	tracked := 0
	if d != nil {
		w.afterHandshake = func() error {
			st, err := d.status()
			tracked = st.FlowsTracked
			return err
		}
	}
	res, err := measure(b, s, w)
	res.Subject, res.Tracked = name, tracked
	if err != nil || d == nil {
		return res, err
	}
	if res.TableMem, res.TableCap, err = d.tableMemory(); err != nil {
		return res, err
	}
	_, res.RSS, err = d.usage()
	return res, err
}

func kernelRelease() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return string(b[:max(len(b)-1, 0)])
}

// generator is the generator alone: one data template over 100 k flows
// into a bare XDP_DROP, so that the receiving end costs least. Run runs it
// untimed: the timing is the live measurements' own instrument, not the
// generator's work, and here it halves the rate (two clock reads for each
// of the two programs a frame runs). What arrived is dut0's receive count:
// veth counts every frame it hands its XDP program.
func (o Options) generator(prefix string, sz sizes) (Live, error) {
	b, err := newBox(prefix + "bench")
	if err != nil {
		return Live{}, err
	}
	defer b.close()
	drop, err := attachBaseline(b, "drop", 1)
	if err != nil {
		return Live{}, err
	}
	defer drop.stop()
	before, err := b.received()
	if err != nil {
		return Live{}, err
	}
	l, err := measure(b, drop, workload{mix: pktgen.Mix{Weights: map[string]int{pktgen.KindData: 1}}, flows: 100_000, count: sz.packets})
	l.Subject = "bare XDP_DROP"
	if err != nil {
		return l, err
	}
	after, err := b.received()
	l.PPS = l.GenPPS * float64(after-before) / float64(sz.packets)
	return l, err
}
