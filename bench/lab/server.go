package lab

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// serverThinkTime delays the site's answer (the kernel has no netem here to
// delay links instead).
const serverThinkTime = 30 * time.Millisecond

// labServer is the site in the incident: a real HTTP server (Go net/http)
// in the server's namespace, with paths that end connections the ways real
// servers do.
type labServer struct {
	srv  *http.Server
	held chan net.Conn // connections /hold keeps open
}

func startServer(h *Host, ip netip.Addr) (*labServer, error) {
	var ln net.Listener
	if err := h.Do(func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(ip, 80).String())
		return err
	}); err != nil {
		return nil, err
	}
	s := &labServer{held: make(chan net.Conn, 4)}
	mux := http.NewServeMux()
	// The page takes serverThinkTime to answer, as a distant or busy server
	// does: on real paths the injector, nearer the client, wins the race
	// with the answer; in a namespace lab it would otherwise always lose.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(serverThinkTime)
		io.WriteString(w, "the page www.testaaa.com serves\n")
	})
	// raw writes a response straight on the socket, then hands the socket
	// to then: the resets below are what net/http itself avoids.
	raw := func(response string, then func(net.Conn)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			conn, buf, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			buf.WriteString(response)
			buf.Flush()
			then(conn)
		}
	}
	// An abort: SO_LINGER 0, then close: RST/ACK from the socket.
	mux.HandleFunc("/abort", raw("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial", func(conn net.Conn) {
		time.Sleep(20 * time.Millisecond)
		conn.(*net.TCPConn).SetLinger(0)
		conn.Close()
	}))
	// An answer before the upload is read, then close: the kernel resets
	// because data is still unread. (net/http itself half-closes and waits
	// to avoid exactly this RST.)
	mux.HandleFunc("/unread", raw("HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", func(conn net.Conn) {
		time.Sleep(20 * time.Millisecond)
		conn.Close()
	}))
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		chunk := bytes.Repeat([]byte("y"), 64<<10)
		for range 800 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("/hold", raw("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n", func(conn net.Conn) { s.held <- conn }))
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

func (s *labServer) close() {
	s.srv.Close()
	close(s.held)
	for c := range s.held {
		c.Close()
	}
}

// Output collects a process's output; safe for one writer and readers at once.
type Output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *Output) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is everything written so far.
func (l *Output) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// awaitQuiet returns once nothing has been written for quiet, or after
// most.
func (l *Output) awaitQuiet(quiet, most time.Duration) {
	deadline := time.Now().Add(most)
	for n := -1; time.Now().Before(deadline); {
		l.mu.Lock()
		now := l.b.Len()
		l.mu.Unlock()
		if now == n {
			return
		}
		n = now
		time.Sleep(quiet)
	}
}

func (l *Output) lines() []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(l.String()))
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}
