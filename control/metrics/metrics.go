// Package metrics exposes rstguard's counters in the Prometheus text format.
// Counters are read from the program's per-CPU maps at scrape time, so a
// scrape always sees exact totals; every series carries the box's name so
// that several gateways federate.
package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rstguard/rstguard/control/attach"
	"github.com/rstguard/rstguard/control/version"
	"github.com/rstguard/rstguard/dataplane"
)

// Source is what the collector reads. FlowTable is read at every scrape:
// the daemon's returns its last count, not a walk of the table.
type Source interface {
	InterfaceCounters(names map[int]string) (map[string]dataplane.Counters, error)
	FlowTable() (capacity, used int, err error)
	Policy() (dataplane.Policy, error)
}

// Collector is a prometheus.Collector over a running rstguard.
type Collector struct {
	src        Source
	interfaces func() []attach.State
	// Written and DecodeErrors count what the daemon did with events.
	written, decodeErrors, suppressed func() uint64

	packets, verdicts, actions, signals, events          *prometheus.Desc
	flows, capacity, inserts, evictions, insertFails     *prometheus.Desc
	confirmed, collateral, attached, written2, decodeErr *prometheus.Desc
	capped, confirmedBy, buildInfo, mode, holdProgram    *prometheus.Desc
	stopped, program                                     *prometheus.Desc
}

// New builds a collector. host labels every series; interfaces reports the
// attach state; written and decodeErrors count the daemon's event handling.
func New(src Source, host string, interfaces func() []attach.State, written, decodeErrors, suppressed func() uint64) *Collector {
	labels := prometheus.Labels{"host": host}
	d := func(name, help string, vars ...string) *prometheus.Desc {
		return prometheus.NewDesc("rstguard_"+name, help, vars, labels)
	}
	return &Collector{
		src: src, interfaces: interfaces, written: written, decodeErrors: decodeErrors, suppressed: suppressed,
		packets:  d("packets_total", "Frames seen by the XDP program, by interface and how far it parsed them.", "iface", "class"),
		verdicts: d("rst_verdicts_total", "RSTs judged, by interface and verdict.", "iface", "verdict"),
		actions:  d("rst_actions_total", "RSTs passed, dropped or held, by interface.", "iface", "action"),
		program: d("program_counters_total", "Every counter of the XDP program (enum counter in xdp/bpf/rstguard.h, "+
			"named as there without CNT_), by interface: the figures rstguard status --json shows.", "iface", "counter"),
		stopped: d("rsts_stopped_total", "Forged RSTs that never reached their receiver, by interface: dropped, or held and "+
			"proven forged by the daemon.", "iface"),
		signals:     d("rst_signals_total", "RSTs that showed each signal.", "signal"),
		events:      d("events_total", "Ring-buffer events: sent, lost (buffer full) or suppressed (per-flow budget).", "outcome"),
		flows:       d("flows_tracked", "Connections in the flow table (as the source last counted them: the daemon every 10 s)."),
		capacity:    d("flow_table_capacity", "Flow table size."),
		inserts:     d("flow_inserts_total", "Flows added to the table."),
		insertFails: d("flow_insert_failures_total", "Flow table updates that failed; those flows pass untracked."),
		evictions:   d("flow_evictions_estimate", "Flows added minus flows present: an upper bound on LRU evictions."),
		confirmed:   d("confirmed_forged_total", "RSTs proven forged after the fact (the claimed sender kept sending)."),
		confirmedBy: d("confirmed_forged_by_action_total", "RSTs proven forged, by interface and the action the RST got: drop or hold (stopped), pass (the connection died).", "iface", "action"),
		buildInfo:   d("build_info", "This build of rstguard (always 1).", "version", "commit", "go_version", "bpf_abi"),
		mode:        d("mode", "1 for the policy's mode (monitor, drop, hold), 0 for the others.", "mode"),
		collateral:  d("collateral_resets_total", "Resets of a real sender by the victim of a forged RST."),
		attached:    d("attached", "1 when rstguard is attached to the interface.", "iface", "xdp_mode"),
		written2:    d("events_written_total", "Events written to the event log."),
		capped:      d("events_rate_capped_total", "Events the event log's rate cap (--events-rate) left out."),
		decodeErr:   d("event_decode_errors_total", "Ring-buffer records that could not be decoded."),
		holdProgram: d("hold_program_total", "Hold mode as the XDP program saw it, by event: holds started, RSTs joined "+
			"to a hold (dropped in the kernel with their count on the hold: they share its fate), probe answers and data redirected, RSTs dropped because "+
			"their sender was proven alive moments ago, and RSTs passed for want of a socket, a route, room in "+
			"the hold table, or because the daemon could not release them.", "event"),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.packets, c.verdicts, c.actions, c.stopped, c.program, c.signals, c.events, c.flows,
		c.capacity, c.inserts, c.insertFails, c.evictions, c.confirmed, c.collateral, c.attached, c.written2, c.decodeErr,
		c.capped, c.confirmedBy, c.buildInfo, c.mode, c.holdProgram} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	states := c.interfaces()
	names := map[int]string{}
	for _, s := range states {
		names[s.Index] = s.Ifname
	}
	perIface, err := c.src.InterfaceCounters(names)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.packets, err)
		return
	}
	cnt := dataplane.TotalOf(perIface)
	for iface, ic := range perIface {
		counter(c.packets, ic.TCP, iface, "tcp")
		counter(c.packets, ic.NotTCP, iface, "not_tcp")
		counter(c.packets, ic.ParseErrors, iface, "parse_error")
		counter(c.packets, ic.Fragments, iface, "fragment")
		counter(c.packets, ic.IPv6ExtLimit, iface, "ipv6_ext_limit")
		counter(c.packets, ic.TinyFragments, iface, "tiny_fragment")
		for k, v := range ic.Verdicts {
			counter(c.verdicts, v, iface, k)
		}
		for k, v := range ic.Actions {
			counter(c.actions, v, iface, k)
		}
		for k, v := range ic.ConfirmedByAction {
			counter(c.confirmedBy, v, iface, k)
		}
		counter(c.stopped, ic.Stopped(), iface)
		ic.Each(func(name string, v uint64) { counter(c.program, v, iface, name) })
	}
	v := version.Get()
	gauge(c.buildInfo, 1, v.Version, v.Commit, v.GoVersion, strconv.Itoa(int(v.BPFABI)))
	if pol, err := c.src.Policy(); err == nil {
		for _, m := range dataplane.Modes {
			on := 0.0
			if m == pol.Mode {
				on = 1
			}
			gauge(c.mode, on, m.String())
		}
	}
	for k, v := range cnt.Signals {
		counter(c.signals, v, k)
	}
	counter(c.events, cnt.EventsSent, "sent")
	counter(c.events, cnt.EventsLost, "lost")
	counter(c.events, cnt.EventsSuppress, "suppressed")
	counter(c.inserts, cnt.FlowInserts)
	counter(c.insertFails, cnt.FlowInsertFails)
	counter(c.confirmed, cnt.Confirmed)
	counter(c.collateral, cnt.Collateral)
	for event, v := range map[string]uint64{
		"started": cnt.HoldStarted, "joined": cnt.HoldJoined, "probe_answer": cnt.HoldAnswers,
		"data_seen": cnt.HoldData, "proven_drop": cnt.HoldProvenDrop, "no_socket": cnt.HoldNoSocket,
		"unrouted": cnt.HoldUnrouted, "table_full": cnt.HoldTableFull, "unreleasable": cnt.HoldUnreleasable,
	} {
		counter(c.holdProgram, v, event)
	}

	capacity, used, _ := c.src.FlowTable()
	gauge(c.flows, float64(used))
	gauge(c.capacity, float64(capacity))
	gauge(c.evictions, float64(max(int64(cnt.FlowInserts)-int64(used), 0)))

	for _, s := range states {
		v := 0.0
		if s.Ours {
			v = 1
		}
		gauge(c.attached, v, s.Ifname, s.Mode)
	}
	counter(c.written2, c.written())
	counter(c.decodeErr, c.decodeErrors())
	counter(c.capped, c.suppressed())
}
