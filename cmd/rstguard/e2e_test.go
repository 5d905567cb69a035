package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/rstguard/rstguard/bench/frames"
	"github.com/rstguard/rstguard/bench/inject"
	"github.com/rstguard/rstguard/bench/lab"
	"github.com/rstguard/rstguard/control/daemon"
	"github.com/rstguard/rstguard/dataplane"
	"github.com/rstguard/rstguard/internal/tcpflag"
	"github.com/rstguard/rstguard/internal/testutil"
)

// rstguardBin is the binary under test, built once by TestMain.
var rstguardBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rstguard-bin")
	if err != nil {
		panic(err)
	}
	rstguardBin = filepath.Join(dir, "rstguard")
	if out, err := exec.Command("go", "build", "-buildvcs=false", "-o", rstguardBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build rstguard: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// gateway is a client - gw - server chain with an HTTP server and the
// daemon's files in a temporary directory.
type gateway struct {
	t      *testing.T
	chain  *lab.Chain
	client *lab.Host
	gw     *lab.Host
	server *lab.Host
	srvIP  netip.Addr
	dir    string
	pinDir string
	events string
	pcap   string
	daemon *exec.Cmd
	logs   *bytes.Buffer
	// ready hears the daemon's sd_notify states.
	ready *lab.Notify
	// runArgs are more flags for `rstguard run`.
	runArgs []string
	// stdout, if set, is the daemon's standard output (else its log's).
	stdout *os.File
}

func newGateway(t *testing.T) *gateway {
	t.Helper()
	return newGatewayBehind(t, 0)
}

// newGatewayBehind is newGateway with the client clientOneWay away from the
// gateway (a delay line on their link, lab.NewDelayedChain): the client's
// leg has an RTT of twice that.
func newGatewayBehind(t *testing.T, clientOneWay time.Duration) *gateway {
	t.Helper()
	testutil.RequireRoot(t, "namespaces, XDP, bpffs")
	prefix := lab.UniquePrefix()
	chain, err := lab.NewDelayedChain(prefix, []time.Duration{clientOneWay}, "client", "gw", "server")
	if err != nil {
		t.Fatal(err)
	}
	return gatewayOn(t, prefix, chain)
}

// gatewayOn is a gateway on a chain of client, gw and server, with the
// server's HTTP server started.
func gatewayOn(t *testing.T, prefix string, chain *lab.Chain) *gateway {
	t.Helper()
	dir := t.TempDir()
	g := &gateway{t: t, chain: chain, client: chain.Host("client"), gw: chain.Host("gw"),
		server: chain.Host("server"), srvIP: chain.Addr("server"), dir: dir,
		pinDir: "/sys/fs/bpf/" + prefix, events: filepath.Join(dir, "events.jsonl"),
		pcap: filepath.Join(dir, "evidence.pcapng")}
	t.Cleanup(func() {
		g.stopDaemon(syscall.SIGKILL)
		g.rstguard("detach", "--all", "--purge", "--pin-dir", g.pinDir)
		chain.Close()
	})

	g.serve(t, g.srvIP, "hello from the server\n")
	return g
}

// serve runs an HTTP server in the server's namespace on addr, port 80,
// answering every request with body, until the test ends.
func (g *gateway) serve(t *testing.T, addr netip.Addr, body string) {
	t.Helper()
	var ln net.Listener
	if err := g.server.Do(func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(addr, 80).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// addIPv6 gives a host's interface an address in a /64, usable at once (no
// duplicate address detection).
func addIPv6(t *testing.T, h *lab.Host, ifname string, a netip.Addr) {
	t.Helper()
	link, err := h.Netlink().LinkByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(64, 128)}, Flags: unix.IFA_F_NODAD}
	if err := h.Netlink().AddrAdd(link, addr); err != nil {
		t.Fatal(err)
	}
}

// rstguard runs the CLI inside the gateway's namespace.
func (g *gateway) rstguard(args ...string) (stdout, stderr string, code int) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := g.gw.Command(ctx, rstguardBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		g.t.Fatalf("rstguard %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

func (g *gateway) mustRstguard(args ...string) string {
	g.t.Helper()
	out, errOut, code := g.rstguard(args...)
	if code != 0 {
		g.t.Fatalf("rstguard %v: exit %d: %s%s", args, code, out, errOut)
	}
	return out
}

// startDaemon runs `rstguard run` on both gateway interfaces (and extra ones)
// and waits until status shows them attached.
func (g *gateway) startDaemon(mode string, extraIfaces ...string) {
	g.t.Helper()
	ifaces := append([]string{lab.ClientSide, lab.ServerSide}, extraIfaces...)
	g.logs = &bytes.Buffer{}
	args := append([]string{"run", "-i", strings.Join(ifaces, ","),
		"--pin-dir", g.pinDir, "--events", g.events, "--pcap", g.pcap,
		"--metrics", "127.0.0.1:19742", "--host", "gw-test", "--flow-table-size", "4096"}, g.runArgs...)
	if mode != "" { // "": the pinned policy's
		args = append(args, "--mode", mode)
	}
	if g.ready == nil {
		ready, err := lab.NewNotify()
		if err != nil {
			g.t.Fatal(err)
		}
		g.ready = ready
		g.t.Cleanup(func() { ready.Close() })
	}
	g.daemon = g.gw.Command(context.Background(), rstguardBin, args...)
	g.daemon.Env = append(os.Environ(), g.ready.Env())
	g.daemon.Stdout, g.daemon.Stderr = g.logs, g.logs
	if g.stdout != nil {
		g.daemon.Stdout = g.stdout
	}
	if err := g.daemon.Start(); err != nil {
		g.t.Fatal(err)
	}
	if err := g.ready.Wait("READY=1", 10*time.Second); err != nil {
		g.t.Fatalf("%v; daemon log:\n%s", err, g.logs.String())
	}
	// The log comes through a pipe and may trail READY: wait for its last
	// line before READY, so that what it said at start can be read.
	g.waitFor("the daemon's start logged", func() bool { return strings.Contains(g.logs.String(), "msg=running") })
}

func (g *gateway) stopDaemon(sig syscall.Signal) {
	if g.daemon == nil || g.daemon.Process == nil {
		return
	}
	g.daemon.Process.Signal(sig)
	g.daemon.Wait()
	g.daemon = nil
}

func (g *gateway) status() statusReport {
	out, errOut, code := g.rstguard("status", "--json", "--interval", "0", "--pin-dir", g.pinDir)
	if code != 0 {
		g.t.Fatalf("status: exit %d %s", code, errOut)
	}
	var st statusReport
	var members map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &st); err != nil || json.Unmarshal([]byte(out), &members) != nil {
		g.t.Fatalf("status JSON %q: %v", out, err)
	}
	// The settings, each read back from its key as set reads a value.
	var p dataplane.Policy
	for _, s := range dataplane.Settings {
		v, ok := members[s.Key()]
		if err := s.Set(&p, strings.Trim(string(v), `"`)); !ok || err != nil {
			g.t.Fatalf("status JSON: %s = %s: %v", s.Key(), v, err)
		}
	}
	st.policy = &p
	return st
}

func (g *gateway) waitFor(what string, cond func() bool) {
	g.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			logs := ""
			if g.logs != nil {
				logs = g.logs.String()
			}
			events, _ := os.ReadFile(g.events)
			st, _, _ := g.rstguard("status", "--json", "--interval", "0", "--pin-dir", g.pinDir)
			g.t.Fatalf("timed out waiting for %s; daemon log:\n%s\nevents:\n%s\nstatus: %s", what, logs, events, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// metrics scrapes the daemon's metrics from the gateway as Prometheus would
// and parses them with Prometheus's own parser.
func (g *gateway) metrics(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	out := g.scrape(t, "/metrics")
	families, err := parser.TextToMetricFamilies(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("parse metrics: %v\n%s", err, out)
	}
	return families
}

// scrape fetches a path of the daemon's metrics endpoint from the gateway.
func (g *gateway) scrape(t *testing.T, path string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := g.gw.Command(ctx, "curl", "-sS", "-f", "http://127.0.0.1:19742"+path).Output()
	if err != nil {
		t.Fatalf("curl %s: %v", path, err)
	}
	return out
}

// curl fetches the server's page from the client, as the incident did.
func (g *gateway) curl() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := g.client.Command(ctx, "curl", "-sS", "-m", "5", "http://"+g.srvIP.String()+"/").CombinedOutput()
	return string(out), err
}

// heldConn is a TCP connection from the client to the server kept open.
type heldConn struct {
	c    net.Conn
	port uint16
}

func (g *gateway) hold() *heldConn {
	g.t.Helper()
	var c net.Conn
	if err := g.client.Do(func() (err error) {
		c, err = net.DialTimeout("tcp", netip.AddrPortFrom(g.srvIP, 80).String(), 3*time.Second)
		return err
	}); err != nil {
		g.t.Fatal(err)
	}
	h := &heldConn{c: c, port: uint16(c.LocalAddr().(*net.TCPAddr).Port)}
	g.t.Cleanup(func() { c.Close() })
	if err := h.roundTrip(); err != nil {
		g.t.Fatal(err)
	}
	return h
}

// roundTrip sends one HTTP request on the held connection and reads the answer.
func (h *heldConn) roundTrip() error {
	h.c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(h.c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(h.c), nil)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// flowOf finds the held connection in `rstguard flows`.
func (g *gateway) flowOf(h *heldConn) (dataplane.Flow, bool) {
	out := g.mustRstguard("flows", "--json", "--port", fmt.Sprint(h.port), "--pin-dir", g.pinDir)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var f dataplane.Flow
		if json.Unmarshal([]byte(line), &f) == nil && f.Client.Port() == h.port {
			return f, true
		}
	}
	return dataplane.Flow{}, false
}

// sendClientRST sends, from the client's namespace, a RST toward the server
// in the held connection's name with the exact sequence number, shaped by
// shape (the sender's TTL, IP-ID, DF).
func (g *gateway) sendClientRST(h *heldConn, shape func(f dataplane.Flow, s *frames.Segment)) {
	g.t.Helper()
	f, ok := g.flowOf(h)
	if !ok {
		g.t.Fatal("held connection not in the flow table")
	}
	g.sendFrames([][]byte{clientRST(f, shape)}, 0)
}

// clientRST is a RST toward the server in the flow's client's name with the
// exact sequence number, shaped by shape.
func clientRST(f dataplane.Flow, shape func(f dataplane.Flow, s *frames.Segment)) []byte {
	seg := frames.Segment{Src: f.Client, Dst: f.Server, Seq: f.ClientSide.NextSeq, Flags: tcpflag.RST}
	shape(f, &seg)
	return seg.MustFrame()
}

// sendFrames sends frames from the client's namespace, gap apart.
func (g *gateway) sendFrames(fs [][]byte, gap time.Duration) {
	g.t.Helper()
	if err := g.client.Do(func() error {
		s, err := inject.NewRawSender()
		if err != nil {
			return err
		}
		defer s.Close()
		for _, f := range fs {
			if err := s.SendFrame(f); err != nil {
				return err
			}
			time.Sleep(gap)
		}
		return nil
	}); err != nil {
		g.t.Fatal(err)
	}
}

// sendOnClientLink sends whole Ethernet frames out of the client's link to
// the gateway (an AF_PACKET socket), gap apart: their L2 header, tags and
// all, is the sender's own, as an injector on the client's segment sends
// them. The frames' destination MAC becomes the gateway's.
func (g *gateway) sendOnClientLink(fs [][]byte, gap time.Duration) {
	g.t.Helper()
	g.sendOnLink(g.client, lab.ServerSide, g.gw, lab.ClientSide, false, fs, gap)
}

// sendToClient sends a frame out of the gateway's client-side port to the
// client, as an injector between the two would: the gateway's program never
// sees it.
func (g *gateway) sendToClient(frame []byte) {
	g.t.Helper()
	g.sendOnLink(g.gw, lab.ClientSide, g.client, lab.ServerSide, true, [][]byte{frame}, 0)
}

// sendOnLink sends frames out of from's interface fromIf through an
// AF_PACKET socket, gap apart, each to the MAC of to's interface toIf; with
// ownMAC, from the sending interface's MAC too.
func (g *gateway) sendOnLink(from *lab.Host, fromIf string, to *lab.Host, toIf string, ownMAC bool, fs [][]byte, gap time.Duration) {
	g.t.Helper()
	link, err := from.Netlink().LinkByName(fromIf)
	if err != nil {
		g.t.Fatal(err)
	}
	peer, err := to.Netlink().LinkByName(toIf)
	if err != nil {
		g.t.Fatal(err)
	}
	if err := from.Do(func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		sa := &unix.SockaddrLinklayer{Ifindex: link.Attrs().Index, Halen: 6}
		for _, f := range fs {
			copy(f[0:6], peer.Attrs().HardwareAddr)
			if ownMAC {
				copy(f[6:12], link.Attrs().HardwareAddr)
			}
			err := unix.Sendto(fd, f, 0, sa)
			for errors.Is(err, unix.ENOBUFS) { // the link's queue is full: as fast as it takes
				time.Sleep(20 * time.Microsecond)
				err = unix.Sendto(fd, f, 0, sa)
			}
			if err != nil {
				return err
			}
			time.Sleep(gap)
		}
		return nil
	}); err != nil {
		g.t.Fatal(err)
	}
}

// forgeClientRST is the incident's packet: the exact sequence number but an
// injector's TTL and IP-ID.
func (g *gateway) forgeClientRST(h *heldConn) {
	g.t.Helper()
	g.sendClientRST(h, func(_ dataplane.Flow, s *frames.Segment) { s.TTL, s.IPID = 40, 4242 })
}

func (g *gateway) records() []map[string]any {
	data, _ := os.ReadFile(g.events)
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// policyChanges are the event log's policy changes: the latest "from -> to"
// of each setting.
func (g *gateway) policyChanges() map[string]string {
	out := map[string]string{}
	for _, r := range g.records() {
		if p, ok := r["policy"].(map[string]any); ok && r["kind"] == "policy_change" {
			out[p["setting"].(string)] = fmt.Sprintf("%s -> %s", p["from"], p["to"])
		}
	}
	return out
}

func (g *gateway) countRecords(kind, verdict string) int {
	n := 0
	for _, r := range g.records() {
		if r["kind"] == kind && r["verdict"] == verdict {
			n++
		}
	}
	return n
}

func TestGatewayDaemon(t *testing.T) {
	g := newGateway(t)
	g.startDaemon("monitor")

	t.Run("a second daemon on the same maps is refused", func(t *testing.T) {
		_, errOut, code := g.rstguard("run", "-i", lab.ClientSide, "--pin-dir", g.pinDir, "--events", "-", "--metrics", "",
			"--flow-table-size", "4096")
		if code != exitFailure || !strings.Contains(errOut, "a daemon (rstguard run) is using --pin-dir "+g.pinDir) {
			t.Errorf("exit %d: %s", code, errOut)
		}
	})

	t.Run("traffic flows and is tracked", func(t *testing.T) {
		if out, err := g.curl(); err != nil || !strings.Contains(out, "hello") {
			t.Fatalf("curl through the gateway: %v %s", err, out)
		}
		st := g.status()
		if st.mode() != "monitor" || st.FlowsTracked == 0 {
			t.Errorf("status %+v", st)
		}
		for _, s := range st.Interfaces {
			if s.Mode != "native" {
				t.Errorf("%s attached in %q mode, want native on veth", s.Ifname, s.Mode)
			}
		}
		h := g.hold()
		f, ok := g.flowOf(h)
		if !ok || f.State.String() != "established" || f.Midstream || f.ClientSide.TTL != 64 || f.ServerSide.TTL != 64 {
			t.Errorf("flow %+v", f)
		}
		if d := f.ClientSide.LastData; d <= 0 || d > time.Minute {
			t.Errorf("client's last data %v ago", d)
		}
	})

	t.Run("monitor mode reports a forged RST and lets it through", func(t *testing.T) {
		h := g.hold()
		before := g.countRecords("rst", "spoofed")
		g.forgeClientRST(h)
		g.waitFor("spoofed event", func() bool { return g.countRecords("rst", "spoofed") == before+1 })
		// The server obeyed the forgery: the connection is dead.
		if err := h.roundTrip(); err == nil {
			t.Error("connection survived a forged RST in monitor mode")
		}
		for _, r := range g.records() {
			if r["verdict"] == "spoofed" && (r["host"] != "gw-test" || r["iface"] != lab.ClientSide) {
				t.Errorf("event lacks host or iface: %v", r)
			}
		}
	})

	t.Run("set mode drop stops the next one", func(t *testing.T) {
		if out := g.mustRstguard("set", "mode", "drop", "--pin-dir", g.pinDir); !strings.Contains(out, "drop") {
			t.Errorf("set mode: %s", out)
		}
		h := g.hold()
		spoofed, confirmed := g.countRecords("rst", "spoofed"), g.countRecords("data_after_rst", "spoofed")
		drops := g.status().Counters.Actions["drop"]
		g.forgeClientRST(h)
		g.waitFor("spoofed event", func() bool { return g.countRecords("rst", "spoofed") == spoofed+1 })
		if err := h.roundTrip(); err != nil {
			t.Errorf("connection died although the forged RST was dropped: %v", err)
		}
		// The real client keeps talking: the RST is confirmed forged.
		g.waitFor("confirmation", func() bool { return g.countRecords("data_after_rst", "spoofed") > confirmed })
		if st := g.status(); st.Counters.Actions["drop"] != drops+1 || st.mode() != "drop" {
			t.Errorf("status after drop: %+v", st)
		}
		g.waitFor("the change in the event log", func() bool { return g.policyChanges()["mode"] == "monitor -> drop" })
	})

	t.Run("set allow and ttl-tolerance at run time, each in the event log", func(t *testing.T) {
		client := g.chain.Addr("client").String()
		g.mustRstguard("set", "allow", client+"/32,192.0.2.0/24", "--pin-dir", g.pinDir)
		h := g.hold()
		spoofed := g.countRecords("rst", "spoofed")
		g.forgeClientRST(h)
		g.waitFor("spoofed event", func() bool { return g.countRecords("rst", "spoofed") == spoofed+1 })
		if err := h.roundTrip(); err == nil {
			t.Error("a RST from an allowed address was dropped")
		}
		g.mustRstguard("set", "allow", "none", "--pin-dir", g.pinDir)
		g.mustRstguard("set", "ttl-tolerance", "5", "--pin-dir", g.pinDir)
		g.waitFor("the changes in the event log", func() bool {
			c := g.policyChanges()
			return c["allow"] == client+"/32,192.0.2.0/24 -> none" && c["ttl-tolerance"] == "2 -> 5"
		})
		if st := g.status(); st.policy.TTLTolerance != 5 || len(st.Allow) != 0 {
			t.Errorf("status: ttl tolerance %d, allow %v", st.policy.TTLTolerance, st.Allow)
		}
		if _, errOut, code := g.rstguard("set", "ttl-tolerance", "300", "--pin-dir", g.pinDir); code != exitUsage || !strings.Contains(errOut, "300") {
			t.Errorf("set ttl-tolerance 300: exit %d %q", code, errOut)
		}
		g.mustRstguard("set", "ttl-tolerance", "2", "--pin-dir", g.pinDir)
	})

	t.Run("set changes every setting the daemon reads at run time, within run's bounds", func(t *testing.T) {
		before := g.status()
		for _, c := range [][2]string{{"hold-max", "400ms"}, {"hold-min", "20ms"}, {"hold-frames", "77"}, {"probe-rate", "55"}, {"event-budget", "9"}} {
			g.mustRstguard("set", c[0], c[1], "--pin-dir", g.pinDir)
		}
		if st := g.status(); st.policy.HoldMax.String() != "400ms" || st.policy.HoldMin.String() != "20ms" || st.policy.HoldFrames != 77 || st.policy.ProbeRate != 55 || st.policy.EventBudget != 9 {
			t.Errorf("status after set: hold %s-%s, frames %d, probe rate %d, event budget %d", st.policy.HoldMin, st.policy.HoldMax, st.policy.HoldFrames, st.policy.ProbeRate, st.policy.EventBudget)
		}
		g.waitFor("the changes in the event log", func() bool {
			c := g.policyChanges()
			return c["hold-max"] == before.policy.HoldMax.String()+" -> 400ms" && c["hold-frames"] == fmt.Sprint(before.policy.HoldFrames)+" -> 77" &&
				c["event-budget"] != ""
		})
		for _, bad := range [][2]string{{"hold-max", "20s"}, {"hold-min", "500ms"}, {"hold-frames", "0"}, {"event-budget", "x"}} {
			if _, errOut, code := g.rstguard("set", bad[0], bad[1], "--pin-dir", g.pinDir); code == 0 || !strings.Contains(errOut, bad[0]) {
				t.Errorf("set %s %s: exit %d %q, want refused naming the setting", bad[0], bad[1], code, errOut)
			}
		}
		if st := g.status(); st.policy.HoldMax.String() != "400ms" || st.policy.HoldMin.String() != "20ms" {
			t.Errorf("a refused set changed the policy: hold %s-%s", st.policy.HoldMin, st.policy.HoldMax)
		}
		for _, c := range [][2]string{{"hold-min", before.policy.HoldMin.String()}, {"hold-max", before.policy.HoldMax.String()}, {"hold-frames", fmt.Sprint(before.policy.HoldFrames)},
			{"probe-rate", fmt.Sprint(before.policy.ProbeRate)}, {"event-budget", fmt.Sprint(before.policy.EventBudget)}} {
			g.mustRstguard("set", c[0], c[1], "--pin-dir", g.pinDir)
		}
	})

	t.Run("events, flows and report commands", func(t *testing.T) {
		out := g.mustRstguard("events", "--file", g.events)
		if !strings.Contains(out, "spoofed") || !strings.Contains(out, "CONFIRMED FORGED") {
			t.Errorf("events:\n%s", out)
		}
		out = g.mustRstguard("report", "--file", g.events)
		if want := fmt.Sprintf("%d spoofed", g.countRecords("rst", "spoofed")); !strings.Contains(out, want) || !strings.Contains(out, "injector") {
			t.Errorf("report, want %q:\n%s", want, out)
		}
		out = g.mustRstguard("flows", "--pin-dir", g.pinDir, "--addr", g.srvIP.String())
		if !strings.Contains(out, "established") || !strings.Contains(out, "spoofed") {
			t.Errorf("flows:\n%s", out)
		}
		subnet := netip.PrefixFrom(g.srvIP, 24).Masked().String()
		count := func(out string) string { return out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:] } // "N flow(s)"
		if all, some := g.mustRstguard("flows", "--pin-dir", g.pinDir), g.mustRstguard("flows", "--pin-dir", g.pinDir, "--addr", "192.0.2.0/24,"+subnet); count(all) != count(some) {
			t.Errorf("flows --addr %s lists other flows than all:\n%s\n%s", subnet, some, all)
		}
		if out := g.mustRstguard("flows", "--pin-dir", g.pinDir, "--addr", "192.0.2.0/24"); !strings.HasSuffix(out, "0 flow(s)\n") {
			t.Errorf("flows --addr 192.0.2.0/24:\n%s", out)
		}
	})

	t.Run("status names the daemon; --check is OK; top shows each interface", func(t *testing.T) {
		st := g.status()
		if d := st.Daemon; d == nil || d.PID == 0 || d.Events != g.events || !strings.HasPrefix(d.Version, "rstguard ") || len(st.Warnings) != 0 {
			t.Errorf("status: daemon %+v, warnings %q", st.Daemon, st.Warnings)
		}
		// Lists are lists when empty, and durations have numbers beside them.
		raw := map[string]any{}
		if err := json.Unmarshal([]byte(g.mustRstguard("status", "--json", "--interval", "0", "--pin-dir", g.pinDir)), &raw); err != nil {
			t.Fatal(err)
		}
		if allow, ok := raw["allow"].([]any); !ok || len(allow) != 0 {
			t.Errorf(`status --json "allow" = %#v, want []`, raw["allow"])
		}
		for _, key := range []string{"hold_min_seconds", "hold_max_seconds", "interval_seconds", "uptime_seconds"} {
			if _, ok := raw[key].(float64); !ok {
				t.Errorf("status --json %q = %#v, want a number", key, raw[key])
			}
		}
		out, _, code := g.rstguard("status", "--check", "--pin-dir", g.pinDir, "--interval", "100ms")
		if code != nagiosOK || !strings.HasPrefix(out, "RSTGUARD OK - ") || !strings.Contains(out, "| flows=") {
			t.Errorf("status --check: exit %d %q", code, out)
		}
		out = g.mustRstguard("top", "--pin-dir", g.pinDir, "--interval", "100ms", "--count", "2", "--per-cpu")
		for _, want := range []string{lab.ClientSide, lab.ServerSide, "total", "cpu0", "PACKETS/S", "mode " + st.mode() + " ", "health OK\n"} {
			if strings.Count(out, want) != 2 {
				t.Errorf("top: %q not in each of 2 frames:\n%s", want, out)
			}
		}
		g.topQuitsOnQ(t)
	})

	t.Run("metrics parse with Prometheus's parser", func(t *testing.T) {
		families := g.metrics(t)
		v := families["rstguard_rst_verdicts_total"]
		if v == nil {
			t.Fatalf("no verdict metric in %v", families)
		}
		spoofed, scraped := float64(g.status().Counters.Verdicts["spoofed"]), 0.0
		for _, m := range v.Metric {
			labels := map[string]string{}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["host"] != "gw-test" {
				t.Errorf("metric without host label: %v", labels)
			}
			if labels["verdict"] == "spoofed" {
				scraped += m.GetCounter().GetValue() // summed over interfaces
			}
		}
		if scraped != spoofed || spoofed == 0 {
			t.Errorf("spoofed = %v, status says %v", scraped, spoofed)
		}
		if families["rstguard_attached"] == nil || families["rstguard_flows_tracked"] == nil {
			t.Error("attach state or flow gauge missing")
		}
		// Each interface has its own packets; the build, the mode and the
		// process are there; /healthz says the program is attached.
		ifaces := map[string]bool{}
		for _, m := range families["rstguard_packets_total"].GetMetric() {
			for _, l := range m.Label {
				if l.GetName() == "iface" && m.GetCounter().GetValue() > 0 {
					ifaces[l.GetValue()] = true
				}
			}
		}
		if !ifaces[lab.ClientSide] || !ifaces[lab.ServerSide] {
			t.Errorf("packets by interface: %v", ifaces)
		}
		for _, name := range []string{"rstguard_build_info", "rstguard_mode", "rstguard_confirmed_forged_by_action_total",
			"process_resident_memory_bytes", "go_goroutines"} {
			if families[name] == nil {
				t.Errorf("no %s", name)
			}
		}
		for name := range metricNamesIn(t) {
			if families[name] == nil {
				t.Errorf("contrib/ alerts or dashboard query %s, which the daemon does not export", name)
			}
		}
		if out := g.scrape(t, "/healthz"); string(out) != "ok\n" {
			t.Errorf("/healthz: %q", out)
		}
		if _, err := exec.LookPath("promtool"); err == nil {
			cmd := exec.Command("promtool", "check", "metrics")
			cmd.Stdin = bytes.NewReader(g.scrape(t, "/metrics"))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("promtool check metrics: %v\n%s", err, out)
			}
		}
	})

	t.Run("evidence pcap opens in tcpdump and lists the forged RSTs", func(t *testing.T) {
		out, err := exec.Command("tcpdump", "-nn", "-r", g.pcap).CombinedOutput()
		if err != nil {
			t.Fatalf("tcpdump -r: %v\n%s", err, out)
		}
		// Every spoofed RST in the event log is in the evidence, and so is
		// every collateral reset that followed one.
		want := g.countRecords("rst", "spoofed") + g.countRecords("collateral_reset", "valid")
		if n := strings.Count(string(out), "Flags [R]"); n != want || n == 0 {
			t.Errorf("%d RSTs in the evidence, want %d:\n%s", n, want, out)
		}
		out, err = exec.Command("tshark", "-r", g.pcap, "-Y", "tcp.flags.reset == 1").Output()
		if err != nil {
			t.Fatalf("tshark -r: %v\n%s", err, out)
		}
		if n := len(strings.Split(strings.TrimSpace(string(out)), "\n")); n != want {
			t.Errorf("tshark lists %d RSTs, want %d:\n%s", n, want, out)
		}
		if fi, _ := os.Stat(g.pcap); fi.Mode().Perm() != 0o600 {
			t.Errorf("evidence mode %v", fi.Mode().Perm())
		}
		// What followed the forged RSTs is there too: the packets that proved
		// them forged, the flow's next packets, the victim's collateral reset.
		comments, err := exec.Command("tshark", "-r", g.pcap, "-T", "fields", "-e", "frame.comment").Output()
		for _, kind := range []string{"data_after_rst", "context", "collateral_reset"} {
			if err != nil || !strings.Contains(string(comments), "rstguard "+kind+" ") {
				t.Errorf("no %s frame in the evidence (%v):\n%s", kind, err, comments)
			}
		}
		// Each spoofed RST's event names its frame, whose comment carries
		// the verdict: the analyst finds it from either side.
		for _, r := range g.records() {
			if r["kind"] != "rst" || r["verdict"] != "spoofed" {
				continue
			}
			frame, _ := r["frame"].(float64)
			if r["file"] != g.pcap || frame < 1 {
				t.Errorf("spoofed RST event without its evidence frame: file %v frame %v", r["file"], r["frame"])
				continue
			}
			out, err := exec.Command("tshark", "-r", g.pcap, "-Y", fmt.Sprintf("frame.number == %d", int(frame)),
				"-T", "fields", "-e", "tcp.seq_raw", "-e", "frame.comment").Output()
			fields := strings.Split(strings.TrimSpace(string(out)), "\t")
			if err != nil || len(fields) != 2 || fields[0] != fmt.Sprint(int64(r["seq"].(float64))) || !strings.Contains(fields[1], "spoofed score") {
				t.Errorf("frame %d: %q %v, event seq %v", int(frame), out, err, r["seq"])
			}
		}
	})

	t.Run("a restart keeps the flow table", func(t *testing.T) {
		h := g.hold()
		before, ok := g.flowOf(h)
		if !ok {
			t.Fatal("held flow missing")
		}
		g.stopDaemon(syscall.SIGTERM)
		if st := g.status(); len(st.Interfaces) != 0 {
			t.Errorf("still attached after SIGTERM: %+v", st.Interfaces)
		}
		g.startDaemon("drop")
		after, ok := g.flowOf(h)
		if !ok || after.ClientSide.TTL != before.ClientSide.TTL || after.Midstream {
			t.Errorf("flow after restart: %+v (before %+v)", after, before)
		}
		if err := h.roundTrip(); err != nil {
			t.Error(err)
		}
	})

	t.Run("an interface deleted and re-added is re-attached", func(t *testing.T) {
		g.stopDaemon(syscall.SIGTERM)
		addVeth(t, g.gw, "extra0")
		g.startDaemon("drop", "extra0")
		link, _ := g.gw.Netlink().LinkByName("extra0")
		if err := g.gw.Netlink().LinkDel(link); err != nil {
			t.Fatal(err)
		}
		g.waitFor("removal logged", func() bool { return strings.Contains(g.logs.String(), "change=removed") })
		addVeth(t, g.gw, "extra0")
		g.waitFor("re-attached", func() bool {
			for _, s := range g.status().Interfaces {
				if s.Ifname == "extra0" {
					return true
				}
			}
			return false
		})
	})

	t.Run("kill -9 leaves traffic flowing and detach cleans up", func(t *testing.T) {
		g.stopDaemon(syscall.SIGKILL)
		if out, err := g.curl(); err != nil || !strings.Contains(out, "hello") {
			t.Fatalf("curl after kill -9: %v %s", err, out)
		}
		// Still attached, still in drop mode, judging from the maps alone.
		h := g.hold()
		g.forgeClientRST(h)
		if err := h.roundTrip(); err != nil {
			t.Errorf("forged RST not dropped by the orphaned program: %v", err)
		}
		st := g.status()
		if len(st.Interfaces) == 0 {
			t.Fatal("program gone after kill -9")
		}
		if st.Daemon != nil || len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "no daemon reads its events") {
			t.Errorf("status after kill -9: daemon %+v, warnings %q", st.Daemon, st.Warnings)
		}
		if out, _, code := g.rstguard("status", "--check", "--pin-dir", g.pinDir, "--interval", "0"); code != nagiosWarning ||
			!strings.HasPrefix(out, "RSTGUARD WARNING - attached, but no daemon reads its events") {
			t.Errorf("status --check after kill -9: exit %d %q", code, out)
		}
		g.mustRstguard("detach", "--all", "--pin-dir", g.pinDir)
		if st := g.status(); len(st.Interfaces) != 0 {
			t.Errorf("still attached after detach: %+v", st.Interfaces)
		}
		if out, _, code := g.rstguard("status", "--check", "--pin-dir", g.pinDir, "--interval", "0"); code != nagiosCritical ||
			!strings.HasPrefix(out, "RSTGUARD CRITICAL - not attached") {
			t.Errorf("status --check after detach: exit %d %q", code, out)
		}
		if out, err := g.curl(); err != nil || !strings.Contains(out, "hello") {
			t.Fatalf("curl after detach: %v %s", err, out)
		}
	})

	t.Run("an L3 device (tun) is refused: no Ethernet header, nothing could be judged", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if out, err := g.gw.Command(ctx, "ip", "tuntap", "add", "dev", "tun9", "mode", "tun").CombinedOutput(); err != nil {
			t.Fatalf("ip tuntap: %v %s", err, out)
		}
		_, errOut, code := g.rstguard("attach", "-i", "tun9", "--pin-dir", g.pinDir, "--flow-table-size", "4096")
		if code == 0 || !strings.Contains(errOut, "tun9 (link type none) has no Ethernet header") {
			t.Errorf("attach -i tun9: exit %d %q", code, errOut)
		}
		if l, err := g.gw.Netlink().LinkByName("tun9"); err != nil || l.Attrs().Xdp != nil && l.Attrs().Xdp.Attached {
			t.Errorf("tun9 carries a program: %v", err)
		}
	})

	t.Run("attach without a daemon keeps the pinned policy, in generic mode too", func(t *testing.T) {
		out := g.mustRstguard("attach", "-i", lab.ClientSide+","+lab.ServerSide, "--pin-dir", g.pinDir,
			"--flow-table-size", "4096", "--xdp-mode", "generic")
		if strings.Count(out, "mode drop") != 2 || !strings.Contains(out, "kept from the pinned policy (an earlier run or rstguard set): mode=drop") {
			t.Errorf("attach: %s", out)
		}
		h := g.hold()
		g.forgeClientRST(h)
		if err := h.roundTrip(); err != nil {
			t.Errorf("forged RST not dropped by the daemonless program: %v", err)
		}
		st := g.status()
		if len(st.Interfaces) != 2 || st.mode() != "drop" || st.Counters.Actions["drop"] < 1 {
			t.Errorf("status: %+v", st)
		}
		for _, s := range st.Interfaces {
			if s.Mode != "generic" {
				t.Errorf("%s in %q mode, want generic", s.Ifname, s.Mode)
			}
		}
		g.mustRstguard("detach", "--all", "--pin-dir", g.pinDir)
	})
}

// events --follow starts at the end and follows the log as tail -F does:
// through an append, a rename by logrotate and a copytruncate.
func TestEventsFollow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	line := func(seq int) string {
		return fmt.Sprintf(`{"time":"2026-11-26T09:24:37Z","kind":"rst","src":"192.0.2.10:40000","dst":"198.51.100.80:80","flags":"R","seq":%d,"ack":0,"ttl":55,"ip_id":1,"window":0,"verdict":"spoofed","signals":["ttl_off"],"action":"drop","score":4,"expected":{"ttl":61,"peer_window":0,"ip_id_model":"per_flow"}}`+"\n", seq)
	}
	os.WriteFile(path, []byte(line(1)), 0o600)
	ctx, stop := context.WithCancel(context.Background())
	out := &lab.Output{}
	done := make(chan int)
	go func() {
		done <- run([]string{"events", "--follow", "--file", path}, &env{stdout: out, stderr: out, ctx: ctx})
	}()
	waitFor := func(seq int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(out.String(), fmt.Sprintf("seq %d ", seq)) {
			if time.Now().After(deadline) {
				t.Fatalf("seq %d never followed:\n%s", seq, out.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	appendLine := func(seq int) {
		f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
		f.WriteString(line(seq))
		f.Close()
	}
	time.Sleep(300 * time.Millisecond) // let it reach the end
	appendLine(2)
	waitFor(2)
	os.Rename(path, path+".1") // logrotate's rename, then the daemon's reopen
	appendLine(3)
	waitFor(3)
	os.Truncate(path, 0) // copytruncate
	// Seen as the file shrinking under the reader (as tail -F sees it): a
	// truncation refilled to the same length between two polls goes unseen.
	time.Sleep(400 * time.Millisecond)
	appendLine(4)
	waitFor(4)
	stop()
	if code := <-done; code != exitInterrupted {
		t.Errorf("exit %d, want %d (interrupted)", code, exitInterrupted)
	}
	if strings.Contains(out.String(), "seq 1 ") {
		t.Errorf("--follow printed what was there before it started:\n%s", out.String())
	}
}

// events and report take the same filters: verdict, kind, CIDR, time.
func TestEventFilters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	var log strings.Builder
	for i, r := range []struct{ at, src, verdict, kind string }{
		{"2026-11-26T09:00:00Z", "192.0.2.10:40000", "spoofed", "rst"},
		{"2026-11-26T10:00:00Z", "198.51.100.7:40001", "valid", "rst"},
		{"2026-11-26T11:00:00Z", "192.0.2.99:40002", "spoofed", "data_after_rst"},
	} {
		fmt.Fprintf(&log, `{"time":%q,"kind":%q,"src":%q,"dst":"203.0.113.80:80","flags":"R","seq":%d,"ack":0,"ttl":55,"ip_id":1,"window":0,"verdict":%q,"signals":[],"action":"pass","score":0,"expected":{"peer_window":0,"ip_id_model":"unknown"}}`+"\n",
			r.at, r.kind, r.src, i+1, r.verdict)
	}
	os.WriteFile(path, []byte(log.String()), 0o600)
	for _, tc := range []struct {
		args []string
		seqs string
	}{
		{nil, "1 2 3"},
		{[]string{"--verdict", "spoofed"}, "1 3"},
		{[]string{"--kind", "rst"}, "1 2"},
		{[]string{"--addr", "192.0.2.0/24"}, "1 3"},
		{[]string{"--addr", "198.51.100.7,203.0.113.0/24"}, "1 2 3"},
		{[]string{"--since", "2026-11-26T09:30:00Z", "--until", "2026-11-26T11:00:00Z"}, "2"},
		{[]string{"--verdict", "spoofed", "--kind", "rst", "--last", "5"}, "1"},
	} {
		code, out, errOut := runCLI(append([]string{"events", "--json", "--file", path}, tc.args...)...)
		var seqs []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			var r struct{ Seq int }
			if json.Unmarshal([]byte(l), &r) == nil && r.Seq > 0 {
				seqs = append(seqs, fmt.Sprint(r.Seq))
			}
		}
		if code != exitOK || strings.Join(seqs, " ") != tc.seqs {
			t.Errorf("events %v: exit %d %s, seqs %v, want %s", tc.args, code, errOut, seqs, tc.seqs)
		}
	}
	code, out, _ := runCLI("report", "--json", "--file", path, "--verdict", "spoofed")
	if code != exitOK || !strings.Contains(out, `"events":2`) {
		t.Errorf("report --verdict spoofed: %d %s", code, out)
	}
	for _, bad := range [][]string{{"--verdict", "evil"}, {"--addr", "10.0.0.0/33"}, {"--since", "yesterday"}} {
		if code, _, errOut := runCLI(append([]string{"events", "--file", path}, bad...)...); code != exitUsage || !strings.Contains(errOut, bad[1]) {
			t.Errorf("events %v: exit %d %q", bad, code, errOut)
		}
	}
	// A wrong value lists the right ones; days count as a duration.
	if code, _, errOut := runCLI("events", "--file", path, "--verdict", "forged"); code != exitUsage ||
		!strings.Contains(errOut, "use one of unknown, valid, suspect, spoofed") {
		t.Errorf("events --verdict forged: exit %d %q", code, errOut)
	}
	if code, out, errOut := runCLI("report", "--json", "--file", path, "--since", "36500d"); code != exitOK || !strings.Contains(out, `"events":`) {
		t.Errorf("report --since 36500d: exit %d %q %q", code, out, errOut)
	}
}

// A log cut mid-line (a full disk, a crash) still reads: events and report
// each say how many lines they skipped.
func TestLogCommandsCountUnreadableLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	whole := `{"time":"2026-11-26T09:00:00Z","kind":"rst","src":"192.0.2.10:40000","dst":"203.0.113.80:80","flags":"R","seq":1,"ack":0,"ttl":55,"ip_id":1,"window":0,"verdict":"spoofed","signals":[],"action":"pass","score":0,"expected":{"peer_window":0,"ip_id_model":"unknown"}}`
	os.WriteFile(path, []byte(whole+"\n"+whole[:40]+"\n"+whole+"\n"), 0o600)
	for _, cmd := range []string{"events", "report"} {
		code, out, errOut := runCLI(cmd, "--json", "--file", path)
		if code != exitOK || !strings.Contains(errOut, "rstguard "+cmd+": 1 unreadable line(s) skipped") {
			t.Errorf("%s: exit %d, stderr %q", cmd, code, errOut)
		}
		if cmd == "report" && !strings.Contains(out, `"events":2`) {
			t.Errorf("report counted other than the 2 whole lines: %s", out)
		}
	}
}

func addVeth(t *testing.T, h *lab.Host, name string) {
	t.Helper()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}
	if err := h.Netlink().LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{name, name + "p"} {
		l, err := h.Netlink().LinkByName(n)
		if err != nil {
			t.Fatal(err)
		}
		h.Netlink().LinkSetUp(l)
	}
}

func TestWrongInterfaceExitsTwo(t *testing.T) {
	testutil.RequireRoot(t, "namespaces, BPF")
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	code := run([]string{"run", "-i", "nosuch0", "--pin-dir", "/sys/fs/bpf/rstguard-test-none",
		"--events", filepath.Join(dir, "e"), "--metrics", ""}, &env{stdout: &out, stderr: &errOut, ctx: context.Background()})
	if code != exitFailure || !strings.Contains(errOut.String(), "nosuch0: no such interface") {
		t.Errorf("exit %d, stderr %q", code, errOut.String())
	}
	for _, bad := range [][]string{{"--mode", "explode"}, {"--xdp-mode", "turbo"}, {"--allow", "10.0.0.0/33"}} {
		errOut.Reset()
		code = run(append([]string{"run", "-i", "lo"}, bad...), &env{stdout: &out, stderr: &errOut, ctx: context.Background()})
		if code != exitUsage || !strings.Contains(errOut.String(), bad[1]) {
			t.Errorf("run %v: exit %d, stderr %q", bad, code, errOut.String())
		}
	}
	code = run([]string{"detach", "-i", "nosuch0"}, &env{stdout: &out, stderr: &errOut, ctx: context.Background()})
	if code != exitFailure {
		t.Errorf("detach of a missing interface: exit %d", code)
	}
}

// Without the capabilities it needs, rstguard says which are missing.
func TestMissingCapabilitiesNamed(t *testing.T) {
	testutil.RequireRoot(t, "drop capabilities")
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv (util-linux) not installed")
	}
	out, err := exec.Command("setpriv", "--bounding-set=-bpf,-sys_admin,-net_admin", "--inh-caps=-all",
		rstguardBin, "analyze", "../../testdata/seed-client-side.pcap").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitFailure ||
		!strings.Contains(string(out), "missing CAP_BPF, CAP_NET_ADMIN") {
		t.Errorf("exit %v: %s", err, out)
	}
}

func TestConfigFile(t *testing.T) {
	cfg := resolvedConfig(t, `{"interfaces": ["eth9"], "mode": "drop", "allow": ["10.0.0.0/8"], "xdp_mode": "generic"}`, "--mode", "monitor")
	path := filepath.Join(t.TempDir(), "rstguard.json")
	pol := dataplane.DefaultPolicy()
	pol.Mode = dataplane.ModeDrop
	cfg.Policy(&pol)
	if pol.Mode != dataplane.ModeMonitor || cfg.Interfaces[0] != "eth9" || cfg.XDPMode.String() != "generic" || len(cfg.Allow) != 1 {
		t.Errorf("merged config %+v", cfg)
	}
	os.WriteFile(path, []byte(`{"mode": "explode"}`), 0o600)
	merged, _ := withConfigFile(newTestFlagSet(), defaultSettings(), path)
	merged.Interfaces = []string{"eth0"}
	if _, err := merged.resolve(); err == nil || !strings.Contains(err.Error(), "explode") {
		t.Errorf("bad mode in config: %v", err)
	}
	os.WriteFile(path, []byte(`{"mode":"drop"}{"mode":"monitor"}`), 0o600)
	if _, err := withConfigFile(newTestFlagSet(), defaultSettings(), path); err == nil || !strings.Contains(err.Error(), "trailing data") {
		t.Errorf("two objects in a config file: %v", err)
	}
	fs := newTestFlagSet()
	daemonFlags(fs, &merged)
	if err := fs.Parse([]string{"--flow-table-size", "0"}); err == nil {
		t.Error("--flow-table-size 0 accepted")
	}
	os.WriteFile(path, []byte(`{"moed": "drop"}`), 0o600)
	if _, err := withConfigFile(newTestFlagSet(), defaultSettings(), path); err == nil || !strings.Contains(err.Error(), "moed") {
		t.Errorf("unknown key in config: %v", err)
	}
	// Each mistake says where it is, line:column, and which setting, in
	// JSON's terms; run --test checks a file and exits 1 on a mistake (a
	// usage error: systemd does not restart into it), 0 when it is right.
	for _, tc := range []struct{ file, want string }{
		{"{\n  \"interfaces\": [\"lo\"],\n  \"hold_max\": 250\n}", `:3:18: setting "hold_max": number where a duration such as "250ms" belongs`},
		{"{\n  \"interfaces\": [\"lo\"],\n  \"moed\": \"drop\"\n}", `:3:3: unknown setting "moed"`},
		{"{\n  \"mode\": \"drop\",\n}", `:3:1: invalid character '}'`},
	} {
		os.WriteFile(path, []byte(tc.file), 0o600)
		code, _, errOut := runCLI("run", "--config", path, "--test")
		if code != exitUsage || !strings.Contains(errOut, path+tc.want) {
			t.Errorf("run --config --test on %q: exit %d %q, want %q", tc.file, code, errOut, tc.want)
		}
	}
	os.WriteFile(path, []byte(`{"interfaces": ["lo"], "mode": "drop", "hold_max": "200ms"}`), 0o600)
	if code, out, errOut := runCLI("run", "--config", path, "--test"); code != exitOK ||
		!strings.Contains(out, "configuration OK: ") || !strings.Contains(out, " hold_max=200ms ") || !strings.Contains(out, " mode=drop ") {
		t.Errorf("run --config --test on a right file: exit %d %q %q", code, out, errOut)
	}
}

func newTestFlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// resolvedConfig is what run makes of a config file and flags over it: the
// daemon's configuration.
func resolvedConfig(t *testing.T, config string, args ...string) daemon.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rstguard.json")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := newTestFlagSet()
	s := defaultSettings()
	daemonFlags(fs, &s)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	merged, err := withConfigFile(fs, s, path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := merged.resolve()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// A flag given twice accumulates: -i eth0 -i eth1 watches both.
func TestRepeatedFlagsAccumulate(t *testing.T) {
	fs := newTestFlagSet()
	s := defaultSettings()
	daemonFlags(fs, &s)
	if err := fs.Parse([]string{"-i", "eth0", "-i", "eth1,eth2", "--zone", "eth0=1", "--zone", "eth1.100=2", "--allow", "10.0.0.0/8", "--allow", "192.0.2.1"}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(s.Interfaces, " ") != "eth0 eth1 eth2" || len(s.Zones) != 2 || len(s.Allow) != 2 {
		t.Errorf("interfaces %v zones %v allow %v", s.Interfaces, s.Zones, s.Allow)
	}
	if err := fs.Parse([]string{"--zone", "eth0.9999=1"}); err == nil {
		t.Error("a bad zone was accepted")
	}
}

// topQuitsOnQ runs top on a pseudo-terminal, as an operator does, types q
// and wants it gone within a few redraws.
func (g *gateway) topQuitsOnQ(t *testing.T) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := g.gw.Command(ctx, rstguardBin, "top", "--pin-dir", g.pinDir, "--interval", "100ms")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, master) // the frames it draws
	time.Sleep(300 * time.Millisecond)
	master.Write([]byte("q"))
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("top after q: %v", err)
		}
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		t.Error("top ignored q")
	}
}
