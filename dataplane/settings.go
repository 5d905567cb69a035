package dataplane

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rstguard/rstguard/xdp"
)

// Setting is one setting of the policy the program reads at run time: the
// one row from which `rstguard run`'s flag and config key (Name, with _ for
// -), `rstguard set`, Policy.String, the policy_change events, status's
// names and JSON keys, the policy map's layout (configOf, policyOf) and the
// default policy all come. Its bounds are Policy.Check's, for run and set
// alike. Adding a setting is a field of the header's struct config and its
// default there (get_config() and enum policy_default), a field of Policy,
// and a row here.
type Setting struct {
	Name  string
	Usage string
	// Kind is what a config file gives: "a number", "a string", or "a
	// duration such as \"250ms\"" (a string too).
	Kind string
	// choices are the only values, where there are few (the modes).
	choices []string
	get     func(Policy) string
	set     func(*Policy, string) error
	// config is the setting's field in the program's struct config, def
	// its default there (the header's); toRaw and fromRaw carry the value
	// between Policy and that field, in the field's unit.
	config  func(*xdp.RstguardConfig) *uint32
	def     uint32
	toRaw   func(Policy) uint32
	fromRaw func(*Policy, uint32)
}

// Get is the setting's value in p, as Set reads it.
func (s Setting) Get(p Policy) string { return s.get(p) }

// Set reads a value into p; an error names the setting and what it wants.
func (s Setting) Set(p *Policy, value string) error { return s.set(p, value) }

// JSONString says whether a config file gives the setting as a JSON string
// (else a number).
func (s Setting) JSONString() bool { return s.Kind != kindNumber }

// Key is the setting's key in a config file and in status --json: its name
// with _ for -.
func (s Setting) Key() string { return strings.ReplaceAll(s.Name, "-", "_") }

// JSON is the setting's value in p as a config file gives it: a string
// (JSONString), else a number.
func (s Setting) JSON(p Policy) any {
	if s.JSONString() {
		return s.get(p)
	}
	return json.Number(s.get(p))
}

// Seconds is a duration's value in p in seconds, which status --json
// writes beside it for scripts; ok is false for a setting of another kind.
func (s Setting) Seconds(p Policy) (secs float64, ok bool) {
	if s.Kind != kindDuration {
		return 0, false
	}
	return (time.Duration(s.toRaw(p)) * time.Microsecond).Seconds(), true
}

// Shape is how a usage line writes the setting's value: its choices, N for
// a number, D for a duration.
func (s Setting) Shape() string {
	switch {
	case s.choices != nil:
		return strings.Join(s.choices, "|")
	case s.Kind == kindDuration:
		return "D"
	}
	return "N"
}

const (
	kindNumber   = "a number"
	kindString   = "a string"
	kindDuration = `a duration such as "250ms"`
)

// Settings are the policy's settings, in the order status and logs show them.
var Settings = []Setting{
	{Name: "mode", Kind: kindString, choices: modeNames,
		Usage:   "monitor (report only), drop (drop RSTs judged spoofed) or hold (drop spoofed, hold the rest and ask the claimed sender)",
		get:     func(p Policy) string { return p.Mode.String() },
		config:  func(c *xdp.RstguardConfig) *uint32 { return &c.Mode },
		def:     uint32(ModeMonitor),
		toRaw:   func(p Policy) uint32 { return uint32(p.Mode) },
		fromRaw: func(p *Policy, raw uint32) { p.Mode = Mode(raw) },
		set: func(p *Policy, v string) (err error) {
			p.Mode, err = ParseMode(v)
			return err
		}},
	uintSetting("ttl-tolerance", "TTL difference to the sender's baseline still counted as weak",
		func(p *Policy) *uint8 { return &p.TTLTolerance }, func(c *xdp.RstguardConfig) *uint32 { return &c.TtlTolerance },
		xdp.RstguardPolicyDefaultDEFAULT_TTL_TOLERANCE),
	uintSetting("event-budget", "events a second one flow may emit; more are counted as suppressed",
		func(p *Policy) *uint16 { return &p.EventBudget }, func(c *xdp.RstguardConfig) *uint32 { return &c.EventBudget },
		xdp.RstguardPolicyDefaultDEFAULT_EVENT_BUDGET),
	durationSetting("hold-min", "hold mode: shortest hold window",
		func(p *Policy) *time.Duration { return &p.HoldMin }, func(c *xdp.RstguardConfig) *uint32 { return &c.HoldMinUs },
		xdp.RstguardPolicyDefaultDEFAULT_HOLD_MIN_US),
	durationSetting("hold-max", "hold mode: longest hold window, after which a held RST is released",
		func(p *Policy) *time.Duration { return &p.HoldMax }, func(c *xdp.RstguardConfig) *uint32 { return &c.HoldMaxUs },
		xdp.RstguardPolicyDefaultDEFAULT_HOLD_MAX_US),
	uintSetting("hold-frames", "hold mode: RSTs held at once; beyond, new ones are released at once",
		func(p *Policy) *uint32 { return &p.HoldFrames }, func(c *xdp.RstguardConfig) *uint32 { return &c.HoldFrames },
		xdp.RstguardPolicyDefaultDEFAULT_HOLD_FRAMES),
	uintSetting("probe-rate", "hold mode: probes a second in total; beyond, held RSTs are released at once",
		func(p *Policy) *uint32 { return &p.ProbeRate }, func(c *xdp.RstguardConfig) *uint32 { return &c.ProbeRate },
		xdp.RstguardPolicyDefaultDEFAULT_PROBE_RATE),
}

// SettingNamed finds a setting by its name.
func SettingNamed(name string) (Setting, bool) {
	for _, s := range Settings {
		if s.Name == name {
			return s, true
		}
	}
	return Setting{}, false
}

func uintSetting[T uint8 | uint16 | uint32](name, usage string, field func(*Policy) *T,
	config func(*xdp.RstguardConfig) *uint32, def xdp.RstguardPolicyDefault) Setting {
	return Setting{Name: name, Usage: usage, Kind: kindNumber, config: config, def: uint32(def),
		toRaw:   func(p Policy) uint32 { return uint32(*field(&p)) },
		fromRaw: func(p *Policy, raw uint32) { *field(p) = T(raw) },
		get:     func(p Policy) string { return strconv.FormatUint(uint64(*field(&p)), 10) },
		set: func(p *Policy, v string) error {
			var most T = ^T(0)
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil || n > uint64(most) {
				return fmt.Errorf("%s %q: want a whole number from 0 to %d", name, v, most)
			}
			*field(p) = T(n)
			return nil
		}}
}

// durationSetting is a duration in Policy, whole microseconds in the
// program's struct config.
func durationSetting(name, usage string, field func(*Policy) *time.Duration,
	configUs func(*xdp.RstguardConfig) *uint32, defUs xdp.RstguardPolicyDefault) Setting {
	return Setting{Name: name, Usage: usage, Kind: kindDuration, config: configUs, def: uint32(defUs),
		toRaw:   func(p Policy) uint32 { return uint32(*field(&p) / time.Microsecond) },
		fromRaw: func(p *Policy, raw uint32) { *field(p) = time.Duration(raw) * time.Microsecond },
		get:     func(p Policy) string { return field(&p).String() },
		set: func(p *Policy, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%s %q: want a duration such as 250ms", name, v)
			}
			*field(p) = d
			return nil
		}}
}
