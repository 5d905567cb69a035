package dataplane

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"
	"unsafe"

	"github.com/cilium/ebpf/ringbuf"

	"github.com/rstguard/rstguard/xdp"
)

// Event is one record of the ring buffer: a judged RST, or evidence about an
// earlier one.
type Event struct {
	Time    time.Time
	Kind    EventKind
	Src     netip.AddrPort // the claimed sender
	Dst     netip.AddrPort
	Zone    uint16 // the address space (0 unless zones are configured)
	Flags   uint8  // TCP flags
	Seq     uint32
	Ack     uint32
	TTL     uint8
	IPID    uint16
	Window  uint16
	Verdict Verdict
	Signals Signals
	Action  Action
	Score   uint8
	// Expected is what the flow's baseline said the sender would send.
	Expected Expected
	// RST is, for EventConfirmed, the RST proven forged; the packet fields
	// then describe the evidence, the real sender's packet after it.
	RST *ForgedRST
	// Hold is, for EventHold, how the hold ended; the packet fields then
	// describe the (first) held RST.
	Hold    *HoldResult
	Ifindex uint32
	// Frame holds the first bytes of the frame, FrameLen its full length.
	Frame    []byte
	FrameLen int
}

// ForgedRST is the RST an EventConfirmed proves forged.
type ForgedRST struct {
	Seq uint32 `json:"seq"`
	TTL uint8  `json:"ttl"`
	// VerdictThen is what the RST was judged when it passed this box.
	VerdictThen Verdict `json:"verdict_then"`
}

// HoldResult is how a held RST was decided.
type HoldResult struct {
	Outcome HoldOutcome `json:"outcome"`
	// Waited is how long the RST was held: the delay a released RST got.
	Waited time.Duration `json:"waited_ns"`
	// Frames is how many RSTs of the flow were held together: those that
	// reached the daemon and those the program kept in its count (Joined).
	Frames int `json:"frames"`
	Joined int `json:"joined"`
	// ProbeSeq and ProbeAck are the probe's numbers; both 0 when no probe
	// was sent.
	ProbeSeq uint32 `json:"probe_seq"`
	ProbeAck uint32 `json:"probe_ack"`
	// Answer is the frame that decided it (the probe's answer or the data),
	// for the evidence file.
	Answer []byte `json:"-"`
}

// Expected is the flow's baseline for the sender of a RST. Absent (nil or
// zero) fields are unknown: Seq and TTL need a packet from the sender, Ack
// one from its peer.
type Expected struct {
	Seq       *uint32       `json:"seq,omitempty"`
	Ack       *uint32       `json:"ack,omitempty"`
	TTL       uint8         `json:"ttl,omitempty"`
	Window    uint16        `json:"peer_window"`
	IPIDModel IPIDModel     `json:"ip_id_model"`
	RTT       time.Duration `json:"rtt_ns,omitempty"`
}

// eventSize is the size of one ring-buffer record.
const eventSize = int(unsafe.Sizeof(xdp.RstguardEvent{}))

// DecodeEvent decodes one ring-buffer record at the fixed offsets of
// struct event, without reflection: a flood must not outrun the reader.
// clock turns the program's nanosecond timestamp into wall time.
func DecodeEvent(raw []byte, clock func(ns uint64) time.Time) (Event, error) {
	if len(raw) < eventSize {
		return Event{}, fmt.Errorf("event record of %d bytes, want %d", len(raw), eventSize)
	}
	var r xdp.RstguardEvent
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&r)), eventSize), raw)
	capLen := min(int(r.CapLen), len(r.Pkt))
	e := Event{
		Time:    clock(r.TimeNs),
		Kind:    EventKind(r.Kind),
		Src:     netip.AddrPortFrom(netip.AddrFrom16(r.Saddr).Unmap(), r.Sport),
		Dst:     netip.AddrPortFrom(netip.AddrFrom16(r.Daddr).Unmap(), r.Dport),
		Zone:    r.Zone,
		Flags:   r.TcpFlags,
		Seq:     r.Seq,
		Ack:     r.Ack,
		TTL:     r.Ttl,
		IPID:    r.IpId,
		Window:  r.Window,
		Verdict: Verdict(r.Verdict),
		Signals: Signals(r.Signals),
		Action:  Action(r.Action),
		Score:   r.Score,
		Expected: Expected{
			TTL:       r.ExpTtl,
			Window:    r.ExpWindow,
			IPIDModel: IPIDModel(r.IpidModel),
			RTT:       time.Duration(r.RttNs),
		},
		Ifindex:  r.Ifindex,
		Frame:    append([]byte(nil), r.Pkt[:capLen]...),
		FrameLen: int(r.PktLen),
	}
	// A judged event's baseline exists only for the sides that were seen;
	// a TTL of 0 never crosses a network, so it marks the sender unseen.
	if e.Kind == EventConfirmed {
		e.RST = &ForgedRST{Seq: r.RstSeq, TTL: r.RstTtl, VerdictThen: Verdict(r.RstVerdict)}
		return e, nil
	}
	if e.Verdict != VerdictUnknown {
		if r.ExpTtl != 0 {
			e.Expected.Seq = &r.ExpSeq
		}
		e.Expected.Ack = &r.ExpAck
	}
	return e, nil
}

// EventReader reads the ring buffer.
type EventReader struct {
	rd    *ringbuf.Reader
	rec   ringbuf.Record
	clock func(uint64) time.Time
}

// NewEventReader reads events from the program's ring buffer; clock turns
// the program's timestamps into wall time (see MonotonicClock).
func (d *Dataplane) NewEventReader(clock func(uint64) time.Time) (*EventReader, error) {
	rd, err := ringbuf.NewReader(d.objs.Events)
	if err != nil {
		return nil, fmt.Errorf("open event ring buffer: %w", err)
	}
	return &EventReader{rd: rd, clock: clock}, nil
}

// Read blocks until an event arrives or the reader is closed (ErrClosed);
// after Flush it returns what was queued, then ErrFlushed.
func (r *EventReader) Read() (Event, error) {
	r.rd.SetDeadline(time.Time{})
	return r.read()
}

// ErrClosed is returned by Read after Close.
var ErrClosed = os.ErrClosed

// ErrFlushed is returned by Read once everything queued before Flush was read.
var ErrFlushed = ringbuf.ErrFlushed

// Flush makes a blocked Read return every event still queued, then
// ErrFlushed: a stopping daemon loses none.
func (r *EventReader) Flush() error { return r.rd.Flush() }

// Drain returns every event waiting in the ring buffer, without blocking.
func (r *EventReader) Drain() ([]Event, error) {
	r.rd.SetDeadline(time.Now())
	var out []Event
	for {
		e, err := r.read()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
}

func (r *EventReader) read() (Event, error) {
	if err := r.rd.ReadInto(&r.rec); err != nil {
		if errors.Is(err, ringbuf.ErrClosed) {
			return Event{}, ErrClosed
		}
		return Event{}, err
	}
	return DecodeEvent(r.rec.RawSample, r.clock)
}

// Close stops the reader; a blocked Read returns ErrClosed.
func (r *EventReader) Close() error {
	return r.rd.Close()
}
