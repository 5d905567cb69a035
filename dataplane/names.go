package dataplane

import (
	"fmt"
	"math/bits"
	"strings"

	"github.com/cilium/ebpf/btf"

	"github.com/rstguard/rstguard/xdp"
)

// Every name rstguard prints for an enum value comes from the C identifier in
// xdp/bpf/rstguard.h, read from the embedded program's BTF: SIG_SEQ_EXACT is
// "seq_exact", VERDICT_SPOOFED is "spoofed". Adding a signal, verdict, action,
// event kind or hold outcome to the header is the whole change; renaming a C
// identifier renames a JSON value, which the golden tests catch.
var (
	verdictNames     = enumNames("verdict", "VERDICT_")
	actionNames      = enumNames("action", "ACTION_")
	eventKindNames   = enumNames("event_kind", "EVENT_")
	signalNames      = enumNames("signal", "SIG_")
	ipidModelNames   = enumNames("ipid_model", "IPID_")
	flowStateNames   = enumNames("flow_state", "STATE_")
	modeNames        = enumNames("mode", "MODE_")
	holdOutcomeNames = enumNames("hold_outcome", "HOLD_")
	signalWeights    = enumValues("signal_weight", "SIGW_")
	signalCauses     = enumValues("signal_causes", "SIGC_")
	causeNames       = enumNames("benign_cause", "CAUSE_")
	counterNames     = scalarCounterNames()
)

// scalarCounterNames names the program's counters (enum counter) by index,
// CNT_HOLD_NO_SOCKET as "hold_no_socket", up to the first *_BASE: from
// there on the counters are families (verdicts, actions, signals) named by
// their own enums.
func scalarCounterNames() []string {
	var names []string
	for _, v := range btfEnum("counter").Values {
		if strings.HasSuffix(v.Name, "_BASE") {
			break
		}
		if v.Value != uint64(len(names)) {
			panic(fmt.Sprintf("enum counter is not dense at %s", v.Name))
		}
		names = append(names, strings.ToLower(strings.TrimPrefix(v.Name, "CNT_")))
	}
	return names
}

// enumValues maps a C enum's names, prefix trimmed and lower case, to their values.
func enumValues(enum, prefix string) map[string]int {
	out := map[string]int{}
	for _, v := range btfEnum(enum).Values {
		out[strings.ToLower(strings.TrimPrefix(v.Name, prefix))] = int(v.Value)
	}
	return out
}

func btfEnum(enum string) *btf.Enum {
	spec, err := xdp.LoadRstguard()
	if err != nil {
		panic(fmt.Sprintf("read embedded program: %v", err)) // the build embeds it: cannot happen
	}
	var e *btf.Enum
	if err := spec.Types.TypeByName(enum, &e); err != nil {
		panic(fmt.Sprintf("enum %s not in the program's BTF: %v", enum, err))
	}
	return e
}

// enumNames lists a dense C enum's names by value, prefix trimmed and lower
// case; a trailing *_COUNT is the enum's size, not a name.
func enumNames(enum, prefix string) []string {
	var names []string
	for _, v := range btfEnum(enum).Values {
		if strings.HasSuffix(v.Name, "_COUNT") {
			continue
		}
		if v.Value != uint64(len(names)) {
			panic(fmt.Sprintf("enum %s is not dense at %s", enum, v.Name))
		}
		names = append(names, strings.ToLower(strings.TrimPrefix(v.Name, prefix)))
	}
	return names
}

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

func (v Verdict) String() string { return nameOf(verdictNames, int(v), "verdict") }

// MarshalText names the verdict in JSON.
func (v Verdict) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText reads the name MarshalText writes.
func (v *Verdict) UnmarshalText(b []byte) error { return unmarshalName(verdictNames, b, (*uint8)(v)) }

// Action is what the program did with the packet.
type Action uint8

// Actions.
const (
	ActionPass = Action(xdp.RstguardActionACTION_PASS)
	ActionDrop = Action(xdp.RstguardActionACTION_DROP)
	ActionHold = Action(xdp.RstguardActionACTION_HOLD) // redirected to the daemon (hold mode)
)

// Actions lists every action in order.
var Actions = []Action{ActionPass, ActionDrop, ActionHold}

func (a Action) String() string { return nameOf(actionNames, int(a), "action") }

// MarshalText names the action in JSON.
func (a Action) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText reads the name MarshalText writes.
func (a *Action) UnmarshalText(b []byte) error { return unmarshalName(actionNames, b, (*uint8)(a)) }

// EventKind says what an event reports.
type EventKind uint8

// Event kinds.
const (
	EventRST        = EventKind(xdp.RstguardEventKindEVENT_RST)              // a judged RST
	EventConfirmed  = EventKind(xdp.RstguardEventKindEVENT_DATA_AFTER_RST)   // an earlier RST proven forged
	EventCollateral = EventKind(xdp.RstguardEventKindEVENT_COLLATERAL_RESET) // the victim reset the real sender
	EventHold       = EventKind(xdp.RstguardEventKindEVENT_HOLD)             // how a held RST was decided
	// EventTinyFragment is a first fragment too short for the TCP header (RFC 1858).
	EventTinyFragment = EventKind(xdp.RstguardEventKindEVENT_TINY_FRAGMENT)
	// EventPolicyChange is the daemon's record of a change of the policy or
	// the allow-list at run time (rstguard set).
	EventPolicyChange = EventKind(xdp.RstguardEventKindEVENT_POLICY_CHANGE)
	// EventContext is a packet of a flow shortly after a suspect or spoofed
	// RST, sent for the evidence (its Verdict is the RST's).
	EventContext = EventKind(xdp.RstguardEventKindEVENT_CONTEXT)
)

// EventKinds lists every event kind in order.
var EventKinds = []EventKind{EventRST, EventConfirmed, EventCollateral, EventHold, EventTinyFragment,
	EventPolicyChange, EventContext}

func (k EventKind) String() string { return nameOf(eventKindNames, int(k), "kind") }

// MarshalText names the kind in JSON.
func (k EventKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads the name MarshalText writes.
func (k *EventKind) UnmarshalText(b []byte) error {
	return unmarshalName(eventKindNames, b, (*uint8)(k))
}

// Signal is one piece of evidence about a RST. Weights and sources are in
// xdp/bpf/judge.h beside judge_rst and in docs/SIGNALS.md.
type Signal uint8

// SignalCount is the number of signals the program knows.
const SignalCount = int(xdp.RstguardSignalSIG_COUNT)

// SignalHarmless marks a RST that its receiver would discard (the harm
// model, docs/SIGNALS.md): it is passed in every mode, whatever its verdict.
const SignalHarmless = Signal(xdp.RstguardSignalSIG_HARMLESS)

// SignalAllowed marks a RST judged spoofed whose endpoint is allow-listed:
// reported, never dropped.
const SignalAllowed = Signal(xdp.RstguardSignalSIG_ALLOWED)

func (s Signal) String() string { return nameOf(signalNames, int(s), "signal") }

// Weight is how much the signal counts toward a verdict (enum signal_weight):
// 0 for informational ones, 1 weak, 2 medium, 4 strong.
func (s Signal) Weight() int { return signalWeights[s.String()] }

// Causes names the benign causes that can raise the signal (enum
// signal_causes, enum benign_cause), in the header's order: the verdict
// counts the signals one cause explains together once.
func (s Signal) Causes() []string {
	mask := signalCauses[s.String()]
	var out []string
	for c, name := range causeNames {
		if mask&(1<<c) != 0 {
			out = append(out, name)
		}
	}
	return out
}

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

func (m IPIDModel) String() string { return nameOf(ipidModelNames, int(m), "ipid_model") }

// MarshalText names the model in JSON.
func (m IPIDModel) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText reads the name MarshalText writes.
func (m *IPIDModel) UnmarshalText(b []byte) error {
	return unmarshalName(ipidModelNames, b, (*uint8)(m))
}

// FlowState is where a connection stands as this box saw it.
type FlowState uint8

func (s FlowState) String() string { return nameOf(flowStateNames, int(s), "state") }

// MarshalText names the state in JSON.
func (s FlowState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads the name MarshalText writes.
func (s *FlowState) UnmarshalText(b []byte) error {
	return unmarshalName(flowStateNames, b, (*uint8)(s))
}

// HoldOutcome is how a held RST was decided.
type HoldOutcome uint8

// Hold outcomes.
const (
	HoldAnsweredACK  = HoldOutcome(xdp.RstguardHoldOutcomeHOLD_PROBE_ANSWERED_ACK) // alive: forged, dropped
	HoldAnsweredRST  = HoldOutcome(xdp.RstguardHoldOutcomeHOLD_PROBE_ANSWERED_RST) // no connection: released
	HoldData         = HoldOutcome(xdp.RstguardHoldOutcomeHOLD_DATA_DURING_HOLD)   // alive: forged, dropped
	HoldTimeout      = HoldOutcome(xdp.RstguardHoldOutcomeHOLD_TIMEOUT)            // no answer: released
	HoldFull         = HoldOutcome(xdp.RstguardHoldOutcomeHOLD_FULL)               // no room: released at once
	HoldRateLimited  = HoldOutcome(xdp.RstguardHoldOutcomeHOLD_PROBE_RATE_LIMITED) // no probe allowed: released
	HoldProbeUnsent  = HoldOutcome(xdp.RstguardHoldOutcomeHOLD_PROBE_UNSENT)       // probe not sent: released
	HoldOutcomeCount = int(xdp.RstguardHoldOutcomeHOLD_OUTCOME_COUNT)
)

func (o HoldOutcome) String() string { return nameOf(holdOutcomeNames, int(o), "hold_outcome") }

// Forged says whether the outcome proves the held RST forged (it was dropped).
func (o HoldOutcome) Forged() bool { return o == HoldAnsweredACK || o == HoldData }

// MarshalText names the outcome in JSON.
func (o HoldOutcome) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// UnmarshalText reads the name MarshalText writes.
func (o *HoldOutcome) UnmarshalText(b []byte) error {
	return unmarshalName(holdOutcomeNames, b, (*uint8)(o))
}

func nameOf(names []string, i int, what string) string {
	if i >= 0 && i < len(names) {
		return names[i]
	}
	return fmt.Sprintf("%s(%d)", what, i)
}

func unmarshalName(names []string, b []byte, out *uint8) error {
	for i, n := range names {
		if n == string(b) {
			*out = uint8(i)
			return nil
		}
	}
	return fmt.Errorf("unknown name %q: use one of %s", b, strings.Join(names, ", "))
}
