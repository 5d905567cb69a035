package lab

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
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
