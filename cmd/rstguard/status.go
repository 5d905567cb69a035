package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/rstguard/rstguard/control/attach"
	"github.com/rstguard/rstguard/control/bpffs"
	"github.com/rstguard/rstguard/dataplane"
)

// statusReport is `rstguard status --json`.
type statusReport struct {
	Interfaces    []attach.State `json:"interfaces"`
	Mode          string         `json:"mode"`
	TTLTolerance  uint8          `json:"ttl_tolerance"`
	Allow         []netip.Prefix `json:"allow"`
	FlowTableSize int            `json:"flow_table_size"`
	FlowsTracked  int            `json:"flows_tracked"`
	// Hold mode's settings, what is held now and the AF_XDP sockets.
	HoldMin    string                 `json:"hold_min"`
	HoldMax    string                 `json:"hold_max"`
	HoldFrames uint32                 `json:"hold_frames"`
	ProbeRate  uint32                 `json:"probe_rate"`
	HeldNow    int                    `json:"held_now"`
	Sockets    []dataplane.SocketInfo `json:"sockets"`
	Counters   dataplane.Counters     `json:"counters"`
	Rates      map[string]float64     `json:"rates_per_second"`
	Interval   string                 `json:"interval"`
}

func statusCommand() command {
	return command{
		name: "status",
		args: "[--json] [--interval DURATION]",
		summary: `where rstguard is attached, its policy, table fill, counters and rates
Interfaces are read back over netlink; counters are read twice, --interval
apart, for per-second rates (as xdp-bench's live view).`,
		run: func(e *env, fs *flag.FlagSet, args []string) error {
			asJSON := fs.Bool("json", false, "JSON output")
			interval := fs.Duration("interval", time.Second, "sampling interval for rates (0: totals only)")
			pinDir := fs.String("pin-dir", bpffs.DefaultDir, "bpffs directory of the pinned maps")
			if err := parseNoArgs(fs, args); err != nil {
				return err
			}
			ifaces, err := attach.Attached()
			if err != nil {
				return err
			}
			dp, err := dataplane.OpenPinned(*pinDir)
			if errors.Is(err, dataplane.ErrNotPinned) && len(ifaces) == 0 {
				if *asJSON {
					return json.NewEncoder(e.stdout).Encode(statusReport{Interfaces: []attach.State{}})
				}
				fmt.Fprintln(e.stdout, "rstguard is not attached anywhere and has no pinned state")
				return nil
			}
			if err != nil {
				return err
			}
			defer dp.Close()
			r := statusReport{Interfaces: ifaces, Interval: interval.String(), Rates: map[string]float64{}}
			pol, err := dp.Policy()
			if err != nil {
				return err
			}
			r.Mode, r.TTLTolerance = pol.Mode.String(), pol.TTLTolerance
			r.HoldMin, r.HoldMax, r.HoldFrames, r.ProbeRate = pol.HoldMin.String(), pol.HoldMax.String(), pol.HoldFrames, pol.ProbeRate
			if r.HeldNow, err = dp.Holding(); err != nil {
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
			if r.FlowTableSize, r.FlowsTracked, err = dp.FlowTable(); err != nil {
				return err
			}
			before, err := dp.Counters()
			if err != nil {
				return err
			}
			r.Counters = before
			if *interval > 0 {
				time.Sleep(*interval) // Ctrl-C abandons the command (runUntilInterrupted)
				if r.Counters, err = dp.Counters(); err != nil {
					return err
				}
				secs := interval.Seconds()
				r.Rates["packets"] = float64(r.Counters.Packets-before.Packets) / secs
				r.Rates["rsts"] = float64(r.Counters.RSTs-before.RSTs) / secs
				for _, v := range dataplane.Verdicts {
					r.Rates[v.String()] = float64(r.Counters.Verdicts[v.String()]-before.Verdicts[v.String()]) / secs
				}
				r.Rates["dropped"] = float64(r.Counters.Actions["drop"]-before.Actions["drop"]) / secs
				r.Rates["held"] = float64(r.Counters.Actions["hold"]-before.Actions["hold"]) / secs
			}
			if r.Interfaces == nil {
				r.Interfaces = []attach.State{}
			}
			if *asJSON {
				return json.NewEncoder(e.stdout).Encode(r)
			}
			printStatus(e.stdout, r)
			return nil
		},
	}
}

func printStatus(w io.Writer, r statusReport) {
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
	fmt.Fprintf(w, "\nmode %s, TTL tolerance %d, allow-list %v\n", r.Mode, r.TTLTolerance, r.Allow)
	fmt.Fprintf(w, "hold: window %s to %s, %d frames at most, %d probes/s; held now %d\n",
		r.HoldMin, r.HoldMax, r.HoldFrames, r.ProbeRate, r.HeldNow)
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
	row("dropped", c.Actions["drop"], "dropped")
	row("held", c.Actions["hold"], "held")
	row("  joined a hold", c.HoldJoined, "")
	row("  probe answers", c.HoldAnswers, "")
	row("  not held: no socket", c.HoldNoSocket, "")
	row("  not held: not forwarded (for this box itself, or no route)", c.HoldUnrouted, "")
	row("  not held: table full", c.HoldTableFull, "")
	row("confirmed forged", c.Confirmed, "")
	row("collateral resets", c.Collateral, "")
	row("flows added", c.FlowInserts, "")
	row("  evicted (estimate)", uint64(max(int64(c.FlowInserts)-int64(r.FlowsTracked), 0)), "")
	row("  insert failures", c.FlowInsertFails, "")
	row("not tcp", c.NotTCP, "")
	row("parse errors", c.ParseErrors, "")
	row("fragments", c.Fragments, "")
	row("tiny first fragments", c.TinyFragments, "")
	row("events sent", c.EventsSent, "")
	row("events lost", c.EventsLost, "")
	row("events suppressed", c.EventsSuppress, "")
	tw.Flush()
}
