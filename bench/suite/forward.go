package suite

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"

	"github.com/rstguard/rstguard/xdp"
)

// Forwarding is the box's forwarding rate under one subject: frames the
// generator sent into dut0 that left by dut1, counted by the sink's XDP_DROP
// on dut1's peer, sink0.
type Forwarding struct {
	Subject string
	Flows   uint32
	Size    int     // frame bytes with the FCS
	GenPPS  float64 // what the generator sent per second
	PPS     float64 // what crossed to the sink per second
}

// Forwarders: a bare devmap redirect, the same after parse + lookup (the
// least a stateful bump in the wire does), rstguard in the wire (--wire
// dut0:dut1) in each mode, the kernel's bridge and the kernel's routing.
var forwarders = []string{"redirect", "lookup-redirect", "wire-monitor", "wire-drop", "wire-hold", "bridge", "routing"}

// sink is dut1's peer with a bare XDP_DROP: what arrives there crossed.
type sink struct {
	objs xdp.BaselineObjects
	dut1 netlink.Link
	mac  net.HardwareAddr
}

// newForwardingBox is a box with a second port, dut1, whose peer sink0
// counts what crossed; closing the box stops the sink.
func newForwardingBox(name string) (*box, *sink, error) {
	b, err := newBox(name)
	if err != nil {
		return nil, nil, err
	}
	if b.sink, err = b.addSink(); err != nil {
		b.close()
		return nil, nil, err
	}
	return b, b.sink, nil
}

// addSink adds dut1 and sink0 to the box.
func (b *box) addSink() (*sink, error) {
	nl := b.host.Netlink()
	if err := nl.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "dut1"}, PeerName: "sink0"}); err != nil {
		return nil, err
	}
	s := &sink{}
	if err := xdp.LoadBaselineObjects(&s.objs, nil); err != nil {
		return nil, err
	}
	for _, name := range []string{"dut1", "sink0"} {
		l, err := nl.LinkByName(name)
		if err == nil {
			err = nl.LinkSetUp(l)
		}
		if err != nil {
			s.objs.Close()
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		switch name {
		case "dut1":
			s.dut1 = l
		case "sink0":
			s.mac = l.Attrs().HardwareAddr
			if err := b.host.Do(func() error { return netlink.LinkSetXdpFd(l, s.objs.BareDrop.FD()) }); err != nil {
				s.objs.Close()
				return nil, fmt.Errorf("XDP_DROP on sink0: %w", err)
			}
		}
	}
	return s, nil
}

func (s *sink) program() (*ebpf.Program, error) { return s.objs.BareDrop, nil }
func (s *sink) stop() error                     { return s.objs.Close() }

// forward measures one subject forwarding steady traffic from dut0 to dut1.
func (o Options) forward(prefix, name string, flows uint32, size int, count uint64) (Forwarding, error) {
	res := Forwarding{Subject: name, Flows: flows, Size: size}
	b, sk, err := newForwardingBox(prefix + "bench")
	if err != nil {
		return res, err
	}
	defer b.close()
	w := workload{mix: steadyMix, flows: flows, count: count, size: size, dst: sk.mac}
	switch name {
	case "redirect", "lookup-redirect":
		base, err := attachBaseline(b, name, tableSize(flows))
		if err != nil {
			return res, err
		}
		defer base.stop()
		// A devmap finds its port in the caller's namespace.
		if err := b.host.Do(func() error { return base.objs.BaselineOut.Put(uint32(0), uint32(sk.dut1.Attrs().Index)) }); err != nil {
			return res, err
		}
	case "bridge", "routing":
		// The kernel forwards; dut0 carries a bare XDP_PASS only because
		// frames redirected into a veth need a program on the receiving
		// end (docs/DEPLOYMENT.md).
		base, err := attachBaseline(b, "pass", tableSize(flows))
		if err != nil {
			return res, err
		}
		defer base.stop()
		if name == "bridge" {
			err = b.bridge(sk)
		} else {
			w.dst, err = b.route(sk)
		}
		if err != nil {
			return res, err
		}
	default:
		d, err := startDaemon(b, o.Rstguard, name[len("wire-"):], tableSize(flows), "--wire", "dut0:dut1")
		if err != nil {
			return res, err
		}
		defer d.stop()
	}
	l, err := measure(b, sk, w)
	res.GenPPS, res.PPS = l.GenPPS, l.PPS
	return res, err
}

// bridge puts dut0 and dut1 in a kernel bridge.
func (b *box) bridge(sk *sink) error {
	nl := b.host.Netlink()
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}
	if err := nl.LinkAdd(br); err != nil {
		return err
	}
	for _, l := range []netlink.Link{b.dut, sk.dut1} {
		if err := nl.LinkSetMaster(l, br); err != nil {
			return err
		}
	}
	return nl.LinkSetUp(br)
}

// route makes the box a router from dut0 to dut1: every destination by
// way of the sink (a permanent neighbour), reverse-path filtering off since
// the generator's sources route that way too. It returns the MAC frames
// must be sent to: dut0's.
func (b *box) route(sk *sink) (net.HardwareAddr, error) {
	nl := b.host.Netlink()
	for _, a := range []struct {
		l    netlink.Link
		addr string
	}{{b.dut, "192.168.250.1/24"}, {sk.dut1, "192.168.251.1/24"}} {
		addr, err := netlink.ParseAddr(a.addr)
		if err != nil {
			return nil, err
		}
		if err := nl.AddrAdd(a.l, addr); err != nil {
			return nil, err
		}
	}
	for _, kv := range [][2]string{{"net.ipv4.ip_forward", "1"}, {"net.ipv4.conf.all.rp_filter", "0"}, {"net.ipv4.conf.dut0.rp_filter", "0"}} {
		if err := b.host.Sysctl(kv[0], kv[1]); err != nil {
			return nil, err
		}
	}
	next := netip.MustParseAddr("192.168.251.2")
	if err := nl.NeighAdd(&netlink.Neigh{LinkIndex: sk.dut1.Attrs().Index, IP: next.AsSlice(), HardwareAddr: sk.mac,
		State: netlink.NUD_PERMANENT}); err != nil {
		return nil, err
	}
	if err := nl.RouteAdd(&netlink.Route{LinkIndex: sk.dut1.Attrs().Index, Gw: next.AsSlice()}); err != nil {
		return nil, err
	}
	return b.dut.Attrs().HardwareAddr, nil
}
