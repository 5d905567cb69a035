package daemon

import (
	"net"
	"os"
)

// notify tells the service manager the daemon's state, by the sd_notify
// protocol: a datagram on the unix socket $NOTIFY_SOCKET names (abstract when
// it starts with '@'). systemd's Type=notify waits for READY=1 before it
// counts the daemon started; the lab and the tests wait on it too. Without
// $NOTIFY_SOCKET it does nothing.
func notify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if path[0] == '@' {
		path = "\x00" + path[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err
}
