package suite

import (
	"github.com/rstguard/rstguard/bench/pktgen"
	"github.com/rstguard/rstguard/dataplane"
)

// Flood is a forged-RST flood at the generator's full rate through
// rstguard in drop mode, beside a bare XDP_DROP and the lookup baseline
// dropping every RST of a flow it tracks, under the same flood.
type Flood struct {
	Flows    uint32
	Rstguard Live
	BareDrop Live
	// Tracker is the least a RST filter with flow state does: find the
	// flow, drop its RSTs unjudged. rstguard does all of that, then judges.
	Tracker    Live
	RSTs       uint64 // RSTs rstguard judged
	Dropped    uint64
	Events     uint64  // sent to the daemon
	Suppressed uint64  // over the program's event budget, counted
	Lost       uint64  // ring buffer full, counted
	CPU        float64 // the daemon's CPU seconds per second of flood
	RSS        uint64
	// NonRSTDropped: drops beyond the RSTs (must be zero: only RSTs are ever dropped).
	NonRSTDropped uint64
}

// floodMix is the flood: forged RSTs of every injector profile on
// established flows, with a little data that must all pass.
var floodMix = pktgen.Mix{Weights: map[string]int{pktgen.KindForged: 99, pktgen.KindData: 1}, Handshake: true}

// floodFlows are the floods' sizes: a tenth of the live runs' largest
// table, and all of it.
func (sz sizes) floodFlows() []uint32 {
	most := sz.flows[len(sz.flows)-1]
	return []uint32{most / 10, most}
}

func (o Options) rstFlood(prefix string, sz sizes, flows uint32) (Flood, error) {
	f := Flood{Flows: flows}
	b, err := newBox(prefix + "bench")
	if err != nil {
		return f, err
	}
	defer b.close()
	for _, base := range []struct {
		name, subject string
		into          *Live
	}{
		{"drop", "bare XDP_DROP", &f.BareDrop},
		{"lookup-drop", "parse + lookup, RSTs of tracked flows dropped", &f.Tracker},
	} {
		prog, err := attachBaseline(b, base.name, tableSize(f.Flows))
		if err != nil {
			return f, err
		}
		*base.into, err = measure(b, prog, workload{mix: floodMix, flows: f.Flows, count: sz.packets})
		prog.stop()
		if err != nil {
			return f, err
		}
		base.into.Subject = base.subject
	}

	d, err := startDaemon(b, o.Rstguard, "drop", tableSize(f.Flows))
	if err != nil {
		return f, err
	}
	defer d.stop()
	before, err := d.sample()
	if err != nil {
		return f, err
	}
	if f.Rstguard, err = measure(b, d, workload{mix: floodMix, flows: f.Flows, count: sz.packets}); err != nil {
		return f, err
	}
	f.Rstguard.Subject = "rstguard drop"
	after, err := d.sample()
	if err != nil {
		return f, err
	}
	a, z := after.status.Counters, before.status.Counters
	f.RSTs, f.Dropped = a.RSTs-z.RSTs, a.Action(dataplane.ActionDrop)-z.Action(dataplane.ActionDrop)
	f.Events, f.Suppressed, f.Lost = a.EventsSent-z.EventsSent, a.EventsSuppress-z.EventsSuppress, a.EventsLost-z.EventsLost
	if f.Dropped > f.RSTs {
		f.NonRSTDropped = f.Dropped - f.RSTs
	}
	seconds := float64(sz.packets) / f.Rstguard.GenPPS
	f.CPU, f.RSS = (after.cpu-before.cpu).Seconds()/seconds, after.rss
	return f, nil
}

// SYNFlood is a flood of SYNs from fresh sources against a full table of
// established flows, then a legitimate reset on every established flow.
type SYNFlood struct {
	Table        uint32 // flows the table holds, all established before the flood
	SYNs         uint64
	TrackedAfter int    // flows tracked after the flood, in both tables
	Resets       uint64 // legitimate resets sent after it, one per established flow
	Valid        uint64 // judged valid
	Spoofed      uint64 // judged spoofed: must be zero
	Other        uint64 // suspect, unknown or no flow
	Inserts      uint64 // flow inserts during the flood
}

func (o Options) synFlood(prefix string, sz sizes) (SYNFlood, error) {
	s := SYNFlood{Table: sz.floodSize, SYNs: 4 * uint64(sz.floodSize)}
	b, err := newBox(prefix + "bench")
	if err != nil {
		return s, err
	}
	defer b.close()
	d, err := startDaemon(b, o.Rstguard, "drop", s.Table)
	if err != nil {
		return s, err
	}
	defer d.stop()
	// Fill the table: a handshake on every flow, nothing else.
	if _, err := measure(b, d, workload{mix: steadyMix, flows: s.Table, count: 1}); err != nil {
		return s, err
	}
	before, err := d.status()
	if err != nil {
		return s, err
	}
	if _, err := measure(b, d, workload{mix: pktgen.Presets["syn-flood"], flows: uint32(s.SYNs), count: s.SYNs}); err != nil {
		return s, err
	}
	mid, err := d.status()
	if err != nil {
		return s, err
	}
	s.TrackedAfter = mid.FlowsTracked
	// One legitimate reset per established flow: the server's abort, the
	// first of the mix's legitimate resets.
	rst := pktgen.Mix{Weights: map[string]int{pktgen.KindRST: 1}}
	if _, err := measure(b, d, workload{mix: rst, flows: s.Table, count: uint64(s.Table), trim: firstTemplate}); err != nil {
		return s, err
	}
	after, err := d.status()
	if err != nil {
		return s, err
	}
	a, z := after.Counters, mid.Counters
	s.Resets = a.RSTs - z.RSTs
	s.Valid = a.Verdict(dataplane.VerdictValid) - z.Verdict(dataplane.VerdictValid)
	s.Spoofed = a.Verdict(dataplane.VerdictSpoofed) - z.Verdict(dataplane.VerdictSpoofed)
	s.Other = s.Resets - s.Valid - s.Spoofed
	s.Inserts = mid.Counters.FlowInserts - before.Counters.FlowInserts
	return s, nil
}

// firstTemplate keeps only the mix's first template.
func firstTemplate(t *pktgen.Traffic) {
	t.Mix, t.Shares = t.Mix[:1], []float64{1}
}
