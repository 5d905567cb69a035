package dataplane

import (
	"fmt"
	"net/netip"

	"github.com/rstguard/rstguard/xdp"
)

// Mode is what the program does with a RST judged spoofed.
type Mode uint32

// Modes. Whatever the mode, a packet that is not a RST is never dropped.
const (
	ModeMonitor = Mode(xdp.RstguardModeMODE_MONITOR) // judge and report, pass everything
	ModeDrop    = Mode(xdp.RstguardModeMODE_DROP)    // drop RSTs judged spoofed
)

var modeNames = map[Mode]string{ModeMonitor: "monitor", ModeDrop: "drop"}

func (m Mode) String() string {
	if s, ok := modeNames[m]; ok {
		return s
	}
	return fmt.Sprintf("mode(%d)", uint32(m))
}

// ParseMode reads "monitor" or "drop".
func ParseMode(s string) (Mode, error) {
	for m, name := range modeNames {
		if s == name {
			return m, nil
		}
	}
	return 0, fmt.Errorf("unknown mode %q: use monitor or drop", s)
}

// Policy is the program's run-time configuration, changed without reloading.
type Policy struct {
	Mode Mode
	// TTLTolerance is the largest TTL difference to the sender's baseline
	// that counts as a weak signal (route changes, ECMP); beyond it, strong.
	TTLTolerance uint8
	// EventBudget is how many events one flow may emit per second.
	EventBudget uint16
}

// DefaultPolicy monitors, with a TTL tolerance of 2 hops (INTANG's delta,
// Cloudflare's reset study) and 16 events per flow per second.
func DefaultPolicy() Policy {
	return Policy{Mode: ModeMonitor, TTLTolerance: 2, EventBudget: 16}
}

func configOf(p Policy) xdp.RstguardConfig {
	return xdp.RstguardConfig{
		Abi:          ABI,
		Mode:         uint32(p.Mode),
		TtlTolerance: uint32(p.TTLTolerance),
		EventBudget:  uint32(p.EventBudget),
	}
}

// SetPolicy changes the mode and thresholds; the next packet sees them.
func (d *Dataplane) SetPolicy(p Policy) error {
	if _, ok := modeNames[p.Mode]; !ok {
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
	return p, d.SetPolicy(p)
}

// Policy reads the policy in force.
func (d *Dataplane) Policy() (Policy, error) {
	var cfg xdp.RstguardConfig
	if err := d.objs.Policy.Lookup(uint32(0), &cfg); err != nil {
		return Policy{}, fmt.Errorf("read policy: %w", err)
	}
	if cfg.Abi != ABI {
		return Policy{}, fmt.Errorf("policy map has layout version %d, this build uses %d", cfg.Abi, ABI)
	}
	return Policy{Mode: Mode(cfg.Mode), TTLTolerance: uint8(cfg.TtlTolerance), EventBudget: uint16(cfg.EventBudget)}, nil
}

// SetAllow replaces the allow-list: RSTs to or from these prefixes are
// judged and reported but never dropped.
func (d *Dataplane) SetAllow(prefixes []netip.Prefix) error {
	var stale []xdp.RstguardAllowKey
	var key xdp.RstguardAllowKey
	var val uint8
	it := d.objs.Allow.Iterate()
	for it.Next(&key, &val) {
		stale = append(stale, key)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read allow-list: %w", err)
	}
	for _, k := range stale {
		if err := d.objs.Allow.Delete(&k); err != nil {
			return fmt.Errorf("clear allow-list: %w", err)
		}
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
