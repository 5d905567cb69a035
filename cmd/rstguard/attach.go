package main

import (
	"flag"
	"fmt"

	"github.com/rstguard/rstguard/control/attach"
	"github.com/rstguard/rstguard/control/daemon"
	"github.com/rstguard/rstguard/control/privilege"
)

func attachCommand() command {
	return command{
		name: "attach",
		args: "-i IFACE[,IFACE...] [--mode monitor|drop|hold] [--xdp-mode auto|native|generic] [--allow CIDR,...]",
		summary: `put the program on interfaces and exit, without a daemon
The program judges and (in drop mode) drops from its pinned maps alone; no
one reads its events until rstguard run starts (they are counted as lost).
Flags left out keep the pinned policy.`,
		run: func(e *env, fs *flag.FlagSet, args []string) error {
			s := defaultSettings()
			daemonFlags(fs, &s)
			if err := parseNoArgs(fs, args); err != nil {
				return err
			}
			fs.Visit(func(f *flag.Flag) { s.explicit[f.Name] = true })
			cfg, err := s.resolve()
			if err != nil {
				return err
			}
			if err := privilege.Require(privilege.CapBPF, privilege.CapNetAdmin, privilege.CapSysAdmin); err != nil {
				return err
			}
			ifaces := map[string]int{}
			for _, name := range cfg.Interfaces {
				link, err := attach.Link(name)
				if err != nil {
					return err
				}
				ifaces[name] = link.Attrs().Index
			}
			dp, unlock, err := daemon.LoadPinned(cfg.PinDir, cfg.FlowTableSize)
			if err != nil {
				return err
			}
			defer unlock()
			defer dp.Close()
			pol, err := dp.UpdatePolicy(cfg.Policy)
			if err != nil {
				return err
			}
			if kept := daemon.KeptFromPins(pol, cfg.Policy); kept != "" {
				fmt.Fprintf(e.stdout, "kept from the pinned policy (an earlier run or rstguard set): %s\n", kept)
			}
			if err := daemon.SetZones(dp, cfg.Zones, ifaces); err != nil {
				return err
			}
			if s.explicit["allow"] {
				if err := dp.SetAllow(cfg.Allow); err != nil {
					return err
				}
			}
			for _, name := range cfg.Interfaces {
				used, err := attach.Attach(name, dp.Program(), cfg.XDPMode, dp.FlowsMapID())
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "attached to %s (%s XDP), mode %s\n", name, used, pol.Mode)
			}
			return nil
		},
	}
}
