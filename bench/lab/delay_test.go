package lab

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rstguard/rstguard/internal/testutil"
)

// The delay line is the lab's long leg: a TCP handshake through it takes its
// RTT, and a whole HTTP exchange (ARP, handshake, data both ways, close)
// crosses it unharmed.
func TestDelayedChain(t *testing.T) {
	testutil.RequireRoot(t, "namespaces")
	const oneWay = 10 * time.Millisecond
	chain, err := NewDelayedChain(UniquePrefix(), []time.Duration{oneWay}, "client", "gw", "server")
	if err != nil {
		t.Fatal(err)
	}
	defer chain.Close()
	srv, err := startServer(chain.Host("server"), chain.Addr("server"))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.close()

	var dialed time.Duration
	var body string
	if err := chain.Host("client").Do(func() error {
		// The first dial resolves the gateway's MAC across the line too.
		for range 2 {
			start := time.Now()
			c, err := net.DialTimeout("tcp", netip.AddrPortFrom(chain.Addr("server"), 80).String(), 3*time.Second)
			if err != nil {
				return err
			}
			dialed = time.Since(start)
			c.Close()
		}
		// A request by hand: net/http would dial on another thread, outside
		// the namespace.
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(chain.Addr("server"), 80).String(), 3*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET /big HTTP/1.1\r\nHost: server\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		b := make([]byte, 4<<20) // enough for many windows' worth
		_, err = io.ReadFull(resp.Body, b)
		body = string(b)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if dialed < 2*oneWay || dialed > 2*oneWay+15*time.Millisecond {
		t.Errorf("handshake took %v through a %v line, want its RTT %v", dialed, oneWay, 2*oneWay)
	}
	if strings.Trim(body, "y") != "" {
		t.Errorf("download through the line: %d bytes, %q...", len(body), body[:min(len(body), 40)])
	}
}
