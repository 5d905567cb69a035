package hold

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/rstguard/rstguard/bench/frames"
	"github.com/rstguard/rstguard/dataplane"
	"github.com/rstguard/rstguard/internal/tcpflag"
)

// The decision core driven without a kernel: the program's hold records are
// a map, the wire a list, the clock made up. Each row is a sequence of what
// reaches the daemon (frames, nudges, the clock) with the one outcome and
// the frames that must leave asserted. The same rows against the real
// program and real stacks are cmd/rstguard's TestHoldMode and
// TestHoldModeOnALongLeg.

// fakeRecords stands for the program's hold table.
type fakeRecords struct {
	holds  map[dataplane.FlowKey]dataplane.Hold
	proven map[dataplane.FlowKey]uint64
}

func (r *fakeRecords) LookupHold(k dataplane.FlowKey) (dataplane.Hold, bool, error) {
	h, ok := r.holds[k]
	return h, ok, nil
}

func (r *fakeRecords) ProvenAlive(k dataplane.FlowKey, held uint64, _ time.Time) error {
	if h, ok := r.holds[k]; !ok || h.Held != held {
		return errors.New("no such hold")
	}
	r.proven[k] = held
	return nil
}

func (r *fakeRecords) ZoneOf(int, uint16) uint16 { return 0 }

type sent struct {
	ifindex int
	frame   []byte
}

// fakeWire records what leaves; sends out of a down interface fail.
type fakeWire struct {
	sent []sent
	down map[int]bool
}

func (w *fakeWire) send(ifindex int, f []byte) error {
	if w.down[ifindex] {
		return errors.New("interface down")
	}
	w.sent = append(w.sent, sent{ifindex, slices.Clone(f)})
	return nil
}

// The interfaces: RSTs come in on ingressIf, go on out of egressIf; the
// program's route to the claimed sender is probeIf.
const (
	ingressIf = 3
	egressIf  = 4
	probeIf   = 5
)

var (
	egressSrc, egressDst = net.HardwareAddr{2, 0, 0, 0, 4, 1}, net.HardwareAddr{2, 0, 0, 0, 4, 2}
	probeSrc, probeDst   = net.HardwareAddr{2, 0, 0, 0, 5, 1}, net.HardwareAddr{2, 0, 0, 0, 5, 2}
)

// The flow: the client (claimed sender) is at seq clientNext, the server at
// serverNext; the program drew nonce for the probe.
const (
	clientNext = 1000
	serverNext = 5000
	nonce      = 977
)

var testPolicy = dataplane.Policy{HoldMin: 5 * time.Millisecond, HoldMax: 200 * time.Millisecond, HoldFrames: 64, ProbeRate: 1000}

// record is what the program writes when it holds the client's RST.
func record(held uint64, rtt time.Duration) dataplane.Hold {
	return dataplane.Hold{Held: held, ProbeSeq: serverNext - 2, PeerNext: serverNext, ProbeAck: clientNext, Nonce: nonce, RTT: rtt,
		IngressIfindex: ingressIf, Egress: egressIf, EgressSrc: egressSrc, EgressDst: egressDst,
		Probe: probeIf, ProbeSrc: probeSrc, ProbeDst: probeDst}
}

// What the claimed sender's name can carry.
var (
	// injected is the injector's RST at the client's exact next sequence;
	// its volleys repeat it.
	injected = frames.Segment{Src: client, Dst: server, Seq: clientNext, Flags: tcpflag.RST, TTL: 60, SrcMAC: macA, DstMAC: macB}
	// injectedACK is its RST/ACK flavour.
	injectedACK = frames.Segment{Src: client, Dst: server, Seq: clientNext, Ack: serverNext, Flags: tcpflag.RST | tcpflag.ACK, TTL: 60,
		SrcMAC: macA, DstMAC: macB}
	// aliveAnswer is a live client's answer to the probe (RFC 9293 3.10.7.4).
	aliveAnswer = frames.Segment{Src: client, Dst: server, Seq: clientNext, Ack: serverNext, Flags: tcpflag.ACK, TTL: 64}
	// deadAnswer is the answer of a client without the connection: a RST at
	// the probe's ack, the nonce (RFC 9293 3.10.7.1).
	deadAnswer = frames.Segment{Src: client, Dst: server, Seq: nonce, Flags: tcpflag.RST, TTL: 64}
	// realRST is a real client's RST, at its own next sequence.
	realRST = frames.Segment{Src: client, Dst: server, Seq: clientNext, Flags: tcpflag.RST, TTL: 64}
)

// rig drives a decisions as the Manager does, one turn per step.
type rig struct {
	t       *testing.T
	d       *decisions
	recs    *fakeRecords
	wire    *fakeWire
	start   time.Time
	now     time.Time
	reports []dataplane.Event
}

func newRig(t *testing.T, p dataplane.Policy) *rig {
	r := &rig{t: t, recs: &fakeRecords{holds: map[dataplane.FlowKey]dataplane.Hold{}, proven: map[dataplane.FlowKey]uint64{}},
		wire: &fakeWire{down: map[int]bool{}}, start: time.Unix(1000, 0)}
	r.now = r.start
	r.d = newDecisions(r.recs, r.wire, slog.New(slog.NewTextHandler(io.Discard, nil)), p)
	return r
}

func keyOf(s frames.Segment) dataplane.FlowKey {
	k, _ := dataplane.Segment{Src: s.Src, Dst: s.Dst}.Key(0)
	return k
}

// at moves the clock to offset from the start and lets the deadlines pass.
func (r *rig) at(offset time.Duration) {
	r.now = r.start.Add(offset)
	r.d.expire(r.now)
	r.turn()
}

// hold is the program holding a RST of a flow without a record: it writes
// one (held on its clock), then redirects the frame.
func (r *rig) hold(s frames.Segment, hd dataplane.Hold) {
	if _, ok := r.recs.holds[keyOf(s)]; !ok {
		r.recs.holds[keyOf(s)] = hd
	}
	r.redirect(s)
}

// redirect delivers a frame the program redirected.
func (r *rig) redirect(s frames.Segment) {
	r.d.frame(ingressIf, s.MustFrame(), r.now)
	r.turn()
}

// turn ends the holds the turn decided, as Manager.flush does.
func (r *rig) turn() {
	ended, reports := r.d.turn()
	for _, k := range ended {
		delete(r.recs.holds, k)
		delete(r.recs.proven, k)
	}
	r.reports = append(r.reports, reports...)
}

// out returns the frames sent out of ifindex, parsed, and forgets them.
func (r *rig) out(ifindex int) []dataplane.Segment {
	var segs []dataplane.Segment
	kept := r.wire.sent[:0]
	for _, s := range r.wire.sent {
		if s.ifindex != ifindex {
			kept = append(kept, s)
			continue
		}
		seg, err := dataplane.ParseSegment(s.frame)
		if err != nil {
			r.t.Fatalf("sent an unparsable frame: %v", err)
		}
		segs = append(segs, seg)
	}
	r.wire.sent = kept
	return segs
}

// sentOn splits what went out of ifindex into RSTs released and the
// probes' answers sent on, and forgets it.
func (r *rig) sentOn(ifindex int) (rsts, answers []dataplane.Segment) {
	for _, seg := range r.out(ifindex) {
		if seg.Flags&tcpflag.RST != 0 {
			rsts = append(rsts, seg)
		} else {
			answers = append(answers, seg)
		}
	}
	return rsts, answers
}

// outcomes lists the reported holds' outcomes, in order.
func (r *rig) outcomes() []string {
	var o []string
	for _, e := range r.reports {
		o = append(o, e.Hold.Outcome.String())
	}
	return o
}

func value(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// seqs are the sequence numbers of RSTs sent.
func seqs(segs []dataplane.Segment) []uint32 {
	var s []uint32
	for _, seg := range segs {
		s = append(s, seg.Seq)
	}
	return s
}

func TestDecisions(t *testing.T) {
	type step struct {
		at  time.Duration
		rst *frames.Segment // the program holds it (writing a record if the flow has none)
		// answer is a frame redirected as a probe's answer or a RST
		// redirected before the hold was decided.
		answer *frames.Segment
		// data is the claimed sender's data in sequence: the record says so;
		// nudge is the program's EventConfirmed that says so too.
		data, nudge bool
		// newHold is the program holding a RST anew after the last decision
		// (its record is newer).
		newHold bool
	}
	for _, tc := range []struct {
		name  string
		rtt   time.Duration
		steps []step
		// outcomes are the decided holds' outcomes, in order; released the
		// seqs of the RSTs that went on, in order; answered the ACKs that
		// went on (the probe's answers, to the endpoint they were
		// addressed to).
		outcomes     []string
		released     []uint32
		answered     int
		frames       int // the first hold's frames
		lateDropped  float64
		lateReleased float64
		stray        uint64
	}{
		{name: "live sender answers with an ACK: the RST is dropped, the answer goes on", steps: []step{
			{rst: &injected}, {at: time.Millisecond, answer: &aliveAnswer},
		}, outcomes: []string{"probe_answered_ack"}, answered: 1, frames: 1},
		{name: "sender without the connection answers the nonce: its RST goes on, the answer does not", steps: []step{
			{rst: &realRST}, {at: time.Millisecond, answer: &deadAnswer},
		}, outcomes: []string{"probe_answered_rst"}, released: []uint32{clientNext}, frames: 1},
		{name: "volley of two, the second before the answer: both dropped", steps: []step{
			{rst: &injected}, {at: 2 * time.Millisecond, rst: &injected}, {at: 3 * time.Millisecond, answer: &aliveAnswer},
		}, outcomes: []string{"probe_answered_ack"}, answered: 1, frames: 2},
		{name: "volley of two, the second after the answer: dropped as late", steps: []step{
			{rst: &injected}, {at: 200 * time.Microsecond, answer: &aliveAnswer}, {at: 2 * time.Millisecond, answer: &injected},
		}, outcomes: []string{"probe_answered_ack"}, answered: 1, frames: 1, lateDropped: 1},
		{name: "volley of ten RST/ACKs 1 ms apart on an unmeasured leg: all dropped", steps: append(
			[]step{{rst: &injectedACK}, {at: time.Millisecond, rst: &injectedACK}, {at: 2 * time.Millisecond, rst: &injectedACK},
				{at: 3 * time.Millisecond, rst: &injectedACK}, {at: 4 * time.Millisecond, rst: &injectedACK},
				{at: 5 * time.Millisecond, rst: &injectedACK}, {at: 6 * time.Millisecond, rst: &injectedACK},
				{at: 7 * time.Millisecond, rst: &injectedACK}, {at: 8 * time.Millisecond, rst: &injectedACK},
				{at: 9 * time.Millisecond, rst: &injectedACK}},
			step{at: 15 * time.Millisecond, answer: &aliveAnswer}),
			outcomes: []string{"probe_answered_ack"}, answered: 1, frames: 10},
		{name: "real RST and a second from the same dead stack: both go on with the answer", steps: []step{
			{rst: &realRST}, {at: time.Millisecond, rst: &realRST}, {at: 2 * time.Millisecond, answer: &deadAnswer},
		}, outcomes: []string{"probe_answered_rst"}, released: []uint32{clientNext, clientNext}, frames: 2},
		{name: "no answer: released at three RTTs", rtt: 10 * time.Millisecond, steps: []step{
			{rst: &injected}, {at: 29 * time.Millisecond}, {at: 30 * time.Millisecond},
		}, outcomes: []string{"timeout"}, released: []uint32{clientNext}, frames: 1},
		{name: "data in sequence during the hold: dropped at once", rtt: 10 * time.Millisecond, steps: []step{
			{rst: &injected}, {at: 4 * time.Millisecond, data: true, nudge: true},
		}, outcomes: []string{"data_during_hold"}, frames: 1},
		{name: "data seen but the nudge lost: dropped at the deadline", rtt: 10 * time.Millisecond, steps: []step{
			{rst: &injected}, {at: 4 * time.Millisecond, data: true}, {at: 29 * time.Millisecond}, {at: 30 * time.Millisecond},
		}, outcomes: []string{"data_during_hold"}, frames: 1},
		{name: "a real RST redirected before its release shares it", rtt: 10 * time.Millisecond, steps: []step{
			{rst: &realRST}, {at: 30 * time.Millisecond}, {at: 31 * time.Millisecond, answer: &realRST},
		}, outcomes: []string{"timeout"}, released: []uint32{clientNext, clientNext}, frames: 1, lateReleased: 1},
		{name: "the dead stack's answer after the timeout is consumed", rtt: 10 * time.Millisecond, steps: []step{
			{rst: &realRST}, {at: 30 * time.Millisecond}, {at: 31 * time.Millisecond, answer: &deadAnswer},
		}, outcomes: []string{"timeout"}, released: []uint32{clientNext}, frames: 1, stray: 1},
		{name: "a duplicate ACK answer after the decision is stray, and goes on", steps: []step{
			{rst: &injected}, {at: time.Millisecond, answer: &aliveAnswer}, {at: 2 * time.Millisecond, answer: &aliveAnswer},
		}, outcomes: []string{"probe_answered_ack"}, answered: 2, frames: 1, stray: 1},
		{name: "a RST held anew after a release is asked anew", rtt: 10 * time.Millisecond, steps: []step{
			{rst: &realRST}, {at: 30 * time.Millisecond}, {at: 31 * time.Millisecond, rst: &injected, newHold: true},
			{at: 32 * time.Millisecond, answer: &aliveAnswer},
		}, outcomes: []string{"timeout", "probe_answered_ack"}, released: []uint32{clientNext}, answered: 1, frames: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, testPolicy)
			held := uint64(1)
			for _, s := range tc.steps {
				r.at(s.at)
				if s.newHold {
					held++
					r.recs.holds[keyOf(*s.rst)] = record(held, tc.rtt)
				}
				switch {
				case s.rst != nil:
					r.hold(*s.rst, record(held, tc.rtt))
				case s.answer != nil:
					r.redirect(*s.answer)
				case s.data:
					k := keyOf(injected)
					hd := r.recs.holds[k]
					hd.DataSeen = true
					r.recs.holds[k] = hd
					if s.nudge {
						r.d.nudge(k, r.now)
						r.turn()
					}
				}
			}
			if got := r.outcomes(); !slices.Equal(got, tc.outcomes) {
				t.Errorf("outcomes %v, want %v", got, tc.outcomes)
			}
			rsts, acks := r.sentOn(egressIf)
			if got := seqs(rsts); !slices.Equal(got, tc.released) {
				t.Errorf("released seqs %v, want %v", got, tc.released)
			}
			if len(acks) != tc.answered {
				t.Errorf("%d ACKs went on, want %d", len(acks), tc.answered)
			}
			if len(r.reports) > 0 && r.reports[0].Hold.Frames != tc.frames {
				t.Errorf("first hold had %d frames, want %d", r.reports[0].Hold.Frames, tc.frames)
			}
			if got := value(t, r.d.late.WithLabelValues("dropped")); got != tc.lateDropped {
				t.Errorf("late dropped %v, want %v", got, tc.lateDropped)
			}
			if got := value(t, r.d.late.WithLabelValues("released")); got != tc.lateReleased {
				t.Errorf("late released %v, want %v", got, tc.lateReleased)
			}
			if got := r.d.strayAnswers.Load(); got != tc.stray {
				t.Errorf("stray answers %d, want %d", got, tc.stray)
			}
			for _, e := range r.reports {
				forged := e.Hold.Outcome.Forged()
				if forged != (e.Action == dataplane.ActionDrop) || forged != (e.Verdict == dataplane.VerdictSpoofed) {
					t.Errorf("%s reported as %s/%s", e.Hold.Outcome, e.Verdict, e.Action)
				}
			}
			if n := r.d.heldNow.Load(); len(r.d.pending) != 0 || n != 0 {
				t.Errorf("%d holds of %d frames still pending", len(r.d.pending), n)
			}
			if e := r.d.releaseErrors.Load(); e != 0 {
				t.Errorf("%d release errors", e)
			}
		})
	}
}

// Proven alive: a forged RST's hold is marked in the program's record (which
// then drops the sender's later RSTs on its own), and the record goes only
// when that time is over.
func TestDecisionsProvenAlive(t *testing.T) {
	r := newRig(t, testPolicy)
	k := keyOf(injected)
	r.hold(injected, record(7, 0))
	r.at(time.Millisecond)
	r.redirect(aliveAnswer)
	if r.recs.proven[k] != 7 {
		t.Fatalf("hold not marked proven alive: %v", r.recs.proven)
	}
	r.at(dataplane.ProvenAliveFor(0))
	if _, ok := r.recs.holds[k]; !ok {
		t.Fatal("proven-alive record removed before its time")
	}
	r.at(dataplane.ProvenAliveFor(0) + lateRSTs + 2*time.Millisecond)
	if _, ok := r.recs.holds[k]; ok {
		t.Error("proven-alive record never removed")
	}
}

// The probe leaves on the program's route to the claimed sender, with the
// box's own L2 header; the release on the egress, TTL less one, untagged.
func TestDecisionsWhereFramesGo(t *testing.T) {
	r := newRig(t, testPolicy)
	tagged := taggedRealRST()
	r.hold(tagged, record(1, 0))
	probes := r.out(probeIf)
	if len(probes) != 1 || probes[0].Seq != serverNext-2 || probes[0].PayloadLen != 1 || probes[0].Ack != nonce || probes[0].VLAN != 0 ||
		probes[0].Src != server || probes[0].Dst != client {
		t.Fatalf("probes %+v", probes)
	}
	if len(r.wire.sent) != 0 {
		t.Fatalf("sent %d frames besides the probe", len(r.wire.sent))
	}
	r.hold(tagged, record(1, 0))
	r.at(time.Millisecond)
	r.redirect(deadAnswer)
	released := r.wire.sent
	if len(released) != 2 {
		t.Fatalf("released %d frames, want the 2 held", len(released))
	}
	for _, s := range released {
		seg, _ := dataplane.ParseSegment(s.frame)
		if s.ifindex != egressIf || seg.TTL != tagged.TTL-1 || seg.VLAN != 0 ||
			net.HardwareAddr(s.frame[0:6]).String() != egressDst.String() || net.HardwareAddr(s.frame[6:12]).String() != egressSrc.String() {
			t.Errorf("released on %d ttl %d vlan %d L2 %x", s.ifindex, seg.TTL, seg.VLAN, s.frame[:12])
		}
	}
	// Where the program found no route to the sender, the probe leaves
	// where the RST came in.
	r = newRig(t, testPolicy)
	hd := record(1, 0)
	hd.Probe = 0
	r.hold(injected, hd)
	if len(r.out(ingressIf)) != 1 {
		t.Error("no probe out of the ingress without a route")
	}
}

func taggedRealRST() frames.Segment {
	s := realRST
	s.VLANs = []uint16{100}
	return s
}

func TestDecisionsWindow(t *testing.T) {
	d := newDecisions(nil, nil, nil, testPolicy)
	for _, tc := range []struct{ rtt, want time.Duration }{
		{0, testPolicy.HoldMax},                // unmeasured: the cap
		{time.Millisecond, testPolicy.HoldMin}, // 3 ms under the floor
		{10 * time.Millisecond, 30 * time.Millisecond},
		{time.Second, testPolicy.HoldMax},
	} {
		if got := d.window(tc.rtt); got != tc.want {
			t.Errorf("window(%s) = %s, want %s", tc.rtt, got, tc.want)
		}
	}
}

// Under pressure and on errors every RST still goes somewhere counted, and a
// real one goes on.
func TestDecisionsFailOpen(t *testing.T) {
	other := injected
	other.Src = netip.AddrPortFrom(client.Addr(), client.Port()+1)

	t.Run("past the frame limit a joiner goes on at once and a new hold is full", func(t *testing.T) {
		p := testPolicy
		p.HoldFrames = 2
		r := newRig(t, p)
		r.hold(injected, record(1, 0))
		r.hold(injected, record(1, 0))
		r.hold(injected, record(1, 0))
		if got := len(r.out(egressIf)); got != 1 {
			t.Errorf("released %d at once, want the third", got)
		}
		if n := r.d.heldNow.Load(); n != 2 {
			t.Errorf("held now %d, want 2", n)
		}
		r.hold(other, record(1, 0))
		if got := r.outcomes(); !slices.Equal(got, []string{"full"}) {
			t.Errorf("outcomes %v, want [full]", got)
		}
		if got := len(r.out(egressIf)); got != 1 {
			t.Errorf("full: released %d, want 1", got)
		}
		r.at(time.Millisecond)
		r.redirect(aliveAnswer)
		if n := r.d.heldNow.Load(); n != 0 {
			t.Errorf("held now %d after the decision, want 0", n)
		}
	})
	for _, tc := range []struct {
		name, outcome string
		probeRate     uint32 // 0: the test policy's
		probeDown     bool
	}{
		{"past the probe rate a hold is released at once", "probe_rate_limited", 1, false},
		{"a probe that cannot be sent releases at once", "probe_unsent", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testPolicy
			if tc.probeRate != 0 {
				p.ProbeRate = tc.probeRate
			}
			r := newRig(t, p)
			r.wire.down[probeIf] = tc.probeDown
			r.hold(injected, record(1, 0))
			r.hold(other, record(1, 0)) // the second: past a budget of one
			if got := r.outcomes(); len(got) == 0 || got[len(got)-1] != tc.outcome {
				t.Errorf("outcomes %v, want the last %s", got, tc.outcome)
			}
			if got := len(r.out(egressIf)); got != len(r.outcomes()) {
				t.Errorf("released %d, want one per decided hold (%d)", got, len(r.outcomes()))
			}
		})
	}
	t.Run("a release that cannot be sent is counted", func(t *testing.T) {
		r := newRig(t, testPolicy)
		r.wire.down[egressIf] = true
		r.hold(injected, record(1, 0))
		r.d.releaseAll(r.now)
		r.turn()
		if e := r.d.releaseErrors.Load(); e != 1 {
			t.Errorf("release errors %d, want 1", e)
		}
	})
	t.Run("a RST without a record is counted", func(t *testing.T) {
		r := newRig(t, testPolicy)
		r.redirect(injected)
		if e := r.d.releaseErrors.Load(); e != 1 || len(r.wire.sent) != 0 {
			t.Errorf("release errors %d, sent %d", e, len(r.wire.sent))
		}
	})
	t.Run("a frame the daemon cannot parse is counted", func(t *testing.T) {
		r := newRig(t, testPolicy)
		r.d.frame(ingressIf, []byte{1, 2, 3}, r.now)
		if n := r.d.unparsed.Load(); n != 1 {
			t.Errorf("unparsed %d", n)
		}
	})
	t.Run("stopping releases every pending hold", func(t *testing.T) {
		r := newRig(t, testPolicy)
		r.hold(injected, record(1, 0))
		r.hold(other, record(1, 0))
		r.d.releaseAll(r.now)
		r.turn()
		if got := r.outcomes(); !slices.Equal(got, []string{"timeout", "timeout"}) {
			t.Errorf("outcomes %v", got)
		}
		if got := len(r.out(egressIf)); got != 2 {
			t.Errorf("released %d, want 2", got)
		}
		if len(r.recs.holds) != 0 {
			t.Errorf("%d records left", len(r.recs.holds))
		}
	})
}

// The later RSTs of a hold wait in the program's count, not in the daemon:
// the hold's report counts them, and only the frames the daemon has leave.
func TestDecisionsCountTheProgramsJoiners(t *testing.T) {
	for _, tc := range []struct {
		name     string
		first    frames.Segment
		answer   frames.Segment
		released int // RSTs
		answered int // the ACK answer that goes on
	}{
		{"a volley of ten, stopped", injected, aliveAnswer, 0, 1},
		{"a real RST and nine more of its stack, the first released", realRST, deadAnswer, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, testPolicy)
			r.hold(tc.first, record(1, 0))
			k := keyOf(tc.first)
			hd := r.recs.holds[k]
			hd.Joined = 9
			r.recs.holds[k] = hd
			r.at(time.Millisecond)
			r.redirect(tc.answer)
			if len(r.reports) != 1 || r.reports[0].Hold.Frames != 10 || r.reports[0].Hold.Joined != 9 {
				t.Fatalf("reports %+v, want one of 10 frames, 9 joined", r.reports)
			}
			if rsts, acks := r.sentOn(egressIf); len(rsts) != tc.released || len(acks) != tc.answered {
				t.Errorf("released %d RSTs and %d ACKs, want %d and %d", len(rsts), len(acks), tc.released, tc.answered)
			}
		})
	}
}
