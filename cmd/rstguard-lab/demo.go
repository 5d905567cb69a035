package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/rstguard/rstguard/bench/lab"
	"github.com/rstguard/rstguard/control/report"
)

// curlExitRecv is curl's "Failure when receiving data from the peer".
const curlExitRecv = 56

// demo replays the incident twice and tells what happened.
func demo(ctx context.Context, l *lab.Lab) (bool, error) {
	w := l.Log
	fmt.Fprintln(w, "rstguard demo: the incident, replayed")
	fmt.Fprintln(w, "  network: client (curl) - r1 - r2 - injector - r3 - gateway - server (www.testaaa.com, Go net/http)")
	fmt.Fprintln(w, "  each box a network namespace with real Linux TCP; routers forward with the kernel")
	fmt.Fprintln(w, "  the injector swallows the client's first HEAD and resets the server in the client's name")

	base := lab.Case{Name: "demo-incident", Placement: lab.InFrontOfServer, Profile: "incident"}
	without, with := base, base
	without.Mode, without.Name = "off", "demo-without"
	with.Mode, with.Name = "drop", "demo-with"

	fmt.Fprintln(w, "\n1) without rstguard")
	o1, err := l.Run(ctx, without)
	if err != nil {
		return false, err
	}
	printCurl(w, o1)
	ok1 := o1.Exit == curlExitRecv
	if ok1 {
		fmt.Fprintln(w, "   -> curl fails as the customer's did: the server obeyed the forged RST, then reset the client's retransmission")
	} else {
		fmt.Fprintf(w, "   -> UNEXPECTED: the customer saw exit %d\n", curlExitRecv)
	}

	fmt.Fprintln(w, "\n2) with rstguard run --mode drop on the gateway")
	o2, err := l.Run(ctx, with)
	if err != nil {
		return false, err
	}
	printCurl(w, o2)
	ok2 := o2.Exit == 0
	if ok2 {
		fmt.Fprintln(w, "   -> curl succeeds: the forged RST never reached the server; the client's retransmission did")
	} else {
		fmt.Fprintln(w, "   -> UNEXPECTED: the connection should have survived")
	}

	fmt.Fprintln(w, "\nwhat rstguard saw on the gateway:")
	narrate(w, o2.Records)
	fmt.Fprintf(w, "\nevidence pcap: %s   (tcpdump -r it)\nevent log:     %s   (rstguard events --file it)\n",
		strings.Join(o2.Evidence, " "), strings.Join(o2.Events, " "))
	if ok1 && ok2 {
		fmt.Fprintln(w, "\ndemo: OK")
	} else {
		fmt.Fprintln(w, "\ndemo: FAILED")
	}
	return ok1 && ok2, nil
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
		case r.Kind == "rst" && (r.Verdict == "spoofed" || r.Verdict == "suspect"):
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
		case r.Kind == "data_after_rst":
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
