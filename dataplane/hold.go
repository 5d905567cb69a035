package dataplane

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/cilium/ebpf"

	"github.com/rstguard/rstguard/xdp"
)

// HoldAnswerSeqSlack is how far a probe answer's seq may be ahead of the
// claimed sender's next sequence as the gateway saw it (HOLD_ANSWER_SEQ_SLACK).
const HoldAnswerSeqSlack = 1 << 30

// Hold is the program's record of a held flow: what the daemon needs to ask
// the claimed sender and to release the RST (struct hold).
type Hold struct {
	// Held is when the first RST was held, on the program's clock
	// (CLOCK_MONOTONIC nanoseconds).
	Held uint64
	// ProbeSeq is the sequence number of the probe's one byte, old data
	// the claimed sender acknowledged already (its highest ACK - 2);
	// PeerNext the other side's next sequence, which a live sender's
	// answer acknowledges; ProbeAck the claimed sender's next sequence.
	ProbeSeq, PeerNext, ProbeAck uint32
	// Nonce is the probe's acknowledgment number, drawn by the program
	// below ProbeAck: a stack without the connection answers with a RST at
	// seq = Nonce (RFC 9293 3.10.7.1), which only a reader of the probe knows.
	Nonce uint32
	// RTT is the claimed sender's leg RTT at this box; 0 when unknown.
	RTT            time.Duration
	IngressIfindex int
	// Egress, EgressSrc and EgressDst are where the kernel would forward the
	// RST (bpf_fib_lookup at hold time).
	Egress               int
	EgressSrc, EgressDst net.HardwareAddr
	// Probe, ProbeSrc and ProbeDst are where the kernel would send a packet
	// to the claimed sender: the probe leaves there, whatever L2 header
	// the held frame carried.
	Probe              int
	ProbeSrc, ProbeDst net.HardwareAddr
	// Wire: held on a port of a wire pair. The RST is released as it came
	// (Egress is the pair's other port, EgressSrc and EgressDst its own
	// MACs), and the probe carries ProbeVLAN's tag (0: none): the claimed
	// sender's outer VLAN from its handshake, as ProbeDst is its MAC.
	Wire      bool
	ProbeVLAN uint16
	FromHi    bool
	// DataSeen: the claimed sender sent data in sequence during the hold.
	DataSeen bool
	// Joined is how many later RSTs of the hold the program dropped in
	// its count: they share the hold's fate.
	Joined int
}

// LookupHold reads the hold of a flow; ok is false when there is none.
func (d *Dataplane) LookupHold(key xdp.RstguardFlowKey) (h Hold, ok bool, err error) {
	var v xdp.RstguardHold
	if err := d.objs.Holds.Lookup(&key, &v); errors.Is(err, ebpf.ErrKeyNotExist) {
		return h, false, nil
	} else if err != nil {
		return h, false, fmt.Errorf("read hold: %w", err)
	}
	return Hold{
		Held: v.HeldNs, ProbeSeq: v.ProbeSeq, PeerNext: v.PeerNext, ProbeAck: v.ProbeAck, Nonce: v.Nonce, RTT: time.Duration(v.RttNs),
		IngressIfindex: int(v.IngressIfindex), Egress: int(v.EgressIfindex),
		EgressSrc: net.HardwareAddr(v.EgressSmac[:]), EgressDst: net.HardwareAddr(v.EgressDmac[:]),
		Probe: int(v.ProbeIfindex), ProbeSrc: net.HardwareAddr(v.ProbeSmac[:]), ProbeDst: net.HardwareAddr(v.ProbeDmac[:]),
		Wire: v.Wire != 0, ProbeVLAN: v.ProbeVlan,
		FromHi: v.FromHi != 0, DataSeen: v.Evidence == uint8(xdp.RstguardHoldEvidenceHOLD_EVIDENCE_DATA),
		Joined: int(v.Joined),
	}, true, nil
}

// ProvenAlive marks a flow's hold, begun at held, decided forged at
// decidedNs (the program's clock): for PROVEN_ALIVE_MS and two leg RTTs more,
// the program drops later RSTs in the claimed sender's name on that
// connection without a new probe: the same answer convicts them. A record
// gone, or of a newer hold, is left as it is.
func (d *Dataplane) ProvenAlive(key xdp.RstguardFlowKey, held, decidedNs uint64) error {
	var v xdp.RstguardHold
	if err := d.objs.Holds.Lookup(&key, &v); errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("read hold: %w", err)
	}
	if v.HeldNs != held {
		return nil
	}
	v.Evidence, v.DecidedNs = uint8(xdp.RstguardHoldEvidenceHOLD_EVIDENCE_PROVEN), decidedNs
	if err := d.objs.Holds.Update(&key, &v, ebpf.UpdateExist); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("mark hold proven: %w", err)
	}
	return nil
}

// ProvenAliveFor is how long ProvenAlive lasts for a leg of this RTT.
func ProvenAliveFor(rtt time.Duration) time.Duration {
	return time.Duration(xdp.RstguardHoldLimitsPROVEN_ALIVE_MS)*time.Millisecond + 2*rtt
}

// EndHold removes a flow's hold: later RSTs of the flow are judged afresh.
func (d *Dataplane) EndHold(key xdp.RstguardFlowKey) error {
	if err := d.objs.Holds.Delete(&key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("end hold: %w", err)
	}
	return nil
}

// EndHolds removes the holds of several flows with one system call.
// A key already gone (a flow decided twice in one batch) is skipped: the
// kernel stops a batch at the first missing key.
func (d *Dataplane) EndHolds(keys []xdp.RstguardFlowKey) error {
	for len(keys) > 0 {
		n, err := d.objs.Holds.BatchDelete(keys, nil)
		switch {
		case errors.Is(err, ebpf.ErrKeyNotExist):
			keys = keys[min(n+1, len(keys)):]
		case err != nil:
			return fmt.Errorf("end holds: %w", err)
		default:
			return nil
		}
	}
	return nil
}

// Holding counts the hold records: pending, the flows whose RST waits for a
// decision now, and proven, those kept a moment after a forged decision so
// that the program drops the sender's next RSTs on its own (nothing waits
// in them).
func (d *Dataplane) Holding() (pending, proven int, err error) {
	var k xdp.RstguardFlowKey
	var v xdp.RstguardHold
	it := d.objs.Holds.Iterate()
	for it.Next(&k, &v) {
		if v.Evidence == uint8(xdp.RstguardHoldEvidenceHOLD_EVIDENCE_PROVEN) {
			proven++
		} else {
			pending++
		}
	}
	return pending, proven, it.Err()
}

// RegisterSocket puts s in the program's XSKMAP at slot and tells the
// program which interface and queue it serves: from then on the program
// redirects held RSTs of that queue to it.
func (d *Dataplane) RegisterSocket(slot uint32, s *Socket) error {
	if err := d.objs.Xsks.Put(slot, uint32(s.FD())); err != nil {
		return fmt.Errorf("register AF_XDP socket: %w", err)
	}
	key := xdp.RstguardXskKey{Ifindex: uint32(s.Ifindex), Queue: uint32(s.Queue)}
	val := xdp.RstguardXskSlot{Slot: slot}
	if s.ZeroCopy {
		val.Zerocopy = 1
	}
	if err := d.objs.XskSlots.Put(&key, &val); err != nil {
		return fmt.Errorf("register AF_XDP socket: %w", err)
	}
	return nil
}

// SocketInfo is one registered AF_XDP socket.
type SocketInfo struct {
	Ifindex int    `json:"ifindex"`
	Queue   int    `json:"queue"`
	Mode    string `json:"mode"` // zerocopy or copy
}

// Sockets lists the registered AF_XDP sockets. After the daemon was killed
// they are listed but redirect nothing (the kernel emptied the XSKMAP).
func (d *Dataplane) Sockets() ([]SocketInfo, error) {
	var out []SocketInfo
	var k xdp.RstguardXskKey
	var v xdp.RstguardXskSlot
	it := d.objs.XskSlots.Iterate()
	for it.Next(&k, &v) {
		mode := "copy"
		if v.Zerocopy != 0 {
			mode = "zerocopy"
		}
		out = append(out, SocketInfo{Ifindex: int(k.Ifindex), Queue: int(k.Queue), Mode: mode})
	}
	return out, it.Err()
}

// UnregisterSocket takes s out of the XSKMAP slot it was registered at and
// forgets which interface and queue it served.
func (d *Dataplane) UnregisterSocket(slot uint32, s *Socket) error {
	key := xdp.RstguardXskKey{Ifindex: uint32(s.Ifindex), Queue: uint32(s.Queue)}
	errs := []error{d.objs.XskSlots.Delete(&key), d.objs.Xsks.Delete(slot)}
	for i, err := range errs {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			errs[i] = nil
		}
	}
	return errors.Join(errs...)
}

// UnregisterSockets forgets every socket registration and empties the
// XSKMAP, keeping the holds: from then on the program redirects nothing,
// and what it redirected before still finds its record. A stopping daemon
// does this first, then reads its sockets, then decides what it holds.
// Maps opened from the pins (OpenPinned) have no XSKMAP: it is not pinned,
// and a socket leaves it as the socket closes.
func (d *Dataplane) UnregisterSockets() error {
	errs := []error{clearMap[xdp.RstguardXskKey, xdp.RstguardXskSlot](d.objs.XskSlots)}
	if d.objs.Xsks == nil {
		return errors.Join(errs...)
	}
	for slot := range d.objs.Xsks.MaxEntries() {
		if err := d.objs.Xsks.Delete(slot); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, fmt.Errorf("clear XSKMAP: %w", err))
		}
	}
	return errors.Join(errs...)
}

// ClearHolds forgets every socket registration and hold, and empties the
// XSKMAP: from then on the program redirects nothing. A starting daemon owns
// neither a dead one's sockets nor its held frames; a stopping one must not
// count on closing its sockets, which asavie/xdp does not release (Socket.Close).
func (d *Dataplane) ClearHolds() error {
	return errors.Join(d.UnregisterSockets(), clearMap[xdp.RstguardFlowKey, xdp.RstguardHold](d.objs.Holds))
}

// clearMap empties m, whose keys are K and values V.
func clearMap[K, V any](m *ebpf.Map) error {
	keys, err := keysOf[K, V](m)
	if err != nil {
		return fmt.Errorf("clear %v: %w", m, err)
	}
	if len(keys) == 0 {
		return nil
	}
	// One system call for all, where the map type has batches (hashes).
	if _, err := m.BatchDelete(keys, nil); err == nil || errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil
	}
	for _, k := range keys {
		if err := m.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("clear %v: %w", m, err)
		}
	}
	return nil
}

// keysOf lists m's keys.
func keysOf[K, V any](m *ebpf.Map) ([]K, error) {
	var keys []K
	var k K
	var v V
	it := m.Iterate()
	for it.Next(&k, &v) {
		keys = append(keys, k)
	}
	return keys, it.Err()
}
