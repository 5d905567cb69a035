package pktgen

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"

	"github.com/rstguard/rstguard/dataplane"
	"github.com/rstguard/rstguard/internal/testutil"
	"github.com/rstguard/rstguard/xdp"
)

var testMACs = [2][]byte{{2, 0, 0, 0, 0, 1}, {2, 0, 0, 0, 0, 2}}

func TestParseMix(t *testing.T) {
	m, err := ParseMix("data=90, rst=1,forged=1")
	if err != nil || m.Weights[KindData] != 90 || m.Weights[KindForged] != 1 || !m.Handshake {
		t.Errorf("ParseMix = %+v, %v", m, err)
	}
	if m, err := ParseMix("syn=1"); err != nil || m.Handshake {
		t.Errorf("a SYN-only mix = %+v, %v: want no handshake", m, err)
	}
	for _, bad := range []string{"", "data", "data=x", "bogus=1", "data=-1", "data=0,rst=0"} {
		if _, err := ParseMix(bad); err == nil {
			t.Errorf("ParseMix(%q) accepted", bad)
		}
	}
}

// TestTraffic checks the gateway preset's frames: every kind present, sized
// as asked, each template's share of the mix summing to 1.
func TestTraffic(t *testing.T) {
	for _, size := range []int{MinSize, 512, MaxSize} {
		tr, err := BuildTraffic(Presets["gateway"], size, false, testMACs[0], testMACs[1])
		if err != nil {
			t.Fatal(err)
		}
		kinds, sum := map[string]bool{}, 0.0
		for i, tmpl := range tr.Mix {
			kinds[tmpl.Kind] = true
			sum += tr.Shares[i]
			if len(tmpl.Frame) < size-FCS {
				t.Errorf("size %d: %s frame of %d bytes", size, tmpl.Kind, len(tmpl.Frame))
			}
			if (tmpl.Kind == KindData || tmpl.Kind == KindReply) && size > MinSize && len(tmpl.Frame) != size-FCS {
				t.Errorf("size %d: %s frame of %d bytes", size, tmpl.Kind, len(tmpl.Frame))
			}
		}
		if len(kinds) != len(Kinds)-1 || sum < 0.999 || sum > 1.001 { // the gateway mix has no SYN/ACK kind
			t.Errorf("size %d: kinds %v, shares sum to %v", size, kinds, sum)
		}
		if len(tr.Handshake) != 3 {
			t.Errorf("size %d: %d handshake templates", size, len(tr.Handshake))
		}
	}
	if _, err := BuildTraffic(Presets["gateway"], MinSize-1, false, testMACs[0], testMACs[1]); err == nil {
		t.Error("a 63-byte frame size was accepted")
	}
}

// TestRewriteMatchesProgram runs the live engine's program on each template
// (without live frames, so that the rewritten frame comes back) and checks
// it against Rewrite, the afxdp engine's, and both checksums from scratch.
func TestRewriteMatchesProgram(t *testing.T) {
	testutil.RequireRoot(t, "load BPF programs")
	l := &live{}
	if err := xdp.LoadPktgenObjects(&l.objs, nil); err != nil {
		t.Fatal(err)
	}
	defer l.objs.Close()
	if err := l.objs.Flows.Set(uint32(MaxFlows)); err != nil {
		t.Fatal(err)
	}
	l.objs.Ports.Set(uint32(Ports))
	l.objs.Budget.Set(uint32(1 << 31))
	l.objs.FirstPort.Set(uint32(FirstPort))
	for _, ipv6 := range []bool{false, true} {
		tr, err := BuildTraffic(Presets["gateway"], 100, ipv6, testMACs[0], testMACs[1])
		if err != nil {
			t.Fatal(err)
		}
		for _, tmpl := range append(tr.Handshake, tr.Mix...) {
			for _, flow := range []uint32{0, 1, Ports - 1, Ports, 1234567, MaxFlows - 1} {
				if err := l.setTemplate(tmpl, flow); err != nil {
					t.Fatal(err)
				}
				out := make([]byte, len(tmpl.Frame))
				ret, err := l.objs.Pktgen.Run(&ebpf.RunOptions{Data: tmpl.Frame, DataOut: out})
				if err != nil || ret != 4 { // XDP_REDIRECT
					t.Fatalf("run: %d, %v", ret, err)
				}
				want := tmpl.Rewrite(make([]byte, MaxSize), flow)
				if string(out) != string(want) {
					t.Fatalf("ipv6 %v %s flow %d: the program and Rewrite differ:\n%x\n%x", ipv6, tmpl.Kind, flow, out, want)
				}
				addr, port := tmpl.flowAddrPort(flow)
				if got := binary.BigEndian.Uint32(out[tmpl.addrOff:]); got != addr {
					t.Errorf("%s flow %d: address %x, want %x", tmpl.Kind, flow, got, addr)
				}
				if got := binary.BigEndian.Uint16(out[tmpl.portOff:]); got != port {
					t.Errorf("%s flow %d: port %d, want %d", tmpl.Kind, flow, got, port)
				}
				checkChecksums(t, out, ipv6)
			}
		}
	}
}

// checkChecksums verifies a frame's IPv4 header and TCP checksums from
// scratch (RFC 1071: the sum over the covered bytes is all ones).
func checkChecksums(t *testing.T, f []byte, ipv6 bool) {
	t.Helper()
	sum := func(acc uint32, b []byte) uint32 {
		for i := 0; i+1 < len(b); i += 2 {
			acc += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		if len(b)%2 == 1 {
			acc += uint32(b[len(b)-1]) << 8
		}
		return acc
	}
	fold := func(acc uint32) uint16 {
		for acc > 0xffff {
			acc = acc&0xffff + acc>>16
		}
		return uint16(acc)
	}
	ip := f[14:]
	var pseudo uint32
	var tcp []byte
	if ipv6 {
		tcp = ip[40 : 40+int(binary.BigEndian.Uint16(ip[4:]))]
		pseudo = sum(0, ip[8:40]) + uint32(len(tcp)) + 6
	} else {
		if fold(sum(0, ip[:20])) != 0xffff {
			t.Errorf("bad IPv4 header checksum in %x", f)
		}
		tcp = ip[20:binary.BigEndian.Uint16(ip[2:])]
		pseudo = sum(0, ip[12:20]) + uint32(len(tcp)) + 6
	}
	if fold(sum(pseudo, tcp)) != 0xffff {
		t.Errorf("bad TCP checksum in %x", f)
	}
}

// TestLiveEngineFeedsRstguard sends the gateway mix with the live engine
// into a veth whose peer carries rstguard, and checks that rstguard saw
// every frame and tracked every flow as established.
func TestLiveEngineFeedsRstguard(t *testing.T) {
	testutil.RequireRoot(t, "namespaces and BPF")
	testutil.InFreshNetns(t, func(run func(string, func(*testing.T))) {
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "gen0"}, PeerName: "box0"}); err != nil {
			t.Error(err)
			return
		}
		gen, _ := netlink.LinkByName("gen0")
		box, _ := netlink.LinkByName("box0")
		for _, l := range []netlink.Link{gen, box} {
			if err := netlink.LinkSetUp(l); err != nil {
				t.Error(err)
				return
			}
		}
		ifc, _ := net.InterfaceByName("gen0")
		for _, engine := range []string{"live", "afxdp"} {
			// One engine for both address families: asavie/xdp leaves a
			// closed socket bound to its queue until the process exits.
			eng, err := OpenEngine(engine, ifc, feedFlows)
			if err != nil {
				t.Error(err)
				return
			}
			for _, ipv6 := range []bool{false, true} {
				run(fmt.Sprintf("%s ipv6=%v", engine, ipv6), func(t *testing.T) { feedRstguard(t, eng, ipv6, box) })
			}
			eng.Close()
		}
	})
}

// feedFlows is how many flows TestLiveEngineFeedsRstguard opens.
const feedFlows = 1000

// feedRstguard sends the gateway mix with an engine into box, which carries
// a fresh rstguard, and checks what rstguard saw.
func feedRstguard(t *testing.T, eng Engine, ipv6 bool, box netlink.Link) {
	// Room to spare in both tables: a BPF LRU table fed from two CPUs evicts
	// well before it is full (its per-CPU free lists), and the half-open
	// table is a quarter of this.
	dp, err := dataplane.Load(dataplane.Options{FlowTableSize: 16 * feedFlows})
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	if err := netlink.LinkSetXdpFd(box, dp.Program().FD()); err != nil {
		t.Fatal(err)
	}

	const flows, count = feedFlows, 20000
	dropsBefore := vethDrops(t, "gen0") + vethDrops(t, "box0")
	ifc, _ := net.InterfaceByName("gen0")
	tr, err := BuildTraffic(Presets["gateway"], MinSize, ipv6, ifc.HardwareAddr, testMACs[1])
	if err != nil {
		t.Fatal(err)
	}
	st, err := Run(context.Background(), eng, tr, Config{Flows: flows, Count: count})
	if err != nil {
		t.Fatal(err)
	}
	if st.Handshake != 3*flows || st.Sent != count {
		t.Errorf("sent %d handshake and %d mix packets, want %d and %d", st.Handshake, st.Sent, 3*flows, count)
	}
	// The receiving end drains its ring after the generator returns; under
	// load, a full ring drops frames, which veth counts. The kernel's own
	// IPv6 neighbour discovery on the veth adds non-TCP frames.
	var c dataplane.Counters
	for last := uint64(1); ; last = c.Packets {
		time.Sleep(20 * time.Millisecond)
		if c, err = dp.Counters(); err != nil {
			t.Fatal(err)
		}
		if c.Packets == last {
			break
		}
	}
	dropped := vethDrops(t, "gen0") + vethDrops(t, "box0") - dropsBefore
	sent := st.Handshake + st.Sent
	if c.TCP+dropped != sent || dropped > sent/10 {
		t.Errorf("rstguard saw %d TCP packets and veth dropped %d, the generator sent %d", c.TCP, dropped, sent)
	}
	// The mix's SYNs reopen the flows they land on (a new connection on the
	// same port pair, as insert_flow() says): such a flow is tracked anew
	// from its SYN until its later segments complete the exchange again.
	established, reopened := 0, 0
	err = dp.Flows(func(f dataplane.Flow) bool {
		switch {
		case !f.Embryonic && !f.Midstream:
			established++
		case f.Embryonic && f.State.String() == "syn_sent" && f.ClientSide.Seen:
			reopened++
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if tracked := established + reopened; tracked < flows-int(dropped) || tracked > flows ||
		uint64(reopened) > st.ByKind[KindSYN] {
		t.Errorf("rstguard tracks %d flows from their handshake and %d reopened by the mix's %d SYNs, want %d in all",
			established, reopened, st.ByKind[KindSYN], flows)
	}
	// The mix's legitimate resets are valid, its forged ones spoofed.
	if c.Verdicts["valid"] == 0 || c.Verdicts["spoofed"] == 0 {
		t.Errorf("the mix's resets were not judged: %d RSTs, verdicts %v", c.RSTs, c.Verdicts)
	}
}

func TestKernelEngineSaysWhy(t *testing.T) {
	_, err := OpenEngine("kernel", &net.Interface{Name: "lo", Index: 1}, 1)
	if err == nil {
		t.Fatal("the kernel engine opened")
	}
	t.Log(err)
}

// recorder is an engine that only records what it is asked to send.
type recorder struct {
	sends  []string
	byKind map[string]int
	round  int
}

func (r *recorder) Send(t *Template, first uint32, n int) error {
	r.sends = append(r.sends, fmt.Sprintf("%s %d+%d", t.Kind, first, n))
	r.byKind[t.Kind] += n
	return nil
}
func (r *recorder) Round() int   { return r.round }
func (r *recorder) Close() error { return nil }

// TestRunSchedule checks what Run asks of an engine: handshakes in bursts
// (SYNs, then their SYN/ACKs, then their ACKs), then exactly the count, in
// the mix's proportions.
func TestRunSchedule(t *testing.T) {
	tr, err := BuildTraffic(Mix{Weights: map[string]int{KindData: 3, KindACK: 1}, Handshake: true}, MinSize, false, testMACs[0], testMACs[1])
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{byKind: map[string]int{}, round: 1 << 20}
	st, err := Run(context.Background(), r, tr, Config{Flows: 10, HandshakeBurst: 4, Count: 100_000})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"syn 0+4", "synack 0+4", "ack 0+4", "syn 4+4", "synack 4+4", "ack 4+4", "syn 8+2", "synack 8+2", "ack 8+2"}
	if got := r.sends[:len(want)]; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("handshakes sent as %v, want %v", got, want)
	}
	if st.Handshake != 30 || st.Sent != 100_000 {
		t.Errorf("sent %d handshake and %d mix packets, want 30 and 100000", st.Handshake, st.Sent)
	}
	data, acks := r.byKind[KindData], r.byKind[KindACK]-10
	if data+acks != 100_000 || data < 74_000 || data > 76_000 {
		t.Errorf("mix of %d data and %d ACKs, want 3:1", data, acks)
	}
}

// vethDrops sums what a veth counts as dropped or failed (`ethtool -S`): its
// ring full when a redirect or an AF_XDP frame arrives faster than it drains.
func vethDrops(t *testing.T, iface string) uint64 {
	t.Helper()
	out, err := exec.Command("ethtool", "-S", iface).Output() // runs in this thread's namespace
	if err != nil {
		t.Fatalf("ethtool -S %s: %v", iface, err)
	}
	var n uint64
	for _, line := range strings.Split(string(out), "\n") {
		name, value, ok := strings.Cut(strings.TrimSpace(line), ": ")
		if ok && (strings.HasSuffix(name, "drops") || strings.HasSuffix(name, "errors")) {
			v, _ := strconv.ParseUint(value, 10, 64)
			n += v
		}
	}
	return n
}
