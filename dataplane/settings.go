package dataplane

import (
	"fmt"
	"strconv"
	"time"
)

// Setting is one setting of the policy the program reads at run time: the
// one row from which `rstguard run`'s flag and config key (Name, with _ for
// -), `rstguard set`, Policy.String, the policy_change events and status's
// names all come. Its bounds are Policy.Check's, for run and set alike.
// Adding a setting is a field of Policy (and of the header's struct config),
// and a row here.
type Setting struct {
	Name  string
	Usage string
	// Kind is what a config file gives: "a number", "a string", or "a
	// duration such as \"250ms\"" (a string too).
	Kind string
	get  func(Policy) string
	set  func(*Policy, string) error
}

// Get is the setting's value in p, as Set reads it.
func (s Setting) Get(p Policy) string { return s.get(p) }

// Set reads a value into p; an error names the setting and what it wants.
func (s Setting) Set(p *Policy, value string) error { return s.set(p, value) }

// JSONString says whether a config file gives the setting as a JSON string
// (else a number).
func (s Setting) JSONString() bool { return s.Kind != kindNumber }

const (
	kindNumber   = "a number"
	kindString   = "a string"
	kindDuration = `a duration such as "250ms"`
)

// Settings are the policy's settings, in the order status and logs show them.
var Settings = []Setting{
	{Name: "mode", Kind: kindString,
		Usage: "monitor (report only), drop (drop RSTs judged spoofed) or hold (drop spoofed, hold the rest and ask the claimed sender)",
		get:   func(p Policy) string { return p.Mode.String() },
		set: func(p *Policy, v string) (err error) {
			p.Mode, err = ParseMode(v)
			return err
		}},
	uintSetting("ttl-tolerance", "TTL difference to the sender's baseline still counted as weak",
		func(p *Policy) *uint8 { return &p.TTLTolerance }),
	uintSetting("event-budget", "events a second one flow may emit; more are counted as suppressed",
		func(p *Policy) *uint16 { return &p.EventBudget }),
	durationSetting("hold-min", "hold mode: shortest hold window", func(p *Policy) *time.Duration { return &p.HoldMin }),
	durationSetting("hold-max", "hold mode: longest hold window, after which a held RST is released",
		func(p *Policy) *time.Duration { return &p.HoldMax }),
	uintSetting("hold-frames", "hold mode: RSTs held at once; beyond, new ones are released at once",
		func(p *Policy) *uint32 { return &p.HoldFrames }),
	uintSetting("probe-rate", "hold mode: probes a second in total; beyond, held RSTs are released at once",
		func(p *Policy) *uint32 { return &p.ProbeRate }),
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

func uintSetting[T uint8 | uint16 | uint32](name, usage string, field func(*Policy) *T) Setting {
	return Setting{Name: name, Usage: usage, Kind: kindNumber,
		get: func(p Policy) string { return strconv.FormatUint(uint64(*field(&p)), 10) },
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

func durationSetting(name, usage string, field func(*Policy) *time.Duration) Setting {
	return Setting{Name: name, Usage: usage, Kind: kindDuration,
		get: func(p Policy) string { return field(&p).String() },
		set: func(p *Policy, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%s %q: want a duration such as 250ms", name, v)
			}
			*field(p) = d
			return nil
		}}
}
