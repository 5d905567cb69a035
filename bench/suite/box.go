package suite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"

	"github.com/rstguard/rstguard/bench/lab"
	"github.com/rstguard/rstguard/dataplane"
	"github.com/rstguard/rstguard/xdp"
)

// box is the bench's network: a namespace with a veth pair, the generator
// sending out of gen0 into dut0, which carries the subject under test.
type box struct {
	host *lab.Host
	dut  netlink.Link
	sink *sink // a forwarding box's second port (newForwardingBox)
}

func newBox(name string) (*box, error) {
	h, err := lab.NewHost(name)
	if err != nil {
		return nil, err
	}
	nl := h.Netlink()
	if err := nl.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "gen0"}, PeerName: "dut0"}); err != nil {
		h.Close()
		return nil, err
	}
	b := &box{host: h}
	for _, name := range []string{"gen0", "dut0"} {
		l, err := nl.LinkByName(name)
		if err == nil {
			err = nl.LinkSetUp(l)
		}
		if err != nil {
			h.Close()
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if name == "dut0" {
			b.dut = l
		}
	}
	return b, nil
}

// close stops the box's sink, if it has one, and removes its namespace.
func (b *box) close() error {
	if b.sink != nil {
		b.sink.stop()
	}
	return b.host.Close()
}

// genInterface is gen0 as the generator opens it, inside the namespace.
func (b *box) genInterface() (ifc *net.Interface, err error) {
	err = b.host.Do(func() error {
		ifc, err = net.InterfaceByName("gen0")
		return err
	})
	return ifc, err
}

// received is how many frames dut0 has received, its XDP program's included.
func (b *box) received() (uint64, error) {
	l, err := b.host.Netlink().LinkByName("dut0")
	if err != nil {
		return 0, err
	}
	return l.Attrs().Statistics.RxPackets, nil
}

// subject is what dut0 carries during one measurement.
type subject interface {
	// program is the attached XDP program, for its bpf_stats.
	program() (*ebpf.Program, error)
	stop() error
}

// baseline attaches one of xdp/bpf/baseline.c's programs, its table of
// tableSize entries like rstguard's.
type baseline struct {
	b    *box
	objs xdp.BaselineObjects
	prog *ebpf.Program
}

func attachBaseline(b *box, name string, tableSize uint32) (*baseline, error) {
	spec, err := xdp.LoadBaseline()
	if err != nil {
		return nil, err
	}
	spec.Maps["baseline_flows"].MaxEntries = tableSize
	s := &baseline{b: b}
	if err := spec.LoadAndAssign(&s.objs, nil); err != nil {
		return nil, err
	}
	s.prog = map[string]*ebpf.Program{"pass": s.objs.BarePass, "drop": s.objs.BareDrop, "lookup": s.objs.ParseLookup,
		"lookup-drop": s.objs.ParseLookupDrop, "redirect": s.objs.BareRedirect,
		"lookup-redirect": s.objs.ParseLookupRedirect}[name]
	if err := b.host.Do(func() error { return netlink.LinkSetXdpFd(b.dut, s.prog.FD()) }); err != nil {
		s.objs.Close()
		return nil, fmt.Errorf("attach %s: %w", name, err)
	}
	return s, nil
}

func (s *baseline) program() (*ebpf.Program, error) { return s.prog, nil }

func (s *baseline) stop() error {
	err := s.b.host.Do(func() error { return netlink.LinkSetXdpFd(s.b.dut, -1) })
	return errors.Join(err, s.objs.Close())
}

// tableSize is the flow table for a run of flows, rstguard's and the lookup
// baseline's alike. A BPF LRU hash evicts a little before it is full (its
// per-CPU free lists: 24 of 1,000 flows in a table of exactly 1,000 here),
// so it gets docs/DEPLOYMENT.md's 12.5% headroom.
func tableSize(flows uint32) uint32 { return flows + flows/8 }

// daemon is `rstguard run` on dut0, started as an operator would.
type daemon struct {
	b      *box
	cmd    *exec.Cmd
	pinDir string
	dir    string
	bin    string
	prog   *ebpf.Program // the attached program, once asked for
}

// startDaemon runs rstguard on dut0, or on the ports placement names
// (--wire dut0:dut1).
func startDaemon(b *box, bin, mode string, flows uint32, placement ...string) (*daemon, error) {
	if len(placement) == 0 {
		placement = []string{"-i", "dut0"}
	}
	dir, err := os.MkdirTemp("", "rstguard-bench")
	if err != nil {
		return nil, err
	}
	d := &daemon{b: b, dir: dir, bin: bin, pinDir: filepath.Join("/sys/fs/bpf", filepath.Base(dir))}
	n, err := lab.NewNotify()
	if err != nil {
		return nil, err
	}
	defer n.Close()
	args := append([]string{"run"}, placement...)
	d.cmd = b.host.Command(context.Background(), bin, append(args, "--mode", mode,
		"--flow-table-size", strconv.Itoa(int(flows)), "--pin-dir", d.pinDir,
		"--events", filepath.Join(dir, "events.jsonl"), "--pcap", "", "--metrics", "")...)
	d.cmd.Env = append(os.Environ(), n.Env())
	log, err := os.Create(filepath.Join(dir, "daemon.log"))
	if err != nil {
		return nil, err
	}
	defer log.Close()
	d.cmd.Stdout, d.cmd.Stderr = log, log
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	if err := n.Wait("READY=1", 2*time.Minute); err != nil {
		out, _ := os.ReadFile(filepath.Join(dir, "daemon.log"))
		d.stop()
		return nil, fmt.Errorf("rstguard run: %w: %s", err, out)
	}
	return d, nil
}

func (d *daemon) program() (_ *ebpf.Program, err error) {
	if d.prog != nil {
		return d.prog, nil
	}
	l, err := d.b.host.Netlink().LinkByName("dut0")
	if err != nil {
		return nil, err
	}
	if l.Attrs().Xdp == nil || l.Attrs().Xdp.ProgId == 0 {
		return nil, errors.New("no program on dut0")
	}
	d.prog, err = ebpf.NewProgramFromID(ebpf.ProgramID(l.Attrs().Xdp.ProgId))
	return d.prog, err
}

// daemonStatus is what the suite reads of rstguard status --json.
type daemonStatus struct {
	FlowsTracked int                `json:"flows_tracked"`
	Counters     dataplane.Counters `json:"counters"`
}

// status is `rstguard status --json`, totals only.
func (d *daemon) status() (st daemonStatus, err error) {
	out, err := exec.Command(d.bin, "status", "--json", "--interval", "0", "--pin-dir", d.pinDir).Output()
	if err != nil {
		return st, fmt.Errorf("rstguard status: %w", err)
	}
	return st, json.Unmarshal(out, &st)
}

// tableMemory is what the kernel charges for the flow tables (both), in bytes, and their capacity.
func (d *daemon) tableMemory() (bytes, capacity uint64, err error) {
	for _, name := range dataplane.FlowTableMaps {
		m, err := ebpf.LoadPinnedMap(filepath.Join(d.pinDir, name), nil)
		if err != nil {
			return 0, 0, err
		}
		info, err := m.Info()
		m.Close()
		if err != nil {
			return 0, 0, err
		}
		mem, ok := info.Memlock()
		if !ok {
			return 0, 0, errors.New("the kernel does not report map memory")
		}
		bytes += mem
		capacity += uint64(info.MaxEntries)
	}
	return bytes, capacity, nil
}

// sample is the daemon's CPU time, memory and status at one moment.
type sample struct {
	cpu    time.Duration
	rss    uint64
	status daemonStatus
}

func (d *daemon) sample() (s sample, err error) {
	if s.cpu, s.rss, err = d.usage(); err != nil {
		return s, err
	}
	s.status, err = d.status()
	return s, err
}

// usage is the daemon's CPU time so far and resident memory now.
func (d *daemon) usage() (cpu time.Duration, rss uint64, err error) {
	pid := d.cmd.Process.Pid
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// Fields after the command name, which is in parentheses: utime and stime are 14 and 15.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	stt, _ := strconv.ParseUint(f[12], 10, 64)
	cpu = time.Duration(ut+stt) * time.Second / 100 // USER_HZ
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			rss = kb * 1024
		}
	}
	return cpu, rss, nil
}

func (d *daemon) stop() error {
	if d.prog != nil {
		d.prog.Close()
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	err := d.cmd.Wait()
	os.RemoveAll(d.pinDir)
	os.RemoveAll(d.dir)
	return err
}
