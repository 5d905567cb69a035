package report

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/rstguard/rstguard/dataplane"
)

// ReadRecords reads a JSON-lines event log. Lines that do not parse are
// counted, not fatal: a log cut by a crash is still worth reading.
func ReadRecords(r io.Reader) (recs []Record, bad int, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var rec Record
		if json.Unmarshal([]byte(line), &rec) != nil {
			bad++
			continue
		}
		recs = append(recs, rec)
	}
	return recs, bad, sc.Err()
}

// Summary is what an operator acts on: an event log's verdicts and signals,
// counted as the program's counters count them (dataplane.Judged), and what
// only events carry.
type Summary struct {
	Events int `json:"events"`
	dataplane.Judged
	Dropped int `json:"dropped"`
	// WouldDrop counts the RSTs passed although judged spoofed, neither
	// harmless nor allow-listed: what drop mode would have dropped (the
	// figure that monitor mode's "read the report first" needs).
	WouldDrop int `json:"would_drop"`
	// Holds counts hold mode's decisions by outcome.
	Holds map[string]int `json:"holds"`
	// TopFlows are the connections with most suspect or spoofed RSTs;
	// TopTargets the addresses those RSTs were sent to.
	TopFlows   []Count `json:"top_flows"`
	TopTargets []Count `json:"top_targets"`
	// Injector places the forger by TTL, over every forged RST whose real
	// sender's TTL is known.
	Injector *InjectorEstimate `json:"injector,omitempty"`
}

// Count is one row of a top list.
type Count struct {
	Key   string `json:"key"`
	Count int    `json:"count"`
}

// InjectorEstimate summarises the hop estimates of forged RSTs.
type InjectorEstimate struct {
	Samples int `json:"samples"`
	// MedianTTLDelta is forged minus real TTL as seen here.
	MedianTTLDelta int `json:"median_ttl_delta"`
	// MedianHops is how far from this box the forged RSTs were sent, and
	// MedianSenderHops how far the real senders are.
	MedianHops       int `json:"median_hops"`
	MedianSenderHops int `json:"median_sender_hops"`
}

// Summarize aggregates records; top bounds the top lists.
func Summarize(recs []Record, top int) Summary {
	s := Summary{Judged: dataplane.Judged{Verdicts: map[string]uint64{}, Signals: map[string]uint64{}},
		Holds: map[string]int{}}
	flows, targets := map[string]int{}, map[string]int{}
	var deltas, hops, senderHops []int
	for _, r := range recs {
		s.Events++
		switch r.Kind {
		case dataplane.EventConfirmed:
			s.Confirmed++
		case dataplane.EventCollateral:
			s.Collateral++
		case dataplane.EventHold:
			if r.Hold == nil {
				continue
			}
			s.Holds[r.Hold.Outcome.String()]++
			if r.Hold.Outcome.Forged() {
				s.Dropped++
			}
			continue
		}
		if r.Kind != dataplane.EventConfirmed {
			s.Verdicts[r.Verdict.String()]++
			for _, sig := range r.Signals {
				s.Signals[sig]++
			}
			if r.Action == dataplane.ActionDrop {
				s.Dropped++
			}
			if r.Verdict == dataplane.VerdictSpoofed && r.Action == dataplane.ActionPass &&
				!slices.Contains(r.Signals, dataplane.SignalHarmless.String()) && !slices.Contains(r.Signals, dataplane.SignalAllowed.String()) {
				s.WouldDrop++
			}
		}
		if r.Verdict == dataplane.VerdictSuspect || r.Verdict == dataplane.VerdictSpoofed {
			flows[flowKey(r.Src.String(), r.Dst.String())]++
			if r.Kind != dataplane.EventConfirmed {
				targets[r.Dst.Addr().String()]++
			}
		}
		if r.Hops != nil {
			deltas = append(deltas, r.Hops.TTLDelta)
			hops = append(hops, r.Hops.Injector)
			senderHops = append(senderHops, r.Hops.RealSender)
		}
	}
	s.TopFlows = topN(flows, top)
	s.TopTargets = topN(targets, top)
	if len(hops) > 0 {
		s.Injector = &InjectorEstimate{Samples: len(hops), MedianTTLDelta: median(deltas),
			MedianHops: median(hops), MedianSenderHops: median(senderHops)}
	}
	return s
}

// flowKey names a connection the same way from both directions.
func flowKey(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return a + " <> " + b
}

func topN[N int | uint64](m map[string]N, n int) []Count {
	keys := slices.Collect(maps.Keys(m))
	// Most first; ties by key, so that the list is the same every run.
	slices.SortFunc(keys, func(a, b string) int {
		return cmp.Or(cmp.Compare(m[b], m[a]), cmp.Compare(a, b))
	})
	out := []Count{}
	for _, k := range keys[:min(n, len(keys))] {
		out = append(out, Count{k, int(m[k])})
	}
	return out
}

func median(v []int) int {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// Print writes the summary for a person. The first line says what the
// events were, so that its counts add up: judged RSTs (by verdict), hold
// decisions, and the rest (confirmations, policy changes).
func (s Summary) Print(w io.Writer) {
	judged, holds := 0, 0
	for _, n := range s.Verdicts {
		judged += int(n)
	}
	for _, n := range s.Holds {
		holds += n
	}
	fmt.Fprintf(w, "%s: %s judged (", counted(s.Events, "event"), counted(judged, "RST"))
	for i, v := range []dataplane.Verdict{dataplane.VerdictValid, dataplane.VerdictSuspect, dataplane.VerdictSpoofed, dataplane.VerdictUnknown} {
		if i > 0 {
			fmt.Fprint(w, ", ")
		}
		fmt.Fprintf(w, "%d %s", s.Verdict(v), v)
	}
	fmt.Fprintf(w, "), %s, %d other\n", counted(holds, "hold decision"), s.Events-judged-holds)
	fmt.Fprintf(w, "%s dropped, %d proven forged after the fact, %s of real senders\n",
		counted(s.Dropped, "RST"), s.Confirmed, counted(int(s.Collateral), "collateral reset"))
	if s.WouldDrop > 0 {
		fmt.Fprintf(w, "%s passed that drop mode would have dropped (spoofed, not harmless, not allow-listed)\n", counted(s.WouldDrop, "RST"))
	}
	if len(s.Holds) > 0 {
		fmt.Fprintln(w, "\nheld RSTs, by outcome:")
		for _, c := range topN(s.Holds, len(s.Holds)) {
			fmt.Fprintf(w, "  %-20s %d\n", c.Key, c.Count)
		}
	}
	if len(s.Signals) > 0 {
		fmt.Fprintln(w, "\nsignals:")
		for _, c := range topN(s.Signals, len(s.Signals)) {
			fmt.Fprintf(w, "  %-20s %d\n", c.Key, c.Count)
		}
	}
	if len(s.TopFlows) > 0 {
		fmt.Fprintln(w, "\nmost attacked connections (suspect or spoofed RSTs):")
		for _, c := range s.TopFlows {
			fmt.Fprintf(w, "  %-50s %d\n", c.Key, c.Count)
		}
		fmt.Fprintln(w, "\nmost targeted hosts:")
		for _, c := range s.TopTargets {
			fmt.Fprintf(w, "  %-50s %d\n", c.Key, c.Count)
		}
	}
	if inj := s.Injector; inj != nil {
		fmt.Fprintf(w, "\ninjector: forged RSTs arrive with TTL %+d against the real senders (median of %d);\n",
			inj.MedianTTLDelta, inj.Samples)
		fmt.Fprintf(w, "  assuming common initial TTLs, the injector sits ~%d hops from this box, the real senders ~%d.\n",
			inj.MedianHops, inj.MedianSenderHops)
		if inj.MedianHops < inj.MedianSenderHops {
			fmt.Fprintln(w, "  It is on the path between this box and the senders: look at the routers that many hops out.")
		}
	}
}

// counted is "1 RST", "2 RSTs".
func counted(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
