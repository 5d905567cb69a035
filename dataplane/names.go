package dataplane

import (
	"fmt"
	"math/bits"

	"github.com/rstguard/rstguard/xdp"
)

// Verdict is the program's judgement of one RST.
type Verdict uint8

// Verdicts, from xdp/rstguard.h.
const (
	VerdictUnknown = Verdict(xdp.RstguardVerdictVERDICT_UNKNOWN) // no flow, or no baseline to judge against
	VerdictValid   = Verdict(xdp.RstguardVerdictVERDICT_VALID)
	VerdictSuspect = Verdict(xdp.RstguardVerdictVERDICT_SUSPECT)
	VerdictSpoofed = Verdict(xdp.RstguardVerdictVERDICT_SPOOFED)
)

// Verdicts lists every verdict in order.
var Verdicts = []Verdict{VerdictUnknown, VerdictValid, VerdictSuspect, VerdictSpoofed}

var verdictNames = [...]string{"unknown", "valid", "suspect", "spoofed"}

func (v Verdict) String() string { return nameOf(verdictNames[:], int(v), "verdict") }

// MarshalText names the verdict in JSON.
func (v Verdict) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// Action is what the program did with the packet.
type Action uint8

// Actions.
const (
	ActionPass = Action(xdp.RstguardActionACTION_PASS)
	ActionDrop = Action(xdp.RstguardActionACTION_DROP)
)

var actionNames = [...]string{"pass", "drop"}

func (a Action) String() string { return nameOf(actionNames[:], int(a), "action") }

// MarshalText names the action in JSON.
func (a Action) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// EventKind says what an event reports.
type EventKind uint8

// Event kinds.
const (
	EventRST        = EventKind(xdp.RstguardEventKindEVENT_RST)        // a judged RST
	EventConfirmed  = EventKind(xdp.RstguardEventKindEVENT_CONFIRMED)  // an earlier RST proven forged
	EventCollateral = EventKind(xdp.RstguardEventKindEVENT_COLLATERAL) // the victim reset the real sender
)

var eventKindNames = [...]string{"rst", "data_after_rst", "collateral_reset"}

func (k EventKind) String() string { return nameOf(eventKindNames[:], int(k), "kind") }

// MarshalText names the kind in JSON.
func (k EventKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Signal is one piece of evidence about a RST. Weights and sources are in
// xdp/rstguard.c beside judge_rst and in docs/SIGNALS.md.
type Signal uint8

// SignalCount is the number of signals the program knows.
const SignalCount = int(xdp.RstguardSignalSIG_COUNT)

var signalNames = [SignalCount]string{
	xdp.RstguardSignalSIG_SEQ_EXACT:         "seq_exact",
	xdp.RstguardSignalSIG_SEQ_IN_WINDOW:     "seq_in_window",
	xdp.RstguardSignalSIG_SEQ_OUT_OF_WINDOW: "seq_out_of_window",
	xdp.RstguardSignalSIG_ACK_MISMATCH:      "ack_mismatch",
	xdp.RstguardSignalSIG_TTL_OFF:           "ttl_off",
	xdp.RstguardSignalSIG_TTL_DRIFT:         "ttl_drift",
	xdp.RstguardSignalSIG_IPID_OFF_MODEL:    "ipid_off_model",
	xdp.RstguardSignalSIG_IPID_MIRRORED:     "ipid_mirrored",
	xdp.RstguardSignalSIG_WINDOW_MIRRORED:   "window_mirrored",
	xdp.RstguardSignalSIG_WINDOW_NONZERO:    "window_nonzero",
	xdp.RstguardSignalSIG_TS_MISSING:        "ts_missing",
	xdp.RstguardSignalSIG_TS_BACKWARDS:      "ts_backwards",
	xdp.RstguardSignalSIG_TOO_SOON:          "too_soon",
	xdp.RstguardSignalSIG_RST_BURST:         "rst_burst",
	xdp.RstguardSignalSIG_BAD_CHECKSUM:      "bad_checksum",
	xdp.RstguardSignalSIG_FLOWLABEL_OFF:     "flowlabel_off",
	xdp.RstguardSignalSIG_MIDSTREAM:         "midstream",
	xdp.RstguardSignalSIG_COLLATERAL:        "collateral",
	xdp.RstguardSignalSIG_ALLOWED:           "allowed",
}

func (s Signal) String() string { return nameOf(signalNames[:], int(s), "signal") }

// Signals is a set of signals, one bit each.
type Signals uint32

// Has reports whether s is in the set.
func (ss Signals) Has(s Signal) bool { return ss&(1<<s) != 0 }

// Names lists the set's signals by name, in signal order.
func (ss Signals) Names() []string {
	names := make([]string, 0, bits.OnesCount32(uint32(ss)))
	for i := range SignalCount {
		if ss.Has(Signal(i)) {
			names = append(names, signalNames[i])
		}
	}
	return names
}

// IPIDModel is how a sender numbers its IPv4 IDs.
type IPIDModel uint8

var ipidModelNames = [...]string{"unknown", "zero", "per_flow", "global", "random"}

func (m IPIDModel) String() string { return nameOf(ipidModelNames[:], int(m), "ipid_model") }

// MarshalText names the model in JSON.
func (m IPIDModel) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// FlowState is where a connection stands as this box saw it.
type FlowState uint8

var flowStateNames = [...]string{"none", "syn_sent", "syn_rcvd", "established", "closing", "reset"}

func (s FlowState) String() string { return nameOf(flowStateNames[:], int(s), "state") }

// MarshalText names the state in JSON.
func (s FlowState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func nameOf(names []string, i int, what string) string {
	if i >= 0 && i < len(names) {
		return names[i]
	}
	return fmt.Sprintf("%s(%d)", what, i)
}

// UnmarshalText reads the name MarshalText writes.
func (v *Verdict) UnmarshalText(b []byte) error {
	return unmarshalName(verdictNames[:], b, (*uint8)(v))
}

// UnmarshalText reads the name MarshalText writes.
func (a *Action) UnmarshalText(b []byte) error { return unmarshalName(actionNames[:], b, (*uint8)(a)) }

// UnmarshalText reads the name MarshalText writes.
func (k *EventKind) UnmarshalText(b []byte) error {
	return unmarshalName(eventKindNames[:], b, (*uint8)(k))
}

// UnmarshalText reads the name MarshalText writes.
func (m *IPIDModel) UnmarshalText(b []byte) error {
	return unmarshalName(ipidModelNames[:], b, (*uint8)(m))
}

// UnmarshalText reads the name MarshalText writes.
func (s *FlowState) UnmarshalText(b []byte) error {
	return unmarshalName(flowStateNames[:], b, (*uint8)(s))
}

func unmarshalName(names []string, b []byte, out *uint8) error {
	for i, n := range names {
		if n == string(b) {
			*out = uint8(i)
			return nil
		}
	}
	return fmt.Errorf("unknown name %q", b)
}
