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
)

// Manager is hold mode's user-space half. One goroutine (Run) owns every
// socket: asavie/xdp sockets are not safe for concurrent use.
type Manager struct {
	dp      *dataplane.Dataplane
	log     *slog.Logger
	sockets []*dataplane.Socket
	pfds    []unix.PollFd
	// tx is the socket that sends out of each interface (its queue 0).
	tx map[int]*dataplane.Socket
	// slots are the sockets' XSKMAP slots; nextSlot the next one free.
	slots    map[*dataplane.Socket]uint32
	nextSlot uint32
	// links asks Run's goroutine to bind sockets to an interface that
	// returned (positive ifindex) or drop those of one that went away
	// (negative).
	links chan int

	// d decides the holds; the Manager moves frames between it and the
	// sockets.
	d        *decisions
	policyAt time.Time
	nudges   chan dataplane.FlowKey

	// reports hands decided holds to the event writer, a turn's at a time:
	// a bounded queue, so that no decision ever waits on the event log (a
	// stalled reader of --events -, a full disk). What does not fit is
	// counted.
	reports     chan []dataplane.Event
	reported    sync.WaitGroup
	reportsLost atomic.Uint64
}

// reportQueue is how many turns' decided holds may wait for the event writer.
const reportQueue = 1024

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
		links: make(chan int, 64), nudges: make(chan dataplane.FlowKey, 1024),
	}
	m.d = newDecisions(kernelRecords{dp}, m, log, dataplane.Policy{})
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
		m.d.outcomes, m.d.late, m.d.waited,
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rstguard_hold_reports_lost_total",
			Help: "Decided holds whose event could not be queued for the event log (the writer stalled)."},
			func() float64 { return float64(m.reportsLost.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rstguard_hold_unparsed_total",
			Help: "Frames redirected to the daemon that it could not parse (released by nobody)."},
			func() float64 { return float64(m.d.unparsed.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rstguard_hold_stray_answers_total",
			Help: "Probe answers that reached the daemon after their hold was decided."},
			func() float64 { return float64(m.d.strayAnswers.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rstguard_hold_frames", Help: "RSTs held now."},
			func() float64 { return float64(m.d.heldNow.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rstguard_hold_release_errors_total",
			Help: "Held RSTs that were to be released but could not be sent (TTL expired, no socket, TX full)."},
			func() float64 { return float64(m.d.releaseErrors.Load()) }),
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
			s.Receive(func(f []byte) { m.d.frame(s.Ifindex, f, now) })
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
			m.d.nudge(key, now)
		default:
			more = false
		}
	}
	m.d.expire(now)
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
			m.d.releaseErrors.Add(1)
			m.log.Warn("AF_XDP transmit", "err", err)
		}
	}
	ended, reports := m.d.turn()
	if len(ended) > 0 {
		if err := m.dp.EndHolds(ended); err != nil {
			m.log.Error("end holds", "err", err)
		}
	}
	forged := map[int]uint64{}
	for _, e := range reports {
		if e.Hold.Outcome.Forged() {
			forged[int(e.Ifindex)] += uint64(e.Hold.Frames)
		}
	}
	for ifindex, n := range forged {
		if err := m.dp.CountHoldForged(ifindex, n); err != nil {
			m.log.Error("count held forgeries", "err", err)
		}
	}
	if len(reports) > 0 {
		select {
		case m.reports <- reports:
		default:
			m.reportsLost.Add(uint64(len(reports)))
		}
	}
}

// pollTimeout wakes the loop for the next deadline, and at least every few
// milliseconds while holds are pending (to take nudges), every 100 ms else.
func (m *Manager) pollTimeout(now time.Time) int {
	if len(m.d.pending) == 0 {
		return 100
	}
	return int(min(max(m.d.next.Sub(now), 0), 2*time.Millisecond).Milliseconds()) + 1
}

func (m *Manager) refreshPolicy(now time.Time) error {
	p, err := m.dp.Policy()
	if err != nil {
		return err
	}
	m.d.policy, m.policyAt = p, now
	return nil
}

// kernelRecords are the program's hold records, on its clock.
type kernelRecords struct{ *dataplane.Dataplane }

// ProvenAlive marks the hold on the program's clock (bpf_ktime_get_ns:
// CLOCK_MONOTONIC), whatever the decisions' clock says.
func (k kernelRecords) ProvenAlive(key dataplane.FlowKey, held uint64, _ time.Time) error {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return err
	}
	return k.Dataplane.ProvenAlive(key, held, uint64(ts.Nano()))
}

// send queues a frame out of an interface: on its queue 0's socket, or
// any of its sockets where that one failed to bind.
func (m *Manager) send(ifindex int, frame []byte) error {
	tx := m.tx[ifindex]
	for _, s := range m.sockets {
		if tx == nil && s.Ifindex == ifindex {
			tx = s
		}
	}
	if tx == nil {
		return fmt.Errorf("no AF_XDP socket on ifindex %d", ifindex)
	}
	return transmit(tx, frame)
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
		s.Receive(func(f []byte) { m.d.frame(s.Ifindex, f, now) })
	}
	m.d.releaseAll(now)
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
