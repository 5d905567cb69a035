package hold

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rstguard/rstguard/dataplane"
	"github.com/rstguard/rstguard/internal/tcpflag"
)

// records is the program's hold table as the decisions see it: the
// Dataplane in the daemon (kernelRecords), a map in the tests.
type records interface {
	LookupHold(key dataplane.FlowKey) (dataplane.Hold, bool, error)
	// ProvenAlive marks the hold begun at held as decided forged at now: the
	// program then drops the sender's later RSTs on its own for a while.
	ProvenAlive(key dataplane.FlowKey, held uint64, now time.Time) error
	ZoneOf(ifindex int, vlan uint16) uint16
}

// wire sends a frame out of an interface: the AF_XDP sockets in the daemon,
// a list in the tests.
type wire interface {
	send(ifindex int, frame []byte) error
}

// decisions is hold mode's decision core: frames, nudges and the clock in;
// probes and releases out through the wire, the holds it ended (whose records
// go) and one report per decided hold out in the turn, every frame counted.
// It owns no socket and reads no clock: the Manager's socket loop drives it,
// and the tests drive it with fixture tables and a made-up clock.
type decisions struct {
	prog   records
	wire   wire
	log    *slog.Logger
	policy dataplane.Policy

	pending    map[dataplane.FlowKey]*held
	recent     map[dataplane.FlowKey]decided
	heldFrames int
	next       time.Time // earliest deadline among pending holds
	limit      *limiter

	// ended are the holds decided this turn (their program records go in
	// one batch at the end of the turn), reports their events.
	ended   []dataplane.FlowKey
	reports []dataplane.Event

	outcomes                    *prometheus.CounterVec
	late                        *prometheus.CounterVec
	waited                      prometheus.Histogram
	heldNow                     atomic.Int64
	releaseErrors, strayAnswers atomic.Uint64
	unparsed                    atomic.Uint64
}

// held is one flow's hold: its RSTs, in arrival order.
type held struct {
	key      dataplane.FlowKey
	hold     dataplane.Hold
	first    dataplane.Segment
	frames   [][]byte
	start    time.Time
	deadline time.Time
}

// decided remembers a hold's end for a moment, so that a RST of the flow
// redirected before the end gets the same fate; a RST that began a new hold
// since (the program's record is newer) begins its own.
type decided struct {
	forged bool
	hold   dataplane.Hold
	held   uint64 // the program's clock when the decided hold began
	until  time.Time
}

// lateRSTs is how long a decided hold's fate applies to RSTs still arriving.
const lateRSTs = time.Second

func newDecisions(prog records, w wire, log *slog.Logger, policy dataplane.Policy) *decisions {
	d := &decisions{
		prog: prog, wire: w, log: log, policy: policy,
		pending: map[dataplane.FlowKey]*held{}, recent: map[dataplane.FlowKey]decided{},
		limit: newLimiter(),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rstguard_hold_outcomes_total", Help: "Held RSTs decided, by outcome (see docs/SIGNALS.md).",
		}, []string{"outcome"}),
		late: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rstguard_hold_late_rsts_total",
			Help: "RSTs that reached the daemon after their flow's hold was decided, with no newer hold: they share its fate.",
		}, []string{"fate"}),
		waited: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "rstguard_hold_wait_seconds", Help: "How long held RSTs waited for a decision: the delay a released one incurred.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5},
		}),
	}
	for o := range dataplane.HoldOutcomeCount {
		d.outcomes.WithLabelValues(dataplane.HoldOutcome(o).String())
	}
	d.late.WithLabelValues("dropped")
	d.late.WithLabelValues("released")
	return d
}

// window is how long a hold waits for an answer: three of the claimed
// sender's leg RTTs (probe out, answer back, and slack), within the policy's
// floor and cap; the cap when the RTT is unknown.
func (d *decisions) window(rtt time.Duration) time.Duration {
	if rtt == 0 {
		return d.policy.HoldMax
	}
	return min(max(3*rtt, d.policy.HoldMin), d.policy.HoldMax)
}

// frame handles one frame the program redirected to the daemon on the
// interface ifindex: a held RST or a probe's answer.
func (d *decisions) frame(ifindex int, f []byte, now time.Time) {
	seg, err := dataplane.ParseSegment(f)
	if err != nil {
		d.unparsed.Add(1)
		return
	}
	key, fromHi := seg.Key(d.prog.ZoneOf(ifindex, seg.VLAN))
	h := d.pending[key]
	frame := append([]byte(nil), f...)
	if seg.Flags&tcpflag.RST == 0 {
		// The program redirects only pure ACKs that answer a pending probe.
		// Each goes on to the endpoint it is addressed to once it has
		// decided, as every frame that is not a RST does (fail open): to
		// it, the probe's answer is a duplicate ACK, harmless, and a
		// window update that crossed the probe looks the same and is
		// needed. One after its hold was decided (redirected before the
		// program read the decision) is stray, and goes on too.
		if h != nil && fromHi == h.hold.FromHi && IsACKAnswer(seg, h.hold) {
			d.decide(h, dataplane.HoldAnsweredACK, frame, now)
			d.release(frame, seg, h.hold)
			return
		}
		d.strayAnswers.Add(1)
		if h != nil {
			d.release(frame, seg, h.hold)
		} else if dec, ok := d.recent[key]; ok {
			d.release(frame, seg, dec.hold)
		} else if hd, ok, err := d.prog.LookupHold(key); err == nil && ok {
			d.release(frame, seg, hd)
		} else {
			d.releaseErrors.Add(1) // nothing says where it was going
		}
		return
	}
	if h == nil {
		hd, ok, err := d.prog.LookupHold(key)
		if dec, late := d.recent[key]; late && now.Before(dec.until) && !(ok && hd.Held > dec.held) {
			// The RST answer to a probe whose hold was decided already:
			// it answers the daemon, and goes no further.
			if fromHi == dec.hold.FromHi && IsRSTAnswer(seg, dec.hold) {
				d.strayAnswers.Add(1)
				return
			}
			// A RST of the decided hold all the same. The program keeps
			// a hold's later RSTs in its own count and redirects none, so
			// this is a guard: should one come, it gets the decided fate,
			// neither a second probe nor loss.
			if dec.forged {
				d.late.WithLabelValues("dropped").Inc()
			} else {
				d.late.WithLabelValues("released").Inc()
				d.release(frame, seg, dec.hold)
			}
			return
		}
		if err != nil || !ok {
			// Redirected without a record: nothing says where it was going.
			d.releaseErrors.Add(1)
			d.log.Error("held RST without a hold record: lost", "src", seg.Src, "dst", seg.Dst, "err", err)
			return
		}
		d.start(ifindex, key, hd, seg, frame, now)
		return
	}
	// The answer echoes the probe's nonce: nobody who has not read the
	// probe can send it, so no timing rule is needed.
	if fromHi == h.hold.FromHi && IsRSTAnswer(seg, h.hold) {
		d.decide(h, dataplane.HoldAnsweredRST, frame, now)
		return
	}
	// A later RST in the sender's name joins the hold. The program keeps
	// joiners in the hold record's count; one redirected all the same (the
	// record written on another CPU as it was judged) shares the hold's
	// fate here, and the hold's one outcome counts it; past the frame limit
	// it goes on at once.
	if d.heldFrames >= int(d.policy.HoldFrames) {
		d.release(frame, seg, h.hold)
		return
	}
	h.frames = append(h.frames, frame)
	d.setHeld(d.heldFrames + 1)
}

// start begins a hold on what the program recorded: send the probe, out of
// the interface toward the claimed sender (the program's route lookup), or
// the one the RST came in on where the program found none.
func (d *decisions) start(ingress int, key dataplane.FlowKey, hd dataplane.Hold, seg dataplane.Segment, frame []byte, now time.Time) {
	h := &held{key: key, hold: hd, first: seg, frames: [][]byte{frame}, start: now}
	d.pending[key] = h
	// A decided hold of this flow is over: its proven-alive record, which
	// expire() would end, is the new hold's now.
	delete(d.recent, key)
	d.setHeld(d.heldFrames + 1)
	if d.heldFrames > int(d.policy.HoldFrames) {
		d.decide(h, dataplane.HoldFull, nil, now)
		return
	}
	if !d.limit.allow(seg.Src.Addr(), now, float64(d.policy.ProbeRate)) {
		d.decide(h, dataplane.HoldRateLimited, nil, now)
		return
	}
	out := hd.Probe
	if out == 0 {
		out = ingress
	}
	if err := d.wire.send(out, Probe(seg, hd)); err != nil {
		d.log.Warn("probe not sent: releasing", "src", seg.Src, "err", err)
		d.decide(h, dataplane.HoldProbeUnsent, nil, now)
		return
	}
	h.deadline = now.Add(d.window(hd.RTT))
	if d.next.IsZero() || h.deadline.Before(d.next) {
		d.next = h.deadline
	}
}

// nudge is the program's word that a flow's claimed sender sent data in
// sequence (an EventConfirmed): its hold ends now rather than at its
// deadline, if the record says so.
func (d *decisions) nudge(key dataplane.FlowKey, now time.Time) {
	if h := d.pending[key]; h != nil && d.dataSeen(h) {
		d.decide(h, dataplane.HoldData, nil, now)
	}
}

// dataSeen asks the program whether the claimed sender sent data in sequence.
func (d *decisions) dataSeen(h *held) bool {
	hd, ok, err := d.prog.LookupHold(h.key)
	return err == nil && ok && hd.DataSeen
}

// expire ends the holds whose window has passed: the program's evidence
// decides, and without any the RST is released (fail open).
func (d *decisions) expire(now time.Time) {
	if len(d.recent) > 0 && now.After(d.next) {
		for k, dec := range d.recent {
			if now.After(dec.until) {
				delete(d.recent, k)
				if dec.forged { // its proven-alive record is over too
					d.ended = append(d.ended, k)
				}
			}
		}
	}
	if d.next.IsZero() || now.Before(d.next) {
		return
	}
	d.next = time.Time{}
	for _, h := range d.pending {
		switch {
		case !now.Before(h.deadline) && d.dataSeen(h):
			d.decide(h, dataplane.HoldData, nil, now)
		case !now.Before(h.deadline):
			d.decide(h, dataplane.HoldTimeout, nil, now)
		case d.next.IsZero() || h.deadline.Before(d.next):
			d.next = h.deadline
		}
	}
}

// releaseAll ends every pending hold as its deadline would: a stopping
// daemon must not take held RSTs with it.
func (d *decisions) releaseAll(now time.Time) {
	for _, h := range d.pending {
		d.decide(h, dataplane.HoldTimeout, nil, now)
	}
}

// decide ends a hold: a forged RST is dropped with everything held with it,
// any other is released where it was going. Every hold is reported.
func (d *decisions) decide(h *held, o dataplane.HoldOutcome, answer []byte, now time.Time) {
	delete(d.pending, h.key)
	// The RSTs that joined the hold in the program's count share its fate
	// there: dropped (docs/SIGNALS.md, hold mode); the report counts them.
	joined := 0
	if hd, ok, err := d.prog.LookupHold(h.key); err == nil && ok && hd.Held == h.hold.Held {
		joined = hd.Joined
	}
	d.setHeld(d.heldFrames - len(h.frames))
	until := now.Add(lateRSTs)
	if o.Forged() {
		// Proven alive: the program drops the sender's next RSTs on its
		// own for a while, then the record goes (expire).
		if err := d.prog.ProvenAlive(h.key, h.hold.Held, now); err != nil {
			d.log.Error("mark hold proven", "err", err)
		}
		until = now.Add(max(lateRSTs, dataplane.ProvenAliveFor(h.hold.RTT)))
	} else {
		d.ended = append(d.ended, h.key)
		for _, f := range h.frames {
			if seg, err := dataplane.ParseSegment(f); err == nil {
				d.release(f, seg, h.hold)
			}
		}
	}
	d.recent[h.key] = decided{forged: o.Forged(), hold: h.hold, held: h.hold.Held, until: until}
	waited := now.Sub(h.start)
	d.outcomes.WithLabelValues(o.String()).Inc()
	d.waited.Observe(waited.Seconds())

	e := dataplane.Event{
		Time: now, Kind: dataplane.EventHold, Src: h.first.Src, Dst: h.first.Dst, Zone: h.key.Zone, Flags: h.first.Flags,
		Seq: h.first.Seq, Ack: h.first.Ack, TTL: h.first.TTL, Ifindex: uint32(h.hold.IngressIfindex),
		Action: dataplane.ActionPass, Frame: h.frames[0], FrameLen: len(h.frames[0]),
		Hold: &dataplane.HoldResult{Outcome: o, Waited: waited, Frames: len(h.frames) + joined, Joined: joined, Answer: answer},
	}
	switch o {
	case dataplane.HoldAnsweredACK, dataplane.HoldData:
		e.Verdict, e.Action = dataplane.VerdictSpoofed, dataplane.ActionDrop
	case dataplane.HoldAnsweredRST:
		e.Verdict = dataplane.VerdictValid
	}
	if o != dataplane.HoldFull && o != dataplane.HoldRateLimited && o != dataplane.HoldProbeUnsent {
		e.Hold.ProbeSeq, e.Hold.ProbeAck = h.hold.ProbeSeq, h.hold.Nonce
	}
	d.reports = append(d.reports, e)
}

func (d *decisions) setHeld(n int) {
	d.heldFrames = n
	d.heldNow.Store(int64(n))
}

// release sends a held RST, or a probe's answer, on to where it was going,
// out of the egress interface, changed only as forwarding changes it
// (Forward); in the wire, as it came, as a cable carries it.
func (d *decisions) release(frame []byte, seg dataplane.Segment, hd dataplane.Hold) {
	out, err := frame, error(nil)
	if !hd.Wire {
		out, err = Forward(frame, seg, hd.EgressSrc, hd.EgressDst)
	}
	if err == nil {
		err = d.wire.send(hd.Egress, out)
	}
	if err != nil {
		d.releaseErrors.Add(1)
		d.log.Warn("held frame not sent on", "src", seg.Src, "dst", seg.Dst, "err", err)
	}
}

// turn hands over what this turn decided: the holds whose records go, and
// the reports; both start empty again.
func (d *decisions) turn() (ended []dataplane.FlowKey, reports []dataplane.Event) {
	ended, reports = d.ended, d.reports
	d.ended, d.reports = nil, nil
	return ended, reports
}
