// Package lab builds test networks out of network namespaces and veth pairs:
// each Host is a namespace standing for one machine, with real Linux TCP.
// The tests, `make demo` and the detection matrix run on it. Everything it
// creates carries a unique prefix and is removed by Close, even after a
// failed run.
package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Host is one network namespace.
type Host struct {
	Name string // the namespace's name under /run/netns
	ns   netns.NsHandle
	nl   *netlink.Handle
}

// UniquePrefix returns a short prefix unlikely to clash with another run's.
func UniquePrefix() string {
	b := make([]byte, 3)
	rand.Read(b)
	return "rg" + hex.EncodeToString(b)
}

// NewHost creates a named network namespace with its loopback up.
func NewHost(name string) (*Host, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("current netns: %w", err)
	}
	defer orig.Close()
	ns, err := netns.NewNamed(name) // also moves this thread into it
	if err != nil {
		return nil, fmt.Errorf("create netns %s: %w", name, err)
	}
	if err := netns.Set(orig); err != nil {
		return nil, fmt.Errorf("return from netns %s: %w", name, err)
	}
	h := &Host{Name: name, ns: ns}
	if h.nl, err = netlink.NewHandleAt(ns); err != nil {
		h.Close()
		return nil, fmt.Errorf("netlink in %s: %w", name, err)
	}
	lo, err := h.nl.LinkByName("lo")
	if err == nil {
		err = h.nl.LinkSetUp(lo)
	}
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("%s: bring lo up: %w", name, err)
	}
	// No duplicate address detection on the links to come: a tentative
	// link-local address delays neighbour discovery by a second or more, and
	// a lab's addresses are unique by construction.
	for _, conf := range []string{"all", "default"} {
		if err := h.Sysctl("net.ipv6.conf."+conf+".accept_dad", "0"); err != nil {
			h.Close()
			return nil, err
		}
	}
	return h, nil
}

// Close deletes the namespace; processes left in it keep it alive until they exit.
func (h *Host) Close() error {
	if h.nl != nil {
		h.nl.Close()
	}
	h.ns.Close()
	return netns.DeleteNamed(h.Name)
}

// Netlink is a netlink handle inside the namespace.
func (h *Host) Netlink() *netlink.Handle { return h.nl }

// Do runs fn on a thread inside the namespace. Sockets fn opens stay in it.
func (h *Host) Do(fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	if err := netns.Set(h.ns); err != nil {
		return fmt.Errorf("enter %s: %w", h.Name, err)
	}
	defer netns.Set(orig)
	return fn()
}

// Command runs a program inside the namespace. It enters only the network
// namespace (nsenter --net), unlike ip netns exec, which also remounts /sys
// and so would hide the bpffs rstguard pins its maps on.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "nsenter", append([]string{"--net=/run/netns/" + h.Name, name}, args...)...)
}

// Sysctl sets a sysctl (dotted name) inside the namespace.
func (h *Host) Sysctl(name, value string) error {
	return h.Do(func() error {
		path := filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/"))
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			return fmt.Errorf("%s: sysctl %s=%s: %w", h.Name, name, value, err)
		}
		return nil
	})
}

// Connect joins two hosts with a veth pair and gives each end an address
// (none where the prefix is the zero Prefix).
func Connect(a *Host, aIf string, aAddr netip.Prefix, b *Host, bIf string, bAddr netip.Prefix) error {
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: aIf}, PeerName: bIf,
		PeerNamespace: netlink.NsFd(int(b.ns))}
	if err := a.nl.LinkAdd(veth); err != nil {
		return fmt.Errorf("veth %s/%s - %s/%s: %w", a.Name, aIf, b.Name, bIf, err)
	}
	if err := a.addrUp(aIf, aAddr); err != nil {
		return err
	}
	return b.addrUp(bIf, bAddr)
}

func (h *Host) addrUp(ifname string, p netip.Prefix) error {
	link, err := h.nl.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("%s: %s: %w", h.Name, ifname, err)
	}
	if p.IsValid() {
		addr, err := netlink.ParseAddr(p.String())
		if err != nil {
			return err
		}
		if p.Addr().Is6() {
			addr.Flags |= unix.IFA_F_NODAD // usable at once: no duplicate detection in a lab
		}
		if err := h.nl.AddrAdd(link, addr); err != nil {
			return fmt.Errorf("%s: address %s on %s: %w", h.Name, p, ifname, err)
		}
	}
	if err := h.nl.LinkSetUp(link); err != nil {
		return fmt.Errorf("%s: %s up: %w", h.Name, ifname, err)
	}
	return nil
}

// Route sends traffic for dst through gateway via.
func (h *Host) Route(dst netip.Prefix, via netip.Addr) error {
	_, ipnet, err := netParseCIDR(dst)
	if err != nil {
		return err
	}
	r := &netlink.Route{Dst: ipnet, Gw: via.AsSlice()}
	if err := h.nl.RouteAdd(r); err != nil {
		return fmt.Errorf("%s: route %s via %s: %w", h.Name, dst, via, err)
	}
	return nil
}

func netParseCIDR(p netip.Prefix) (net.IP, *net.IPNet, error) {
	return net.ParseCIDR(p.Masked().String())
}
