package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/rstguard/rstguard/control/attach"
	"github.com/rstguard/rstguard/control/bpffs"
	"github.com/rstguard/rstguard/control/daemon"
	"github.com/rstguard/rstguard/control/privilege"
	"github.com/rstguard/rstguard/dataplane"
)

func attachCommand() command {
	return command{
		name: "attach",
		args: "-i IFACE[,IFACE...] [--mode monitor|drop|hold] [--xdp-mode auto|native|generic] [--allow CIDR,...]",
		summary: `put the program on interfaces and exit, without a daemon
The program judges and (in drop mode) drops from its pinned maps alone; no
one reads its events until rstguard run starts (they are counted as lost).
Flags left out keep the pinned policy.`,
		run: func(e *env, fs *flag.FlagSet, args []string) error {
			s := defaultSettings()
			daemonFlags(fs, &s)
			if err := parseNoArgs(fs, args); err != nil {
				return err
			}
			fs.Visit(func(f *flag.Flag) { s.explicit[f.Name] = true })
			cfg, err := s.resolve()
			if err != nil {
				return err
			}
			if err := privilege.Require(privilege.CapBPF, privilege.CapNetAdmin, privilege.CapSysAdmin); err != nil {
				return err
			}
			ifaces := map[string]int{}
			for _, name := range cfg.Interfaces {
				link, err := attach.Link(name)
				if err != nil {
					return err
				}
				ifaces[name] = link.Attrs().Index
			}
			dp, unlock, err := daemon.LoadPinned(cfg.PinDir, cfg.FlowTableSize)
			if err != nil {
				return err
			}
			defer unlock()
			defer dp.Close()
			pol, err := dp.UpdatePolicy(cfg.Policy)
			if err != nil {
				return err
			}
			if err := daemon.SetZones(dp, cfg.Zones, ifaces); err != nil {
				return err
			}
			if s.explicit["allow"] {
				if err := dp.SetAllow(cfg.Allow); err != nil {
					return err
				}
			}
			for _, name := range cfg.Interfaces {
				used, err := attach.Attach(name, dp.Program(), cfg.XDPMode, dp.FlowsMapID())
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "attached to %s (%s XDP), mode %s\n", name, used, pol.Mode)
			}
			return nil
		},
	}
}

func detachCommand() command {
	return command{
		name: "detach",
		args: "-i IFACE[,IFACE...] | --all [--purge]",
		summary: `take the program off interfaces
Also cleans up after a daemon killed with -9. --purge removes the pinned
maps too (the flow table is lost).`,
		run: func(e *env, fs *flag.FlagSet, args []string) error {
			var ifaces []string
			fs.Var(listFlag{&ifaces}, "i", "interfaces, comma-separated")
			all := fs.Bool("all", false, "every interface that carries rstguard")
			purge := fs.Bool("purge", false, "also remove the pinned maps")
			pinDir := fs.String("pin-dir", bpffs.DefaultDir, "bpffs directory of the pinned maps")
			if err := parseNoArgs(fs, args); err != nil {
				return err
			}
			if len(ifaces) == 0 && !*all && !*purge {
				return usagef("say which interfaces: -i IFACE or --all")
			}
			if err := privilege.Require(privilege.CapNetAdmin); err != nil {
				return err
			}
			if *all {
				states, err := attach.Attached()
				if err != nil {
					return err
				}
				for _, s := range states {
					ifaces = append(ifaces, s.Ifname)
				}
			}
			for _, name := range ifaces {
				if err := attach.Detach(name); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "detached from %s\n", name)
			}
			if *purge {
				unlock, err := bpffs.Lock(*pinDir)
				if errors.Is(err, os.ErrNotExist) {
					fmt.Fprintf(e.stdout, "no pinned maps in %s\n", *pinDir)
					return nil
				}
				if err != nil {
					return err
				}
				defer unlock()
				if err := dataplane.Unpin(*pinDir); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "removed pinned maps in %s\n", *pinDir)
			}
			return nil
		},
	}
}

func setCommand() command {
	return command{
		name: "set",
		args: "mode monitor|drop|hold",
		summary: `change the policy at run time, without reattaching
Writes the pinned policy map: the next packet sees it, daemon or not.`,
		run: func(e *env, fs *flag.FlagSet, args []string) error {
			pinDir := fs.String("pin-dir", bpffs.DefaultDir, "bpffs directory of the pinned maps")
			rest, err := parseFlags(fs, args)
			if err != nil {
				return err
			}
			if len(rest) != 2 || rest[0] != "mode" {
				return usagef("want: set mode monitor|drop|hold")
			}
			mode, err := dataplane.ParseMode(rest[1])
			if err != nil {
				return usagef("%v", err)
			}
			dp, err := dataplane.OpenPinned(*pinDir)
			if err != nil {
				return err
			}
			defer dp.Close()
			if _, err := dp.UpdatePolicy(func(p *dataplane.Policy) { p.Mode = mode }); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "mode %s\n", mode)
			return nil
		},
	}
}

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

func flowsCommand() command {
	return command{
		name:    "flows",
		args:    "[--json] [--addr IP] [--port N] [--state STATE] [--limit N]",
		summary: `the flow table: state and each side's baseline (TTL, IP-ID model, window, RTT)`,
		run: func(e *env, fs *flag.FlagSet, args []string) error {
			asJSON := fs.Bool("json", false, "one JSON object per flow")
			addr := fs.String("addr", "", "only flows with this address on either side")
			port := fs.Uint("port", 0, "only flows with this port on either side")
			state := fs.String("state", "", "only flows in this state (syn_sent, syn_rcvd, established, closing, reset)")
			limit := fs.Int("limit", 0, "at most this many flows (0: all)")
			pinDir := fs.String("pin-dir", bpffs.DefaultDir, "bpffs directory of the pinned maps")
			if err := parseNoArgs(fs, args); err != nil {
				return err
			}
			var want netip.Addr
			if *addr != "" {
				a, err := netip.ParseAddr(*addr)
				if err != nil {
					return usagef("--addr: %v", err)
				}
				want = a
			}
			if *state != "" {
				var st dataplane.FlowState
				if err := st.UnmarshalText([]byte(*state)); err != nil {
					return usagef("--state: %v", err)
				}
			}
			dp, err := dataplane.OpenPinned(*pinDir)
			if err != nil {
				return err
			}
			defer dp.Close()
			var flows []dataplane.Flow
			err = dp.Flows(func(f dataplane.Flow) bool {
				if want.IsValid() && f.Client.Addr() != want && f.Server.Addr() != want {
					return true
				}
				if *port != 0 && uint(f.Client.Port()) != *port && uint(f.Server.Port()) != *port {
					return true
				}
				if *state != "" && f.State.String() != *state {
					return true
				}
				flows = append(flows, f)
				return *limit == 0 || len(flows) < *limit
			})
			if err != nil {
				return err
			}
			slices.SortFunc(flows, func(a, b dataplane.Flow) int { return a.Client.Compare(b.Client) })
			if *asJSON {
				enc := json.NewEncoder(e.stdout)
				for _, f := range flows {
					if err := enc.Encode(f); err != nil {
						return err
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CLIENT\tSERVER\tSTATE\tTTL C/S\tIP-ID C/S\tWIN C/S\tRTT C/S\tLAST DATA C/S\tLAST RST")
			for _, f := range flows {
				origin := ""
				if f.Midstream {
					origin = " (mid-stream)"
				}
				last := ""
				if r := f.LastRST; r != nil {
					from := "client"
					if r.FromServer {
						from = "server"
					}
					last = fmt.Sprintf("from %s ttl %d %s", from, r.TTL, r.Verdict)
					if r.Confirmed {
						last += ", confirmed forged"
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s%s\t%d/%d\t%s/%s\t%d/%d\t%s/%s\t%s/%s\t%s\n", f.Client, f.Server, f.State, origin,
					f.ClientSide.TTL, f.ServerSide.TTL, f.ClientSide.IPIDModel, f.ServerSide.IPIDModel,
					f.ClientSide.Window, f.ServerSide.Window, f.ClientSide.RTT, f.ServerSide.RTT,
					ago(f.ClientSide.LastData), ago(f.ServerSide.LastData), last)
			}
			tw.Flush()
			fmt.Fprintf(e.stdout, "%d flow(s)\n", len(flows))
			return nil
		},
	}
}

// ago prints a duration since, rounded for a table; "-" for never.
func ago(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return d.Round(time.Millisecond).String() + " ago"
}

// parseNoArgs parses flags and refuses positional arguments.
func parseNoArgs(fs *flag.FlagSet, args []string) error {
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	return nil
}
