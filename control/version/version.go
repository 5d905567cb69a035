// Package version says which build of rstguard is running: the release (set
// at link time by the Makefile), the commit it was built from, the Go
// toolchain and the pinned-map ABI, so that a bug report, a metric and a
// pcap's section header all name the same build.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/rstguard/rstguard/dataplane"
)

// Version (git describe) and Commit are stamped by the Makefile:
// -ldflags "-X github.com/rstguard/rstguard/control/version.Version=...".
// A plain `go build` leaves "dev" and takes the commit from Go's VCS stamp.
var (
	Version = "dev"
	Commit  = ""
)

// Info is one build's identity.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"go_version"`
	BPFABI    uint32 `json:"bpf_abi"`
}

// Get reads this binary's identity. Without a stamped commit it comes from
// the VCS stamp Go embeds in builds made inside a git tree ("unknown"
// outside one, with "-dirty" when the tree had changes).
func Get() Info {
	i := Info{Version: Version, Commit: Commit, GoVersion: runtime.Version(), BPFABI: dataplane.ABI}
	if i.Commit != "" {
		return i
	}
	i.Commit = "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		var dirty bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				i.Commit = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if dirty && i.Commit != "unknown" {
			i.Commit += "-dirty"
		}
	}
	return i
}

// String is the one line `rstguard --version` prints.
func (i Info) String() string {
	return fmt.Sprintf("rstguard %s (commit %s, %s, BPF ABI %d)", i.Version, i.Commit, i.GoVersion, i.BPFABI)
}
