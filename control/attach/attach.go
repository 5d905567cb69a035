// Package attach puts rstguard's XDP program on interfaces over netlink,
// takes it off, reads back what is attached, and watches links come and go.
// A netlink attachment outlives the process: if the daemon dies, the program
// keeps judging from its maps, and it never drops what is not a RST.
package attach

import (
	"errors"
	"fmt"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/rstguard/rstguard/control/bpffs"
	"github.com/rstguard/rstguard/dataplane"
)

// ProgramName is the XDP program's name in the kernel; it marks ours.
const ProgramName = dataplane.ProgramName

// Mode is how XDP runs on an interface.
type Mode int

// Modes. Auto tries native (driver) XDP first and falls back to generic.
const (
	ModeAuto Mode = iota
	ModeNative
	ModeGeneric
)

var modeNames = map[Mode]string{ModeAuto: "auto", ModeNative: "native", ModeGeneric: "generic"}

func (m Mode) String() string { return modeNames[m] }

// ParseMode reads auto, native or generic.
func ParseMode(s string) (Mode, error) {
	for m, n := range modeNames {
		if n == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("unknown XDP mode %q: use auto, native or generic", s)
}

// ErrNoInterface means the named interface does not exist.
var ErrNoInterface = errors.New("no such interface")

// ErrForeignProgram means another XDP program holds the interface.
var ErrForeignProgram = errors.New("another XDP program is attached")

// libxdpDispatcher is the name of libxdp's multi-program dispatcher
// (xdp-tools, lib/libxdp/protocol.org), which rstguard does not join.
const libxdpDispatcher = "xdp_dispatcher"

// foreign describes another program on an interface for an error: its name
// and ID, so that `xdp-loader status` or `bpftool prog show id N` finds it.
func foreign(ifname string, progID uint32) error {
	name := "name unknown"
	if p, err := ebpf.NewProgramFromID(ebpf.ProgramID(progID)); err == nil {
		if info, err := p.Info(); err == nil {
			name = info.Name
		}
		p.Close()
	}
	if name == libxdpDispatcher {
		name += ", libxdp's dispatcher: rstguard does not join it (docs/DEPLOYMENT.md, \"Sharing an interface\")"
	}
	return fmt.Errorf("%s: %w (%s, id %d)", ifname, ErrForeignProgram, name, progID)
}

// ErrOtherPinDir means rstguard holds the interface, but with another flow
// table: another daemon's, on another pin directory.
var ErrOtherPinDir = errors.New("carries rstguard from another pin directory")

// ErrNotEthernet means the interface's frames carry no Ethernet header (an
// L3 device: tun, WireGuard, IP tunnels): the program parses Ethernet, so
// it would count every frame "not TCP" and judge nothing there.
var ErrNotEthernet = errors.New("has no Ethernet header: rstguard would judge nothing there; attach it to the Ethernet interfaces the traffic crosses")

// mapIDs lists the maps a program uses.
func mapIDs(progID uint32) []uint32 {
	p, err := ebpf.NewProgramFromID(ebpf.ProgramID(progID))
	if err != nil {
		return nil
	}
	defer p.Close()
	info, err := p.Info()
	if err != nil {
		return nil
	}
	ids, _ := info.MapIDs()
	out := make([]uint32, len(ids))
	for i, id := range ids {
		out[i] = uint32(id)
	}
	return out
}

// ownedBy reports whether the program uses the flow table flowsMap.
func ownedBy(progID, flowsMap uint32) bool {
	return slices.Contains(mapIDs(progID), flowsMap)
}

// Link finds an interface by name.
func Link(ifname string) (netlink.Link, error) {
	link, err := netlink.LinkByName(ifname)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return nil, fmt.Errorf("%s: %w", ifname, ErrNoInterface)
	}
	if err != nil {
		return nil, fmt.Errorf("look up %s: %w", ifname, err)
	}
	return link, nil
}

// State is what netlink says is attached to an interface.
type State struct {
	Ifname string `json:"iface"`
	Index  int    `json:"ifindex"`
	Up     bool   `json:"up"`
	// ProgID is 0 when no XDP program is attached.
	ProgID uint32 `json:"prog_id,omitempty"`
	Mode   string `json:"xdp_mode,omitempty"` // native, generic or offload
	Ours   bool   `json:"rstguard"`
}

// StateOf reads back an interface's XDP attachment.
func StateOf(link netlink.Link) State {
	a := link.Attrs()
	s := State{Ifname: a.Name, Index: a.Index, Up: Running(a)}
	if a.Xdp == nil || !a.Xdp.Attached {
		return s
	}
	s.ProgID = a.Xdp.ProgId
	switch a.Xdp.AttachMode {
	case nl.XDP_ATTACHED_DRV:
		s.Mode = "native"
	case nl.XDP_ATTACHED_SKB:
		s.Mode = "generic"
	case nl.XDP_ATTACHED_HW:
		s.Mode = "offload"
	}
	s.Ours = isOurs(s.ProgID)
	return s
}

func isOurs(id uint32) bool {
	p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
	if err != nil {
		return false
	}
	defer p.Close()
	info, err := p.Info()
	return err == nil && info.Name == ProgramName
}

// Attached lists every interface that carries rstguard.
func Attached() ([]State, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	var out []State
	for _, l := range links {
		if s := StateOf(l); s.Ours {
			out = append(out, s)
		}
	}
	return out, nil
}

// Attach puts prog on the interface and returns the mode it runs in. With
// ModeAuto it tries native XDP and falls back to generic; the caller should
// announce a fallback. It replaces an earlier rstguard program that uses the
// same flow table (flowsMap, the ID of the pinned flows map: an earlier run
// on the same pin directory), and refuses to replace anyone else's.
func Attach(ifname string, prog *ebpf.Program, mode Mode, flowsMap uint32) (Mode, error) {
	link, err := Link(ifname)
	if err != nil {
		return 0, err
	}
	// "loopback" frames carry an Ethernet header of zeros.
	if t := link.Attrs().EncapType; t != "ether" && t != "loopback" {
		return 0, fmt.Errorf("%s (link type %s) %w", ifname, t, ErrNotEthernet)
	}
	cur := StateOf(link)
	if cur.ProgID != 0 && !cur.Ours {
		return 0, fmt.Errorf("%w: rstguard never replaces another program; remove it first if it may go "+
			"(xdp-loader unload %s --all, or ip link set dev %s xdp off)", foreign(ifname, cur.ProgID), ifname, ifname)
	}
	if cur.Ours && !ownedBy(cur.ProgID, flowsMap) {
		owner := bpffs.OwnerOf(mapIDs(cur.ProgID))
		if owner == "" {
			owner = "unknown: its pins are gone"
		}
		return 0, fmt.Errorf("%s %w (%s): stop that daemon and run `rstguard detach -i %s --pin-dir %s`, "+
			"or run this one with --pin-dir %s", ifname, ErrOtherPinDir, owner, ifname, owner, owner)
	}
	// A program attached in the other mode must go before the new one comes.
	if cur.Ours && ((cur.Mode == "native" && mode == ModeGeneric) || (cur.Mode == "generic" && mode == ModeNative)) {
		if err := detach(link, cur); err != nil {
			return 0, err
		}
	}
	try := func(m Mode) error {
		flags := nl.XDP_FLAGS_DRV_MODE
		if m == ModeGeneric {
			flags = nl.XDP_FLAGS_SKB_MODE
		}
		if cur.ProgID == 0 {
			// Another loader may have attached since cur was read: the
			// kernel then refuses (EBUSY) rather than replace its program.
			flags |= nl.XDP_FLAGS_UPDATE_IF_NOEXIST
		}
		err := netlink.LinkSetXdpFdWithFlags(link, prog.FD(), flags)
		if errors.Is(err, unix.EBUSY) {
			if now, lerr := Link(ifname); lerr == nil {
				if id := StateOf(now).ProgID; id != 0 {
					return foreign(ifname, id)
				}
			}
		}
		return err
	}
	switch mode {
	case ModeNative, ModeGeneric:
		if err := try(mode); err != nil {
			return 0, fmt.Errorf("attach xdp to %s in %s mode: %w%s", ifname, mode, err, hint(mode))
		}
		return mode, nil
	}
	if cur.Mode == "generic" {
		// Keep the mode an earlier run settled on.
		if err := try(ModeGeneric); err == nil {
			return ModeGeneric, nil
		}
	}
	nativeErr := try(ModeNative)
	if nativeErr == nil {
		return ModeNative, nil
	}
	if err := try(ModeGeneric); err != nil {
		return 0, fmt.Errorf("attach xdp to %s: native: %v; generic: %w", ifname, nativeErr, err)
	}
	return ModeGeneric, nil
}

func hint(m Mode) string {
	if m == ModeNative {
		return " (the driver may lack native XDP: use --xdp-mode generic)"
	}
	return ""
}

// Detach takes rstguard off the interface, if the program there is the one
// of the flow table flowsMap (the ID of a pin directory's pinned flows map:
// a pin directory owns exactly the programs whose maps are its own). With
// flowsMap 0 (nothing pinned there) it takes only an orphan: a program
// whose flow table no pin directory under bpffs's root holds (a killed
// daemon's whose pins were removed). It does nothing when rstguard is not
// there, and refuses to remove another program, or another pin
// directory's rstguard.
func Detach(ifname string, flowsMap uint32) error {
	link, err := Link(ifname)
	if err != nil {
		return err
	}
	if cur := StateOf(link); cur.Ours && !Owns(cur, flowsMap) {
		owner := bpffs.OwnerOf(mapIDs(cur.ProgID))
		if owner == "" {
			owner = "unknown: its pins are gone"
		}
		return fmt.Errorf("%s %w (%s): not removing it; give that pin directory (--pin-dir %s)",
			ifname, ErrOtherPinDir, owner, owner)
	}
	return detachLink(link)
}

// Uses reports whether the interface's program uses the map mapID (a pin
// directory's flow table).
func (s State) Uses(mapID uint32) bool {
	return s.ProgID != 0 && ownedBy(s.ProgID, mapID)
}

// Owns reports whether the interface carries the rstguard program of the
// flow table flowsMap (0: an orphan's, as Detach takes them).
func Owns(s State, flowsMap uint32) bool {
	if !s.Ours {
		return false
	}
	maps := mapIDs(s.ProgID)
	if flowsMap == 0 {
		return bpffs.OwnerOf(maps) == ""
	}
	return slices.Contains(maps, flowsMap)
}

// DetachIndex takes the daemon's own program off an interface by index: an
// interface renamed since it was attached is still found.
func DetachIndex(index int) error {
	link, err := netlink.LinkByIndex(index)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return fmt.Errorf("ifindex %d: %w", index, ErrNoInterface)
	}
	if err != nil {
		return fmt.Errorf("look up ifindex %d: %w", index, err)
	}
	return detachLink(link)
}

// StateOfName reads back the XDP attachment of the interface with this name.
func StateOfName(ifname string) (State, error) {
	link, err := Link(ifname)
	if err != nil {
		return State{Ifname: ifname}, err
	}
	return StateOf(link), nil
}

// StateOfIndex reads back the XDP attachment of the interface with this index.
func StateOfIndex(index int) (State, error) {
	link, err := netlink.LinkByIndex(index)
	if err != nil {
		return State{Index: index}, fmt.Errorf("look up ifindex %d: %w", index, err)
	}
	return StateOf(link), nil
}

// Snapshot is what interfaces carried before an attach, kept so that a start
// that fails can put it back: the programs it holds stay loaded meanwhile.
type Snapshot struct {
	states []State
	progs  map[uint32]*ebpf.Program
}

// Take records the XDP programs on the interfaces (by index).
func Take(indexes []int) (*Snapshot, error) {
	s := &Snapshot{progs: map[uint32]*ebpf.Program{}}
	for _, i := range indexes {
		st, err := StateOfIndex(i)
		if err != nil {
			s.Release()
			return nil, err
		}
		if st.ProgID != 0 {
			p, err := ebpf.NewProgramFromID(ebpf.ProgramID(st.ProgID))
			if err != nil {
				s.Release()
				return nil, fmt.Errorf("hold %s's program: %w", st.Ifname, err)
			}
			s.progs[st.ProgID] = p
		}
		s.states = append(s.states, st)
	}
	return s, nil
}

// Restore puts every interface back as it was when the snapshot was taken.
func (s *Snapshot) Restore() error {
	var errs []error
	for _, st := range s.states {
		link, err := netlink.LinkByIndex(st.Index)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cur := StateOf(link)
		if cur.ProgID == st.ProgID {
			continue
		}
		if cur.ProgID != 0 {
			if err := detach(link, cur); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		if p := s.progs[st.ProgID]; p != nil {
			flags := nl.XDP_FLAGS_DRV_MODE
			if st.Mode == "generic" {
				flags = nl.XDP_FLAGS_SKB_MODE
			}
			if err := netlink.LinkSetXdpFdWithFlags(link, p.FD(), flags); err != nil {
				errs = append(errs, fmt.Errorf("put back %s's program: %w", st.Ifname, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Release lets go of the programs the snapshot held.
func (s *Snapshot) Release() {
	for _, p := range s.progs {
		p.Close()
	}
}

func detachLink(link netlink.Link) error {
	ifname := link.Attrs().Name
	cur := StateOf(link)
	if cur.ProgID == 0 {
		return nil
	}
	if !cur.Ours {
		return fmt.Errorf("%w: not removing it", foreign(ifname, cur.ProgID))
	}
	return detach(link, cur)
}

func detach(link netlink.Link, cur State) error {
	flags := nl.XDP_FLAGS_DRV_MODE
	if cur.Mode == "generic" {
		flags = nl.XDP_FLAGS_SKB_MODE
	}
	if err := netlink.LinkSetXdpFdWithFlags(link, -1, flags); err != nil {
		return fmt.Errorf("detach xdp from %s: %w", cur.Ifname, err)
	}
	return nil
}

// Running says whether a link is up and has its carrier: whether what is
// sent on it can arrive (a cut cable, or a veth whose peer is down, is up
// without one).
func Running(a *netlink.LinkAttrs) bool {
	return a.RawFlags&unix.IFF_UP != 0 && a.RawFlags&unix.IFF_LOWER_UP != 0
}

// PromiscOff turns an interface's promiscuous mode off.
func PromiscOff(ifname string) error {
	link, err := Link(ifname)
	if err != nil {
		return err
	}
	if err := netlink.SetPromiscOff(link); err != nil {
		return fmt.Errorf("%s: promiscuous mode off: %w", ifname, err)
	}
	return nil
}
