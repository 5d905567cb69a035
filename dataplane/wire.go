package dataplane

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/rstguard/rstguard/xdp"
)

// WirePair is two ports of a bump in the wire (rstguard run --wire A:B), by
// ifindex: every frame the program does not drop or hold leaves by the
// other port of its pair (forward in xdp/bpf/rstguard.c).
type WirePair struct {
	A, B int
	// Closed drops the pair's frames (--wire-fail closed while a port of
	// it is down).
	Closed bool
}

// SetWire tells the program its wire pairs, replacing what it had; none
// turns wire mode off, and the program then looks nothing up.
func (d *Dataplane) SetWire(pairs []WirePair) error {
	// The new pairs first, then what is no longer one: a port in both
	// forwards throughout.
	stale, err := keysOf[uint32, xdp.RstguardWirePort](d.objs.WirePorts)
	if err != nil {
		return fmt.Errorf("read wire ports: %w", err)
	}
	ports := map[uint32]bool{}
	for _, p := range pairs {
		for _, dir := range [][2]int{{p.A, p.B}, {p.B, p.A}} {
			in, out := uint32(dir[0]), uint32(dir[1])
			ports[in] = true
			// The devmap first: a port the program knows always has its peer.
			if err := d.objs.WirePeers.Put(in, out); err != nil {
				return fmt.Errorf("wire ifindex %d to %d: %w", in, out, err)
			}
			port := xdp.RstguardWirePort{PeerIfindex: out}
			if p.Closed {
				port.Closed = 1
			}
			if err := d.objs.WirePorts.Put(in, port); err != nil {
				return fmt.Errorf("wire port %d: %w", in, err)
			}
		}
	}
	for _, k := range stale {
		if ports[k] {
			continue
		}
		for _, m := range []*ebpf.Map{d.objs.WirePorts, d.objs.WirePeers} {
			if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return fmt.Errorf("wire: forget port %d: %w", k, err)
			}
		}
	}
	inUse := uint32(0)
	if len(pairs) > 0 {
		inUse = 1
	}
	if err := d.objs.WireInUse.Set(inUse); err != nil {
		return fmt.Errorf("set wire mode: %w", err)
	}
	return nil
}
