package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/rstguard/rstguard/control/attach"
	"github.com/rstguard/rstguard/control/bpffs"
	"github.com/rstguard/rstguard/control/privilege"
	"github.com/rstguard/rstguard/dataplane"
)

func detachCommand() command {
	return command{
		name: "detach",
		args: "-i IFACE[,IFACE...] | --all [--purge]",
		summary: `take the program off interfaces
Also cleans up after a daemon killed with -9. --purge removes the pinned
maps too (the flow table is lost).`,
		run: func(e *env, fs *flag.FlagSet, args []string) error {
			var ifaces []string
			fs.Var(listFlag{&ifaces}, "i", "interfaces, comma-separated")
			all := fs.Bool("all", false, "every interface that carries rstguard")
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
			if *all {
				states, err := attach.Attached()
				if err != nil {
					return err
				}
				for _, s := range states {
					ifaces = append(ifaces, s.Ifname)
				}
			}
			for _, name := range ifaces {
				if err := attach.Detach(name); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "detached from %s\n", name)
			}
			if *purge {
				unlock, err := bpffs.Lock(*pinDir)
				if errors.Is(err, os.ErrNotExist) {
					fmt.Fprintf(e.stdout, "no pinned maps in %s\n", *pinDir)
					return nil
				}
				if err != nil {
					return err
				}
				defer unlock()
				if err := dataplane.Unpin(*pinDir); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "removed pinned maps in %s\n", *pinDir)
			}
			return nil
		},
	}
}
