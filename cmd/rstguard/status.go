package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rstguard/rstguard/control/attach"
	"github.com/rstguard/rstguard/control/bpffs"
	"github.com/rstguard/rstguard/control/daemon"
	"github.com/rstguard/rstguard/control/health"
	"github.com/rstguard/rstguard/control/privilege"
	"github.com/rstguard/rstguard/dataplane"
)

// statusReport is `rstguard status --json`, with the policy's settings
// (MarshalJSON).
type statusReport struct {
	Interfaces    []attach.State `json:"interfaces"`
	Allow         []netip.Prefix `json:"allow"`
	FlowTableSize int            `json:"flow_table_size"`
	FlowsTracked  int            `json:"flows_tracked"`
	// What hold mode holds now, and its AF_XDP sockets.
	HeldNow   int                    `json:"held_now"`
	Sockets   []dataplane.SocketInfo `json:"sockets"`
	Counters  dataplane.Counters     `json:"counters"`
	Rates     map[string]float64     `json:"rates_per_second"`
	Interval  string                 `json:"interval"`
	IntervalS float64                `json:"interval_seconds"`
	// Daemon is the daemon that reads the events, if one runs; Uptime
	// since it started.
	Daemon  *daemon.State `json:"daemon,omitempty"`
	Uptime  string        `json:"uptime,omitempty"`
	UptimeS *float64      `json:"uptime_seconds,omitempty"`
	// Health is the daemon's assessment (health.Assess), or, with no
	// daemon running, status's own from what it sees; Warnings are its
	// reasons' texts, what an operator should act on.
	Health   health.Result `json:"health"`
	Warnings []string      `json:"warnings"`
	// Wire are the daemon's --wire pairs, each with its ports' forwarding
	// counters.
	Wire []wirePairStatus `json:"wire"`
	// policy is the pinned policy; nil when nothing is pinned.
	policy *dataplane.Policy
}

// MarshalJSON writes the policy's settings first, each under its key
// (dataplane.Setting.Key), a duration also in seconds (KEY_seconds), then
// the report's fields: a new setting shows with no change here. With
// nothing pinned, each key is still there, empty ("" or 0), for scripts.
func (r statusReport) MarshalJSON() ([]byte, error) {
	type fields statusReport // the report without this method
	rest, err := json.Marshal(fields(r))
	if err != nil {
		return nil, err
	}
	out := []byte{'{'}
	member := func(key string, value any) {
		k, _ := json.Marshal(key)
		v, _ := json.Marshal(value) // strings and numbers
		out = fmt.Appendf(out, "%s:%s,", k, v)
	}
	for _, s := range dataplane.Settings {
		value, secs := any(0), 0.0
		if s.JSONString() {
			value = ""
		}
		_, isDuration := s.Seconds(dataplane.Policy{})
		if r.policy != nil {
			value = s.JSON(*r.policy)
			secs, _ = s.Seconds(*r.policy)
		}
		member(s.Key(), value)
		if isDuration {
			member(s.Key()+"_seconds", secs)
		}
	}
	return append(out, rest[1:]...), nil
}

// mode is the pinned policy's mode; empty when nothing is pinned.
func (r statusReport) mode() string {
	if r.policy == nil {
		return ""
	}
	return r.policy.Mode.String()
}

// wirePairStatus is one wire pair in status: what each of its ports
// received and sent on by the other, and what it could not.
type wirePairStatus struct {
	Pair  string                `json:"pair"` // "A:B"
	Fail  string                `json:"fail"` // --wire-fail: open or closed
	Ports map[string]wireCounts `json:"ports"`
}

type wireCounts struct {
	Forwarded      uint64 `json:"forwarded"`
	NoPeer         uint64 `json:"no_peer"`
	ClosedDrops    uint64 `json:"closed_drops"`
	RedirectErrors uint64 `json:"redirect_errors"` // redirected, then lost on the way out
}

func statusCommand() command {
	return command{
		name: "status",
		args: "[--json] [--interval DURATION] [--check] [--watch]",
		summary: `where rstguard is attached, its daemon, policy, table fill, counters and rates
Interfaces are read back over netlink; counters are read twice, --interval
apart, for per-second rates. --check prints one line and exits as a Nagios
plugin does: 0 OK, 1 WARNING (attached, but no daemon reads the events, the
table is nearly full or events are being lost), 2 CRITICAL (not attached),
3 UNKNOWN. --watch is rstguard top.`,
		run: func(e *env, fs *flag.FlagSet, args []string) error {
			asJSON := fs.Bool("json", false, "JSON output")
			interval := fs.Duration("interval", time.Second, "sampling interval for rates (0: totals only)")
			pinDir := fs.String("pin-dir", bpffs.DefaultDir, "bpffs directory of the pinned maps")
			check := fs.Bool("check", false, "one line and a Nagios exit code (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)")
			watch := fs.Bool("watch", false, "redraw a live view every --interval until Ctrl-C (rstguard top)")
			if err := parseNoArgs(fs, args); err != nil {
				return err
			}
			if *watch {
				return runTop(e, *pinDir, topOptions{interval: *interval})
			}
			if *check {
				// What this user cannot read is unknown, not down: Nagios runs
				// its checks unprivileged (docs/DEPLOYMENT.md, "A monitoring user").
				if err := privilege.Require(privilege.CapBPF); err != nil {
					return nagiosCheck(e.stdout, statusReport{}, fmt.Errorf("%w: %v", errCannotRead, err))
				}
				r, err := readStatus(*pinDir, *interval)
				if errors.Is(err, os.ErrPermission) {
					err = fmt.Errorf("%w: %v", errCannotRead, err)
				}
				return nagiosCheck(e.stdout, r, err)
			}
			r, err := readStatus(*pinDir, *interval)
			if errors.Is(err, dataplane.ErrNotPinned) && len(r.Interfaces) == 0 {
				if *asJSON {
					return json.NewEncoder(e.stdout).Encode(r)
				}
				fmt.Fprintln(e.stdout, "rstguard is not attached anywhere and has no pinned state")
				return nil
			}
			if err != nil {
				return err
			}
			if *asJSON {
				return json.NewEncoder(e.stdout).Encode(r)
			}
			printStatus(e.stdout, r)
			return nil
		},
	}
}

// readStatus gathers the report; with dataplane.ErrNotPinned it still
// holds the interfaces.
func readStatus(pinDir string, interval time.Duration) (statusReport, error) {
	r := statusReport{Interfaces: []attach.State{}, Interval: interval.String(), IntervalS: interval.Seconds(),
		Rates: map[string]float64{}, Warnings: []string{}, Wire: []wirePairStatus{}}
	ifaces, err := attach.Attached()
	if err != nil {
		return r, err
	}
	if ifaces != nil {
		r.Interfaces = ifaces
	}
	dp, err := dataplane.OpenPinned(pinDir)
	if err != nil {
		return r, err
	}
	defer dp.Close()
	if err := r.readMaps(dp, interval); err != nil {
		return r, err
	}
	if err := r.readDaemon(dp, pinDir, interval); err != nil {
		return r, err
	}
	for _, x := range r.Health.Reasons {
		r.Warnings = append(r.Warnings, x.Text)
	}
	return r, nil
}

// readMaps reads what the pinned maps hold: the policy, what is held and
// the sockets, the allow-list, the flow table's fill, and the counters,
// twice interval apart for the rates.
func (r *statusReport) readMaps(dp *dataplane.Dataplane, interval time.Duration) error {
	pol, err := dp.Policy()
	if err != nil {
		return err
	}
	r.policy = &pol
	if r.HeldNow, _, err = dp.Holding(); err != nil {
		return err
	}
	if r.Sockets, err = dp.Sockets(); err != nil {
		return err
	}
	if r.Sockets == nil {
		r.Sockets = []dataplane.SocketInfo{}
	}
	if r.Allow, err = dp.Allow(); err != nil {
		return err
	}
	if r.Allow == nil {
		r.Allow = []netip.Prefix{} // "allow": [], as "sockets" and "interfaces"
	}
	if r.FlowTableSize, r.FlowsTracked, err = dp.FlowTable(); err != nil {
		return err
	}
	before, err := dp.Counters()
	if err != nil {
		return err
	}
	r.Counters = before
	if interval > 0 {
		time.Sleep(interval) // Ctrl-C abandons the command (runUntilInterrupted)
		if r.Counters, err = dp.Counters(); err != nil {
			return err
		}
		r.Rates = rates(before, r.Counters, interval.Seconds())
	}
	return nil
}

// readDaemon reads the running daemon, its wire pairs and its health; with
// no daemon running, the health is status's own assessment of what it
// sees.
func (r *statusReport) readDaemon(dp *dataplane.Dataplane, pinDir string, interval time.Duration) error {
	if d, err := daemon.Running(pinDir); err == nil {
		up := time.Since(d.Started).Round(time.Second)
		secs := up.Seconds()
		r.Daemon, r.Uptime, r.UptimeS = &d, up.String(), &secs
		if r.Wire, err = wireStatus(dp, d, r.Interfaces); err != nil {
			return err
		}
		if d.Health != nil {
			r.Health = health.Aged(*d.Health, time.Now())
			d.Health = nil // said once, as "health"
		} else { // a daemon of an older build
			r.Health = health.Assess(statusView(*r, true, interval), time.Now())
		}
	} else {
		// A daemon killed with -9 leaves its hold records and socket
		// registrations behind; the sockets closed with it, so nothing
		// holds: the records only wait for detach or the next start. (The
		// registrations alone redirect nothing: their XSKMAP slots closed.)
		r.Health = health.Assess(statusView(*r, false, interval), time.Now())
		r.HeldNow, r.Sockets = 0, []dataplane.SocketInfo{}
	}
	return nil
}

// wireStatus is each of the daemon's wire pairs with its ports' counters.
func wireStatus(dp *dataplane.Dataplane, d daemon.State, ifaces []attach.State) ([]wirePairStatus, error) {
	out := []wirePairStatus{}
	if len(d.Wire) == 0 {
		return out, nil
	}
	names := map[int]string{}
	for _, i := range ifaces {
		names[i.Index] = i.Ifname
	}
	perPort, err := dp.InterfaceCounters(names)
	if err != nil {
		return nil, err
	}
	for _, pair := range d.Wire {
		a, b, _ := strings.Cut(pair, ":")
		w := wirePairStatus{Pair: pair, Fail: d.WireFail, Ports: map[string]wireCounts{}}
		for _, port := range []string{a, b} {
			c := perPort[port]
			w.Ports[port] = wireCounts{Forwarded: c.WireForwarded, NoPeer: c.WireNoPeer, ClosedDrops: c.WireClosed,
				RedirectErrors: c.WireRedirectErrors}
		}
		out = append(out, w)
	}
	return out, nil
}

// statusView is what status itself sees, for health.Assess when no daemon
// gives its own assessment: the interfaces carrying rstguard, the flow
// table, events lost over the interval.
func statusView(r statusReport, daemon bool, interval time.Duration) health.View {
	v := health.View{Mode: r.mode(), Daemon: daemon, TableKnown: true, FlowsTracked: r.FlowsTracked,
		FlowTableSize: r.FlowTableSize, EventsLost: uint64(r.Rates["events_lost"] * interval.Seconds())}
	if !daemon {
		v.StaleHoldRecords = r.HeldNow
	}
	for _, i := range r.Interfaces {
		v.Interfaces = append(v.Interfaces, health.Interface{Name: i.Ifname, Present: true, Ours: i.Ours})
	}
	return v
}

// rates are the per-second rates status --json reports and top draws,
// between two readings secs apart. A counter that went down (its
// interface's slot was reused) reads as 0, not as a wrapped huge rate.
func rates(before, after dataplane.Counters, secs float64) map[string]float64 {
	rate := func(a, b uint64) float64 { return float64(b-min(a, b)) / secs }
	r := map[string]float64{
		"packets":     rate(before.Packets, after.Packets),
		"rsts":        rate(before.RSTs, after.RSTs),
		"dropped":     rate(before.Action(dataplane.ActionDrop), after.Action(dataplane.ActionDrop)),
		"stopped":     rate(before.Stopped(), after.Stopped()),
		"held":        rate(before.Action(dataplane.ActionHold), after.Action(dataplane.ActionHold)),
		"events_lost": rate(before.EventsLost, after.EventsLost),
		"forwarded":   rate(before.WireForwarded, after.WireForwarded), // by wire pairs
	}
	for _, v := range dataplane.Verdicts {
		r[v.String()] = rate(before.Verdicts[v.String()], after.Verdicts[v.String()])
	}
	return r
}

// Nagios plugin exit codes.
const (
	nagiosOK       = 0
	nagiosWarning  = 1
	nagiosCritical = 2
	nagiosUnknown  = 3
)

// exitCode makes a command exit with code, having printed what it had to.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit %d", int(c)) }

// errCannotRead: this user may not read rstguard's state; the check is
// UNKNOWN, as the Nagios plugin guidelines have it, not CRITICAL.
var errCannotRead = errors.New("cannot read rstguard's state (read the metrics endpoint instead, or run as root)")

// nagiosCheck prints one line in the Nagios plugin format, with perfdata,
// and exits with its code.
func nagiosCheck(w io.Writer, r statusReport, err error) error {
	names := make([]string, 0, len(r.Interfaces))
	for _, i := range r.Interfaces {
		names = append(names, i.Ifname)
	}
	code, label, text := nagiosOK, "OK", ""
	switch {
	case errors.Is(err, errCannotRead):
		code, label, text = nagiosUnknown, "UNKNOWN", err.Error()
	case err != nil && len(r.Interfaces) == 0:
		code, label, text = nagiosCritical, "CRITICAL", "not attached: "+err.Error()
	case err != nil:
		code, label, text = nagiosUnknown, "UNKNOWN", err.Error()
	case r.Health.Level != health.OK:
		code, label, text = int(r.Health.Level), r.Health.Level.String(), r.Health.Text()
	default:
		text = fmt.Sprintf("%s mode on %s, daemon pid %d up %s", r.mode(), strings.Join(names, ","), r.Daemon.PID, r.Uptime)
	}
	fmt.Fprintf(w, "RSTGUARD %s - %s | flows=%d;;;0;%d rsts=%dc spoofed=%dc dropped=%dc stopped=%dc events_lost=%dc\n", label, text,
		r.FlowsTracked, r.FlowTableSize, r.Counters.RSTs, r.Counters.Verdict(dataplane.VerdictSpoofed), r.Counters.Action(dataplane.ActionDrop),
		r.Counters.Stopped(), r.Counters.EventsLost)
	if code == nagiosOK {
		return nil
	}
	return exitCode(code)
}

func printStatus(w io.Writer, r statusReport) {
	for _, x := range r.Health.Reasons {
		fmt.Fprintf(w, "%s: %s\n", x.Level, x.Text)
	}
	if d := r.Daemon; d != nil {
		fmt.Fprintf(w, "daemon pid %d, up %s, %s, host %s\n  events %s, evidence %s, metrics %s, pins %s\n", d.PID, r.Uptime,
			d.Version, d.Host, d.Events, orNone(d.Pcap), orNone(d.Metrics), d.PinDir)
	}
	if len(r.Warnings) > 0 || r.Daemon != nil {
		fmt.Fprintln(w)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INTERFACE\tINDEX\tXDP\tPROG\tLINK")
	if len(r.Interfaces) == 0 {
		fmt.Fprintln(tw, "(none)\t\t\t\t")
	}
	for _, s := range r.Interfaces {
		up := "down"
		if s.Up {
			up = "up"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\n", s.Ifname, s.Index, s.Mode, s.ProgID, up)
	}
	tw.Flush()
	for _, p := range r.Wire {
		a, b, _ := strings.Cut(p.Pair, ":")
		fmt.Fprintf(w, "\nwire %s <-> %s (fail %s): %s forwarded %d, %s forwarded %d; no peer %d, dropped closed %d, redirect errors %d\n",
			a, b, p.Fail, a, p.Ports[a].Forwarded, b, p.Ports[b].Forwarded,
			p.Ports[a].NoPeer+p.Ports[b].NoPeer, p.Ports[a].ClosedDrops+p.Ports[b].ClosedDrops,
			p.Ports[a].RedirectErrors+p.Ports[b].RedirectErrors)
	}
	// The settings by the names run and set take (dataplane.Settings).
	fmt.Fprintf(w, "\npolicy %s\nallow-list %v; held now %d\n", r.policy, r.Allow, r.HeldNow)
	for _, s := range r.Sockets {
		name := strconv.Itoa(s.Ifindex)
		for _, i := range r.Interfaces {
			if i.Index == s.Ifindex {
				name = i.Ifname
			}
		}
		fmt.Fprintf(w, "  AF_XDP socket %s queue %d: %s mode\n", name, s.Queue, s.Mode)
	}
	fmt.Fprintf(w, "flows %d of %d (%.1f%%)\n\n", r.FlowsTracked, r.FlowTableSize,
		100*float64(r.FlowsTracked)/float64(max(r.FlowTableSize, 1)))
	c := r.Counters
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "COUNTER\tTOTAL\tPER SECOND\t")
	row := func(name string, total uint64, rateKey string) {
		rate := ""
		if v, ok := r.Rates[rateKey]; ok {
			rate = strconv.FormatFloat(v, 'f', 1, 64)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t\n", name, total, rate)
	}
	row("packets", c.Packets, "packets")
	row("rsts", c.RSTs, "rsts")
	for _, v := range dataplane.Verdicts {
		row("  "+v.String(), c.Verdicts[v.String()], v.String())
	}
	row("stopped (dropped, or held and proven forged)", c.Stopped(), "stopped")
	row("dropped", c.Action(dataplane.ActionDrop), "dropped")
	row("held", c.Action(dataplane.ActionHold), "held")
	row("flows evicted (estimate)", uint64(max(int64(c.FlowInserts)-int64(r.FlowsTracked), 0)), "")
	tw.Flush()
	// Every counter of the program, by the name the metrics and
	// program_counters give it (docs/EVENTS.md says what each counts).
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "PROGRAM COUNTER\tTOTAL\t")
	c.Each(func(name string, v uint64) { fmt.Fprintf(tw, "%s\t%d\t\n", name, v) })
	tw.Flush()
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
