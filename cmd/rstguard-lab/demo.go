package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rstguard/rstguard/bench/lab"
	"github.com/rstguard/rstguard/control/report"
	"github.com/rstguard/rstguard/dataplane"
)

// curlExitRecv is curl's "Failure when receiving data from the peer".
const curlExitRecv = 56

// act is one run of the demo and the client outcome it must show.
type act struct {
	title    string
	c        lab.Case
	wantExit int
	ok, bad  string
}

// demo replays the incident without and with rstguard, then an injector
// that forges every header, against drop mode and hold mode, and tells
// what happened. In the wire, the gateway is a bump in the wire with rstguard
// (no hop, no address).
func demo(ctx context.Context, l *lab.Lab, wire bool) (bool, error) {
	w := l.Log
	fmt.Fprintln(w, "rstguard demo: the incident, replayed")
	if wire {
		fmt.Fprintln(w, "  network: client (curl) - r1 - r2 - injector - r3 - [rstguard in the wire: two ports, no address] - server")
		fmt.Fprintln(w, "  (r3 and the server share a subnet; without rstguard the run is routed, since a wire box without it carries nothing)")
	} else {
		fmt.Fprintln(w, "  network: client (curl) - r1 - r2 - injector - r3 - gateway - server (www.testaaa.com, Go net/http)")
	}
	fmt.Fprintln(w, "  each box a network namespace with real Linux TCP; routers forward with the kernel")
	fmt.Fprintln(w, "  the injector swallows the client's first HEAD and resets the server in the client's name")

	incident := lab.Case{Placement: lab.InFrontOfServer, Profile: "incident"}
	forger := lab.Case{Placement: lab.InFrontOfServer, Profile: "ttl-forge"}
	acts := []act{
		{title: "1) without rstguard", c: incident, wantExit: curlExitRecv,
			ok:  "curl fails as the customer's did: the server obeyed the forged RST, then reset the client's retransmission",
			bad: "the customer saw exit 56"},
		{title: "2) with rstguard run --mode drop on the gateway", c: incident,
			ok:  "curl succeeds: the forged RST never reached the server; the client's retransmission did",
			bad: "the connection should have survived"},
		{title: "3) a better injector: it copies the client's TTL, IP-ID and sequence (ttl-forge), against --mode drop",
			c: forger, wantExit: curlExitRecv,
			ok:  "curl fails: no header gives this RST away, so drop mode lets it through (it is proven forged only afterwards)",
			bad: "drop mode was expected to let this forgery through"},
		{title: "4) the same injector against --mode hold", c: forger,
			ok:  "curl succeeds: the gateway held the RST and asked the client, which was alive",
			bad: "hold mode should have stopped the forgery"},
	}
	modes := []string{"off", "drop", "drop", "hold"}
	if wire {
		acts[1].title = "2) with rstguard run --wire ethc:eths --mode drop in the wire"
	}
	all := true
	for i, a := range acts {
		a.c.Mode, a.c.Name = modes[i], fmt.Sprintf("demo-%d-%s-%s", i+1, a.c.Profile, modes[i])
		a.c.Wire = wire && a.c.Mode != "off"
		fmt.Fprintf(w, "\n%s\n", a.title)
		o, err := l.Run(ctx, a.c)
		if err != nil {
			return false, err
		}
		printCurl(w, o)
		if o.Exit == a.wantExit {
			fmt.Fprintf(w, "   -> %s\n", a.ok)
		} else {
			fmt.Fprintf(w, "   -> UNEXPECTED (exit %d): %s\n", o.Exit, a.bad)
			all = false
		}
		if a.c.Mode == "off" {
			continue
		}
		fmt.Fprintln(w, "   what rstguard saw on the gateway:")
		narrate(w, o.Records)
		fmt.Fprintf(w, "   evidence:      %s   (pcapng; tshark -r it -T fields -e frame.comment)\n   event log:     %s   (rstguard events --file it)\n",
			strings.Join(o.Evidence, " "), strings.Join(o.Events, " "))
	}
	if all {
		fmt.Fprintln(w, "\ndemo: OK")
	} else {
		fmt.Fprintln(w, "\ndemo: FAILED")
	}
	return all, nil
}

func printCurl(w interface{ Write([]byte) (int, error) }, o lab.Outcome) {
	fmt.Fprintln(w, "   $ curl -I http://www.testaaa.com/")
	if line := firstLine(o.Output); line != "" {
		fmt.Fprintf(w, "   %s\n", line)
	}
	if o.Message != "" {
		fmt.Fprintf(w, "   %s\n", firstLine(o.Message))
	}
	fmt.Fprintf(w, "   (exit %d)\n", o.Exit)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(line)
}

// narrate tells the forged RST's story from the gateway's records.
func narrate(w interface{ Write([]byte) (int, error) }, recs []report.Record) {
	told := false
	for _, r := range recs {
		switch {
		case r.Kind == dataplane.EventRST && (r.Verdict == dataplane.VerdictSpoofed || r.Verdict == dataplane.VerdictSuspect):
			told = true
			fmt.Fprintf(w, "   a RST %s > %s seq %d arrived with TTL %d;", r.Src, r.Dst, r.Seq, r.TTL)
			if r.Expected.TTL != 0 {
				fmt.Fprintf(w, " the client's own packets arrive with TTL %d", r.Expected.TTL)
			}
			fmt.Fprintf(w, "\n   verdict %s (%s), action: %s\n", r.Verdict, strings.Join(signalsOf(r), ", "), r.Action)
			if r.Hops != nil {
				fmt.Fprintf(w, "   the sender of that RST sits ~%d hop(s) from the gateway, the real client ~%d: an on-path device\n",
					r.Hops.Injector, r.Hops.RealSender)
			}
		case r.Kind == dataplane.EventRST && r.Verdict == dataplane.VerdictValid && r.Action == dataplane.ActionPass:
			told = true
			fmt.Fprintf(w, "   a RST %s > %s seq %d arrived with TTL %d, the client's own TTL: verdict valid, passed\n",
				r.Src, r.Dst, r.Seq, r.TTL)
		case r.Kind == dataplane.EventRST && r.Action == dataplane.ActionHold:
			told = true
			fmt.Fprintf(w, "   a RST %s > %s seq %d arrived with TTL %d, the client's own TTL: verdict %s, no header gives it away\n",
				r.Src, r.Dst, r.Seq, r.TTL, r.Verdict)
			fmt.Fprintln(w, "   hold mode parked it and asked the client, in the server's name, whether its connection was alive")
		case r.Kind == dataplane.EventHold && r.Hold != nil:
			told = true
			h := r.Hold
			switch h.Outcome {
			case dataplane.HoldAnsweredACK:
				fmt.Fprintf(w, "   the client answered the probe (seq %d ack %d) with an ACK after %s: alive, so the RST was forged: dropped\n",
					h.ProbeSeq, h.ProbeAck, h.Waited.Round(time.Microsecond))
			case dataplane.HoldData:
				fmt.Fprintf(w, "   the client sent data in sequence after %s: alive, so the RST was forged: dropped\n",
					h.Waited.Round(time.Microsecond))
			default:
				fmt.Fprintf(w, "   the hold ended %s after %s: the RST was released\n", h.Outcome, h.Waited.Round(time.Microsecond))
			}
		case r.Kind == dataplane.EventConfirmed:
			told = true
			fmt.Fprintf(w, "   then %s kept sending (%s seq %d, TTL %d) after the RST in its name: proven forged\n",
				r.Src, r.Flags, r.Seq, r.TTL)
		}
	}
	if !told {
		fmt.Fprintln(w, "   (no suspect or spoofed RST was recorded)")
	}
}

func signalsOf(r report.Record) []string {
	return slices.DeleteFunc(slices.Clone(r.Signals), func(s string) bool { return s == "seq_exact" })
}
