package suite

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Report is one run of the suite.
type Report struct {
	Date      time.Time
	Short     bool
	Kernel    string
	Live      []Live
	Generator Live
	Floods    []Flood // forged-RST floods, by flows
	SYNFlood  SYNFlood
	// Forwarding is the box's forwarding rate, dut0 to dut1, by subject,
	// flows and frame size.
	Forwarding []Forwarding
	// Holds are what a decided hold costs; Analyze what a capture costs
	// rstguard analyze.
	Holds   []HoldCost
	Analyze AnalyzeCost
}

// forwarding finds a forwarding measurement.
func (r *Report) forwarding(subject string, flows uint32, size int) (Forwarding, bool) {
	i := slices.IndexFunc(r.Forwarding, func(f Forwarding) bool {
		return f.Subject == subject && f.Flows == flows && f.Size == size
	})
	if i < 0 {
		return Forwarding{}, false
	}
	return r.Forwarding[i], true
}

// live finds a measurement.
func (r *Report) live(subject string, flows uint32) (Live, bool) {
	i := slices.IndexFunc(r.Live, func(l Live) bool { return l.Subject == subject && l.Flows == flows })
	if i < 0 {
		return Live{}, false
	}
	return r.Live[i], true
}

func (r *Report) flowCounts() []uint32 {
	var fs []uint32
	for _, l := range r.Live {
		if !slices.Contains(fs, l.Flows) {
			fs = append(fs, l.Flows)
		}
	}
	return fs
}

// Goal is one of issue 11's goals, as this run measured it.
type Goal struct {
	Name     string
	Measured string
	Met      bool
}

// Goals evaluates the run against the goals (docs/BENCHMARKS.md).
func (r *Report) Goals() []Goal {
	var gs []Goal
	if pass, ok := r.live("pass", 100_000); ok {
		for _, mode := range []string{"monitor", "drop"} {
			l, _ := r.live(mode, 100_000)
			ratio := l.PPS / pass.PPS
			gs = append(gs, Goal{fmt.Sprintf("live throughput, %s, 100 k flows, >= 0.8x bare XDP_PASS", mode),
				fmt.Sprintf("%.2fx", ratio), ratio >= 0.8})
		}
	}
	for _, flows := range r.flowCounts() {
		lookup, _ := r.live("lookup", flows)
		for _, mode := range []string{"monitor", "drop"} {
			l, _ := r.live(mode, flows)
			ratio := l.NsPerPkt / lookup.NsPerPkt
			gs = append(gs, Goal{fmt.Sprintf("per-packet cost, %s, %s flows, <= 1.5x parse + lookup", mode, count(flows)),
				fmt.Sprintf("%.2fx", ratio), ratio <= 1.5})
		}
	}
	for _, f := range r.Floods {
		ratio := f.Rstguard.PPS / f.BareDrop.PPS
		gs = append(gs, Goal{fmt.Sprintf("forged-RST flood, %s flows, dropped at >= 0.8x bare XDP_DROP's rate", count(f.Flows)),
			fmt.Sprintf("%.2fx", ratio), ratio >= 0.8})
		bound := f.Rstguard.NsPerPkt / f.Tracker.NsPerPkt
		gs = append(gs, Goal{fmt.Sprintf("forged-RST flood, %s flows, judged in full at <= 1.25x the stateful bound's cost", count(f.Flows)),
			fmt.Sprintf("%.2fx (%.1f against %.1f ns)", bound, f.Rstguard.NsPerPkt, f.Tracker.NsPerPkt), bound <= 1.25})
		gs = append(gs, Goal{fmt.Sprintf("every event of the %s-flow flood sent, suppressed or lost is counted; no non-RST dropped", count(f.Flows)),
			fmt.Sprintf("%d sent, %d suppressed, %d lost; %d non-RST dropped", f.Events, f.Suppressed, f.Lost, f.NonRSTDropped),
			f.NonRSTDropped == 0 && f.Events+f.Suppressed+f.Lost > 0})
	}
	if l, ok := r.live("monitor", 10_000_000); ok {
		gs = append(gs, Goal{"10 M flows tracked", fmt.Sprintf("%d tracked, %.0f bytes per flow", l.Tracked, perFlow(l)),
			l.Tracked >= 10_000_000})
	}
	for _, size := range []int{64, 1518} {
		redirect, ok := r.forwarding("redirect", 100_000, size)
		if !ok {
			continue
		}
		bridge, _ := r.forwarding("bridge", 100_000, size)
		routing, _ := r.forwarding("routing", 100_000, size)
		for _, mode := range []string{"wire-monitor", "wire-drop"} {
			f, _ := r.forwarding(mode, 100_000, size)
			gs = append(gs,
				Goal{fmt.Sprintf("forwarding, rstguard %s, 100 k flows, %d-byte frames, >= 0.8x a bare devmap redirect", mode, size),
					fmt.Sprintf("%.2fx", f.PPS/redirect.PPS), f.PPS >= 0.8*redirect.PPS},
				Goal{fmt.Sprintf("forwarding, rstguard %s, 100 k flows, %d-byte frames, >= 2x the kernel bridge", mode, size),
					fmt.Sprintf("%.2fx", f.PPS/bridge.PPS), f.PPS >= 2*bridge.PPS},
				Goal{fmt.Sprintf("forwarding, rstguard %s, 100 k flows, %d-byte frames, >= 2x kernel routing", mode, size),
					fmt.Sprintf("%.2fx", f.PPS/routing.PPS), f.PPS >= 2*routing.PPS})
		}
	}
	for _, h := range r.Holds {
		// The real abort's RST is the one released; a forged one is dropped.
		if strings.HasPrefix(h.Case, "real") && h.P99us > 0 {
			gs = append(gs, Goal{"hold: a released legitimate RST delayed by no more than its leg RTT + 200 us at p99",
				fmt.Sprintf("%.1f us beyond the answer (%s)", h.P99us, h.Case), h.P99us <= 200})
		}
	}
	if a := r.Analyze; a.Files > 1 {
		// Were the program loaded (and verified) per capture, a capture
		// beyond the first would cost about what one alone does.
		gs = append(gs, Goal{fmt.Sprintf("analyze, %d captures: the setup paid once (a capture beyond the first under half of one alone)", a.Files),
			fmt.Sprintf("%s a capture beyond the first; one alone %s", a.PerFile.Round(10*time.Microsecond), a.One.Round(time.Millisecond)),
			a.PerFile < a.One/2})
	}
	gen := min(r.Generator.GenPPS, r.Generator.PPS) // only what arrived counts
	gs = append(gs, Goal{"generator >= 3.5 Mpps of 64-byte frames, one core", fmt.Sprintf("%.2f Mpps", gen/1e6), gen >= 3.5e6})
	s := r.SYNFlood
	gs = append(gs, Goal{"after a SYN flood against a full table, legitimate resets judged right",
		fmt.Sprintf("%d of %d valid, %d spoofed", s.Valid, s.Resets, s.Spoofed),
		s.Spoofed == 0 && s.Resets > 0 && s.Valid == s.Resets})
	return gs
}

func perFlow(l Live) float64 {
	if l.TableCap == 0 {
		return 0
	}
	return float64(l.TableMem) / float64(l.TableCap)
}

func count(n uint32) string {
	switch {
	case n >= 1_000_000:
		return fmt.Sprintf("%d M", n/1_000_000)
	case n >= 1000:
		return fmt.Sprintf("%d k", n/1000)
	}
	return fmt.Sprint(n)
}

// Write writes the report as DATE.md in dir, with its plots beside it, and
// returns the markdown's path.
func (r *Report) Write(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	stem := r.Date.Format("2006-01-02")
	if r.Short {
		stem += "-short"
	}
	scale, throughput := stem+"-scale.png", stem+"-throughput.png"
	if err := r.plotScale(filepath.Join(dir, scale)); err != nil {
		return "", err
	}
	if err := r.plotThroughput(filepath.Join(dir, throughput)); err != nil {
		return "", err
	}
	path := filepath.Join(dir, stem+".md")
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	r.markdown(f, scale, throughput)
	return path, f.Close()
}

func (r *Report) markdown(w io.Writer, scale, throughput string) {
	fmt.Fprintf(w, "# rstguard benchmarks, %s\n\n", r.Date.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(w, "`make bench` (bench/suite) on kernel %s", r.Kernel)
	if r.Short {
		fmt.Fprintf(w, ", **short mode** (make test: small counts, figures not meaningful)")
	}
	fmt.Fprintf(w, ". rstguard-pktgen's live engine sends established flows' traffic (64-byte frames; every flow's "+
		"handshake first, then client data 60%%, server data 25%%, pure ACKs 15%%) from gen0 into dut0, a veth whose end "+
		"carries the subject: a bare XDP_PASS, the parse + lookup baseline (parse, find the flow, insert it when new: after the handshakes its table, sized as rstguard's, holds every flow), or `rstguard run` "+
		"in monitor, drop or hold mode (hold: nothing routes out of dut0, so its data path is what differs). Packets per "+
		"second are what the subject's program ran on (bpf_stats run count over the mix's wall time); on veth the "+
		"generator and the receiving end share the cores, so the whole receive path, not the program alone, sets them. "+
		"ns/pkt is the program's own run time (the kernel's bpf_stats). Each data frame repeats its flow's sequence "+
		"number, so rstguard sees retransmissions: the path without the clock read a new segment costs. Compare ratios "+
		"within one run: the machine is shared.\n\n")

	fmt.Fprintf(w, "## Goals\n\n| goal | measured | met |\n|---|---|---|\n")
	for _, g := range r.Goals() {
		met := "**missed**"
		if g.Met {
			met = "met"
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", g.Name, g.Measured, met)
	}

	fmt.Fprintf(w, "\n## Live throughput and per-packet cost\n\n![per-packet cost by flows](%s)\n![throughput by flows](%s)\n\n", scale, throughput)
	fmt.Fprintf(w, "| flows | subject | generator Mpps | processed Mpps | x pass | ns/pkt | x lookup |\n|---|---|---|---|---|---|---|\n")
	for _, flows := range r.flowCounts() {
		pass, _ := r.live("pass", flows)
		lookup, _ := r.live("lookup", flows)
		for _, name := range subjects {
			l, _ := r.live(name, flows)
			fmt.Fprintf(w, "| %s | %s | %.2f | %.2f | %.2f | %.1f | %.2f |\n", count(flows), name, l.GenPPS/1e6, l.PPS/1e6,
				l.PPS/pass.PPS, l.NsPerPkt, l.NsPerPkt/lookup.NsPerPkt)
		}
	}

	g := r.Generator
	timing := "untimed: bpf_stats, the live measurements' instrument, would cost it about half its rate here"
	if g.NsPerPkt > 0 { // the program was timed after all
		timing = "timed: another process had bpf_stats on, which slows it"
	}
	fmt.Fprintf(w, "\nThe generator alone (one data template over 100 k flows into a bare XDP_DROP, %s): %.2f Mpps sent, "+
		"%.2f Mpps arrived at dut0.\n", timing, g.GenPPS/1e6, g.PPS/1e6)

	fmt.Fprintf(w, "\n## Memory\n\n| flows | tracked after the handshakes | both flow tables (kernel's charge) | bytes per flow of capacity | daemon RSS |\n|---|---|---|---|---|\n")
	for _, flows := range r.flowCounts() {
		l, _ := r.live("monitor", flows)
		fmt.Fprintf(w, "| %s | %d | %.1f MiB for %d entries | %.0f | %.1f MiB |\n", count(flows), l.Tracked,
			float64(l.TableMem)/(1<<20), l.TableCap, perFlow(l), float64(l.RSS)/(1<<20))
	}

	fmt.Fprintf(w, "\n## Forged-RST flood\n\nEstablished flows, then forged RSTs of every injector profile (99%%) and data (1%%) "+
		"at the generator's full rate. The middle row of each is the bound for any RST filter that keeps flow state: the "+
		"lookup baseline, dropping every RST of a flow it tracks without judging it.\n\n"+
		"| flows | subject | processed Mpps | x bare XDP_DROP | ns/pkt | x the stateful bound |\n|---|---|---|---|---|---|\n")
	for _, f := range r.Floods {
		for _, l := range []Live{f.BareDrop, f.Tracker, f.Rstguard} {
			fmt.Fprintf(w, "| %s | %s | %.2f | %.2f | %.1f | %.2f |\n", count(f.Flows), l.Subject, l.PPS/1e6, l.PPS/f.BareDrop.PPS,
				l.NsPerPkt, l.NsPerPkt/f.Tracker.NsPerPkt)
		}
	}
	for _, f := range r.Floods {
		fmt.Fprintf(w, "\nOver %s flows rstguard judged %d RSTs and dropped %d (%.1f%%); events: %d sent, %d suppressed by the budget, %d lost "+
			"(ring full), all counted; non-RST packets dropped: %d. The daemon used %.2f CPU seconds per second of flood, "+
			"%.1f MiB resident.\n", count(f.Flows), f.RSTs, f.Dropped, 100*float64(f.Dropped)/float64(max(f.RSTs, 1)), f.Events,
			f.Suppressed, f.Lost, f.NonRSTDropped, f.CPU, float64(f.RSS)/(1<<20))
	}

	if len(r.Forwarding) > 0 {
		fmt.Fprintf(w, "\n## Forwarding: the box in the wire\n\nThe same established flows' traffic from gen0 into dut0, "+
			"each frame to leave by dut1, whose peer sink0 counts what crossed with a bare XDP_DROP (its bpf_stats run "+
			"count over the mix's wall time). Subjects: a bare XDP program redirecting every frame through a devmap to dut1; "+
			"the same after parse + lookup (the stateful bound: the least a bump in the wire that tracks flows does); "+
			"`rstguard run --wire dut0:dut1` in each mode; the kernel's bridge (dut0 and dut1 in br0); the kernel's "+
			"routing (dut0 and dut1 addressed, every destination by way of sink0). The kernel's subjects run a bare "+
			"XDP_PASS on dut0, which frames redirected into a veth need there.\n\n"+
			"| flows | frame bytes | subject | generator Mpps | crossed Mpps | x redirect | x the stateful bound | x bridge | x routing |\n|---|---|---|---|---|---|---|---|---|\n")
		for _, f := range r.Forwarding {
			redirect, _ := r.forwarding("redirect", f.Flows, f.Size)
			bound, _ := r.forwarding("lookup-redirect", f.Flows, f.Size)
			bridge, _ := r.forwarding("bridge", f.Flows, f.Size)
			routing, _ := r.forwarding("routing", f.Flows, f.Size)
			fmt.Fprintf(w, "| %s | %d | %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", count(f.Flows), f.Size, f.Subject,
				f.GenPPS/1e6, f.PPS/1e6, f.PPS/redirect.PPS, f.PPS/bound.PPS, f.PPS/bridge.PPS, f.PPS/routing.PPS)
		}
	}

	if len(r.Holds) > 0 {
		fmt.Fprintf(w, "\n## Hold mode\n\ncontrol/hold's BenchmarkHold (a forwarding box in a namespace, the program in hold mode, the "+
			"daemon's manager with its AF_XDP socket in copy mode): the CPU a decided hold takes beyond receiving its frames, "+
			"kernel and daemon on one core; holds decided a second; the delay a released RST gets beyond the answer that "+
			"decided it (the answer comes at once here: on a real path the leg RTT comes on top).\n\n"+
			"| case | holds | CPU per hold | holds/s | delay beyond the answer, p50 | p99 |\n|---|---|---|---|---|---|\n")
		for _, h := range r.Holds {
			fmt.Fprintf(w, "| %s | %d | %.1f us | %.0f | %.1f us | %.1f us |\n", h.Case, h.Holds, h.CPUus, h.HoldsPerSec, h.P50us, h.P99us)
		}
	}
	if a := r.Analyze; a.Files > 1 {
		fmt.Fprintf(w, "\n## rstguard analyze\n\n%d captures: one alone took %s (the program's load and verification "+
			"included), all %d took %s: %s a capture beyond the first.\n", a.Files, a.One.Round(time.Millisecond), a.Files,
			a.All.Round(time.Millisecond), a.PerFile.Round(10*time.Microsecond))
	}

	s := r.SYNFlood
	fmt.Fprintf(w, "\n## SYN flood against a full table\n\nA %d-flow table filled with established flows, then %d SYNs from "+
		"fresh sources (%d flow inserts), then the server's legitimate abort on every established flow: %d flows "+
		"tracked after the flood (both tables: the established ones and the flood's latest half-open ones); of %d resets, %d judged valid, %d spoofed, %d other (suspect, unknown, no flow).\n",
		s.Table, s.SYNs, s.Inserts, s.TrackedAfter, s.Resets, s.Valid, s.Spoofed, s.Other)
}

// plotScale is the per-packet cost against flows (log scale) for rstguard
// and the parse + lookup baseline.
func (r *Report) plotScale(path string) error {
	p := plot.New()
	p.Title.Text = "per-packet cost, established flows' traffic"
	p.X.Label.Text, p.Y.Label.Text = "flows", "ns per packet (bpf_stats)"
	p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{}
	return r.plotBy(p, path, func(l Live) float64 { return l.NsPerPkt })
}

func (r *Report) plotThroughput(path string) error {
	p := plot.New()
	p.Title.Text = "packets processed per second"
	p.X.Label.Text, p.Y.Label.Text = "flows", "Mpps"
	p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, plot.LogTicks{}
	return r.plotBy(p, path, func(l Live) float64 { return l.PPS / 1e6 })
}

func (r *Report) plotBy(p *plot.Plot, path string, y func(Live) float64) error {
	var lines []any
	for _, name := range subjects {
		var pts plotter.XYs
		for _, flows := range r.flowCounts() {
			if l, ok := r.live(name, flows); ok {
				pts = append(pts, plotter.XY{X: float64(flows), Y: y(l)})
			}
		}
		lines = append(lines, strings.ReplaceAll(name, "pass", "bare XDP_PASS"), pts)
	}
	if err := plotutil.AddLinePoints(p, lines...); err != nil {
		return err
	}
	return p.Save(6*vg.Inch, 4*vg.Inch, path)
}
