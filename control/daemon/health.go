package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"sync"
	"time"

	"github.com/rstguard/rstguard/control/attach"
	"github.com/rstguard/rstguard/control/health"
	"github.com/rstguard/rstguard/dataplane"
)

// How often the daemon assesses its health, and how often the parts that
// walk the flow table are redone (counting walks all of it: about a second
// per million flows).
const (
	healthEvery = time.Second
	tableEvery  = 10 * time.Second
	// directionSample is how many flows the one-way check reads.
	directionSample = 4096
)

// healthWatch is the daemon's view of itself between assessments.
type healthWatch struct {
	mu     sync.Mutex
	result health.Result
	// The table's count and the direction sample, redone every tableEvery.
	tableAt             time.Time
	flowsUsed, flowsCap int
	tableKnown          bool
	oneWay, twoWay      int
	lost                []lossMark // events_lost readings within health.LostWindow
	// rebound is when healSockets last asked for each interface's sockets.
	rebound map[int]time.Time
	// writeState gives status the result; stateAt is when it last did.
	writeState func(health.Result) error
	stateAt    time.Time
}

type lossMark struct {
	at   time.Time
	lost uint64
}

// Health is the last assessment.
func (d *daemon) Health() health.Result {
	d.health.mu.Lock()
	defer d.health.mu.Unlock()
	return d.health.result
}

// FlowTable is the flow count of the last assessment, for the metrics (one
// walk of the table serves both).
func (d *daemon) FlowTable() (capacity, used int, err error) {
	d.health.mu.Lock()
	defer d.health.mu.Unlock()
	return d.health.flowsCap, d.health.flowsUsed, nil
}

// watchHealth assesses every healthEvery until ctx ends.
func (d *daemon) watchHealth(ctx context.Context) {
	every(ctx, healthEvery, func(now time.Time) { d.assess(now) })
}

// every calls f at each tick of period, with the tick's time, until ctx
// ends.
func every(ctx context.Context, period time.Duration, f func(now time.Time)) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			f(now)
		}
	}
}

// assess judges what the daemon sees now; a change of level or reasons is
// logged, and the state file (status reads it) takes every change and a
// fresh result at least every stateEvery.
func (d *daemon) assess(now time.Time) health.Result {
	v := d.view(now)
	r := health.Assess(v, now)
	h := &d.health
	h.mu.Lock()
	prev := h.result
	h.result = r
	stale := now.Sub(h.stateAt) >= health.StateEvery
	h.mu.Unlock()
	if !r.Same(prev) {
		attrs := []any{"level", r.Level.String()}
		for _, x := range r.Reasons {
			attrs = append(attrs, x.Code, x.Text)
		}
		level := map[health.Level]slog.Level{health.OK: slog.LevelInfo, health.Warning: slog.LevelWarn,
			health.Critical: slog.LevelError}[r.Level]
		d.log.Log(context.Background(), level, "health", attrs...)
	}
	if (!r.Same(prev) || stale) && h.writeState != nil {
		if err := h.writeState(r); err != nil {
			d.log.Warn("state file for rstguard status", "err", err)
		}
		h.mu.Lock()
		h.stateAt = now
		h.mu.Unlock()
	}
	if _, ok := r.Of(health.HoldNoSocket); ok {
		d.healSockets(v, now)
	}
	return r
}

// rebindEvery bounds how often the daemon tries again to bind the missing
// sockets of one interface (each failure is logged).
const rebindEvery = 10 * time.Second

// healSockets has hold mode bind the sockets an interface lacks: its queues
// grew (ethtool -L), or a rebind after its return failed. Found here rather
// than by watching each cause, so that no cause is missed.
func (d *daemon) healSockets(v health.View, now time.Time) {
	for _, i := range v.Interfaces {
		if !i.Present || !i.Ours || i.SocketQueues >= i.Queues || now.Sub(d.health.rebound[i.Index]) < rebindEvery {
			continue
		}
		d.health.rebound[i.Index] = now
		d.log.Warn("hold mode: binding the AF_XDP sockets an interface lacks", "iface", i.Name,
			"queues", i.Queues, "with_socket", i.SocketQueues)
		d.hold.Rebind(i.Index)
	}
}

// view gathers what Assess judges.
func (d *daemon) view(now time.Time) health.View {
	v := health.View{Daemon: true, EventsError: d.sink.events.Error(), EvidenceError: d.sink.frames.Error()}
	if pol, err := d.dp.Policy(); err == nil {
		v.Mode = pol.Mode.String()
	}
	queues := map[int]map[int]bool{}
	if socks, err := d.dp.Sockets(); err == nil {
		for _, s := range socks {
			if queues[s.Ifindex] == nil {
				queues[s.Ifindex] = map[int]bool{}
			}
			queues[s.Ifindex][s.Queue] = true
		}
	}
	d.mu.Lock()
	known := maps.Clone(d.known)
	d.mu.Unlock()
	for name, index := range known {
		i := health.Interface{Name: name, Index: index}
		if st, err := attach.StateOfIndex(index); err == nil {
			i.Present, i.Ours = true, attach.Owns(st, d.dp.FlowsMapID())
			i.Queues, i.SocketQueues = dataplane.RxQueues(st.Ifname), len(queues[index])
		}
		v.Interfaces = append(v.Interfaces, i)
	}

	h := &d.health
	h.mu.Lock()
	defer h.mu.Unlock()
	if c, err := d.dp.Counters(); err == nil {
		h.lost = append(h.lost, lossMark{now, c.EventsLost})
		for len(h.lost) > 1 && now.Sub(h.lost[0].at) > health.LostWindow {
			h.lost = h.lost[1:]
		}
		v.EventsLost = c.EventsLost - h.lost[0].lost
	}
	if now.Sub(h.tableAt) >= tableEvery {
		h.tableAt = now
		if capacity, used, err := d.dp.FlowTable(); err == nil {
			h.flowsCap, h.flowsUsed, h.tableKnown = capacity, used, true
		}
		if one, two, err := d.dp.Directions(directionSample); err == nil {
			h.oneWay, h.twoWay = one, two
		}
	}
	v.FlowsTracked, v.FlowTableSize, v.TableKnown = h.flowsUsed, h.flowsCap, h.tableKnown
	v.OneWayFlows, v.TwoWayFlows = h.oneWay, h.twoWay
	return v
}

// serveHealth answers a load balancer's or a supervisor's probe with the
// last assessment: 200 "ok" or "warning: ..." while the chosen protection is
// in force, 503 "critical: ..." when it is not somewhere.
func (d *daemon) serveHealth(w http.ResponseWriter, _ *http.Request) {
	r := d.Health()
	switch r.Level {
	case health.OK:
		fmt.Fprintln(w, "ok")
	case health.Warning:
		fmt.Fprintln(w, "warning: "+r.Text())
	default:
		http.Error(w, "critical: "+r.Text(), http.StatusServiceUnavailable)
	}
}
