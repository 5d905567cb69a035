// Package netbox makes, in the calling thread's network namespace, the
// smallest forwarding box the program's hold path needs: a veth pair whose
// first end routes a destination network back out of itself through a
// neighbour, with forwarding on, so that bpf_fib_lookup() finds an egress.
// Tests and benchmarks of hold mode build on it; it needs root.
package netbox

import (
	"fmt"
	"net"
	"os"
	"os/exec"

	"github.com/vishvananda/netlink"
)

// Gateway is the neighbour every routed destination goes through, and its
// MAC; Client is a host on veth0's own network with its MAC, known to the
// box as a gateway knows the hosts it talks to (hold mode probes them).
var (
	Gateway    = net.ParseIP("192.0.2.2")
	GatewayMAC = net.HardwareAddr{2, 0, 0, 0, 0, 2}
	Client     = net.ParseIP("192.0.2.10")
	ClientMAC  = net.HardwareAddr{2, 0, 0, 0, 0, 10}
)

// Box is the forwarding box: the index of veth0, the end that receives.
type Box struct {
	Ifindex int
}

// New creates veth0 (192.0.2.1/24, rxQueues RX queues) and its peer veth1,
// routes dst, and by default everything else, through Gateway on veth0,
// and knows Client's MAC.
func New(rxQueues int, dst string) (*Box, error) {
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "veth0", NumRxQueues: rxQueues, NumTxQueues: rxQueues},
		PeerName: "veth1"}
	if err := netlink.LinkAdd(veth); err != nil {
		return nil, fmt.Errorf("add veth: %w", err)
	}
	if rxQueues > 1 {
		// veth starts with one active RX queue whatever it was created with.
		q := fmt.Sprint(rxQueues)
		if out, err := exec.Command("ethtool", "-L", "veth0", "rx", q, "tx", q).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("ethtool -L veth0 rx %s: %v: %s", q, err, out)
		}
	}
	link, err := netlink.LinkByName("veth0")
	if err != nil {
		return nil, err
	}
	peer, err := netlink.LinkByName("veth1")
	if err != nil {
		return nil, err
	}
	addr, _ := netlink.ParseAddr("192.0.2.1/24")
	_, dstNet, err := net.ParseCIDR(dst)
	if err != nil {
		return nil, err
	}
	for _, step := range []func() error{
		func() error { return netlink.LinkSetUp(link) },
		func() error { return netlink.LinkSetUp(peer) },
		func() error { return netlink.AddrAdd(link, addr) },
		func() error {
			return netlink.NeighAdd(&netlink.Neigh{LinkIndex: link.Attrs().Index, State: netlink.NUD_PERMANENT,
				IP: Gateway, HardwareAddr: GatewayMAC})
		},
		func() error {
			return netlink.NeighAdd(&netlink.Neigh{LinkIndex: link.Attrs().Index, State: netlink.NUD_PERMANENT,
				IP: Client, HardwareAddr: ClientMAC})
		},
		func() error {
			return netlink.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: dstNet, Gw: Gateway})
		},
		func() error { return netlink.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: Gateway}) },
		// The namespace's own sysctl: bpf_fib_lookup answers only where forwarding is on.
		func() error { return os.WriteFile("/proc/sys/net/ipv4/conf/all/forwarding", []byte("1"), 0o644) },
	} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	return &Box{Ifindex: link.Attrs().Index}, nil
}
