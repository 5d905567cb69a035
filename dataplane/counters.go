package dataplane

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/rstguard/rstguard/xdp"
)

// Counters are the program's per-CPU counters, summed over CPUs. Their JSON
// (status --json, analyze's summary) is a scripting interface: add keys,
// never rename them; TestCountersJSONGolden pins it.
type Counters struct {
	Packets         uint64 `json:"packets"` // every frame the program saw
	TCP             uint64 `json:"tcp"`
	NotTCP          uint64 `json:"not_tcp"`
	ParseErrors     uint64 `json:"parse_errors"`
	Fragments       uint64 `json:"fragments"`
	IPv6ExtLimit    uint64 `json:"ipv6_ext_limit"`
	TinyFragments   uint64 `json:"tiny_fragments"`
	FlowInserts     uint64 `json:"flow_inserts"`
	FlowInsertFails uint64 `json:"flow_insert_fails"`
	FlowPromoted    uint64 `json:"flows_promoted"` // from the embryonic table to the flow table
	Midstream       uint64 `json:"flows_midstream"`
	RSTs            uint64 `json:"rsts"`
	RSTsNoFlow      uint64 `json:"rsts_no_flow"`
	CsumUnchecked   uint64 `json:"checksum_unchecked"`
	EventsSent      uint64 `json:"events_sent"`
	EventsLost      uint64 `json:"events_lost"`
	EventsSuppress  uint64 `json:"events_suppressed"`
	// Hold mode, as the program saw it; the daemon counts the outcomes.
	HoldStarted   uint64 `json:"holds_started"`
	HoldJoined    uint64 `json:"holds_joined"`
	HoldNoSocket  uint64 `json:"hold_no_socket"`
	HoldUnrouted  uint64 `json:"hold_unrouted"`
	HoldTableFull uint64 `json:"hold_table_full"`
	HoldAnswers   uint64 `json:"hold_probe_answers"`
	HoldData      uint64 `json:"hold_data_seen"`
	// RSTs dropped in the kernel because their claimed sender was proven
	// alive moments ago; RSTs not held because the daemon could not release them.
	HoldProvenDrop   uint64 `json:"hold_proven_drops"`
	HoldUnreleasable uint64 `json:"hold_unreleasable"`
	// HoldForged counts held RSTs the daemon proved forged and dropped (a
	// probe answered by an ACK, or data): the daemon adds them to the
	// program's counters (CountHoldForged), so that every surface reads
	// one figure of what was stopped (Stopped).
	HoldForged uint64 `json:"hold_forged"`
	// Wire mode: frames sent out of their pair's other port, passed to the
	// stack because the other port was missing, dropped while the pair
	// was closed (--wire-fail closed), and redirected but then lost by the
	// kernel on the way out (the port's TX ring full, the port down).
	WireForwarded      uint64 `json:"wire_forwarded"`
	WireNoPeer         uint64 `json:"wire_no_peer"`
	WireClosed         uint64 `json:"wire_closed_drops"`
	WireRedirectErrors uint64 `json:"wire_redirect_errors"`

	Judged
	Actions map[string]uint64 `json:"actions"`
	// Program is every one of the program's own counters by its name in
	// the header (Each): a counter added there is here without a field.
	Program map[string]uint64 `json:"program_counters"`
	// ConfirmedByAction splits Confirmed by what the forged RST got here:
	// dropped (stopped), held, or passed (the connection died).
	ConfirmedByAction map[string]uint64 `json:"confirmed_forged_by_action"`

	raw []uint64 // by enum counter: what Add sums
}

// Judged counts what was judged. The program's counters and an event log's
// summary (rstguard report) both report these, under the same keys and with
// the same meaning; only the source differs: the counters count every RST,
// an event log only those whose events the budget let through.
type Judged struct {
	Verdicts map[string]uint64 `json:"verdicts"`
	Signals  map[string]uint64 `json:"signals"`
	// Confirmed counts RSTs proven forged after the fact (the claimed
	// sender kept sending); Collateral the victim's resets of the real
	// sender that followed a forged RST.
	Confirmed  uint64 `json:"confirmed_forged"`
	Collateral uint64 `json:"collateral_resets"`
}

// Add adds another reading (another capture's, another box's) to c.
func (c *Counters) Add(o Counters) {
	raw := make([]uint64, xdp.RstguardCounterCNT_MAX)
	for i := range raw {
		if i < len(c.raw) {
			raw[i] += c.raw[i]
		}
		if i < len(o.raw) {
			raw[i] += o.raw[i]
		}
	}
	*c = countersFrom(raw)
}

// Each calls fn with every one of the program's own counters (enum counter
// up to its families: verdicts, actions and signals have fields of their
// own) by its name in xdp/bpf/rstguard.h, in the header's order: a counter
// added there is in the metrics without another change.
func (c Counters) Each(fn func(name string, v uint64)) {
	for i, name := range counterNames {
		if i < len(c.raw) {
			fn(name, c.raw[i])
		}
	}
}

// Verdict is how many RSTs got verdict v.
func (j Judged) Verdict(v Verdict) uint64 { return j.Verdicts[v.String()] }

// Action is how many RSTs got action a.
func (c Counters) Action(a Action) uint64 { return c.Actions[a.String()] }

// Stopped is how many forged RSTs never reached their receiver: those
// dropped (in drop mode, and in hold mode's kernel: proven alive, joined to
// a hold) and those held and then proven forged by the daemon.
func (c Counters) Stopped() uint64 { return c.Action(ActionDrop) + c.HoldForged }

// CountHoldForged adds n held RSTs proven forged to the counters of the
// interface they arrived on. Only the daemon writes this counter, on the
// first CPU's slot: no program increment races the update.
func (d *Dataplane) CountHoldForged(ifindex int, n uint64) error {
	key := uint32((ifindex%IfaceSlots)*int(xdp.RstguardCounterCNT_MAX) + int(xdp.RstguardCounterCNT_HOLD_FORGED))
	var perCPU []uint64
	if err := d.objs.Counters.Lookup(key, &perCPU); err != nil {
		return fmt.Errorf("read counter: %w", err)
	}
	perCPU[0] += n
	if err := d.objs.Counters.Update(key, perCPU, ebpf.UpdateExist); err != nil {
		return fmt.Errorf("count held forgeries: %w", err)
	}
	return nil
}

// Counters reads and sums the per-CPU counters.
func (d *Dataplane) Counters() (Counters, error) {
	slots, err := d.readCounters()
	if err != nil {
		return Counters{}, err
	}
	total := make([]uint64, xdp.RstguardCounterCNT_MAX)
	for _, raw := range slots {
		for i, v := range raw {
			total[i] += v
		}
	}
	return countersFrom(total), nil
}

// IfaceSlots is how many sets of counters the program keeps: one per
// interface slot, ifindex modulo IfaceSlots (xdp/bpf/rstguard.h).
const IfaceSlots = int(xdp.RstguardIfaceSlotsIFACE_SLOTS)

// InterfaceCounters are the counters of each interface in names (ifindex:
// name). Interfaces whose ifindexes share a slot share their counters,
// under both names joined by "+"; frames counted in no named interface's
// slot (an interface since detached) go under "other".
func (d *Dataplane) InterfaceCounters(names map[int]string) (map[string]Counters, error) {
	slots, err := d.readCounters()
	if err != nil {
		return nil, err
	}
	labels := map[int][]string{}
	for index, name := range names {
		slot := index % IfaceSlots
		labels[slot] = append(labels[slot], name)
	}
	out := map[string]Counters{}
	other := make([]uint64, xdp.RstguardCounterCNT_MAX)
	var otherSeen bool
	for slot, raw := range slots {
		if l := labels[slot]; len(l) > 0 {
			slices.Sort(l)
			out[strings.Join(l, "+")] = countersFrom(raw)
			continue
		}
		for i, v := range raw {
			other[i] += v
			otherSeen = otherSeen || v > 0
		}
	}
	if otherSeen {
		out["other"] = countersFrom(other)
	}
	return out, nil
}

// TotalOf sums the counters of every interface InterfaceCounters returned:
// the totals, without reading the map again.
func TotalOf(perInterface map[string]Counters) Counters {
	var total Counters
	total.Add(Counters{}) // every verdict, action and signal present
	for _, c := range perInterface {
		total.Add(c)
	}
	return total
}

// CPUCounters are the counters of each CPU (all interfaces), for a view of
// how the load spreads over RX queues.
func (d *Dataplane) CPUCounters() ([]Counters, error) {
	values, cpus, err := d.readRaw()
	if err != nil {
		return nil, err
	}
	out := make([]Counters, cpus)
	for cpu := range cpus {
		raw := make([]uint64, xdp.RstguardCounterCNT_MAX)
		for key := range len(values) / cpus {
			raw[key%int(xdp.RstguardCounterCNT_MAX)] += values[key*cpus+cpu]
		}
		out[cpu] = countersFrom(raw)
	}
	return out, nil
}

// readCounters sums the counters over CPUs: one slice of CNT_MAX counters
// per interface slot.
func (d *Dataplane) readCounters() ([][]uint64, error) {
	values, cpus, err := d.readRaw()
	if err != nil {
		return nil, err
	}
	slots := make([][]uint64, IfaceSlots)
	for i := range slots {
		slots[i] = make([]uint64, xdp.RstguardCounterCNT_MAX)
	}
	for key := range len(values) / cpus {
		slot, idx := key/int(xdp.RstguardCounterCNT_MAX), key%int(xdp.RstguardCounterCNT_MAX)
		for cpu := range cpus {
			slots[slot][idx] += values[key*cpus+cpu]
		}
	}
	return slots, nil
}

// readRaw reads the whole counters map in one batch: the value of key k on
// CPU c at k*cpus+c.
func (d *Dataplane) readRaw() (values []uint64, cpus int, err error) {
	n := int(xdp.RstguardCounterCNT_MAX) * IfaceSlots
	if cpus, err = ebpf.PossibleCPU(); err != nil {
		return nil, 0, err
	}
	keys := make([]uint32, n)
	values = make([]uint64, n*cpus)
	var cursor ebpf.MapBatchCursor
	got, err := d.objs.Counters.BatchLookup(&cursor, keys, values, nil)
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) || got != n {
		return nil, 0, fmt.Errorf("read counters (%d of %d): %w", got, n, err)
	}
	for i, k := range keys {
		if int(k) != i { // an array's batch comes back in key order
			return nil, 0, fmt.Errorf("read counters: key %d at position %d", k, i)
		}
	}
	return values, cpus, nil
}
func countersFrom(raw []uint64) Counters {
	at := func(c xdp.RstguardCounter) uint64 { return raw[c] }
	c := Counters{
		TCP:                at(xdp.RstguardCounterCNT_TCP),
		NotTCP:             at(xdp.RstguardCounterCNT_NOT_TCP),
		ParseErrors:        at(xdp.RstguardCounterCNT_PARSE_ERROR),
		Fragments:          at(xdp.RstguardCounterCNT_FRAGMENT),
		IPv6ExtLimit:       at(xdp.RstguardCounterCNT_IPV6EXT_LIMIT),
		TinyFragments:      at(xdp.RstguardCounterCNT_TINY_FRAGMENT),
		FlowInserts:        at(xdp.RstguardCounterCNT_FLOW_INSERT),
		FlowInsertFails:    at(xdp.RstguardCounterCNT_FLOW_INSERT_FAIL),
		FlowPromoted:       at(xdp.RstguardCounterCNT_FLOW_PROMOTED),
		Midstream:          at(xdp.RstguardCounterCNT_MIDSTREAM),
		RSTs:               at(xdp.RstguardCounterCNT_RST),
		RSTsNoFlow:         at(xdp.RstguardCounterCNT_RST_NO_FLOW),
		CsumUnchecked:      at(xdp.RstguardCounterCNT_CSUM_UNCHECKED),
		EventsSent:         at(xdp.RstguardCounterCNT_EVENT_SENT),
		EventsLost:         at(xdp.RstguardCounterCNT_EVENT_LOST),
		EventsSuppress:     at(xdp.RstguardCounterCNT_EVENT_SUPPRESSED),
		HoldStarted:        at(xdp.RstguardCounterCNT_HOLD_STARTED),
		HoldJoined:         at(xdp.RstguardCounterCNT_HOLD_JOINED),
		HoldNoSocket:       at(xdp.RstguardCounterCNT_HOLD_NO_SOCKET),
		HoldUnrouted:       at(xdp.RstguardCounterCNT_HOLD_UNROUTED),
		HoldTableFull:      at(xdp.RstguardCounterCNT_HOLD_TABLE_FULL),
		HoldAnswers:        at(xdp.RstguardCounterCNT_HOLD_ANSWER),
		HoldData:           at(xdp.RstguardCounterCNT_HOLD_DATA),
		HoldProvenDrop:     at(xdp.RstguardCounterCNT_HOLD_PROVEN_DROP),
		HoldUnreleasable:   at(xdp.RstguardCounterCNT_HOLD_UNRELEASABLE),
		HoldForged:         at(xdp.RstguardCounterCNT_HOLD_FORGED),
		WireForwarded:      at(xdp.RstguardCounterCNT_WIRE_FORWARDED),
		WireNoPeer:         at(xdp.RstguardCounterCNT_WIRE_NO_PEER),
		WireClosed:         at(xdp.RstguardCounterCNT_WIRE_CLOSED),
		WireRedirectErrors: at(xdp.RstguardCounterCNT_WIRE_REDIRECT_ERRORS),
		Judged: Judged{
			Verdicts:   map[string]uint64{},
			Signals:    map[string]uint64{},
			Confirmed:  at(xdp.RstguardCounterCNT_CONFIRMED),
			Collateral: at(xdp.RstguardCounterCNT_COLLATERAL),
		},
		Actions: map[string]uint64{},

		ConfirmedByAction: map[string]uint64{},
	}
	c.Packets = c.TCP + c.NotTCP + c.ParseErrors + c.Fragments + c.IPv6ExtLimit + c.TinyFragments
	c.raw = raw
	c.Program = map[string]uint64{}
	c.Each(func(name string, v uint64) { c.Program[name] = v })
	for _, v := range Verdicts {
		c.Verdicts[v.String()] = raw[int(xdp.RstguardCounterCNT_VERDICT_BASE)+int(v)]
	}
	for _, a := range Actions {
		c.Actions[a.String()] = raw[int(xdp.RstguardCounterCNT_ACTION_BASE)+int(a)]
	}
	for _, a := range Actions {
		c.ConfirmedByAction[a.String()] = raw[int(xdp.RstguardCounterCNT_CONFIRMED_ACTION_BASE)+int(a)]
	}
	for i := range SignalCount {
		c.Signals[Signal(i).String()] = raw[int(xdp.RstguardCounterCNT_SIGNAL_BASE)+i]
	}
	return c
}
