package main

import (
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"

	"github.com/rstguard/rstguard/bench/lab"
	"github.com/rstguard/rstguard/dataplane"
	"github.com/rstguard/rstguard/internal/testutil"
)

// newWireGateway is a gateway whose gw is a bump in the wire between a
// client and a server on one subnet (lab.NewWiredChain): no address, no
// forwarding by its kernel. The daemon runs with --wire ethc:eths.
func newWireGateway(t *testing.T, extra ...string) *gateway {
	t.Helper()
	testutil.RequireRoot(t, "namespaces, XDP, bpffs")
	prefix := lab.UniquePrefix()
	chain, err := lab.NewWiredChain(prefix, []string{"gw"}, "client", "gw", "server")
	if err != nil {
		t.Fatal(err)
	}
	g := gatewayOn(t, prefix, chain)
	g.runArgs = append([]string{"--wire", lab.ClientSide + ":" + lab.ServerSide}, extra...)
	return g
}

// wirePort is a port's forwarding counters in status.
func (g *gateway) wirePort(name string) wireCounts {
	st := g.status()
	if len(st.Wire) != 1 {
		g.t.Fatalf("status shows %d wire pairs, want 1: %+v", len(st.Wire), st.Wire)
	}
	return st.Wire[0].Ports[name]
}

// abort closes the held connection with a RST (SO_LINGER 0), as a real
// stack aborts.
func (h *heldConn) abort(t *testing.T) {
	t.Helper()
	if err := h.c.(*net.TCPConn).SetLinger(0); err != nil {
		t.Fatal(err)
	}
	h.c.Close()
}

// TestWireMode: rstguard as a bump in the wire carries a real HTTP exchange
// (ARP and all) between hosts that see each other as on one cable, stops
// the incident's forged RST, lets a real abort through with its TTL as sent,
// and keeps forwarding after kill -9 until detach.
func TestWireMode(t *testing.T) {
	g := newWireGateway(t)
	g.startDaemon("drop")

	addrs, err := g.gw.Netlink().AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if !a.IP.IsLoopback() {
			t.Fatalf("the box has an address: %s", a.IPNet)
		}
	}
	if out, err := g.curl(); err != nil || !strings.Contains(out, "hello from the server") {
		t.Fatalf("curl across the wire: %v %s", err, out)
	}
	st := g.status()
	if len(st.Wire) != 1 || st.Wire[0].Pair != "ethc:eths" || st.Wire[0].Fail != "open" {
		t.Fatalf("status wire: %+v", st.Wire)
	}
	for _, port := range []string{lab.ClientSide, lab.ServerSide} {
		if c := st.Wire[0].Ports[port]; c.Forwarded == 0 || c.NoPeer != 0 || c.ClosedDrops != 0 {
			t.Errorf("port %s: %+v, want frames forwarded and nothing else", port, c)
		}
	}
	if st.Counters.NotTCP == 0 {
		t.Error("no frame that is not TCP crossed: ARP must")
	}
	for _, port := range []string{lab.ClientSide, lab.ServerSide} {
		if link, err := g.gw.Netlink().LinkByName(port); err != nil || link.Attrs().Promisc == 0 {
			t.Errorf("%s not promiscuous in wire mode (%v)", port, err)
		}
	}
	if !strings.Contains(g.mustRstguard("status", "--interval", "0", "--pin-dir", g.pinDir), "wire ethc <-> eths (fail open)") {
		t.Error("status text does not show the pair")
	}
	// The metrics name each port's pair, to join its counters to it.
	ports := map[string]string{}
	for _, m := range g.metrics(t)["rstguard_wire_port"].GetMetric() {
		l := map[string]string{}
		for _, p := range m.Label {
			l[p.GetName()] = p.GetValue()
		}
		ports[l["iface"]] = l["pair"] + " " + l["fail"]
	}
	if want := "ethc:eths open"; len(ports) != 2 || ports[lab.ClientSide] != want || ports[lab.ServerSide] != want {
		t.Errorf("rstguard_wire_port: %v, want both ports in pair %q", ports, want)
	}

	t.Run("IPv6 crosses too, neighbour discovery and all", g.curlsOverIPv6)
	t.Run("bulk TCP crosses (iperf3), nothing dropped", g.bulkAcross)
	t.Run("IPv4 fragments cross, each as it came", g.fragmentsAcross)
	t.Run("a port down and up again: the pair forwards again, nothing closed", func(t *testing.T) {
		before := g.wirePort(lab.ClientSide).RedirectErrors
		g.portDownUp(t, func() {})
		c := g.wirePort(lab.ClientSide)
		if c.ClosedDrops != 0 {
			t.Errorf("open pair counted %d closed drops", c.ClosedDrops)
		}
		// The client's SYNs went to a port that was down: the kernel
		// refused them (xdp:xdp_redirect_err, ENETDOWN).
		if c.RedirectErrors <= before {
			t.Errorf("frames redirected to a port that was down: %d redirect errors, want more than %d", c.RedirectErrors, before)
		}
	})
	t.Run("frames the other side cannot take are counted as redirect errors", g.redirectErrorsCounted)

	h := g.hold()
	g.forgeClientRST(h)
	if err := h.roundTrip(); err != nil {
		t.Fatalf("the forged RST killed the connection: %v", err)
	}
	if n := g.status().Counters.Action(dataplane.ActionDrop); n != 1 {
		t.Errorf("dropped %d RSTs, want the forged one", n)
	}

	rsts := sniff(t, g.server, lab.ClientSide, rstTo(80))
	h.abort(t)
	g.waitFor("the client's abort at the server", func() bool { return len(rsts()) > 0 })
	if got := rsts(); len(got) != 1 || got[0].TTL != 64 {
		t.Errorf("the server got %+v, want one RST with the client's TTL, 64: no hop on a wire", got)
	}

	// Killed, the daemon leaves the program forwarding and judging from its
	// maps; restarted, it keeps the flows: a connection from before the
	// kill is still protected.
	before := g.hold()
	g.stopDaemon(syscall.SIGKILL)
	if out, err := g.curl(); err != nil {
		t.Fatalf("curl after kill -9: %v %s", err, out)
	}
	g.startDaemon("drop")
	g.forgeClientRST(before)
	if err := before.roundTrip(); err != nil {
		t.Fatalf("after the restart, a forged RST killed a connection from before the kill: %v", err)
	}
	g.stopDaemon(syscall.SIGKILL)
	if out := g.mustRstguard("detach", "--all", "--pin-dir", g.pinDir); !strings.Contains(out, "promiscuous mode off on ethc") {
		t.Errorf("detach after kill -9 left the ports promiscuous: %s", out)
	}
	for _, port := range []string{lab.ClientSide, lab.ServerSide} {
		if link, err := g.gw.Netlink().LinkByName(port); err != nil || link.Attrs().Promisc != 0 {
			t.Errorf("%s promiscuous after detach (%v)", port, err)
		}
	}
	if out, err := g.curl(); err == nil {
		t.Fatalf("curl after detach crossed a box that forwards nothing: %s", out)
	}
}

// TestWireFailClosed: with --wire-fail closed, a pair with a port down drops
// what arrives on the other, counted, and carries it again once the port is
// back.
func TestWireFailClosed(t *testing.T) {
	g := newWireGateway(t, "--wire-fail", "closed")
	g.startDaemon("monitor")
	if out, err := g.curl(); err != nil {
		t.Fatalf("curl across the wire: %v %s", err, out)
	}
	g.portDownUp(t, func() {
		g.waitFor("the pair closed", func() bool { return strings.Contains(g.logs.String(), "wire pair closed") })
	})
	if c := g.wirePort(lab.ClientSide); c.ClosedDrops == 0 {
		t.Errorf("client port %+v: nothing counted as dropped while closed", c)
	}
	// Stopped, the daemon puts the ports' promiscuous mode back.
	g.stopDaemon(syscall.SIGTERM)
	for _, port := range []string{lab.ClientSide, lab.ServerSide} {
		if link, err := g.gw.Netlink().LinkByName(port); err != nil || link.Attrs().Promisc != 0 {
			t.Errorf("%s still promiscuous after the daemon stopped (%v)", port, err)
		}
	}
}

// TestWireHold: hold mode in the wire. A RST that copies every header is
// held and the client asked: its probe leaves by the port the RST came in
// on, to the MAC and VLAN of the client's handshake, whatever MAC or tag the
// forgery made up, so every volley is stopped; a real abort is released out
// of the other port as it came (TTL 64: no hop).
func TestWireHold(t *testing.T) {
	// As in TestHoldMode: answers decide the holds, not the window.
	g := newWireGateway(t, "--hold-min", "1s", "--hold-max", "2s")
	g.startDaemon("hold")
	if st := g.status(); len(st.Sockets) != 2 {
		t.Fatalf("sockets %+v, want one on each port", st.Sockets)
	}
	t.Run("a RST that copies every header is held, the client answers the probe, it is dropped", g.stopsExactForgery)
	for _, v := range volleys {
		t.Run("a volley of "+v.name+" is stopped whole, the connection lives", func(t *testing.T) { g.stopsVolley(t, v) })
	}
	t.Run("a real abort is held, answered with a RST, released as it came", func(t *testing.T) {
		rsts := g.abortReleased(t, g.srvIP, &net.Dialer{Timeout: 3 * time.Second})
		if len(rsts) != 1 || rsts[0].TTL != 64 || rsts[0].VLAN != 0 {
			t.Errorf("RSTs at the server %+v, want one with the client's TTL, 64", rsts)
		}
	})
	if n := g.status().Counters.HoldUnrouted; n != 0 {
		t.Errorf("%d RSTs not held for want of a route: the wire needs none", n)
	}
}

// redirectErrorsCounted takes the XDP program off the server's end of its
// cable: a veth then refuses the frames redirected into it (ENXIO, counted
// as drops by xdp:xdp_devmap_xmit), and the pair's redirect errors rise
// until the program is back.
func (g *gateway) redirectErrorsCounted(t *testing.T) {
	link, err := g.server.Netlink().LinkByName(lab.ClientSide)
	if err != nil {
		t.Fatal(err)
	}
	pass, err := ebpf.NewProgramFromID(ebpf.ProgramID(link.Attrs().Xdp.ProgId))
	if err != nil {
		t.Fatal(err)
	}
	defer pass.Close()
	before := g.wirePort(lab.ClientSide).RedirectErrors
	if err := g.server.Do(func() error { return netlink.LinkSetXdpFd(link, -1) }); err != nil {
		t.Fatal(err)
	}
	if out, err := g.curl(); err == nil {
		t.Errorf("curl crossed to a veth that takes no redirected frames: %s", out)
	}
	if after := g.wirePort(lab.ClientSide).RedirectErrors; after <= before {
		t.Errorf("frames lost on the way out: %d redirect errors, want more than %d", after, before)
	}
	if !strings.Contains(g.mustRstguard("status", "--interval", "0", "--pin-dir", g.pinDir), "redirect errors") {
		t.Error("status text does not show the redirect errors")
	}
	if err := g.server.Do(func() error { return netlink.LinkSetXdpFd(link, pass.FD()) }); err != nil {
		t.Fatal(err)
	}
	if out, err := g.curl(); err != nil {
		t.Fatalf("curl with the server's XDP program back: %v %s", err, out)
	}
}

// fragmentsAcross sends a 4,000-byte UDP datagram, which the client's
// stack cuts into three fragments on the 1,500-byte link (its FragCreates):
// the box forwards each as it came (it never reassembles), and the server
// gets the datagram whole.
func (g *gateway) fragmentsAcross(t *testing.T) {
	before := g.fragmentsMade(t)
	var srv net.PacketConn
	if err := g.server.Do(func() (err error) {
		srv, err = net.ListenPacket("udp4", netip.AddrPortFrom(g.srvIP, 9999).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	payload := []byte(strings.Repeat("fragment ", 4000/9))
	if err := g.client.Do(func() error {
		c, err := net.Dial("udp4", netip.AddrPortFrom(g.srvIP, 9999).String())
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write(payload)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 8192)
	n, _, err := srv.ReadFrom(buf)
	if err != nil || n != len(payload) {
		t.Fatalf("the server got %d of %d bytes: %v", n, len(payload), err)
	}
	if made := g.fragmentsMade(t) - before; made < 3 {
		t.Errorf("the client made %d fragments, want 3: the datagram crossed whole, not in fragments", made)
	}
}

// fragmentsMade is the client stack's FragCreates (/proc/net/snmp).
func (g *gateway) fragmentsMade(t *testing.T) int {
	t.Helper()
	out, err := g.client.Command(context.Background(), "cat", "/proc/net/snmp").Output()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] != "Ip:" {
			continue
		}
		if names == nil {
			names = fields
			continue
		}
		for i, name := range names {
			if name == "FragCreates" && i < len(fields) {
				n, err := strconv.Atoi(fields[i])
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
		}
	}
	t.Fatalf("no Ip FragCreates in /proc/net/snmp:\n%s", out)
	return 0
}

// TestWireHoldUnderAFlood is TestHoldModeUnderAFlood in the wire: every
// probe of the flood's thousand holds finds its client by the handshake's
// MAC, with no route.
func TestWireHoldUnderAFlood(t *testing.T) {
	g := newWireGateway(t)
	g.startDaemon("hold")
	g.holdsAFlood(t)
	if n := g.status().Counters.HoldUnrouted; n != 0 {
		t.Errorf("%d RSTs not held for want of a route: the wire needs none", n)
	}
}

// curlsOverIPv6 gives the client and the server IPv6 addresses on their one
// subnet and fetches a page over them: neighbour discovery's multicast and
// the TCP exchange both cross the wire.
func (g *gateway) curlsOverIPv6(t *testing.T) {
	addIPv6(t, g.client, lab.ServerSide, netip.MustParseAddr("fd00:77::1"))
	addIPv6(t, g.server, lab.ClientSide, netip.MustParseAddr("fd00:77::2"))
	g.serve(t, netip.MustParseAddr("fd00:77::2"), "hello over IPv6\n")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := g.client.Command(ctx, "curl", "-sS", "-m", "5", "http://[fd00:77::2]/").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "hello over IPv6") {
		t.Fatalf("curl over IPv6 across the wire: %v %s", err, out)
	}
}

// bulkAcross runs iperf3 from the client to the server for two seconds:
// real stacks' bulk transfer across the wire, and not a frame dropped.
func (g *gateway) bulkAcross(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv := g.server.Command(ctx, "iperf3", "-s", "-1", "-B", g.srvIP.String())
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Wait()
	before := g.status().Counters
	var out []byte
	var err error
	for range 50 { // until the server listens
		if out, err = g.client.Command(ctx, "iperf3", "-c", g.srvIP.String(), "-t", "2", "-J").Output(); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("iperf3: %v %s", err, out)
	}
	var res struct {
		End struct {
			SumReceived struct {
				Bytes uint64 `json:"bytes"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &res); err != nil || res.End.SumReceived.Bytes < 10<<20 {
		t.Fatalf("iperf3 moved %d bytes (%v): %s", res.End.SumReceived.Bytes, err, out)
	}
	after := g.status().Counters
	if d := after.Action(dataplane.ActionDrop) - before.Action(dataplane.ActionDrop); d != 0 {
		t.Errorf("%d frames dropped during the transfer", d)
	}
	t.Logf("iperf3 across the wire: %d MB in 2 s", res.End.SumReceived.Bytes>>20)
}

// portDownUp takes the box's server-side port down (nothing crosses: it is
// gone, or the pair closed), calls down, and takes it up again (the pair
// carries again).
func (g *gateway) portDownUp(t *testing.T, down func()) {
	t.Helper()
	serverSide, err := g.gw.Netlink().LinkByName(lab.ServerSide)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.gw.Netlink().LinkSetDown(serverSide); err != nil {
		t.Fatal(err)
	}
	g.waitFor("the port down in status", func() bool {
		for _, i := range g.status().Interfaces {
			if i.Ifname == lab.ServerSide {
				return !i.Up
			}
		}
		return false
	})
	down()
	if out, err := g.curl(); err == nil {
		t.Fatalf("curl crossed a pair with a port down: %s", out)
	}
	if err := g.gw.Netlink().LinkSetUp(serverSide); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := g.curl()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("curl after the port came back: %v %s\n%s", err, out, g.logs.String())
		}
	}
}
