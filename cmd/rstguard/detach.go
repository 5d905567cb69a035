package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/rstguard/rstguard/control/attach"
	"github.com/rstguard/rstguard/control/bpffs"
	"github.com/rstguard/rstguard/control/daemon"
	"github.com/rstguard/rstguard/control/privilege"
	"github.com/rstguard/rstguard/dataplane"
)

func detachCommand() command {
	return command{
		name: "detach",
		args: "-i IFACE[,IFACE...] | --all [--purge]",
		summary: `take the program off interfaces
Also cleans up after a daemon killed with -9. A pin directory owns the
programs whose maps are its own: detach takes off those, and refuses while a
daemon uses the pin directory (stop the daemon instead). --all means every
interface that carries this pin directory's program. --purge removes the
pinned maps too (the flow table is lost).`,
		run: func(e *env, fs *flag.FlagSet, args []string) error {
			var ifaces []string
			fs.Var(listFlag{&ifaces}, "i", "interfaces, comma-separated")
			all := fs.Bool("all", false, "every interface that carries this pin directory's rstguard")
			purge := fs.Bool("purge", false, "also remove the pinned maps")
			pinDir := fs.String("pin-dir", bpffs.DefaultDir, "bpffs directory of the pinned maps")
			if err := parseNoArgs(fs, args); err != nil {
				return err
			}
			if len(ifaces) == 0 && !*all && !*purge {
				return usagef("say which interfaces: -i IFACE or --all")
			}
			if err := privilege.Require(privilege.CapNetAdmin); err != nil {
				return err
			}
			// Held for the whole change: no daemon may start on the pins
			// while they are being taken away.
			unlock, err := bpffs.Lock(*pinDir)
			switch {
			case errors.Is(err, os.ErrNotExist):
				unlock = func() {}
			case errors.Is(err, bpffs.ErrLocked):
				if d, derr := daemon.Running(*pinDir); derr == nil {
					return fmt.Errorf("%w --pin-dir %s (pid %d): stop it (systemctl stop rstguard, or kill %d); it detaches as it stops",
						bpffs.ErrLocked, *pinDir, d.PID, d.PID)
				}
				return err
			case err != nil:
				return err
			}
			defer unlock()
			flows, _ := bpffs.PinnedMapID(filepath.Join(*pinDir, dataplane.FlowsMapName)) // 0: nothing pinned
			if flows != 0 {
				if err := clearStaleHolds(e, *pinDir); err != nil {
					return err
				}
			}
			if *all {
				states, err := attach.Attached()
				if err != nil {
					return err
				}
				for _, s := range states {
					if attach.Owns(s, flows) && liveOwner(s) == "" {
						ifaces = append(ifaces, s.Ifname)
					} else {
						fmt.Fprintf(e.stdout, "left %s: it carries another pin directory's rstguard\n", s.Ifname)
					}
				}
			}
			for _, name := range ifaces {
				if st, err := attach.StateOfName(name); err == nil {
					if owner := liveOwner(st); owner != "" {
						return fmt.Errorf("%s carries the program of %s: not removing it", name, owner)
					}
				}
				if err := attach.Detach(name, flows); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "detached from %s\n", name)
			}
			// A daemon killed with -9 left its wire ports promiscuous.
			if d, ok := daemon.LeftBehind(*pinDir); ok {
				for _, name := range d.PromiscSet {
					if !slices.Contains(ifaces, name) {
						continue
					}
					if err := attach.PromiscOff(name); err != nil {
						return err
					}
					fmt.Fprintf(e.stdout, "promiscuous mode off on %s, as before the daemon turned it on\n", name)
				}
			}
			if *purge {
				if flows == 0 {
					fmt.Fprintf(e.stdout, "no pinned maps in %s\n", *pinDir)
					return nil
				}
				if err := dataplane.Unpin(*pinDir); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "removed pinned maps in %s\n", *pinDir)
			}
			return nil
		},
	}
}

// liveOwner names the running daemon whose flow table the interface's
// program uses ("the daemon (pid N) on --pin-dir P"), or "" when none does:
// a daemon's pin directory need not be under bpffs's root, where
// attach.Owns looks for owners.
func liveOwner(s attach.State) string {
	for _, d := range daemon.Live() {
		id, err := bpffs.PinnedMapID(filepath.Join(d.PinDir, dataplane.FlowsMapName))
		if err == nil && s.Uses(id) {
			return fmt.Sprintf("the daemon (rstguard run, pid %d) on --pin-dir %s", d.PID, d.PinDir)
		}
	}
	return ""
}

// clearStaleHolds removes the hold records and socket registrations that a
// daemon killed with -9 left in the pins: detach runs only while no daemon
// holds the pin directory, so nothing decides those holds any more.
func clearStaleHolds(e *env, pinDir string) error {
	dp, err := dataplane.OpenPinned(pinDir)
	if err != nil {
		return err
	}
	defer dp.Close()
	pending, proven, err := dp.Holding()
	held := pending + proven
	if err != nil {
		return err
	}
	sockets, err := dp.Sockets()
	if err != nil {
		return err
	}
	if held == 0 && len(sockets) == 0 {
		return nil
	}
	if err := dp.ClearHolds(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "cleared what a stopped daemon left: holds %d, socket registrations %d\n", held, len(sockets))
	return nil
}
