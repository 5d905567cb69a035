package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/rstguard/rstguard/bench/lab"
)

// A host that aborts with its peer's data in flight toward it (issue 17,
// families 1 and 3), with real Linux stacks: each of the peer's segments that
// reaches it afterwards draws a stateless RST at that segment's ACK (RFC 9293
// 3.10.7.1; tcp_v4_send_reset). The aborting host was sending too, so those
// ACKs step, behind the latest the gateway saw: before the reply model that
// was seq_out_of_window + rst_burst = spoofed, dropped in drop mode. tbf
// qdiscs on the gateway hold the segments back (this kernel has no netem).
// None of the RSTs may be spoofed or dropped, and the peer must see its
// connection reset, as without rstguard.
func TestRepliesToSegmentsInFlight(t *testing.T) {
	g := newGateway(t)
	for _, dev := range []string{lab.ClientSide, lab.ServerSide} {
		if out, err := g.gw.Command(context.Background(), "tc", "qdisc", "add", "dev", dev, "root",
			"tbf", "rate", "8mbit", "burst", "16kb", "latency", "300ms").CombinedOutput(); err != nil {
			t.Fatalf("tbf on %s: %v: %s", dev, err, out)
		}
	}
	g.startDaemon("drop")

	for i, tc := range []struct {
		name         string
		serverAborts bool
	}{
		{"a client that aborts with the server's data in flight toward it", false},
		{"a server that aborts with the client's data in flight toward it", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := uint16(82 + i)
			var ln net.Listener
			if err := g.server.Do(func() (err error) {
				ln, err = net.Listen("tcp", netip.AddrPortFrom(g.srvIP, port).String())
				return err
			}); err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			accepted := make(chan net.Conn, 1)
			go func() {
				if c, err := ln.Accept(); err == nil {
					accepted <- c
				}
				close(accepted)
			}()
			var client net.Conn
			if err := g.client.Do(func() (err error) {
				client, err = net.DialTimeout("tcp", netip.AddrPortFrom(g.srvIP, port).String(), 3*time.Second)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			server := <-accepted
			if server == nil {
				t.Fatal("no connection accepted")
			}
			aborter, peer := client, server
			if tc.serverAborts {
				aborter, peer = server, client
			}
			defer peer.Close()

			// The peer streams as fast as tbf lets it and reads what comes;
			// the aborting host reads at once (so that tbf, not its window,
			// holds the peer's segments back) and sends small pieces, so that
			// the ACKs of the peer's segments step.
			peerErr := make(chan error, 1)
			go io.Copy(io.Discard, peer)
			go func() {
				peer.SetWriteDeadline(time.Now().Add(10 * time.Second))
				chunk := make([]byte, 16<<10)
				for {
					if _, err := peer.Write(chunk); err != nil {
						peerErr <- err
						return
					}
				}
			}()
			go io.Copy(io.Discard, aborter)
			for deadline := time.Now().Add(500 * time.Millisecond); time.Now().Before(deadline); {
				aborter.Write(make([]byte, 1000))
				time.Sleep(2 * time.Millisecond)
			}
			aborter.(*net.TCPConn).SetLinger(0)
			aborter.Close() // RST/ACK; the segments still queued draw stateless RSTs

			select {
			case err := <-peerErr:
				if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
					t.Errorf("peer: %v, want its connection reset", err)
				}
			case <-time.After(5 * time.Second):
				t.Error("the peer never saw the reset")
			}
			from := aborter.LocalAddr().String()
			var rsts, replies int
			waitUntil(5*time.Second, func() bool {
				rsts, replies = 0, 0
				for _, r := range g.records() {
					if (r["kind"] != "rst" && r["kind"] != "collateral_reset") || r["src"] != from {
						continue
					}
					rsts++
					if r["verdict"] == "spoofed" || r["action"] == "drop" {
						t.Errorf("a real RST judged %v, action %v: %v", r["verdict"], r["action"], r["signals"])
					}
					for _, s := range r["signals"].([]any) {
						if s == "reply" {
							replies++
						}
					}
				}
				return rsts >= 3
			})
			t.Logf("%d RSTs from %s judged, %d of them replies to its older ACKs", rsts, from, replies)
			if rsts < 3 || replies < 2 {
				for _, r := range g.records() {
					t.Logf("record %v %v>%v seq %v %v %v %v", r["kind"], r["src"], r["dst"], r["seq"], r["flags"], r["verdict"], r["signals"])
				}
				t.Error("the aborting stack answered no late segments: the test did not make the case it is about")
			}
		})
	}
}

// waitUntil polls cond for at most d.
func waitUntil(d time.Duration, cond func() bool) {
	for end := time.Now().Add(d); time.Now().Before(end) && !cond(); {
		time.Sleep(20 * time.Millisecond)
	}
}
