package lab

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Notify is a service manager's end of the sd_notify protocol: a daemon
// started with Env() in its environment reports its state here (READY=1
// once it judges traffic, RELOADING=1 and READY=1 around a SIGHUP).
type Notify struct {
	conn *net.UnixConn
	dir  string
}

// NewNotify opens a notify socket in a directory of its own.
func NewNotify() (*Notify, error) {
	dir, err := os.MkdirTemp("", "rstguard-notify")
	if err != nil {
		return nil, err
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "notify"), Net: "unixgram"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &Notify{conn: conn, dir: dir}, nil
}

// Env is the environment entry that points a daemon at this socket.
func (n *Notify) Env() string { return "NOTIFY_SOCKET=" + filepath.Join(n.dir, "notify") }

// ErrNotNotified means the daemon did not report the state in time.
var ErrNotNotified = errors.New("no notification")

// Wait reads the daemon's notifications until one holds the line want, or
// the timeout passes.
func (n *Notify) Wait(want string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 4096)
	for {
		n.conn.SetReadDeadline(deadline)
		k, err := n.conn.Read(buf)
		if err != nil {
			return fmt.Errorf("%w of %s within %v: %v", ErrNotNotified, want, timeout, err)
		}
		for _, line := range strings.Split(string(buf[:k]), "\n") {
			if line == want {
				return nil
			}
		}
	}
}

// Close removes the socket.
func (n *Notify) Close() error {
	n.conn.Close()
	return os.RemoveAll(n.dir)
}
