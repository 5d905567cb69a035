// Package privilege checks, before any work starts, that the process holds
// the capabilities rstguard needs, and names the missing ones.
package privilege

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Capability numbers from linux/capability.h.
const (
	CapNetAdmin = 12 // attach XDP, load XDP programs, netlink link changes
	CapNetRaw   = 13 // AF_XDP sockets (hold mode)
	CapSysAdmin = 21 // mount bpffs; also stands in for CAP_BPF on old kernels
	CapBPF      = 39 // load programs, create maps
)

var capNames = map[int]string{CapNetAdmin: "CAP_NET_ADMIN", CapNetRaw: "CAP_NET_RAW", CapSysAdmin: "CAP_SYS_ADMIN", CapBPF: "CAP_BPF"}

// Name is a capability's name as capabilities(7) and systemd units spell it.
func Name(c int) string { return capNames[c] }

// Require returns an error naming every capability in caps that the
// process's effective set lacks. CAP_SYS_ADMIN satisfies CAP_BPF.
func Require(caps ...int) error {
	eff, err := effective()
	if err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	var missing []string
	for _, c := range caps {
		has := eff&(1<<c) != 0
		if c == CapBPF && eff&(1<<CapSysAdmin) != 0 {
			has = true
		}
		if !has {
			missing = append(missing, capNames[c])
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s: run as root or grant them (setcap %s+ep)",
			strings.Join(missing, ", "), strings.ToLower(strings.Join(missing, ",")))
	}
	return nil
}

func effective() (uint64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, fmt.Errorf("no CapEff in /proc/self/status")
}
