package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rstguard/rstguard/control/bpffs"
	"github.com/rstguard/rstguard/dataplane"
)

func flowsCommand() command {
	return command{
		name:    "flows",
		args:    "[--json] [--addr CIDR,...] [--port N] [--state STATE] [--limit N]",
		summary: `the flow table: state and each side's baseline (TTL, IP-ID model, window, RTT)`,
		run: func(e *env, fs *flag.FlagSet, args []string) error {
			asJSON := fs.Bool("json", false, "one JSON object per flow")
			var prefixes []netip.Prefix
			fs.Func("addr", "only flows with an address in these CIDRs (or addresses) on either side, comma-separated", func(v string) error {
				p, err := parsePrefixes(strings.Split(v, ","))
				prefixes = append(prefixes, p...)
				return err
			})
			port := fs.Uint("port", 0, "only flows with this port on either side")
			state := fs.String("state", "", "only flows in this state (syn_sent, syn_rcvd, established, closing, reset)")
			limit := fs.Int("limit", 0, "at most this many flows (0: all)")
			pinDir := fs.String("pin-dir", bpffs.DefaultDir, "bpffs directory of the pinned maps")
			if err := parseNoArgs(fs, args); err != nil {
				return err
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
				if len(prefixes) > 0 && !inAny(prefixes, f.Client.Addr(), f.Server.Addr()) {
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
