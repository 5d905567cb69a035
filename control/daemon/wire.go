package daemon

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/rstguard/rstguard/control/attach"
	"github.com/rstguard/rstguard/dataplane"
)

// WireSpec is one --wire pair: two ports, no addresses, every frame that
// is not dropped or held leaves by the other one.
type WireSpec struct{ A, B string }

func (w WireSpec) String() string { return w.A + ":" + w.B }

// ParseWire reads A:B.
func ParseWire(s string) (WireSpec, error) {
	a, b, ok := strings.Cut(s, ":")
	if !ok || a == "" || b == "" || strings.Contains(b, ":") {
		return WireSpec{}, fmt.Errorf("wire %q: want PORT:PORT", s)
	}
	if a == b {
		return WireSpec{}, fmt.Errorf("wire %q: a pair is two different ports", s)
	}
	return WireSpec{A: a, B: b}, nil
}

// wirePairs are the --wire pairs as "A:B".
func (c Config) wirePairs() []string {
	var out []string
	for _, w := range c.Wire {
		out = append(out, w.String())
	}
	return out
}

// wireFail is --wire-fail's word: open or closed.
func (c Config) wireFail() string {
	if c.WireFailClosed {
		return "closed"
	}
	return "open"
}

// CheckWires refuses a port in two pairs.
func CheckWires(pairs []WireSpec) error {
	seen := map[string]string{}
	for _, p := range pairs {
		for _, port := range []string{p.A, p.B} {
			if other, ok := seen[port]; ok {
				return fmt.Errorf("wire: %s is in two pairs (%s and %s)", port, other, p)
			}
			seen[port] = p.String()
		}
	}
	return nil
}

// startWire readies the wire pairs' ports: each must exist with one MTU per
// pair (a frame that fits one port fits the other: what arrives is what
// leaves), each is put in promiscuous mode (frames for any MAC are the
// pair's to carry), which stop undoes for the ports it changed; then the
// program gets the pairs.
func (d *daemon) startWire(stop *undo) error {
	if len(d.cfg.Wire) == 0 {
		return nil
	}
	// A daemon killed with -9 left its ports promiscuous: they are this
	// one's to put back.
	var inherited []string
	if prev, ok := LeftBehind(d.cfg.PinDir); ok {
		inherited = prev.PromiscSet
	}
	for _, p := range d.cfg.Wire {
		a, err := attach.Link(p.A)
		if err != nil {
			return err
		}
		b, err := attach.Link(p.B)
		if err != nil {
			return err
		}
		if a.Attrs().MTU != b.Attrs().MTU {
			return fmt.Errorf("wire %s: MTU %d on %s but %d on %s: give both ports one MTU", p, a.Attrs().MTU, p.A, b.Attrs().MTU, p.B)
		}
		for _, link := range []netlink.Link{a, b} {
			if addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL); err == nil && len(addrs) > 0 {
				d.log.Warn("wire port has an address: the box itself talks on the wire (for none, remove it; for IPv6 link-local, sysctl net.ipv6.conf.IFACE.disable_ipv6=1)",
					"iface", link.Attrs().Name, "addr", addrs[0].IPNet.String())
			}
			name := link.Attrs().Name
			if link.Attrs().Promisc != 0 && !slices.Contains(inherited, name) {
				continue // the operator's
			}
			if err := netlink.SetPromiscOn(link); err != nil {
				return fmt.Errorf("wire %s: promiscuous mode on %s: %w", p, name, err)
			}
			d.promiscSet = append(d.promiscSet, name)
			stop.push(func() {
				if err := attach.PromiscOff(name); err != nil && !errors.Is(err, attach.ErrNoInterface) {
					d.log.Error("wire: put the port back", "err", err)
				}
			})
		}
	}
	stop.push(func() {
		if err := d.dp.SetWire(nil); err != nil {
			d.log.Error("wire: clear the pairs", "err", err)
		}
	})
	// Counting is all these do: without them frames cross as before.
	if redirects, err := d.dp.WatchRedirects(); err != nil {
		d.log.Warn("wire: redirects the kernel fails will not be counted (wire_redirect_errors)", "err", err)
	} else {
		stop.push(func() { redirects.Close() })
	}
	return d.setWire()
}

// setWire gives the program the pairs as the ports are now: their current
// ifindexes, and closed where --wire-fail closed and a port is down.
func (d *daemon) setWire() error {
	known := map[string]int{} // the ports present now, by name
	for i, n := range d.attached() {
		known[n] = i
	}
	var pairs []dataplane.WirePair
	for _, p := range d.cfg.Wire {
		a, aok := known[p.A]
		b, bok := known[p.B]
		if !aok || !bok {
			continue // a port gone: nothing to forward to
		}
		pair := dataplane.WirePair{A: a, B: b}
		if d.cfg.WireFailClosed && (!portUp(a) || !portUp(b)) {
			pair.Closed = true
			d.log.Warn("wire pair closed: a port is down (--wire-fail closed), its frames are dropped", "wire", p.String())
		}
		pairs = append(pairs, pair)
	}
	return d.dp.SetWire(pairs)
}

// portUp says whether a port is up with its carrier.
func portUp(ifindex int) bool {
	link, err := netlink.LinkByIndex(ifindex)
	return err == nil && attach.Running(link.Attrs())
}

// isWirePort says whether name is a port of a wire pair.
func (d *daemon) isWirePort(name string) bool {
	for _, p := range d.cfg.Wire {
		if p.A == name || p.B == name {
			return true
		}
	}
	return false
}
