package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
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
// .1 on its ServerSide interface, host i+1 is .2 on its ClientSide one.
type Chain struct {
	Hosts []*Host
	names []string
	lines []*delayLine
	// delayHosts are the delay lines' namespaces, which are not hosts of
	// the chain: nothing runs in them.
	delayHosts []*Host
	// wire: the hosts between the ends are bumps in the wire (NewWireChain).
	wire bool
}

// NewChain builds the line; names are the hosts' roles ("client", "gw", ...)
// and the namespaces are prefix-role. On error everything made is removed.
func NewChain(prefix string, names ...string) (*Chain, error) {
	return NewDelayedChain(prefix, nil, names...)
}

// NewDelayedChain is NewChain with a long leg: link i (between host i and
// i+1) goes through a delay line of oneWay[i] each way when that is not
// zero (ConnectDelayed), in a namespace prefix-delayI.
func NewDelayedChain(prefix string, oneWay []time.Duration, names ...string) (c *Chain, err error) {
	if len(names) < 2 {
		return nil, fmt.Errorf("a chain needs two hosts at least")
	}
	c = &Chain{names: names}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	for _, n := range names {
		h, err := NewHost(prefix + "-" + n)
		if err != nil {
			return nil, err
		}
		c.Hosts = append(c.Hosts, h)
	}
	last := len(names) - 1
	for i := range last {
		a, aAddr := c.Hosts[i], netip.PrefixFrom(c.linkAddr(i, 1), 24)
		b, bAddr := c.Hosts[i+1], netip.PrefixFrom(c.linkAddr(i, 2), 24)
		if i >= len(oneWay) || oneWay[i] == 0 {
			if err := Connect(a, ServerSide, aAddr, b, ClientSide, bAddr); err != nil {
				return nil, err
			}
			continue
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
	for i, h := range c.Hosts {
		if i > 0 && i < last {
			if err := h.Sysctl("net.ipv4.ip_forward", "1"); err != nil {
				return nil, err
			}
		}
		for link := range last {
			var via netip.Addr
			switch {
			case link == i || link == i-1: // adjacent: on-link
				continue
			case link < i-1:
				via = c.linkAddr(i-1, 1)
			default:
				via = c.linkAddr(i, 2)
			}
			if err := h.Route(netip.PrefixFrom(c.linkAddr(link, 0), 24), via); err != nil {
				return nil, err
			}
		}
	}
	return c, nil
}

// NewWireChain is a line whose hosts between the ends are bumps in the
// wire: no addresses, no forwarding by the kernel, so that only what runs on
// them (rstguard run --wire ethc:eths) carries frames. The ends share one
// subnet, 10.99.0.0/24 (.1 the client, .2 the server), and reach each other
// through the boxes as through a cable: ARP and all. veth needs two things
// of the ends for frames redirected by XDP to arrive (docs/DEPLOYMENT.md): an
// XDP program on the receiving end (a bare XDP_PASS here) and full
// checksums on what they send (TX checksum offload off).
func NewWireChain(prefix string, names ...string) (c *Chain, err error) {
	if len(names) < 3 {
		return nil, fmt.Errorf("a wire chain needs two ends and a box")
	}
	c = &Chain{names: names, wire: true}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	for _, n := range names {
		h, err := NewHost(prefix + "-" + n)
		if err != nil {
			return nil, err
		}
		c.Hosts = append(c.Hosts, h)
	}
	last := len(names) - 1
	for _, box := range c.Hosts[1:last] {
		// Not even an IPv6 link-local address: the box sends nothing of its own.
		for _, conf := range []string{"all", "default"} {
			if err := box.Sysctl("net.ipv6.conf."+conf+".disable_ipv6", "1"); err != nil {
				return nil, err
			}
		}
	}
	for i := range last {
		var aAddr, bAddr netip.Prefix
		if i == 0 {
			aAddr = netip.PrefixFrom(c.linkAddr(0, 1), 24)
		}
		if i+1 == last {
			bAddr = netip.PrefixFrom(c.linkAddr(0, 2), 24)
		}
		if err := Connect(c.Hosts[i], ServerSide, aAddr, c.Hosts[i+1], ClientSide, bAddr); err != nil {
			return nil, err
		}
	}
	var pass xdp.BaselineObjects
	if err := xdp.LoadBaselineObjects(&pass, nil); err != nil {
		return nil, err
	}
	defer pass.Close() // attached, the program stays until its veth goes
	for _, end := range []struct {
		h      *Host
		ifname string
	}{{c.Hosts[0], ServerSide}, {c.Hosts[last], ClientSide}} {
		link, err := end.h.nl.LinkByName(end.ifname)
		if err != nil {
			return nil, err
		}
		if err := end.h.Do(func() error { return netlink.LinkSetXdpFd(link, pass.BarePass.FD()) }); err != nil {
			return nil, fmt.Errorf("%s: XDP_PASS on %s: %w", end.h.Name, end.ifname, err)
		}
		if out, err := end.h.Command(context.Background(), "ethtool", "-K", end.ifname, "tx", "off").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%s: TX checksum offload off on %s: %v: %s", end.h.Name, end.ifname, err, out)
		}
	}
	return c, nil
}

func (c *Chain) linkAddr(link, host int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 99, byte(link), byte(host)})
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
// or on its client-side link for the last host.
func (c *Chain) Addr(name string) netip.Addr {
	for i, n := range c.names {
		if n == name {
			if c.wire {
				switch i {
				case 0:
					return c.linkAddr(0, 1)
				case len(c.names) - 1:
					return c.linkAddr(0, 2)
				}
				panic("lab: " + name + " is a bump in the wire, without an address")
			}
			if i == len(c.names)-1 {
				return c.linkAddr(i-1, 2)
			}
			return c.linkAddr(i, 1)
		}
	}
	panic("lab: no host " + name)
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
