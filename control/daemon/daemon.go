// Package daemon is `rstguard run`: it loads the program with its maps
// pinned, attaches it to every interface of the gateway (one flow table for
// all of them), writes events and evidence, serves metrics, and follows
// interfaces that go away and come back.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/vishvananda/netlink"

	"github.com/rstguard/rstguard/control/attach"
	"github.com/rstguard/rstguard/control/bpffs"
	"github.com/rstguard/rstguard/control/hold"
	"github.com/rstguard/rstguard/control/metrics"
	"github.com/rstguard/rstguard/dataplane"
)

// Config is a resolved daemon configuration.
type Config struct {
	Interfaces []string
	// Policy changes the pinned policy: only what a flag or the config
	// file set, so that a restart keeps what `rstguard set` chose.
	Policy  func(*dataplane.Policy)
	XDPMode attach.Mode
	// Events is the JSON-lines event log; "-" is standard output.
	Events string
	// Pcap receives every suspect or spoofed RST as evidence; "" for none.
	// It rotates at PcapMaxSize bytes (0: never), keeping PcapMaxFiles.
	Pcap         string
	PcapMaxSize  int64
	PcapMaxFiles int
	// EventsRate caps events written per second (a flood's log growth).
	EventsRate int
	// Metrics is the address of the Prometheus endpoint; "" for none.
	Metrics string
	Allow   []netip.Prefix
	// Zones are --zone IFACE[.VLAN]=N; interfaces in a VRF without one
	// take the VRF's table.
	Zones []ZoneSpec
	// Wire are the --wire pairs (their ports are among Interfaces too);
	// WireFailClosed drops a pair's frames while a port of it is down.
	Wire           []WireSpec
	WireFailClosed bool
	Host           string
	PinDir         string
	FlowTableSize  uint32
}

// Defaults for a gateway.
const (
	DefaultEvents  = "/var/log/rstguard/events.jsonl"
	DefaultPcap    = "/var/log/rstguard/evidence.pcapng"
	DefaultMetrics = "127.0.0.1:9742"
	// The evidence rotates at 100 MB, ten files kept: 1.1 GB at most.
	DefaultPcapMaxSize  = 100 << 20
	DefaultPcapMaxFiles = 10
	// At most 1,000 events a second reach the log: under 1 MB/s of JSON.
	DefaultEventsRate = 1000
)

type daemon struct {
	cfg Config
	log *slog.Logger
	dp  *dataplane.Dataplane

	hold *hold.Manager
	sink *eventSink
	// promiscSet are the wire ports startWire turned promiscuous.
	promiscSet []string

	mu sync.Mutex
	// ifnames are the interfaces the daemon attached to, by index (their
	// names follow renames); known the names it watches, for their return.
	ifnames map[int]string
	known   map[string]int

	decodeErrors atomic.Uint64
	health       healthWatch
	// changes are the watched interfaces' comings and goings.
	changes chan attach.LinkChange
}

// Run runs until ctx ends, then detaches (pinned maps stay for a restart).
// Errors before the program is attached are returned at once; later trouble
// is logged and the daemon keeps going.
//
// Starting is one sequence: each step that needs undoing pushes its undo on
// one stack, which runs in reverse when Run returns, whether a later step
// failed or ctx ended. The steps are ordered so that this reverse is the
// stop that loses nothing: watchers first, then detach (no new events or
// holds), drain the ring buffer (its data evidence reaches the holds),
// release what is held (fail open), and only then close the sinks and maps.
func Run(ctx context.Context, cfg Config, logOut io.Writer, hup <-chan struct{}) error {
	d := &daemon{cfg: cfg, log: slog.New(slog.NewTextHandler(logOut, nil)).With("host", cfg.Host),
		ifnames: map[int]string{}, known: map[string]int{}}
	var stop undo
	defer stop.run()
	pol, err := d.start(&stop)
	if err != nil {
		return err
	}
	d.notify(fmt.Sprintf("READY=1\nSTATUS=judging RSTs on %s in %s mode\nMAINPID=%d",
		strings.Join(cfg.Interfaces, ","), pol.Mode, os.Getpid()))
	for {
		select {
		case <-ctx.Done():
			d.notify("STOPPING=1")
			d.log.Info("stopping: detaching, pinned maps stay", "pins", cfg.PinDir)
			return nil
		case <-hup:
			d.notify("RELOADING=1")
			if err := d.sink.reopen(); err != nil {
				d.log.Error("SIGHUP: reopen files", "err", err)
			} else {
				d.log.Info("SIGHUP: event log and evidence reopened", "events", cfg.Events, "evidence", cfg.Pcap)
			}
			d.notify("READY=1")
		case c := <-d.changes:
			d.linkChanged(c)
		}
	}
}

// undo is a start's cleanups, run last first.
type undo []func()

func (u *undo) push(f func()) { *u = append(*u, f) }

// run is deferred as stop.run(): a pointer receiver, so that it sees the
// undos pushed after the defer.
func (u *undo) run() {
	for i := len(*u) - 1; i >= 0; i-- {
		(*u)[i]()
	}
}

// start brings the daemon up, step by step, pushing each step's undo; it
// returns the policy in force.
func (d *daemon) start(stop *undo) (dataplane.Policy, error) {
	cfg := d.cfg
	// Every interface must exist before anything changes on the box.
	for _, name := range cfg.Interfaces {
		link, err := attach.Link(name)
		if err != nil {
			return dataplane.Policy{}, err
		}
		d.known[name] = link.Attrs().Index
		d.ifnames[link.Attrs().Index] = name
	}
	_, pinErr := bpffs.PinnedMapID(filepath.Join(cfg.PinDir, dataplane.FlowsMapName))
	root := filepath.Dir(cfg.PinDir)
	hadBPFFS := bpffs.IsBPFFS(root)
	dp, unlock, err := LoadPinned(cfg.PinDir, cfg.FlowTableSize)
	if err != nil {
		return dataplane.Policy{}, err
	}
	stop.push(unlock)
	stop.push(func() { dp.Close() })
	d.dp = dp
	if !hadBPFFS {
		// LoadPinned mounted it: said, and warned of where only this
		// mount namespace sees it (ip netns exec makes a private one, so
		// status from anywhere else finds no pins).
		if bpffs.PrivateMountNamespace() {
			d.log.Warn("mounted bpffs in a private mount namespace (ip netns exec makes one): rstguard commands run elsewhere "+
				"will not find these pins; start the daemon with nsenter --net=/run/netns/NAME instead", "root", root)
		} else {
			d.log.Info("mounted bpffs", "root", root)
		}
	}
	// A run that does not start leaves no pins it created: they would
	// claim a pin directory that no program uses (status, set and detach
	// would then act on maps nobody reads).
	started := false
	if pinErr != nil {
		stop.push(func() {
			if !started {
				if err := dataplane.Unpin(cfg.PinDir); err != nil {
					d.log.Error("remove the pins this run created", "pins", cfg.PinDir, "err", err)
				}
			}
		})
	}
	pol, err := d.setPolicy()
	if err != nil {
		return pol, err
	}

	if d.sink, err = newEventSink(cfg, d.log); err != nil {
		return pol, err
	}
	stop.push(func() { d.sink.Close() })
	var ifindexes []int
	for _, index := range d.known {
		ifindexes = append(ifindexes, index)
	}
	if d.hold, err = hold.Open(dp, ifindexes, d.log, func(e dataplane.Event) { d.sink.writeEvent(d, e) }); err != nil {
		return pol, err
	}
	holdCtx, stopHold := context.WithCancel(context.Background())
	var holdDone sync.WaitGroup
	holdDone.Go(func() { d.hold.Run(holdCtx) })
	stop.push(func() { stopHold(); holdDone.Wait() })
	events, err := dp.NewEventReader(dataplane.MonotonicClock)
	if err != nil {
		return pol, err
	}
	var reading sync.WaitGroup
	reading.Go(func() { d.readEvents(events, d.sink) })
	stop.push(func() { events.Flush(); reading.Wait(); events.Close() })
	if cfg.Metrics != "" {
		srv, err := d.serveMetrics()
		if err != nil {
			return pol, err
		}
		stop.push(func() { srv.Close() })
	}

	// Every check that can fail has passed; what the interfaces carry now
	// is put back if attaching fails halfway (a restart after kill -9 must
	// not leave the old program's interfaces bare).
	snap, err := attach.Take(ifindexes)
	if err != nil {
		return pol, err
	}
	stop.push(snap.Release)
	// The pairs before the program: it forwards from its first frame.
	if err := d.startWire(stop); err != nil {
		return pol, err
	}
	for _, name := range cfg.Interfaces {
		if err := d.attach(name); err != nil {
			if rerr := snap.Restore(); rerr != nil {
				d.log.Error("put the interfaces back", "err", rerr)
			}
			return pol, err
		}
	}
	stop.push(d.detachAll)
	writeState, removeState := stateWriter(cfg, d.promiscSet)
	stop.push(removeState)

	// Subscribe before READY: a service manager, or a test, may change the
	// interfaces the moment it hears it.
	watchCtx, stopWatching := context.WithCancel(context.Background())
	var watching sync.WaitGroup
	stop.push(func() { stopWatching(); watching.Wait() })
	d.changes = make(chan attach.LinkChange, 16)
	if watcher, err := attach.Subscribe(); err != nil {
		d.log.Error("link watch", "err", err)
	} else {
		d.mu.Lock()
		known := maps.Clone(d.known)
		d.mu.Unlock()
		watching.Go(func() {
			if err := watcher.Run(watchCtx, known, d.changes); err != nil {
				d.log.Error("link watch stopped", "err", err)
			}
		})
	}
	d.log.Info("running", "mode", pol.Mode.String(), "interfaces", cfg.Interfaces, "pins", cfg.PinDir,
		"events", cfg.Events, "evidence", cfg.Pcap, "metrics", cfg.Metrics, "hold_sockets", len(d.hold.Sockets()))
	// The first assessment before READY: /healthz, status and the log
	// have a result from the start.
	d.health.writeState, d.health.rebound = writeState, map[int]time.Time{}
	d.assess(time.Now())
	watching.Go(func() { d.watchPolicy(watchCtx) })
	watching.Go(func() { d.watchHealth(watchCtx) })
	started = true
	return pol, nil
}

// setPolicy applies the run's settings to the pinned policy and says what
// changed, and what was kept from the pins; then the allow-list and zones.
func (d *daemon) setPolicy() (dataplane.Policy, error) {
	before, err := d.dp.Policy()
	if err != nil {
		return before, err
	}
	pol, err := d.dp.UpdatePolicy(d.cfg.Policy)
	if err != nil {
		return pol, err
	}
	if pol != before {
		d.log.Info("policy changed", "from", before.String(), "to", pol.String())
	}
	if kept := KeptFromPins(pol, d.cfg.Policy); kept != "" {
		d.log.Warn("settings kept from the pinned policy (an earlier run or rstguard set): give them on the command line or in the config to choose",
			"kept", kept, "pins", d.cfg.PinDir)
	}
	if err := d.dp.SetAllow(d.cfg.Allow); err != nil {
		return pol, err
	}
	return pol, SetZones(d.dp, d.cfg.Zones, d.known)
}

// SetZones resolves the zones of the watched interfaces (name to ifindex)
// and gives them to the program.
func SetZones(dp *dataplane.Dataplane, specs []ZoneSpec, ifaces map[string]int) error {
	z, err := zones(specs, ifaces, netlink.LinkByIndex)
	if err != nil {
		return err
	}
	return dp.SetZones(z)
}

// LoadPinned mounts bpffs where needed, takes the pin directory's lock
// (nothing pinned is loaded or changed without it), and loads the program
// with its maps pinned there, reusing an earlier run's. unlock releases the
// lock; the caller keeps it for as long as it uses the maps.
func LoadPinned(pinDir string, flowTableSize uint32) (dp *dataplane.Dataplane, unlock func(), err error) {
	if err := bpffs.Ensure(pinDir); err != nil {
		return nil, nil, err
	}
	if unlock, err = bpffs.Lock(pinDir); err != nil {
		return nil, nil, err
	}
	dp, err = dataplane.Load(dataplane.Options{FlowTableSize: flowTableSize, PinDir: pinDir})
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return dp, unlock, nil
}

func (d *daemon) attach(name string) error {
	used, err := attach.Attach(name, d.dp.Program(), d.cfg.XDPMode, d.dp.FlowsMapID())
	if err != nil {
		return err
	}
	if used == attach.ModeGeneric && d.cfg.XDPMode == attach.ModeAuto {
		d.log.Warn("native XDP unavailable, attached in generic (skb) mode: slower", "iface", name)
	}
	d.log.Info("attached", "iface", name, "xdp_mode", used.String())
	return nil
}

// attached lists the interfaces the daemon attached to: index and name.
func (d *daemon) attached() map[int]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[int]string, len(d.ifnames))
	for i, n := range d.ifnames {
		out[i] = n
	}
	return out
}

func (d *daemon) detachAll() {
	for i, n := range d.attached() {
		if err := attach.DetachIndex(i); err != nil && !errors.Is(err, attach.ErrNoInterface) {
			d.log.Error("detach", "iface", n, "err", err)
		}
	}
}

func (d *daemon) linkChanged(c attach.LinkChange) {
	d.log.Warn("interface changed", "iface", c.Ifname, "ifindex", c.Index, "change", c.What, "old_name", c.OldName)
	d.mu.Lock()
	switch c.What {
	case "returned":
		d.known[c.Ifname] = c.Index
		d.ifnames[c.Index] = c.Ifname
	case "renamed":
		d.ifnames[c.Index] = c.Ifname
	case "removed":
		delete(d.ifnames, c.Index)
	}
	d.mu.Unlock()
	switch c.What {
	case "removed":
		d.hold.Unbind(c.Index)
	case "returned":
		if err := d.attach(c.Ifname); err != nil {
			d.log.Error("re-attach failed", "iface", c.Ifname, "err", err)
		}
		// Hold mode on it again: sockets on the new index's queues.
		d.hold.Rebind(c.Index)
	case "xdp changed":
		// Someone took the program off (ip link set dev X xdp off, another
		// loader): protection must not fade in silence. Put it back; Attach
		// refuses to replace another program, and then this says so.
		if st, err := attach.StateOfIndex(c.Index); err != nil || attach.Owns(st, d.dp.FlowsMapID()) {
			return
		}
		d.log.Error("rstguard's program was taken off the interface: re-attaching", "iface", c.Ifname)
		if err := d.attach(c.Ifname); err != nil {
			d.log.Error("re-attach failed: RSTs on this interface are not judged", "iface", c.Ifname, "err", err)
		}
	}
	if d.isWirePort(c.Ifname) || d.isWirePort(c.OldName) {
		if err := d.setWire(); err != nil {
			d.log.Error("wire: re-program the pairs", "err", err)
		}
	}
}

// notify tells the service manager (sd_notify), logging a failure.
func (d *daemon) notify(state string) {
	if err := notify(state); err != nil {
		d.log.Warn("sd_notify", "err", err)
	}
}

func (d *daemon) ifname(index uint32) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ifnames[int(index)]
}

// readEvents decodes the ring buffer until it is closed. Each record is
// decoded at fixed offsets; what the ring buffer could not hold is counted
// by the program (events_lost).
func (d *daemon) readEvents(rd *dataplane.EventReader, sink *eventSink) {
	for {
		e, err := rd.Read()
		if errors.Is(err, dataplane.ErrClosed) || errors.Is(err, dataplane.ErrFlushed) {
			return
		}
		if err != nil {
			d.decodeErrors.Add(1)
			continue
		}
		if e.Kind == dataplane.EventConfirmed {
			d.hold.DataSeen(e)
		}
		sink.writeEvent(d, e)
	}
}

func (d *daemon) serveMetrics() (*http.Server, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.New(flowCounted{d.dp, d}, d.cfg.Host, d.interfaceStates, d.sink.written.Load, d.decodeErrors.Load,
		d.sink.suppressed.Load), metrics.Health(d.cfg.Host, d.Health),
		metrics.WriteLost(d.cfg.Host, map[string]func() uint64{"events": d.sink.events.lost.Load, "evidence": d.sink.frames.lost.Load}))
	if len(d.cfg.Wire) > 0 {
		reg.MustRegister(metrics.WirePorts(d.cfg.Host, d.cfg.wirePairs(), d.cfg.wireFail()))
	}
	for _, c := range d.hold.Collectors() {
		reg.MustRegister(prometheus.WrapCollectorWith(prometheus.Labels{"host": d.cfg.Host}, c))
	}
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	ln, err := net.Listen("tcp", d.cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("metrics listener on %s: %w", d.cfg.Metrics, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", d.serveHealth)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	d.log.Info("metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	return srv, nil
}

// flowCounted is the dataplane for the metrics, with the flow count of the
// last health assessment: one walk of the table serves both.
type flowCounted struct {
	*dataplane.Dataplane
	d *daemon
}

func (f flowCounted) FlowTable() (capacity, used int, err error) { return f.d.FlowTable() }

func (d *daemon) interfaceStates() []attach.State {
	var out []attach.State
	for i, n := range d.attached() {
		st, err := attach.StateOfIndex(i)
		if err != nil {
			st = attach.State{Ifname: n, Index: i}
		}
		out = append(out, st)
	}
	return out
}
