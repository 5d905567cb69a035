package dataplane

import (
	"fmt"

	"github.com/rstguard/rstguard/xdp"
)

// ZoneKey names what carries one address space: an interface, or one VLAN
// on it (VLAN 0: the interface's untagged frames, and any VLAN without a
// zone of its own).
type ZoneKey struct {
	Ifindex int
	VLAN    uint16
}

// SetZones tells the program which interface or VLAN carries which zone, as
// Linux conntrack zones do: the same addresses and ports in two zones are
// two connections. Both directions of a connection must map to one zone.
// With no zones, the program looks none up.
func (d *Dataplane) SetZones(zones map[ZoneKey]uint16) error {
	if err := clearMap[xdp.RstguardZoneKey, uint16](d.objs.Zones); err != nil {
		return fmt.Errorf("zones: %w", err)
	}
	for zk, zone := range zones {
		k := xdp.RstguardZoneKey{Ifindex: uint32(zk.Ifindex), Vlan: uint32(zk.VLAN)}
		if err := d.objs.Zones.Put(&k, zone); err != nil {
			return fmt.Errorf("set zone %d on ifindex %d vlan %d: %w", zone, zk.Ifindex, zk.VLAN, err)
		}
	}
	inUse := uint32(0)
	if len(zones) > 0 {
		inUse = 1
	}
	if err := d.objs.ZonesInUse.Set(inUse); err != nil {
		return fmt.Errorf("set zones: %w", err)
	}
	d.zones = zones
	return nil
}

// ZoneOf is the zone of a frame that arrived on the interface with the VLAN
// tag, by the program's rule (zone_of in xdp/bpf/flows.h).
func (d *Dataplane) ZoneOf(ifindex int, vlan uint16) uint16 {
	if z, ok := d.zones[ZoneKey{ifindex, vlan}]; ok {
		return z
	}
	return d.zones[ZoneKey{ifindex, 0}]
}
