package daemon

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/rstguard/rstguard/dataplane"
)

func TestParseZone(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ZoneSpec
		err  string
	}{
		{"eth0=1", ZoneSpec{Iface: "eth0", Zone: 1}, ""},
		{"eth0.100=2", ZoneSpec{Iface: "eth0", VLAN: 100, Zone: 2}, ""},
		{"bond0.4095=65535", ZoneSpec{Iface: "bond0", VLAN: 4095, Zone: 65535}, ""},
		{"eth0", ZoneSpec{}, "want IFACE[.VLAN]=N"},
		{"eth0=70000", ZoneSpec{}, "not a zone number"},
		{"eth0.0=1", ZoneSpec{}, "not a VLAN ID"},
		{"eth0.5000=1", ZoneSpec{}, "not a VLAN ID"},
	} {
		got, err := ParseZone(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v %v, want %+v", tc.in, got, err, tc.want)
		}
	}
}

// An interface enslaved to a VRF takes the VRF's table as its zone, unless
// configured otherwise; one in no VRF stays in zone 0.
func TestZonesFromVRFMasters(t *testing.T) {
	links := map[int]netlink.Link{
		2:  &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Index: 2, Name: "eth0", MasterIndex: 10}},
		3:  &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Index: 3, Name: "eth1", MasterIndex: 11}},
		4:  &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Index: 4, Name: "eth2"}},
		5:  &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Index: 5, Name: "eth3", MasterIndex: 12}},
		10: &netlink.Vrf{LinkAttrs: netlink.LinkAttrs{Index: 10, Name: "blue"}, Table: 10},
		11: &netlink.Vrf{LinkAttrs: netlink.LinkAttrs{Index: 11, Name: "red"}, Table: 20},
		12: &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Index: 12, Name: "br0"}},
	}
	byIndex := func(i int) (netlink.Link, error) {
		if l, ok := links[i]; ok {
			return l, nil
		}
		return nil, fmt.Errorf("no ifindex %d", i)
	}
	got, err := zones([]ZoneSpec{{Iface: "eth1", Zone: 7}, {Iface: "eth1", VLAN: 100, Zone: 8}},
		map[string]int{"eth0": 2, "eth1": 3, "eth2": 4, "eth3": 5}, byIndex)
	if err != nil {
		t.Fatal(err)
	}
	want := map[dataplane.ZoneKey]uint16{{Ifindex: 2}: 10, {Ifindex: 3}: 7, {Ifindex: 3, VLAN: 100}: 8}
	if len(got) != len(want) {
		t.Errorf("zones %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("zone of %+v: %d, want %d", k, got[k], v)
		}
	}
}
