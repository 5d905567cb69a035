package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/rstguard/rstguard/xdp"
)

// Interface names in every Chain host: toward the client end and toward the
// server end.
const (
	ClientSide = "ethc"
	ServerSide = "eths"
)

// Chain is hosts in a line, client first and server last, joined by veth
// pairs; the hosts between forward with the kernel, so TTLs drop hop by hop
// as on a real path. Link i joins host i and i+1 on 10.99.i.0/24: host i is
// .1 on its ServerSide interface, host i+1 is .2 on its ClientSide one. A
// chain may have bumps in the wire (NewWiredChain): hosts without addresses
// or forwarding, whose two links are one subnet.
type Chain struct {
	Hosts []*Host
	names []string
	// subnet[i] is link i's subnet, the third octet of its addresses: i, or
	// the link before's across a bump in the wire.
	subnet []int
	bumps  map[int]bool
	lines  []*delayLine
	// delayHosts are the delay lines' namespaces, which are not hosts of
	// the chain: nothing runs in them.
	delayHosts []*Host
}

// NewChain builds the line; names are the hosts' roles ("client", "gw", ...)
// and the namespaces are prefix-role. On error everything made is removed.
func NewChain(prefix string, names ...string) (*Chain, error) {
	return newChain(prefix, nil, nil, names)
}

// NewDelayedChain is NewChain with a long leg: link i (between host i and
// i+1) goes through a delay line of oneWay[i] each way when that is not
// zero (ConnectDelayed), in a namespace prefix-delayI.
func NewDelayedChain(prefix string, oneWay []time.Duration, names ...string) (*Chain, error) {
	return newChain(prefix, oneWay, nil, names)
}

// SetDelay makes the chain's delay lines delay each frame oneWay from now
// on, as a path whose queue filled or drained: frames on a line keep the
// time they were given, and the order they came in.
func (c *Chain) SetDelay(oneWay time.Duration) {
	for _, l := range c.lines {
		l.oneWay.Store(int64(oneWay))
	}
}

// NewWiredChain is NewChain whose hosts named in wired are bumps in the
// wire: no addresses (not even IPv6 link-local ones), no forwarding by the
// kernel, so that only what runs on them (rstguard run --wire ethc:eths)
// carries frames, and the hosts on either side see each other as on one
// cable, ARP and all. veth needs two things of a bump's neighbours for
// frames redirected by XDP to arrive (docs/DEPLOYMENT.md): an XDP program on
// the receiving end (a bare XDP_PASS here) and full checksums on what they
// send (TX checksum offload off).
func NewWiredChain(prefix string, wired []string, names ...string) (*Chain, error) {
	bumps := map[int]bool{}
	for _, w := range wired {
		i := slices.Index(names, w)
		if i <= 0 || i == len(names)-1 {
			return nil, fmt.Errorf("a bump in the wire sits between two hosts: %q", w)
		}
		bumps[i] = true
	}
	return newChain(prefix, nil, bumps, names)
}

func newChain(prefix string, oneWay []time.Duration, bumps map[int]bool, names []string) (c *Chain, err error) {
	if len(names) < 2 {
		return nil, fmt.Errorf("a chain needs two hosts at least")
	}
	c = &Chain{names: names, bumps: bumps}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	for i, n := range names {
		h, err := NewHost(prefix + "-" + n)
		if err != nil {
			return nil, err
		}
		c.Hosts = append(c.Hosts, h)
		if bumps[i] {
			for _, conf := range []string{"all", "default"} {
				if err := h.Sysctl("net.ipv6.conf."+conf+".disable_ipv6", "1"); err != nil {
					return nil, err
				}
			}
		}
	}
	last := len(names) - 1
	for i := range last {
		sub := i
		if i > 0 && bumps[i] {
			sub = c.subnet[i-1]
		} else if i > 0 {
			sub = c.subnet[i-1] + 1
		}
		c.subnet = append(c.subnet, sub)
	}
	for i := range last {
		var aAddr, bAddr netip.Prefix
		if !bumps[i] {
			aAddr = netip.PrefixFrom(c.linkAddr(i, 1), 24)
		}
		if !bumps[i+1] {
			bAddr = netip.PrefixFrom(c.linkAddr(i, 2), 24)
		}
		a, b := c.Hosts[i], c.Hosts[i+1]
		if i >= len(oneWay) || oneWay[i] == 0 {
			if err := Connect(a, ServerSide, aAddr, b, ClientSide, bAddr); err != nil {
				return nil, err
			}
			continue
		}
		if len(bumps) > 0 {
			return nil, fmt.Errorf("a chain with bumps in the wire has no delay lines")
		}
		h, err := NewHost(fmt.Sprintf("%s-delay%d", prefix, i))
		if err != nil {
			return nil, err
		}
		c.delayHosts = append(c.delayHosts, h)
		line, err := ConnectDelayed(a, ServerSide, aAddr, b, ClientSide, bAddr, h, oneWay[i])
		if err != nil {
			return nil, err
		}
		c.lines = append(c.lines, line)
	}
	if err := c.feedBumps(); err != nil {
		return nil, err
	}
	for i, h := range c.Hosts {
		if bumps[i] {
			continue
		}
		if i > 0 && i < last {
			if err := h.Sysctl("net.ipv4.ip_forward", "1"); err != nil {
				return nil, err
			}
		}
		// Every subnet not on one of its own links, through the neighbour
		// toward it.
		var own []int
		if i > 0 {
			own = append(own, c.subnet[i-1])
		}
		if i < last {
			own = append(own, c.subnet[i])
		}
		for link := range last {
			sub := c.subnet[link]
			if slices.Contains(own, sub) || (link > 0 && c.subnet[link-1] == sub) {
				continue
			}
			var via netip.Addr
			if sub < own[0] { // toward the client: the host at the left end of its left subnet
				via = c.addrOn(c.subnet[i-1], 1)
			} else { // toward the server: the host at the right end of its right subnet
				via = c.addrOn(c.subnet[i], 2)
			}
			if err := h.Route(netip.PrefixFrom(c.addrOn(sub, 0), 24), via); err != nil {
				return nil, err
			}
		}
	}
	return c, nil
}

// feedBumps readies each bump's neighbours (see NewWiredChain).
func (c *Chain) feedBumps() error {
	if len(c.bumps) == 0 {
		return nil
	}
	var pass xdp.BaselineObjects
	if err := xdp.LoadBaselineObjects(&pass, nil); err != nil {
		return err
	}
	defer pass.Close() // attached, the program stays until its veth goes
	for i := range c.bumps {
		for _, n := range []struct {
			at     int
			ifname string
		}{{i - 1, ServerSide}, {i + 1, ClientSide}} {
			if c.bumps[n.at] {
				continue // rstguard runs there
			}
			h := c.Hosts[n.at]
			link, err := h.nl.LinkByName(n.ifname)
			if err != nil {
				return err
			}
			if err := h.Do(func() error { return netlink.LinkSetXdpFd(link, pass.BarePass.FD()) }); err != nil {
				return fmt.Errorf("%s: XDP_PASS on %s: %w", h.Name, n.ifname, err)
			}
			if out, err := h.Command(context.Background(), "ethtool", "-K", n.ifname, "tx", "off").CombinedOutput(); err != nil {
				return fmt.Errorf("%s: TX checksum offload off on %s: %v: %s", h.Name, n.ifname, err, out)
			}
		}
	}
	return nil
}

func (c *Chain) linkAddr(link, host int) netip.Addr { return c.addrOn(c.subnet[link], host) }

func (c *Chain) addrOn(subnet, host int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 99, byte(subnet), byte(host)})
}

// Host returns the host with the given role.
func (c *Chain) Host(name string) *Host {
	for i, n := range c.names {
		if n == name {
			return c.Hosts[i]
		}
	}
	panic("lab: no host " + name)
}

// Addr is the address of the host with that role: on its server-side link,
// or on its client-side link for the last host. A bump in the wire has none.
func (c *Chain) Addr(name string) netip.Addr {
	i := slices.Index(c.names, name)
	switch {
	case i < 0:
		panic("lab: no host " + name)
	case c.bumps[i]:
		panic("lab: " + name + " is a bump in the wire, without an address")
	case i == len(c.names)-1:
		return c.linkAddr(i-1, 2)
	}
	return c.linkAddr(i, 1)
}

// Close removes every namespace of the chain.
func (c *Chain) Close() error {
	for _, l := range c.lines {
		l.Close()
	}
	var errs []error
	for _, h := range append(c.Hosts, c.delayHosts...) {
		errs = append(errs, h.Close())
	}
	return errors.Join(errs...)
}
