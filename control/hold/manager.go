package hold

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/rstguard/rstguard/dataplane"
	"github.com/rstguard/rstguard/xdp"
)

// Manager is hold mode's user-space half. One goroutine (Run) owns every
// socket: asavie/xdp sockets are not safe for concurrent use.
type Manager struct {
	dp      *dataplane.Dataplane
	log     *slog.Logger
	sockets []*dataplane.Socket
	pfds    []unix.PollFd
	// ended are holds decided this turn: the program's records go in one
	// batch at the end of the turn.
	ended []xdp.RstguardFlowKey
	// tx is the socket that sends out of each interface (its queue 0).
	tx map[int]*dataplane.Socket
	// slots are the sockets' XSKMAP slots; nextSlot the next one free.
	slots    map[*dataplane.Socket]uint32
	nextSlot uint32
	// links asks Run's goroutine to bind sockets to an interface that
	// returned (positive ifindex) or drop those of one that went away
	// (negative).
	links chan int

	pending    map[xdp.RstguardFlowKey]*held
	recent     map[xdp.RstguardFlowKey]decided
	heldFrames int
	next       time.Time // earliest deadline among pending holds
	limit      *limiter
	policy     dataplane.Policy
	policyAt   time.Time
	nudges     chan xdp.RstguardFlowKey

	// reports hands decided holds to the event writer, a turn's at a time:
	// a bounded queue, so that no decision ever waits on the event log (a
	// stalled reader of --events -, a full disk). What does not fit is
	// counted. turnReports are this turn's.
	reports     chan []dataplane.Event
	turnReports []dataplane.Event
	reported    sync.WaitGroup

	outcomes                    *prometheus.CounterVec
	late                        *prometheus.CounterVec
	waited                      prometheus.Histogram
	heldNow                     atomic.Int64
	releaseErrors, strayAnswers atomic.Uint64
	unparsed, reportsLost       atomic.Uint64
}

// reportQueue is how many turns' decided holds may wait for the event writer.
const reportQueue = 1024

// held is one flow's hold: its RSTs, in arrival order.
type held struct {
	key      xdp.RstguardFlowKey
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

// Open binds an AF_XDP socket to every RX queue of every interface and
// registers it with the program. An interface where that fails is logged
// and left without sockets: the program then passes its RSTs (fail open).
// report receives one EventHold per decided hold.
func Open(dp *dataplane.Dataplane, ifindexes []int, log *slog.Logger, report func(dataplane.Event)) (*Manager, error) {
	if err := dp.ClearHolds(); err != nil {
		return nil, err
	}
	m := &Manager{
		dp: dp, log: log, tx: map[int]*dataplane.Socket{}, slots: map[*dataplane.Socket]uint32{},
		links:   make(chan int, 64),
		pending: map[xdp.RstguardFlowKey]*held{}, recent: map[xdp.RstguardFlowKey]decided{},
		limit: newLimiter(), nudges: make(chan xdp.RstguardFlowKey, 1024),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rstguard_hold_outcomes_total", Help: "Held RSTs decided, by outcome (see docs/SIGNALS.md).",
		}, []string{"outcome"}),
		waited: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "rstguard_hold_wait_seconds", Help: "How long held RSTs waited for a decision: the delay a released one incurred.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5},
		}),
	}
	for o := range dataplane.HoldOutcomeCount {
		m.outcomes.WithLabelValues(dataplane.HoldOutcome(o).String())
	}
	m.late = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rstguard_hold_late_rsts_total",
		Help: "RSTs redirected before their hold was decided and reaching the daemon after: they share its fate.",
	}, []string{"fate"})
	m.late.WithLabelValues("dropped")
	m.late.WithLabelValues("released")
	m.reports = make(chan []dataplane.Event, reportQueue)
	m.reported.Go(func() {
		for batch := range m.reports {
			for _, e := range batch {
				report(e)
			}
		}
	})
	if err := m.refreshPolicy(time.Now()); err != nil {
		return nil, err
	}
	for _, ifindex := range ifindexes {
		m.bind(ifindex)
	}
	return m, nil
}

// bind opens an AF_XDP socket on every RX queue of the interface that has
// none, and registers each with the program. A queue where that fails is
// logged and left without: the program then passes its RSTs (fail open).
func (m *Manager) bind(ifindex int) {
	queues := 1
	if link, err := netlink.LinkByIndex(ifindex); err == nil {
		queues = dataplane.RxQueues(link.Attrs().Name)
	}
	bound := map[int]bool{}
	for _, s := range m.sockets {
		if s.Ifindex == ifindex {
			bound[s.Queue] = true
		}
	}
	for q := range queues {
		if bound[q] {
			continue
		}
		s, err := dataplane.OpenSocket(ifindex, q)
		if err == nil {
			err = m.dp.RegisterSocket(m.nextSlot, s)
			if err != nil {
				s.Close()
			}
		}
		if err != nil {
			m.log.Warn("hold mode unavailable on this interface: its RSTs pass", "ifindex", ifindex, "queue", q, "err", err)
			continue
		}
		m.slots[s] = m.nextSlot
		m.nextSlot++
		m.sockets = append(m.sockets, s)
		if q == 0 {
			m.tx[ifindex] = s
		}
		m.log.Info("AF_XDP socket", "ifindex", ifindex, "queue", q, "mode", s.Mode())
	}
	m.pfds = nil
}

// unbind closes and unregisters the sockets of an interface that went away.
func (m *Manager) unbind(ifindex int) {
	kept := m.sockets[:0]
	for _, s := range m.sockets {
		if s.Ifindex != ifindex {
			kept = append(kept, s)
			continue
		}
		if err := m.dp.UnregisterSocket(m.slots[s], s); err != nil {
			m.log.Warn("unregister AF_XDP socket", "ifindex", ifindex, "queue", s.Queue, "err", err)
		}
		delete(m.slots, s)
		s.Close()
	}
	m.sockets = kept
	delete(m.tx, ifindex)
	m.pfds = nil
}

// Rebind has Run bind sockets to an interface that returned (a new index);
// Unbind has it drop those of one that went away. Neither blocks.
func (m *Manager) Rebind(ifindex int) { m.linkChange(ifindex) }
func (m *Manager) Unbind(ifindex int) { m.linkChange(-ifindex) }

func (m *Manager) linkChange(signed int) {
	select {
	case m.links <- signed:
	default:
		m.log.Error("hold mode: link change not taken (queue full)", "ifindex", signed)
	}
}

// Sockets describes the bound sockets.
func (m *Manager) Sockets() []dataplane.SocketInfo {
	var out []dataplane.SocketInfo
	for _, s := range m.sockets {
		out = append(out, dataplane.SocketInfo{Ifindex: s.Ifindex, Queue: s.Queue, Mode: s.Mode()})
	}
	return out
}

// Collectors are hold mode's metrics.
func (m *Manager) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		m.outcomes, m.late, m.waited,
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rstguard_hold_reports_lost_total",
			Help: "Decided holds whose event could not be queued for the event log (the writer stalled)."},
			func() float64 { return float64(m.reportsLost.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rstguard_hold_unparsed_total",
			Help: "Frames redirected to the daemon that it could not parse (released by nobody)."},
			func() float64 { return float64(m.unparsed.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rstguard_hold_stray_answers_total",
			Help: "Probe answers that reached the daemon after their hold was decided."},
			func() float64 { return float64(m.strayAnswers.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rstguard_hold_frames", Help: "RSTs held now."},
			func() float64 { return float64(m.heldNow.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rstguard_hold_release_errors_total",
			Help: "Held RSTs that were to be released but could not be sent (TTL expired, no socket, TX full)."},
			func() float64 { return float64(m.releaseErrors.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rstguard_hold_socket_drops_total",
			Help: "Frames the kernel could not queue to the AF_XDP sockets (RX ring full)."},
			func() float64 {
				var n uint64
				for _, s := range m.sockets {
					n += s.Dropped()
				}
				return float64(n)
			}),
	}
}

// DataSeen tells the manager that the program saw data proving a flow's
// claimed sender alive (an EventConfirmed), so that its hold ends now rather
// than at its deadline. It never blocks; a missed nudge only delays.
func (m *Manager) DataSeen(e dataplane.Event) {
	key, _ := dataplane.Segment{Src: e.Src, Dst: e.Dst}.Key(e.Zone)
	select {
	case m.nudges <- key:
	default:
	}
}

// Run decides holds until ctx ends, then releases whatever is still held
// (fail open) and closes the sockets.
func (m *Manager) Run(ctx context.Context) {
	defer m.close()
	for ctx.Err() == nil {
		m.serve(m.pollTimeout(time.Now()))
	}
}

// serve waits up to timeout milliseconds for frames, then handles what
// arrived, the nudges and the deadlines: one turn of Run's loop.
func (m *Manager) serve(timeout int) {
	if len(m.pfds) != len(m.sockets) {
		m.pfds = make([]unix.PollFd, len(m.sockets))
		for i, s := range m.sockets {
			m.pfds[i] = unix.PollFd{Fd: int32(s.FD()), Events: unix.POLLIN}
		}
	}
	if _, err := unix.Poll(m.pfds, timeout); err != nil && !errors.Is(err, unix.EINTR) {
		m.log.Error("poll AF_XDP sockets", "err", err)
		time.Sleep(10 * time.Millisecond)
	}
	now := time.Now()
	for i, s := range m.sockets {
		if m.pfds[i].Revents&unix.POLLIN != 0 {
			s.Receive(func(f []byte) { m.frame(s, f, now) })
		}
	}
	for more := true; more; {
		select {
		case ifindex := <-m.links:
			if ifindex > 0 {
				m.bind(ifindex)
			} else {
				m.unbind(-ifindex)
			}
		case key := <-m.nudges:
			if h := m.pending[key]; h != nil && m.dataSeen(h) {
				m.decide(h, dataplane.HoldData, nil, now)
			}
		default:
			more = false
		}
	}
	m.expire(now)
	m.flush()
	if now.Sub(m.policyAt) > time.Second {
		if err := m.refreshPolicy(now); err != nil {
			m.log.Error("read policy", "err", err)
		}
	}
}

// flush sends what this turn queued and removes the records of the holds it
// decided: one system call each, however many holds the turn decided.
func (m *Manager) flush() {
	for _, s := range m.sockets {
		if err := s.Flush(); err != nil {
			m.releaseErrors.Add(1)
			m.log.Warn("AF_XDP transmit", "err", err)
		}
	}
	if len(m.ended) > 0 {
		if err := m.dp.EndHolds(m.ended); err != nil {
			m.log.Error("end holds", "err", err)
		}
		m.ended = m.ended[:0]
	}
	if len(m.turnReports) > 0 {
		select {
		case m.reports <- m.turnReports:
		default:
			m.reportsLost.Add(uint64(len(m.turnReports)))
		}
		m.turnReports = nil
	}
}

// pollTimeout wakes the loop for the next deadline, and at least every few
// milliseconds while holds are pending (to take nudges), every 100 ms else.
func (m *Manager) pollTimeout(now time.Time) int {
	if len(m.pending) == 0 {
		return 100
	}
	return int(min(max(m.next.Sub(now), 0), 2*time.Millisecond).Milliseconds()) + 1
}

func (m *Manager) refreshPolicy(now time.Time) error {
	p, err := m.dp.Policy()
	if err != nil {
		return err
	}
	m.policy, m.policyAt = p, now
	return nil
}

// window is how long a hold waits for an answer: three of the claimed
// sender's leg RTTs (probe out, answer back, and slack), within the policy's
// floor and cap; the cap when the RTT is unknown.
func (m *Manager) window(rtt time.Duration) time.Duration {
	if rtt == 0 {
		return m.policy.HoldMax
	}
	return min(max(3*rtt, m.policy.HoldMin), m.policy.HoldMax)
}

// frame handles one frame the program redirected: a held RST or a probe's answer.
func (m *Manager) frame(s *dataplane.Socket, f []byte, now time.Time) {
	seg, err := dataplane.ParseSegment(f)
	if err != nil {
		m.unparsed.Add(1)
		return
	}
	key, fromHi := seg.Key(m.dp.ZoneOf(s.Ifindex, seg.VLAN))
	h := m.pending[key]
	if seg.Flags&dataplane.FlagRST == 0 {
		// The program redirects only answers to a pending probe; one that
		// arrives after its hold was decided is a duplicate ACK: consumed.
		if h != nil && fromHi == h.hold.FromHi && IsACKAnswer(seg, h.hold) {
			m.decide(h, dataplane.HoldAnsweredACK, append([]byte(nil), f...), now)
		} else {
			m.strayAnswers.Add(1)
		}
		return
	}
	frame := append([]byte(nil), f...)
	if h == nil {
		hd, ok, err := m.dp.LookupHold(key)
		if d, late := m.recent[key]; late && now.Before(d.until) && !(ok && hd.Held > d.held) {
			// The answer to a probe whose hold was decided already: the
			// endpoint it is addressed to never asked. Consumed.
			if fromHi == d.hold.FromHi && IsRSTAnswer(seg, d.hold) {
				m.strayAnswers.Add(1)
				return
			}
			// Redirected before its hold was decided: the same fate.
			if d.forged {
				m.late.WithLabelValues("dropped").Inc()
			} else {
				m.late.WithLabelValues("released").Inc()
				m.release(frame, seg, d.hold)
			}
			return
		}
		if err != nil || !ok {
			// Redirected without a record: nothing says where it was going.
			m.releaseErrors.Add(1)
			m.log.Error("held RST without a hold record: lost", "src", seg.Src, "dst", seg.Dst, "err", err)
			return
		}
		m.start(s, key, hd, seg, frame, now)
		return
	}
	// The answer echoes the probe's nonce: nobody who has not read the
	// probe can send it, so no timing rule is needed.
	if fromHi == h.hold.FromHi && IsRSTAnswer(seg, h.hold) {
		m.decide(h, dataplane.HoldAnsweredRST, frame, now)
		return
	}
	// A later RST in the sender's name joins the hold: it shares the hold's
	// fate, and the hold's one outcome counts it; past the frame limit it
	// goes on at once.
	if m.heldFrames >= int(m.policy.HoldFrames) {
		m.release(frame, seg, h.hold)
		return
	}
	h.frames = append(h.frames, frame)
	m.setHeld(m.heldFrames + 1)
}

// start begins a hold on what the program recorded: send the probe.
func (m *Manager) start(s *dataplane.Socket, key xdp.RstguardFlowKey, hd dataplane.Hold, seg dataplane.Segment, frame []byte, now time.Time) {
	h := &held{key: key, hold: hd, first: seg, frames: [][]byte{frame}, start: now}
	m.pending[key] = h
	// A decided hold of this flow is over: its proven-alive record, which
	// expire() would end, is the new hold's now.
	delete(m.recent, key)
	m.setHeld(m.heldFrames + 1)
	if m.heldFrames > int(m.policy.HoldFrames) {
		m.decide(h, dataplane.HoldFull, nil, now)
		return
	}
	if !m.limit.allow(seg.Src.Addr(), now, float64(m.policy.ProbeRate)) {
		m.decide(h, dataplane.HoldRateLimited, nil, now)
		return
	}
	tx := m.tx[hd.Probe]
	if tx == nil {
		tx = s
	}
	if err := transmit(tx, Probe(seg, hd)); err != nil {
		m.log.Warn("probe not sent: releasing", "src", seg.Src, "err", err)
		m.decide(h, dataplane.HoldProbeUnsent, nil, now)
		return
	}
	h.deadline = now.Add(m.window(hd.RTT))
	if m.next.IsZero() || h.deadline.Before(m.next) {
		m.next = h.deadline
	}
}

// dataSeen asks the program whether the claimed sender sent data in sequence.
func (m *Manager) dataSeen(h *held) bool {
	hd, ok, err := m.dp.LookupHold(h.key)
	return err == nil && ok && hd.DataSeen
}

// expire ends the holds whose window has passed: the program's evidence
// decides, and without any the RST is released (fail open).
func (m *Manager) expire(now time.Time) {
	if len(m.recent) > 0 && now.After(m.next) {
		for k, d := range m.recent {
			if now.After(d.until) {
				delete(m.recent, k)
				if d.forged { // its proven-alive record is over too
					m.ended = append(m.ended, k)
				}
			}
		}
	}
	if m.next.IsZero() || now.Before(m.next) {
		return
	}
	m.next = time.Time{}
	for _, h := range m.pending {
		switch {
		case !now.Before(h.deadline) && m.dataSeen(h):
			m.decide(h, dataplane.HoldData, nil, now)
		case !now.Before(h.deadline):
			m.decide(h, dataplane.HoldTimeout, nil, now)
		case m.next.IsZero() || h.deadline.Before(m.next):
			m.next = h.deadline
		}
	}
}

// decide ends a hold: a forged RST is dropped with everything held with it,
// any other is released where it was going. Every hold is reported.
func (m *Manager) decide(h *held, o dataplane.HoldOutcome, answer []byte, now time.Time) {
	delete(m.pending, h.key)
	m.setHeld(m.heldFrames - len(h.frames))
	until := now.Add(lateRSTs)
	if o.Forged() {
		// Proven alive: the program drops the sender's next RSTs on its
		// own for a while, then the record goes (expire).
		if err := m.dp.ProvenAlive(h.key, h.hold.Held, monotonicNs()); err != nil {
			m.log.Error("mark hold proven", "err", err)
		}
		until = now.Add(max(lateRSTs, dataplane.ProvenAliveFor(h.hold.RTT)))
	} else {
		m.ended = append(m.ended, h.key)
		for _, f := range h.frames {
			if seg, err := dataplane.ParseSegment(f); err == nil {
				m.release(f, seg, h.hold)
			}
		}
	}
	m.recent[h.key] = decided{forged: o.Forged(), hold: h.hold, held: h.hold.Held, until: until}
	waited := now.Sub(h.start)
	m.count(o, waited)

	e := dataplane.Event{
		Time: now, Kind: dataplane.EventHold, Src: h.first.Src, Dst: h.first.Dst, Zone: h.key.Zone, Flags: h.first.Flags,
		Seq: h.first.Seq, Ack: h.first.Ack, TTL: h.first.TTL, Ifindex: uint32(h.hold.IngressIfindex),
		Action: dataplane.ActionPass, Frame: h.frames[0], FrameLen: len(h.frames[0]),
		Hold: &dataplane.HoldResult{Outcome: o, Waited: waited, Frames: len(h.frames), Answer: answer},
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
	m.turnReports = append(m.turnReports, e)
}

// monotonicNs is the program's clock (bpf_ktime_get_ns: CLOCK_MONOTONIC).
func monotonicNs() uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return uint64(ts.Nano())
}

func (m *Manager) count(o dataplane.HoldOutcome, waited time.Duration) {
	m.outcomes.WithLabelValues(o.String()).Inc()
	m.waited.Observe(waited.Seconds())
}

func (m *Manager) setHeld(n int) {
	m.heldFrames = n
	m.heldNow.Store(int64(n))
}

// release sends a held RST on to where it was going, through the egress
// interface's socket.
func (m *Manager) release(frame []byte, seg dataplane.Segment, hd dataplane.Hold) {
	err := m.forward(frame, seg, hd)
	if err != nil {
		m.releaseErrors.Add(1)
		m.log.Warn("held RST not released", "src", seg.Src, "dst", seg.Dst, "err", err)
	}
}

func (m *Manager) forward(frame []byte, seg dataplane.Segment, hd dataplane.Hold) error {
	out, err := Forward(frame, seg, hd.EgressSrc, hd.EgressDst)
	if err != nil {
		return err
	}
	tx := m.tx[hd.Egress]
	if tx == nil {
		return fmt.Errorf("no AF_XDP socket on egress ifindex %d", hd.Egress)
	}
	return transmit(tx, out)
}

// transmit queues a frame on a socket, sending what is queued first when
// the ring is full.
func transmit(s *dataplane.Socket, frame []byte) error {
	err := s.Transmit(frame)
	if errors.Is(err, dataplane.ErrTxFull) {
		if err := s.Flush(); err != nil {
			return err
		}
		err = s.Transmit(frame)
	}
	return err
}

// close stops the program redirecting (the registrations go, the hold
// records stay), takes what it had already redirected while each still
// finds its record, releases every pending hold (a stopping daemon must not
// take held RSTs with it), and only then removes the records and closes the
// sockets: from then on the program passes every RST it would have held.
// The decided holds' events get a moment to reach the writer, never more.
func (m *Manager) close() {
	if err := m.dp.UnregisterSockets(); err != nil {
		m.log.Error("unregister AF_XDP sockets", "err", err)
	}
	now := time.Now()
	for _, s := range m.sockets {
		s.Receive(func(f []byte) { m.frame(s, f, now) })
	}
	for _, h := range m.pending {
		m.decide(h, dataplane.HoldTimeout, nil, now)
	}
	m.flush()
	if err := m.dp.ClearHolds(); err != nil {
		m.log.Error("clear holds", "err", err)
	}
	for _, s := range m.sockets {
		s.Close()
	}
	close(m.reports)
	done := make(chan struct{})
	go func() { m.reported.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		m.log.Warn("event writer stalled: hold events not written", "queued", len(m.reports))
	}
}
