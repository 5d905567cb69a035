package analyze

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rstguard/rstguard/bench/frames"
	"github.com/rstguard/rstguard/bench/inject"
	"github.com/rstguard/rstguard/bench/lab"
	"github.com/rstguard/rstguard/dataplane"
	"github.com/rstguard/rstguard/internal/tcpflag"
)

// Real Linux TCP between two namespaces, over IPv4 and IPv6, captured by
// tcpdump on the server's veth and analysed: every way a real stack resets a
// connection must come out as anything but spoofed.
func TestRealStackResetsAreNotSpoofed(t *testing.T) {
	requireRoot(t)
	for _, c := range []struct {
		name           string
		client, server netip.Addr
		bits           int
	}{
		{"ipv4", netip.MustParseAddr("10.99.0.1"), netip.MustParseAddr("10.99.0.2"), 24},
		{"ipv6", netip.MustParseAddr("fd00:99::1"), netip.MustParseAddr("fd00:99::2"), 64},
	} {
		t.Run(c.name, func(t *testing.T) { realStackResets(t, c.client, c.server, c.bits) })
	}
}

func realStackResets(t *testing.T, clientIP, serverIP netip.Addr, bits int) {
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Fatal("tcpdump not installed: run make deps")
	}
	prefix := lab.UniquePrefix()
	client, err := lab.NewHost(prefix + "-c")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := lab.NewHost(prefix + "-s")
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	if err := lab.Connect(client, "eth0", netip.PrefixFrom(clientIP, bits), server, "eth0", netip.PrefixFrom(serverIP, bits)); err != nil {
		t.Fatal(err)
	}

	pcap := filepath.Join(t.TempDir(), "real.pcap")
	stopCapture := startTcpdump(t, server, pcap)

	var ln net.Listener
	if err := server.Do(func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(serverIP, 8080).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serveScenarios(ln)

	dial := func(port uint16) (c *net.TCPConn, err error) {
		err = client.Do(func() error {
			conn, err := net.DialTimeout("tcp", netip.AddrPortFrom(serverIP, port).String(), 5*time.Second)
			if err == nil {
				c = conn.(*net.TCPConn)
			}
			return err
		})
		return c, err
	}
	talk := func(name string, act func(c *net.TCPConn)) {
		c, err := dial(8080)
		if err != nil {
			t.Fatalf("%s: dial: %v", name, err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		act(c)
	}

	// A whole exchange closed with FINs.
	talk("normal", func(c *net.TCPConn) {
		io.WriteString(c, "normal\n")
		io.ReadAll(c)
	})
	// The server aborts with SO_LINGER 0: RST/ACK with window and timestamps.
	talk("server abort", func(c *net.TCPConn) {
		io.WriteString(c, "abort\n")
		io.ReadAll(c)
	})
	// The server closes with unread data: RST from the socket.
	talk("unread", func(c *net.TCPConn) {
		io.WriteString(c, "unread\n"+strings.Repeat("x", 20000))
		time.Sleep(200 * time.Millisecond)
		io.ReadAll(c)
	})
	// The client aborts mid-transfer.
	talk("client abort", func(c *net.TCPConn) {
		io.WriteString(c, "stream\n")
		buf := make([]byte, 4096)
		c.Read(buf)
		c.SetLinger(0)
	})
	// A closed port: RST/ACK to the SYN.
	if c, err := dial(9); err == nil {
		c.Close()
		t.Fatal("port 9 answered")
	}
	// A SYN scan's probe: a SYN from a raw socket with a TTL of its own, as
	// nmap's (37-59); the client's kernel resets the SYN/ACK it holds no
	// connection for, with the system's TTL.
	probe := frames.Segment{Src: netip.AddrPortFrom(clientIP, scanPort), Dst: netip.AddrPortFrom(serverIP, 8080),
		Seq: 0x5ca11ed, Flags: tcpflag.SYN, Window: 1024, TTL: 45, IPID: 31337, MSS: 1460}
	if err := client.Do(func() error {
		raw, err := inject.NewRawSender()
		if err != nil {
			return err
		}
		defer raw.Close()
		return raw.SendFrame(probe.MustFrame())
	}); err != nil {
		t.Fatalf("raw SYN: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	stopCapture()

	recs, sum, err := analyzeJSON(t, pcap)
	if err != nil {
		t.Fatal(err)
	}
	if sum.RSTs < 4 {
		t.Fatalf("only %d RSTs captured: %+v", sum.RSTs, sum)
	}
	scanned := false
	for _, r := range recs {
		t.Logf("%s rtt %v", r.Text(), r.Expected.RTT)
		if r.Verdict == dataplane.VerdictSpoofed || r.Kind != dataplane.EventRST {
			t.Errorf("real reset misjudged: %s", r.Text())
		}
		scanned = scanned || r.Src.Port() == scanPort
	}
	if !scanned {
		t.Error("the kernel's RST to the scan's SYN/ACK was not judged")
	}
	if sum.Verdicts["spoofed"] != 0 {
		t.Errorf("summary %+v", sum)
	}
}

// scanPort is the raw SYN's source port: below Linux's ephemeral range
// (ip_local_port_range, 32768-60999), so no socket of the dials above holds it.
const scanPort = 20000

// serveScenarios answers each connection by its first line.
func serveScenarios(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go func(c *net.TCPConn) {
			defer c.Close()
			line, _ := bufio.NewReader(c).ReadString('\n')
			switch strings.TrimSpace(line) {
			case "normal":
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			case "abort":
				io.WriteString(c, "partial")
				time.Sleep(50 * time.Millisecond)
				c.SetLinger(0)
			case "unread":
				time.Sleep(100 * time.Millisecond) // data keeps arriving, unread
			case "stream":
				chunk := []byte(strings.Repeat("y", 16384))
				for range 200 {
					if _, err := c.Write(chunk); err != nil {
						return
					}
				}
			}
		}(conn.(*net.TCPConn))
	}
}

// startTcpdump captures TCP on the host's eth0 into path and returns a stop
// function that waits for the file to be complete.
func startTcpdump(t *testing.T, h *lab.Host, path string) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := h.Command(ctx, "tcpdump", "-i", "eth0", "-n", "-U", "--immediate-mode", "-Z", "root", "-w", path, "tcp")
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening on") {
				close(ready)
				break
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("tcpdump did not start")
	}
	return func() {
		cancel()
		cmd.Wait()
	}
}
