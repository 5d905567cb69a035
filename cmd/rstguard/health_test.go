package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/rstguard/rstguard/bench/lab"
	"github.com/rstguard/rstguard/control/health"
)

// check runs status --check and returns its exit code and line.
func (g *gateway) check() (int, string) {
	out, _, code := g.rstguard("status", "--check", "--pin-dir", g.pinDir, "--interval", "0")
	return code, out
}

// healthOf reads the rstguard_health series: reason to level.
func (g *gateway) healthOf(t *testing.T) map[string]float64 {
	out := map[string]float64{}
	if f := g.metrics(t)["rstguard_health"]; f != nil {
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if l.GetName() == "reason" {
					out[l.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	return out
}

// A hold-mode interface whose queues grow (ethtool -L) has a queue without
// a socket: its suspect RSTs would pass unheld. The one health result says
// CRITICAL on every surface, and the daemon binds the missing socket itself.
func TestHealthHoldSocketsHeal(t *testing.T) {
	g := newGateway(t)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "multiq0", NumRxQueues: 4, NumTxQueues: 4}, PeerName: "multiq0p",
		PeerNumRxQueues: 4, PeerNumTxQueues: 4}
	if err := g.gw.Netlink().LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"multiq0", "multiq0p"} {
		l, _ := g.gw.Netlink().LinkByName(n)
		g.gw.Netlink().LinkSetUp(l)
	}
	ethtool := func(n string) {
		if out, err := g.gw.Command(t.Context(), "ethtool", "-L", "multiq0", "rx", n, "tx", n).CombinedOutput(); err != nil {
			t.Fatalf("ethtool -L: %v %s", err, out)
		}
	}
	ethtool("1")
	g.startDaemon("hold", "multiq0")
	link, _ := g.gw.Netlink().LinkByName("multiq0")
	index := link.Attrs().Index
	queuesWithSocket := func() int {
		n := 0
		for _, s := range g.status().Sockets {
			if s.Ifindex == index {
				n++
			}
		}
		return n
	}
	if code, out := g.check(); code != nagiosOK || queuesWithSocket() != 1 {
		t.Fatalf("at start: exit %d %q, %d sockets on multiq0", code, out, queuesWithSocket())
	}
	if h := g.healthOf(t); len(h) != len(health.Reasons) || h[health.HoldNoSocket] != 0 {
		t.Fatalf("rstguard_health at start: %v", h)
	}

	ethtool("3")
	g.waitFor("the missing sockets logged as CRITICAL", func() bool {
		return strings.Contains(g.logs.String(), `level=ERROR msg=health host=gw-test level=CRITICAL hold_no_socket="hold mode without an AF_XDP socket on multiq0 (2 of 3 queues)`)
	})
	g.waitFor("the daemon binds them itself, and says so", func() bool {
		return queuesWithSocket() == 3 && strings.Contains(g.logs.String(), "binding the AF_XDP sockets an interface lacks")
	})
	g.waitFor("health OK again on every surface", func() bool {
		code, _ := g.check()
		body, _ := g.gw.Command(t.Context(), "curl", "-sS", "http://127.0.0.1:19742/healthz").Output()
		return code == nagiosOK && string(body) == "ok\n" && g.healthOf(t)[health.HoldNoSocket] == 0 &&
			strings.Contains(g.logs.String(), "msg=health host=gw-test level=OK")
	})
}

// The event log and the evidence on a full filesystem: protection goes on,
// health says WARNING at once, nothing is written in part, and after space
// comes back writing resumes by itself with the loss counted.
func TestHealthFullDisk(t *testing.T) {
	g := newGateway(t)
	disk := filepath.Join(g.dir, "small")
	os.Mkdir(disk, 0o700)
	if err := syscall.Mount("tmpfs", disk, "tmpfs", 0, "size=256k"); err != nil {
		t.Fatal(err)
	}
	defer syscall.Unmount(disk, syscall.MNT_DETACH)
	g.events, g.pcap = filepath.Join(disk, "events.jsonl"), filepath.Join(disk, "evidence.pcapng")
	g.startDaemon("drop")

	h := g.hold()
	g.forgeClientRST(h)
	g.waitFor("the first forged RST logged", func() bool { return g.countRecords("rst", "spoofed") == 1 })

	filler := filepath.Join(disk, "filler")
	f, _ := os.Create(filler)
	block := make([]byte, 4096)
	for {
		if _, err := f.Write(block); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()
	// The files' last pages may still take a line or a frame: forge on
	// until a write fails.
	g.waitFor("a write failing", func() bool {
		g.forgeClientRST(h)
		time.Sleep(50 * time.Millisecond)
		return strings.Contains(g.logs.String(), "event log write failed") && strings.Contains(g.logs.String(), "evidence write failed")
	})
	failed := time.Now()
	g.waitFor("health WARNING: events_failing", func() bool {
		code, out := g.check()
		return code == nagiosWarning && strings.Contains(out, "the event log cannot be written (") && strings.Contains(out, "no space left on device")
	})
	t.Logf("status --check WARNING %v after the failure was logged", time.Since(failed).Round(10*time.Millisecond))
	if err := h.roundTrip(); err != nil {
		t.Fatalf("protection stopped with the disk full: %v", err)
	}
	if body := string(g.scrape(t, "/healthz")); !strings.HasPrefix(body, "warning: the event log cannot be written") {
		t.Errorf("/healthz %q", body)
	}
	// (The evidence may recover in between: a block cut back frees room
	// for a smaller one.)
	if lvl := g.healthOf(t); lvl[health.EventsFailing] != 1 {
		t.Errorf("rstguard_health %v, want events_failing at 1", lvl)
	}

	os.Remove(filler)
	g.waitFor("writing recovered", func() bool {
		g.forgeClientRST(h)
		return strings.Contains(g.logs.String(), "event log writing again") && strings.Contains(g.logs.String(), "evidence writing again")
	})
	g.waitFor("health OK again", func() bool { code, _ := g.check(); return code == nagiosOK })
	if err := h.roundTrip(); err != nil {
		t.Fatalf("connection killed: %v", err)
	}

	// Every line parses; the log holds exactly what the daemon counted as
	// written (once the last events are in); what it could not write is
	// counted, not silently gone.
	var written float64
	lost := map[string]float64{}
	lines := 0
	g.waitFor("the log to hold what the daemon counts as written", func() bool {
		m := g.metrics(t)
		written = m["rstguard_events_written_total"].Metric[0].GetCounter().GetValue()
		for _, s := range m["rstguard_write_lost_total"].Metric {
			for _, l := range s.Label {
				if l.GetName() == "file" {
					lost[l.GetValue()] = s.GetCounter().GetValue()
				}
			}
		}
		data, err := os.ReadFile(g.events)
		if err != nil {
			t.Fatal(err)
		}
		lines = 0
		for sc := bufio.NewScanner(bytes.NewReader(data)); sc.Scan(); lines++ {
			var rec map[string]any
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				t.Fatalf("line %d unreadable: %v: %q", lines+1, err, sc.Text())
			}
		}
		return float64(lines) == written
	})
	if lost["events"] < 1 || lost["evidence"] < 1 {
		t.Errorf("%d lines, %v written, lost %v: want the loss counted", lines, written, lost)
	}
	if out, err := g.gw.Command(t.Context(), "tshark", "-r", g.pcap, "-T", "fields", "-e", "frame.number").CombinedOutput(); err != nil {
		t.Errorf("tshark reads the evidence after the full disk: %v %s", err, out)
	}
}

// Asymmetric routing: the server's replies go back to the client over a
// link of their own, so the gateway sees only the client's half of every
// conversation and can judge little. The one health result says so (WARNING,
// one_way) on every surface, while traffic flows.
func TestHealthOneWay(t *testing.T) {
	g := newGateway(t)
	direct := netip.MustParsePrefix("10.98.0.0/24")
	if err := lab.Connect(g.client, "direct0", netip.PrefixFrom(direct.Addr().Next(), 24),
		g.server, "direct0", netip.PrefixFrom(direct.Addr().Next().Next(), 24)); err != nil {
		t.Fatal(err)
	}
	// The client takes replies from the server on the link it would not
	// send to it by (no reverse-path filter), and the server sends them
	// there.
	for _, k := range []string{"net.ipv4.conf.all.rp_filter", "net.ipv4.conf.direct0.rp_filter"} {
		if err := g.client.Sysctl(k, "0"); err != nil {
			t.Fatal(err)
		}
	}
	clientNet := netip.PrefixFrom(g.chain.Addr("client"), 24).Masked()
	_, dst, _ := net.ParseCIDR(clientNet.String())
	if err := g.server.Netlink().RouteReplace(&netlink.Route{Dst: dst, Gw: direct.Addr().Next().AsSlice()}); err != nil {
		t.Fatal(err)
	}
	g.startDaemon("drop")
	for range 30 {
		g.hold() // a connection, and a request answered over the direct link
	}
	deadline := time.Now().Add(30 * time.Second) // the daemon samples the flow table every 10 s
	code, out := g.check()
	for code != nagiosWarning && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		code, out = g.check()
	}
	if code != nagiosWarning || !strings.Contains(out, "carry data one way only") {
		t.Fatalf("status --check %d %q, want WARNING: one way", code, out)
	}
	if lvl := g.healthOf(t); lvl[health.OneWay] != 1 {
		t.Errorf("rstguard_health %v, want one_way at 1", lvl)
	}
	if body := string(g.scrape(t, "/healthz")); !strings.HasPrefix(body, "warning: ") || !strings.Contains(body, "one way only") {
		t.Errorf("/healthz %q", body)
	}
	if st := g.mustRstguard("status", "--interval", "0", "--pin-dir", g.pinDir); !strings.Contains(st, "one way only") {
		t.Errorf("status does not say so:\n%s", st)
	}
}
