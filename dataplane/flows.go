package dataplane

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/cilium/ebpf"

	"github.com/rstguard/rstguard/xdp"
)

// Flow is one entry of the flow table, oriented client to server where the
// handshake told us which is which.
type Flow struct {
	Client    netip.AddrPort `json:"client"`
	Server    netip.AddrPort `json:"server"`
	Zone      uint16         `json:"zone,omitempty"`
	State     FlowState      `json:"state"`
	Midstream bool           `json:"midstream"` // picked up without a handshake
	// Embryonic: not yet established (no completed handshake or two-way
	// exchange seen), so in the table a flood of half-open flows evicts from.
	Embryonic bool `json:"embryonic"`
	// ClientSide and ServerSide are what each side has shown this box.
	ClientSide Baseline `json:"client_side"`
	ServerSide Baseline `json:"server_side"`
	// LastRST describes the latest RST on the flow, if any.
	LastRST *FlowRST `json:"last_rst,omitempty"`
}

// Baseline is one side's learnt behaviour.
type Baseline struct {
	Seen       bool      `json:"seen"`
	TTL        uint8     `json:"ttl"`
	IPIDModel  IPIDModel `json:"ip_id_model"`
	Window     uint16    `json:"window"`
	WScale     *uint8    `json:"wscale,omitempty"`
	Timestamps bool      `json:"timestamps"`
	NextSeq    uint32    `json:"next_seq"`
	// RTT is how long this side takes to answer at this box: measured in the
	// handshake (not after a retransmitted SYN), then the smallest later
	// sample (the first ACK covering all of the peer's data).
	RTT time.Duration `json:"rtt_ns,omitempty"`
	// LastData is how long ago this side last sent new sequence space (data,
	// SYN, FIN) through this box; zero when it never did. The program reads a
	// clock only for that, not for every ACK.
	LastData time.Duration `json:"last_data_ago_ns,omitempty"`
}

// FlowRST is the latest RST a flow saw.
type FlowRST struct {
	FromServer bool    `json:"from_server"`
	Seq        uint32  `json:"seq"`
	TTL        uint8   `json:"ttl"`
	Verdict    Verdict `json:"verdict"`
	Confirmed  bool    `json:"confirmed_forged"`
}

func has[T ~uint32](flags uint8, f T) bool { return uint32(flags)&uint32(f) != 0 }

// decodeFlow turns a table entry into a Flow; now32 is the program's clock
// now, in its time32 units.
func decodeFlow(k *xdp.RstguardFlowKey, v *xdp.RstguardFlowValue, now32 uint32) Flow {
	lo := netip.AddrPortFrom(netip.AddrFrom16(k.AddrLo).Unmap(), ntohs(k.PortLo))
	hi := netip.AddrPortFrom(netip.AddrFrom16(k.AddrHi).Unmap(), ntohs(k.PortHi))
	f := Flow{State: FlowState(v.State), Zone: k.Zone, Midstream: has(v.Flags, xdp.RstguardFlowFlagFLOW_MIDSTREAM),
		Embryonic: has(v.Flags, xdp.RstguardFlowFlagFLOW_EMBRYONIC)}
	// dir[0] is sent by the lo side. Without a handshake, the side with the
	// lower port is taken for the server.
	initHi := has(v.Flags, xdp.RstguardFlowFlagFLOW_INIT_HI)
	if f.Midstream {
		initHi = hi.Port() > lo.Port()
	}
	clientDir := 0
	f.Client, f.Server = lo, hi
	if initHi {
		clientDir = 1
		f.Client, f.Server = hi, lo
	}
	f.ClientSide = baseline(&v.Dir[clientDir], now32)
	f.ServerSide = baseline(&v.Dir[1-clientDir], now32)
	if has(v.Flags, xdp.RstguardFlowFlagFLOW_RST_PENDING) {
		fromHi := has(v.Flags, xdp.RstguardFlowFlagFLOW_RST_FROM_HI)
		f.LastRST = &FlowRST{
			FromServer: fromHi != initHi, Seq: v.RstSeq, TTL: v.RstTtl, Verdict: Verdict(v.RstVerdict),
			Confirmed: has(v.Flags, xdp.RstguardFlowFlagFLOW_CONFIRMED),
		}
	}
	return f
}

func baseline(d *xdp.RstguardDirState, now32 uint32) Baseline {
	b := Baseline{
		Seen: has(d.Flags, xdp.RstguardDirFlagDIR_SEEN), TTL: d.Ttl, IPIDModel: IPIDModel(d.IpidModel),
		Window: d.Window, Timestamps: has(d.Flags, xdp.RstguardDirFlagDIR_TS), NextSeq: d.NextSeq,
		RTT: time.Duration(d.Rtt) << time32Shift,
	}
	if d.LastDataT != 0 {
		b.LastData = time.Duration(now32-d.LastDataT) << time32Shift
	}
	if has(d.Flags, xdp.RstguardDirFlagDIR_WSCALE) {
		ws := d.Wscale
		b.WScale = &ws
	}
	return b
}

func ntohs(v uint16) uint16 { return v<<8 | v>>8 }

// Flows calls fn for each flow, established ones first, until fn returns false.
func (d *Dataplane) Flows(fn func(Flow) bool) error {
	var k xdp.RstguardFlowKey
	var v xdp.RstguardFlowValue
	now32 := uint32(monotonicNow() >> time32Shift)
	for _, m := range []*ebpf.Map{d.objs.Flows, d.objs.Embryonic} {
		it := m.Iterate()
		for it.Next(&k, &v) {
			if !fn(decodeFlow(&k, &v, now32)) {
				return nil
			}
		}
		if err := it.Err(); err != nil {
			return fmt.Errorf("read flow table: %w", err)
		}
	}
	return nil
}

// flowBatch is how many entries one batch syscall copies while counting.
const flowBatch = 4096

// eachBatch walks the flow and embryonic tables in batches, calling fn
// with each batch's values, until fn returns false or both are walked.
func (d *Dataplane) eachBatch(fn func(vals []xdp.RstguardFlowValue) bool) error {
	keys := make([]xdp.RstguardFlowKey, flowBatch)
	vals := make([]xdp.RstguardFlowValue, flowBatch)
	for _, m := range []*ebpf.Map{d.objs.Flows, d.objs.Embryonic} {
		var cursor ebpf.MapBatchCursor
		for {
			n, err := m.BatchLookup(&cursor, keys, vals, nil)
			if !fn(vals[:n]) {
				return nil
			}
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				break
			}
			if err != nil {
				return fmt.Errorf("read flow table: %w", err)
			}
		}
	}
	return nil
}

// FlowTable reports the capacity of the flow and embryonic tables together,
// and how many flows they hold.
// Counting walks the table in batches: about a second per million flows.
func (d *Dataplane) FlowTable() (capacity, used int, err error) {
	capacity = int(d.objs.Flows.MaxEntries() + d.objs.Embryonic.MaxEntries())
	err = d.eachBatch(func(vals []xdp.RstguardFlowValue) bool {
		used += len(vals)
		return true
	})
	return capacity, used, err
}

// Directions samples at least limit flows, or all there are (a hash table's
// order is no order: the first entries are as good a sample as any), and
// counts those carrying data one way only, never seen from the other side,
// and those seen from both sides. A side carries data when it sent more
// sequence space than a SYN, so that scans and half-open flows, one-way by
// nature, count in neither. Asymmetric routing shows as most flows one-way
// (health.OneWay).
func (d *Dataplane) Directions(limit int) (oneWay, twoWay int, err error) {
	seen := func(s *xdp.RstguardDirState) bool { return has(s.Flags, xdp.RstguardDirFlagDIR_SEEN) }
	carries := func(s *xdp.RstguardDirState) bool { return seen(s) && s.NextSeq-s.Isn > 1 }
	sampled := 0
	err = d.eachBatch(func(vals []xdp.RstguardFlowValue) bool {
		for i := range vals {
			a, b := &vals[i].Dir[0], &vals[i].Dir[1]
			switch {
			case seen(a) && seen(b):
				twoWay++
			case carries(a) || carries(b):
				oneWay++
			}
		}
		sampled += len(vals)
		return sampled < limit
	})
	return oneWay, twoWay, err
}
