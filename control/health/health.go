// Package health is rstguard's one judgement of whether its protection is in
// force. Assess turns what can be seen (interfaces, sockets, writes, the ring
// buffer, the flow table) into OK, WARNING or CRITICAL with the reasons; the
// daemon assesses every second, and /healthz, the rstguard_health metric,
// rstguard status, status --check and the daemon's log all show that one
// result (docs/DEPLOYMENT.md, "Health").
package health

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Level orders how bad things are: Nagios's 0, 1, 2.
type Level uint8

const (
	OK Level = iota
	// Warning: RSTs are judged as the mode says, but something an operator
	// relies on is degraded (reporting, capacity, what the box can see).
	Warning
	// Critical: the chosen protection is not in force somewhere.
	Critical
)

func (l Level) String() string { return [...]string{"OK", "WARNING", "CRITICAL"}[l] }

// MarshalText gives the JSON "ok", "warning", "critical".
func (l Level) MarshalText() ([]byte, error) { return []byte(strings.ToLower(l.String())), nil }

// UnmarshalText reads what MarshalText wrote.
func (l *Level) UnmarshalText(b []byte) error {
	for c := OK; c <= Critical; c++ {
		if strings.EqualFold(string(b), c.String()) {
			*l = c
			return nil
		}
	}
	return fmt.Errorf("health level %q: want ok, warning or critical", b)
}

// Reason codes: the rstguard_health metric's reason label and the JSON's
// "reason". Scripts and alert rules use them: add codes, never rename one.
const (
	NotAttached     = "not_attached"     // a configured interface lacks our program (or is gone)
	HoldNoSocket    = "hold_no_socket"   // hold mode, but a queue has no AF_XDP socket: its RSTs pass
	NoDaemon        = "no_daemon"        // attached, but no daemon reads the events
	DaemonStalled   = "daemon_stalled"   // the daemon's last result is older than StaleAfter
	StaleHolds      = "stale_holds"      // a stopped daemon's hold records wait for cleanup
	EventsFailing   = "events_failing"   // the event log cannot be written
	EvidenceFailing = "evidence_failing" // the evidence pcapng cannot be written
	EventsLost      = "events_lost"      // the ring buffer lost events lately
	TableFull       = "table_full"       // the flow table is nearly full: the LRU evicts live flows
	OneWay          = "one_way"          // most flows are seen in one direction only
)

// Reasons lists every code, for the metric's series.
var Reasons = []string{NotAttached, HoldNoSocket, NoDaemon, DaemonStalled, StaleHolds, EventsFailing, EvidenceFailing, EventsLost,
	TableFull, OneWay}

// Reason is one finding.
type Reason struct {
	Code  string `json:"reason"`
	Level Level  `json:"level"`
	Text  string `json:"text"`
}

// Result is an assessment: the worst level among its reasons (OK with none).
type Result struct {
	Level   Level     `json:"level"`
	Reasons []Reason  `json:"reasons"`
	At      time.Time `json:"at"`
}

// Text is the reasons' texts, worst first, joined for one line.
func (r Result) Text() string {
	texts := make([]string, len(r.Reasons))
	for i, x := range r.Reasons {
		texts[i] = x.Text
	}
	return strings.Join(texts, "; ")
}

// Same reports whether two results have the same level and reasons (their
// texts may differ in figures): the daemon logs a change, not a figure.
func (r Result) Same(o Result) bool {
	if r.Level != o.Level || len(r.Reasons) != len(o.Reasons) {
		return false
	}
	for i := range r.Reasons {
		if r.Reasons[i].Code != o.Reasons[i].Code || r.Reasons[i].Level != o.Reasons[i].Level {
			return false
		}
	}
	return true
}

// Of returns the level of code in r, and whether it is there.
func (r Result) Of(code string) (Level, bool) {
	for _, x := range r.Reasons {
		if x.Code == code {
			return x.Level, true
		}
	}
	return OK, false
}

// Interface is what is seen of one interface rstguard should judge on.
type Interface struct {
	Name  string
	Index int
	// Present: the interface exists; Ours: our program (with this pin
	// directory's maps) is attached to it.
	Present, Ours bool
	// Queues is its RX queue count; SocketQueues those with a hold socket.
	Queues, SocketQueues int
}

// View is what Assess judges from.
type View struct {
	Mode       string // monitor, drop or hold
	Interfaces []Interface
	// Daemon: a daemon reads the program's events. StaleHoldRecords are
	// hold records left by one that stopped (only seen without a daemon).
	Daemon           bool
	StaleHoldRecords int
	// EventsError and EvidenceError are the last write error of each file
	// while it has not recovered; "" while writing works.
	EventsError, EvidenceError string
	// EventsLost is how many events the ring buffer lost within the
	// daemon's look-back (LostWindow).
	EventsLost uint64
	// FlowsTracked of FlowTableSize; TableKnown is false until counted.
	FlowsTracked, FlowTableSize int
	TableKnown                  bool
	// OneWayFlows and TwoWayFlows are a sample of flows carrying data: seen
	// from one side only, and from both.
	OneWayFlows, TwoWayFlows int
}

// TableFullFill is the fill beyond which the table is reported full (the
// alert rule RstguardFlowTableFull uses the same).
const TableFullFill = 0.9

// LostWindow is how long a loss of events keeps the WARNING: long enough for
// a poll every minute to see it.
const LostWindow = time.Minute

// oneWayMin is how many one-way flows a sample needs before they count: a
// quiet box's few scans or half-open flows are not asymmetric routing.
const oneWayMin = 20

// Assess judges a view.
func Assess(v View, now time.Time) Result {
	r := Result{At: now, Reasons: []Reason{}}
	add := func(code string, l Level, format string, args ...any) {
		r.Reasons = append(r.Reasons, Reason{Code: code, Level: l, Text: fmt.Sprintf(format, args...)})
	}
	var bare, gone, noSocket []string
	for _, i := range v.Interfaces {
		switch {
		case !i.Present:
			gone = append(gone, i.Name)
		case !i.Ours:
			bare = append(bare, i.Name)
		case v.Mode == "hold" && v.Daemon && i.SocketQueues < i.Queues:
			noSocket = append(noSocket, fmt.Sprintf("%s (%d of %d queues)", i.Name, i.Queues-i.SocketQueues, i.Queues))
		}
	}
	switch {
	case len(v.Interfaces) == 0:
		add(NotAttached, Critical, "not attached to any interface: nothing is judged")
	case len(gone) > 0 || len(bare) > 0:
		var parts []string
		if len(bare) > 0 {
			parts = append(parts, "not attached to "+strings.Join(bare, ", "))
		}
		if len(gone) > 0 {
			parts = append(parts, strings.Join(gone, ", ")+" gone")
		}
		add(NotAttached, Critical, "%s: RSTs there are not judged", strings.Join(parts, "; "))
	}
	if len(noSocket) > 0 {
		// Suspect RSTs on those queues pass unheld: hold mode, the mode
		// chosen, is not in force there.
		add(HoldNoSocket, Critical, "hold mode without an AF_XDP socket on %s: suspect RSTs there pass unheld",
			strings.Join(noSocket, ", "))
	}
	if !v.Daemon && len(v.Interfaces) > 0 {
		add(NoDaemon, Warning, "attached, but no daemon reads its events: it judges (and drops, outside monitor mode) "+
			"on its own; start rstguard run, or rstguard detach")
	}
	if v.StaleHoldRecords > 0 {
		add(StaleHolds, Warning, "%d hold records are a stopped daemon's: nothing holds (rstguard detach or the next start clears them)",
			v.StaleHoldRecords)
	}
	if v.EventsError != "" {
		add(EventsFailing, Warning, "the event log cannot be written (%s): events are counted as lost, judging goes on", v.EventsError)
	}
	if v.EvidenceError != "" {
		add(EvidenceFailing, Warning, "the evidence pcapng cannot be written (%s): frames are counted as lost, judging goes on", v.EvidenceError)
	}
	if v.EventsLost > 0 {
		add(EventsLost, Warning, "%d events lost in the last %s (ring buffer full): counters stay exact, the event log misses some",
			v.EventsLost, LostWindow)
	}
	if v.TableKnown {
		if fill := float64(v.FlowsTracked) / float64(max(v.FlowTableSize, 1)); fill > TableFullFill {
			add(TableFull, Warning, "flow table %.0f%% full: the LRU evicts flows, which are then judged unknown; raise --flow-table-size", 100*fill)
		}
	}
	if v.OneWayFlows >= oneWayMin && v.OneWayFlows > v.TwoWayFlows {
		// Asymmetric routing: a RST is judged against what its sender's
		// peer showed, which this box never sees (docs/DEPLOYMENT.md).
		add(OneWay, Warning, "%d of %d sampled flows carry data one way only: this box sees half of most conversations "+
			"(asymmetric routing?) and can judge little; put it where both directions pass",
			v.OneWayFlows, v.OneWayFlows+v.TwoWayFlows)
	}
	slices.SortStableFunc(r.Reasons, func(a, b Reason) int { return int(b.Level) - int(a.Level) })
	for _, x := range r.Reasons {
		r.Level = max(r.Level, x.Level)
	}
	return r
}

// StateEvery is how often the daemon gives status a fresh result at least
// (it gives every change at once); one older than StaleAfter means the
// daemon has stopped assessing.
const (
	StateEvery = 5 * time.Second
	StaleAfter = 3 * StateEvery
)

// Aged is r as a reader sees it at now: a result older than StaleAfter
// gains a WARNING, as the daemon that made it no longer assesses.
func Aged(r Result, now time.Time) Result {
	if age := now.Sub(r.At); age > StaleAfter {
		r.Reasons = append(slices.Clone(r.Reasons), Reason{Code: DaemonStalled, Level: Warning,
			Text: fmt.Sprintf("the daemon's last health assessment is %s old: it is not assessing", age.Round(time.Second))})
		r.Level = max(r.Level, Warning)
	}
	return r
}
