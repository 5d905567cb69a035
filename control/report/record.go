// Package report turns the dataplane's events into what people and log
// pipelines read: one JSON object per event (the same schema for
// `rstguard analyze --json` and the daemon's event log) or one text line.
package report

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/rstguard/rstguard/dataplane"
	"github.com/rstguard/rstguard/internal/tcpflag"
)

// Record is one event as JSON. Keys are a scripting interface: add, never
// rename (testdata/records.golden.jsonl pins them).
type Record struct {
	EVE
	Time     time.Time           `json:"time"`
	Kind     dataplane.EventKind `json:"kind"`
	Host     string              `json:"host,omitempty"`
	Iface    string              `json:"iface,omitempty"`
	Src      netip.AddrPort      `json:"src"`
	Dst      netip.AddrPort      `json:"dst"`
	Zone     uint16              `json:"zone,omitempty"`
	Flags    string              `json:"flags"`
	Seq      uint32              `json:"seq"`
	Ack      uint32              `json:"ack"`
	TTL      uint8               `json:"ttl"`
	IPID     uint16              `json:"ip_id"`
	Window   uint16              `json:"window"`
	Verdict  dataplane.Verdict   `json:"verdict"`
	Signals  []string            `json:"signals"`
	Action   dataplane.Action    `json:"action"`
	Score    uint8               `json:"score"`
	Expected dataplane.Expected  `json:"expected"`
	// RST is, for kind data_after_rst, the RST proven forged; the other
	// fields then describe the real sender's packet that proved it.
	RST *dataplane.ForgedRST `json:"rst,omitempty"`
	// Hold is, for kind hold, how a held RST was decided; the other fields
	// describe the (first) held RST.
	Hold *dataplane.HoldResult `json:"hold,omitempty"`
	// Hops estimates how far away the RST's sender and the real sender sit
	// from this box, from their TTLs; set for forged RSTs whose claimed
	// sender has a TTL baseline.
	Hops *HopEstimate `json:"hops,omitempty"`
	// Policy is, for kind policy_change, the setting that changed.
	Policy *PolicyChange `json:"policy,omitempty"`
	// File and Frame say where the event's frame is: the daemon's evidence
	// file, or the capture analyze read; frames count from 1, as
	// Wireshark's frame.number does.
	File  string `json:"file,omitempty"`
	Frame uint64 `json:"frame,omitempty"`
}

// PolicyChange is one setting changed at run time.
type PolicyChange struct {
	Setting string `json:"setting"` // as the flag names it: mode, ttl-tolerance, allow, ...
	From    string `json:"from"`
	To      string `json:"to"`
}

// PolicyRecord is the event of a policy change, as the daemon writes it.
func PolicyRecord(at time.Time, host string, c PolicyChange) Record {
	r := Record{Time: at, Kind: dataplane.EventPolicyChange, Host: host, Policy: &c, Signals: []string{}}
	r.EVE = newEVE(r)
	return r
}

// HopEstimate places an injector by TTL, as censorship-localisation studies
// do: each TTL is taken to start at the nearest common initial value above it
// (32, 64, 128, 255), so initial - seen is the hop count to this box.
type HopEstimate struct {
	TTLDelta   int `json:"ttl_delta"`   // forged TTL minus the real sender's
	Injector   int `json:"injector"`    // hops from the injector to this box
	RealSender int `json:"real_sender"` // hops from the real sender to this box
}

// EstimateHops compares a forged packet's TTL with the real sender's.
func EstimateHops(forged, real uint8) HopEstimate {
	return HopEstimate{
		TTLDelta:   int(forged) - int(real),
		Injector:   hopsFrom(forged),
		RealSender: hopsFrom(real),
	}
}

func hopsFrom(ttl uint8) int {
	for _, initial := range []int{32, 64, 128, 255} {
		if int(ttl) <= initial {
			return initial - int(ttl)
		}
	}
	return 0
}

// Logged says whether an event has a record of its own in the event log and
// in analyze's output: a context event (a packet that followed a suspect
// RST) is for the evidence only, beside the RST's own frame.
func Logged(e dataplane.Event) bool { return e.Kind != dataplane.EventContext }

// IsEvidence says whether an event's frame goes to the evidence file: the
// frame of a suspect or spoofed RST, of what followed it (the packet that
// proved it forged, the flow's next packets as context, the victim's
// collateral reset), and of a hold (the held RST and the answer that
// decided it).
func IsEvidence(e dataplane.Event) bool {
	return len(e.Frame) > 0 && (e.Kind == dataplane.EventHold || e.Kind == dataplane.EventCollateral ||
		e.Verdict == dataplane.VerdictSpoofed || e.Verdict == dataplane.VerdictSuspect)
}

// FromEvent builds the record of one event; iface and host may be empty.
func FromEvent(e dataplane.Event, iface, host string) Record {
	r := Record{
		Time: e.Time, Kind: e.Kind, Host: host, Iface: iface,
		Src: e.Src, Dst: e.Dst, Zone: e.Zone, Flags: tcpflag.String(e.Flags),
		Seq: e.Seq, Ack: e.Ack, TTL: e.TTL, IPID: e.IPID, Window: e.Window,
		Verdict: e.Verdict, Signals: e.Signals.Names(), Action: e.Action,
		Score: e.Score, Expected: e.Expected, RST: e.RST, Hold: e.Hold,
	}
	switch {
	case e.RST != nil && e.RST.TTL != e.TTL:
		h := EstimateHops(e.RST.TTL, e.TTL)
		r.Hops = &h
	case e.Kind == dataplane.EventRST && e.Verdict == dataplane.VerdictSpoofed &&
		e.Expected.TTL != 0 && e.TTL != e.Expected.TTL:
		h := EstimateHops(e.TTL, e.Expected.TTL)
		r.Hops = &h
	}
	r.EVE = newEVE(r)
	return r
}

// Text is the record as one line for a terminal.
func (r Record) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s ", r.Time.Format("2006-01-02T15:04:05.000000Z07:00"))
	if r.Iface != "" {
		fmt.Fprintf(&b, "%s ", r.Iface)
	}
	r.writeBody(&b)
	if r.File != "" {
		fmt.Fprintf(&b, " [%s frame %d]", r.File, r.Frame)
	}
	return b.String()
}

// Comment is what the evidence capture says on the event's frame: the
// verdict, score, signals and expected values, so that the file stands on
// its own (Wireshark: frame.comment contains "spoofed").
func (r Record) Comment() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rstguard %s %s score %d: ", r.Kind, r.Verdict, r.Score)
	r.writeBody(&b)
	return b.String()
}

// writeBody writes what Text and Comment share: the packet and the judgement.
func (r Record) writeBody(b *strings.Builder) {
	switch r.Kind {
	case dataplane.EventPolicyChange:
		fmt.Fprintf(b, "POLICY %s: %s -> %s", r.Policy.Setting, r.Policy.From, r.Policy.To)
		return
	case dataplane.EventContext:
		fmt.Fprintf(b, "%s > %s [%s] seq %d ttl %d id %d: the flow after a %s RST", r.Src, r.Dst, r.Flags, r.Seq, r.TTL,
			r.IPID, r.Verdict)
		return
	case dataplane.EventHold:
		h := r.Hold
		fmt.Fprintf(b, "HOLD %s > %s [%s] seq %d ttl %d: %s after %s (%d held)", r.Src, r.Dst, r.Flags, r.Seq, r.TTL,
			h.Outcome, h.Waited.Round(time.Microsecond), h.Frames)
		switch {
		case h.Outcome.Forged():
			b.WriteString(" -> forged, dropped")
		default:
			b.WriteString(" -> released")
		}
	case dataplane.EventTinyFragment:
		fmt.Fprintf(b, "TINY FRAGMENT %s > %s: a first fragment too short for the TCP header (RFC 1858) -> %s",
			r.Src.Addr(), r.Dst.Addr(), r.Action)
	case dataplane.EventConfirmed:
		fmt.Fprintf(b, "CONFIRMED FORGED: %s > %s kept sending after a RST in its name ([%s] seq %d ttl %d after the RST seq %d ttl %d, judged %s then)",
			r.Src, r.Dst, r.Flags, r.Seq, r.TTL, r.RST.Seq, r.RST.TTL, r.RST.VerdictThen)
	default:
		fmt.Fprintf(b, "%s > %s [%s] seq %d", r.Src, r.Dst, r.Flags, r.Seq)
		if strings.Contains(r.Flags, ".") {
			fmt.Fprintf(b, " ack %d", r.Ack)
		}
		fmt.Fprintf(b, " ttl %d id %d win %d: %s", r.TTL, r.IPID, r.Window, r.Verdict)
		if len(r.Signals) > 0 {
			fmt.Fprintf(b, " (%s)", strings.Join(r.Signals, ","))
		}
		fmt.Fprintf(b, " -> %s", r.Action)
		if x := r.Expected; r.Verdict != dataplane.VerdictUnknown {
			b.WriteString("; expected")
			if x.Seq != nil {
				fmt.Fprintf(b, " seq %d", *x.Seq)
			}
			if x.Ack != nil && strings.Contains(r.Flags, ".") {
				fmt.Fprintf(b, " ack %d", *x.Ack)
			}
			if x.TTL != 0 {
				fmt.Fprintf(b, " ttl %d ip-id %s", x.TTL, x.IPIDModel)
			}
		}
		if r.Kind == dataplane.EventCollateral {
			b.WriteString("; collateral: the victim resets the real sender after a forged RST")
		}
	}
	if r.Hops != nil {
		fmt.Fprintf(b, "; injector ~%d hops away, real sender ~%d (ttl delta %+d)",
			r.Hops.Injector, r.Hops.RealSender, r.Hops.TTLDelta)
	}
}
