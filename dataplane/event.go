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
	Flags   uint8 // TCP flags
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
	// RSTTTL is, for EventConfirmed, the TTL of the RST proven forged;
	// Expected.TTL then holds the real sender's.
	RSTTTL  uint8
	Ifindex uint32
	// Frame holds the first bytes of the frame, FrameLen its full length.
	Frame    []byte
	FrameLen int
}

// Expected is the flow's baseline for the sender of a RST. Zero fields are
// unknown.
type Expected struct {
	Seq       uint32        `json:"seq"`
	Ack       uint32        `json:"ack"`
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
	return Event{
		Time:    clock(r.TimeNs),
		Kind:    EventKind(r.Kind),
		Src:     netip.AddrPortFrom(netip.AddrFrom16(r.Saddr).Unmap(), r.Sport),
		Dst:     netip.AddrPortFrom(netip.AddrFrom16(r.Daddr).Unmap(), r.Dport),
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
			Seq:       r.ExpSeq,
			Ack:       r.ExpAck,
			TTL:       r.ExpTtl,
			Window:    r.ExpWindow,
			IPIDModel: IPIDModel(r.IpidModel),
			RTT:       time.Duration(r.RttNs),
		},
		RSTTTL:   r.RstTtl,
		Ifindex:  r.Ifindex,
		Frame:    append([]byte(nil), r.Pkt[:capLen]...),
		FrameLen: int(r.PktLen),
	}, nil
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

// Read blocks until an event arrives or the reader is closed (ErrClosed).
func (r *EventReader) Read() (Event, error) {
	r.rd.SetDeadline(time.Time{})
	return r.read()
}

// ErrClosed is returned by Read after Close.
var ErrClosed = os.ErrClosed

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
