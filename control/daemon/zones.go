package daemon

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/rstguard/rstguard/control/attach"
	"github.com/rstguard/rstguard/dataplane"
)

// ZoneSpec is one --zone IFACE[.VLAN]=N.
type ZoneSpec struct {
	Iface string
	VLAN  uint16
	Zone  uint16
}

// ParseZone reads IFACE[.VLAN]=N.
func ParseZone(s string) (ZoneSpec, error) {
	where, zone, ok := strings.Cut(s, "=")
	if !ok || where == "" {
		return ZoneSpec{}, fmt.Errorf("zone %q: want IFACE[.VLAN]=N", s)
	}
	z, err := strconv.ParseUint(zone, 10, 16)
	if err != nil {
		return ZoneSpec{}, fmt.Errorf("zone %q: %q is not a zone number from 0 to 65535", s, zone)
	}
	spec := ZoneSpec{Iface: where, Zone: uint16(z)}
	if i := strings.LastIndexByte(where, '.'); i > 0 {
		vlan, err := strconv.ParseUint(where[i+1:], 10, 12)
		if err != nil || vlan == 0 {
			return ZoneSpec{}, fmt.Errorf("zone %q: %q is not a VLAN ID from 1 to 4095", s, where[i+1:])
		}
		spec.Iface, spec.VLAN = where[:i], uint16(vlan)
	}
	return spec, nil
}

// zones resolves the configured zones and, for every watched interface that
// has none of its own, the zone of its VRF master (the VRF's table ID, as
// Linux conntrack zones are often set per VRF). ifaces maps name to ifindex.
func zones(specs []ZoneSpec, ifaces map[string]int, linkByIndex func(int) (netlink.Link, error)) (map[dataplane.ZoneKey]uint16, error) {
	out := map[dataplane.ZoneKey]uint16{}
	for _, s := range specs {
		index, ok := ifaces[s.Iface]
		if !ok {
			link, err := attach.Link(s.Iface)
			if err != nil {
				return nil, fmt.Errorf("zone for %s: %w", s.Iface, err)
			}
			index = link.Attrs().Index
		}
		out[dataplane.ZoneKey{Ifindex: index, VLAN: s.VLAN}] = s.Zone
	}
	for _, index := range ifaces {
		if _, set := out[dataplane.ZoneKey{Ifindex: index}]; set {
			continue
		}
		if z, ok, err := vrfZone(index, linkByIndex); err != nil {
			return nil, err
		} else if ok {
			out[dataplane.ZoneKey{Ifindex: index}] = z
		}
	}
	return out, nil
}

// vrfZone is the zone of an interface enslaved to a VRF: the VRF's table.
func vrfZone(index int, linkByIndex func(int) (netlink.Link, error)) (uint16, bool, error) {
	link, err := linkByIndex(index)
	if err != nil {
		return 0, false, fmt.Errorf("look up ifindex %d: %w", index, err)
	}
	master := link.Attrs().MasterIndex
	if master == 0 {
		return 0, false, nil
	}
	m, err := linkByIndex(master)
	if err != nil {
		return 0, false, fmt.Errorf("look up %s's master: %w", link.Attrs().Name, err)
	}
	vrf, ok := m.(*netlink.Vrf)
	if !ok {
		return 0, false, nil
	}
	if vrf.Table > 0xffff {
		return 0, false, errors.New(link.Attrs().Name + ": VRF table " + strconv.Itoa(int(vrf.Table)) +
			" does not fit a zone (0-65535): give --zone " + link.Attrs().Name + "=N")
	}
	return uint16(vrf.Table), true, nil
}
