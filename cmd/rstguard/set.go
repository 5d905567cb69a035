package main

import (
	"flag"
	"fmt"

	"github.com/rstguard/rstguard/control/bpffs"
	"github.com/rstguard/rstguard/dataplane"
)

func setCommand() command {
	return command{
		name: "set",
		args: "mode monitor|drop|hold",
		summary: `change the policy at run time, without reattaching
Writes the pinned policy map: the next packet sees it, daemon or not.`,
		run: func(e *env, fs *flag.FlagSet, args []string) error {
			pinDir := fs.String("pin-dir", bpffs.DefaultDir, "bpffs directory of the pinned maps")
			rest, err := parseFlags(fs, args)
			if err != nil {
				return err
			}
			if len(rest) != 2 || rest[0] != "mode" {
				return usagef("want: set mode monitor|drop|hold")
			}
			mode, err := dataplane.ParseMode(rest[1])
			if err != nil {
				return usagef("%v", err)
			}
			dp, err := dataplane.OpenPinned(*pinDir)
			if err != nil {
				return err
			}
			defer dp.Close()
			if _, err := dp.UpdatePolicy(func(p *dataplane.Policy) { p.Mode = mode }); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "mode %s\n", mode)
			return nil
		},
	}
}
