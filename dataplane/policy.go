package dataplane

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/rstguard/rstguard/xdp"
)

// Mode is what the program does with a RST judged spoofed.
type Mode uint32

// Modes. Whatever the mode, a packet that is not a RST is never dropped.
const (
	ModeMonitor = Mode(xdp.RstguardModeMODE_MONITOR) // judge and report, pass everything
	ModeDrop    = Mode(xdp.RstguardModeMODE_DROP)    // drop RSTs judged spoofed
	ModeHold    = Mode(xdp.RstguardModeMODE_HOLD)    // drop spoofed, hold the rest and ask the claimed sender
)

// Modes lists every mode in order, as the header's enum mode has them.
var Modes = []Mode{ModeMonitor, ModeDrop, ModeHold}

func (m Mode) String() string { return nameOf(modeNames, int(m), "mode") }

// ParseMode reads a mode's name: monitor, drop or hold.
func ParseMode(s string) (Mode, error) {
	for m, name := range modeNames {
		if s == name {
			return Mode(m), nil
		}
	}
	return 0, fmt.Errorf("unknown mode %q: use %s", s, strings.Join(modeNames, ", "))
}

// Policy is the program's run-time configuration, changed without reloading.
type Policy struct {
	Mode Mode
	// TTLTolerance is the largest TTL difference to the sender's baseline
	// that counts as a weak signal (route changes, ECMP); beyond it, strong.
	TTLTolerance uint8
	// EventBudget is how many events one flow may emit per second.
	EventBudget uint16
	// HoldMin and HoldMax bound a hold's window (three of the claimed
	// sender's leg RTTs); HoldFrames is how many frames the daemon holds at
	// once; ProbeRate how many probes it sends per second in total.
	HoldMin, HoldMax time.Duration
	HoldFrames       uint32
	ProbeRate        uint32
}

// String is the policy as key=value, the settings' names, for logs.
func (p Policy) String() string {
	kv := make([]string, len(Settings))
	for i, s := range Settings {
		kv[i] = s.Name + "=" + s.Get(p)
	}
	return strings.Join(kv, " ")
}

// MaxHoldWindow is the longest hold window a policy may ask for: a held
// RST waits at most this long before it is released.
const MaxHoldWindow = 10 * time.Second

// Check says whether the policy is one the program and the daemon can run:
// the same bounds for `run` and for `set`.
func (p Policy) Check() error {
	if p.EventBudget == 0 {
		return fmt.Errorf("event-budget must be at least 1")
	}
	if p.HoldMin <= 0 || p.HoldMax < p.HoldMin || p.HoldMax > MaxHoldWindow {
		return fmt.Errorf("hold window %s to %s: want 0 < hold-min <= hold-max <= %s", p.HoldMin, p.HoldMax, MaxHoldWindow)
	}
	if p.HoldFrames == 0 || p.ProbeRate == 0 {
		return fmt.Errorf("hold-frames and probe-rate must be at least 1")
	}
	return nil
}

// DefaultPolicy is the policy of a new policy map, from xdp/rstguard.h:
// monitor, with the header's defaults for everything else.
func DefaultPolicy() Policy {
	c := xdp.RstguardConfig{Abi: ABI}
	for _, s := range Settings {
		*s.config(&c) = s.def
	}
	return policyOf(c)
}

// configOf and policyOf carry a policy to and from the program's struct
// config, a field a setting.
func configOf(p Policy) xdp.RstguardConfig {
	c := xdp.RstguardConfig{Abi: ABI}
	for _, s := range Settings {
		*s.config(&c) = s.toRaw(p)
	}
	return c
}

func policyOf(c xdp.RstguardConfig) Policy {
	var p Policy
	for _, s := range Settings {
		s.fromRaw(&p, *s.config(&c))
	}
	return p
}

// SetPolicy changes the mode and thresholds; the next packet sees them.
func (d *Dataplane) SetPolicy(p Policy) error {
	if int(p.Mode) >= len(modeNames) {
		return fmt.Errorf("set policy: unknown mode %d", p.Mode)
	}
	cfg := configOf(p)
	if err := d.objs.Policy.Put(uint32(0), &cfg); err != nil {
		return fmt.Errorf("set policy: %w", err)
	}
	return nil
}

// UpdatePolicy changes some fields of the policy in force and returns the
// new policy.
func (d *Dataplane) UpdatePolicy(change func(*Policy)) (Policy, error) {
	p, err := d.Policy()
	if err != nil {
		return p, err
	}
	change(&p)
	if err := p.Check(); err != nil {
		return p, err
	}
	return p, d.SetPolicy(p)
}

// Policy reads the policy in force.
func (d *Dataplane) Policy() (Policy, error) {
	var cfg xdp.RstguardConfig
	if err := d.objs.Policy.Lookup(uint32(0), &cfg); err != nil {
		return Policy{}, fmt.Errorf("read policy: %w", err)
	}
	if cfg.Abi != ABI {
		return Policy{}, fmt.Errorf("the pinned maps have layout version %d, this build uses %d: an older rstguard left them; `rstguard detach --all --purge` clears them (and the flows they hold)", cfg.Abi, ABI)
	}
	return policyOf(cfg), nil
}

// SetAllow replaces the allow-list: RSTs to or from these prefixes are
// judged and reported but never dropped.
func (d *Dataplane) SetAllow(prefixes []netip.Prefix) error {
	if err := clearMap[xdp.RstguardAllowKey, uint8](d.objs.Allow); err != nil {
		return fmt.Errorf("allow-list: %w", err)
	}
	for _, p := range prefixes {
		k := allowKey(p)
		if err := d.objs.Allow.Put(&k, uint8(1)); err != nil {
			return fmt.Errorf("allow %s: %w", p, err)
		}
	}
	return nil
}

// Allow lists the allow-listed prefixes.
func (d *Dataplane) Allow() ([]netip.Prefix, error) {
	var out []netip.Prefix
	var key xdp.RstguardAllowKey
	var val uint8
	it := d.objs.Allow.Iterate()
	for it.Next(&key, &val) {
		addr := netip.AddrFrom16(key.Addr)
		bits := int(key.Prefixlen)
		if addr.Is4In6() {
			addr, bits = addr.Unmap(), bits-96
		}
		out = append(out, netip.PrefixFrom(addr, bits))
	}
	return out, it.Err()
}

// allowKey maps a prefix into the 128-bit space the program keys flows by.
func allowKey(p netip.Prefix) xdp.RstguardAllowKey {
	p = p.Masked()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	return xdp.RstguardAllowKey{Prefixlen: uint32(bits), Addr: netip.AddrFrom16(p.Addr().As16()).As16()}
}
