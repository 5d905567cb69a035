package main

import (
	"flag"
	"fmt"
	"net/netip"
	"strings"

	"github.com/rstguard/rstguard/control/bpffs"
	"github.com/rstguard/rstguard/control/daemon"
	"github.com/rstguard/rstguard/dataplane"
)

func setCommand() command {
	return command{
		name: "set",
		args: setArgs(),
		summary: `change the policy at run time, without reattaching
Writes the pinned maps: the next packet sees the change, daemon or not. Each
change goes to the running daemon's event log (kind policy_change, from and
to) and its log. allow replaces the allow-list (none empties it). Every
setting the daemon reads at run time is here, with run's bounds: the hold
window (0 < hold-min <= hold-max <= 10s) applies to the next hold.`,
		run: func(e *env, fs *flag.FlagSet, args []string) error {
			pinDir := fs.String("pin-dir", bpffs.DefaultDir, "bpffs directory of the pinned maps")
			rest, err := parseFlags(fs, args)
			if err != nil {
				return err
			}
			if len(rest) != 2 {
				return usagef("want: set SETTING VALUE, SETTING one of %s", strings.Join(settable, ", "))
			}
			change, err := settingChange(rest[0], rest[1])
			if err != nil {
				return usagef("%v", err)
			}
			dp, err := dataplane.OpenPinned(*pinDir)
			if err != nil {
				return err
			}
			defer dp.Close()
			before, err := daemon.ReadSettings(dp)
			if err != nil {
				return err
			}
			if err := change(dp); err != nil {
				return err
			}
			after, err := daemon.ReadSettings(dp)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s %s\n", rest[0], rest[1])
			changes := daemon.Changes(before, after)
			d, err := daemon.Running(*pinDir)
			if err == nil {
				err = daemon.RecordChanges(d, changes)
			}
			if err != nil && len(changes) > 0 {
				fmt.Fprintf(e.stderr, "rstguard set: the change is in force, but not in an event log: %v\n", err)
			}
			return nil
		},
	}
}

// settingChange checks a setting and its value and returns what applies it.
func settingChange(setting, value string) (func(*dataplane.Dataplane) error, error) {
	if s, ok := dataplane.SettingNamed(setting); ok {
		// Read now, so that a value that cannot be one is a usage error;
		// its bounds (Policy.Check) are checked against the policy in force.
		if err := s.Set(&dataplane.Policy{}, value); err != nil {
			return nil, err
		}
		return func(dp *dataplane.Dataplane) error {
			_, err := dp.UpdatePolicy(func(p *dataplane.Policy) { s.Set(p, value) })
			return err
		}, nil
	}
	switch setting {
	case "allow":
		var prefixes []netip.Prefix
		if value != "none" {
			var err error
			if prefixes, err = parsePrefixes(strings.Split(value, ",")); err != nil {
				return nil, fmt.Errorf("allow: %w", err)
			}
		}
		return func(dp *dataplane.Dataplane) error { return dp.SetAllow(prefixes) }, nil
	}
	return nil, fmt.Errorf("unknown setting %q: use %s", setting, strings.Join(settable, ", "))
}

// settable are the settings set changes: every one the daemon and the
// program read at run time, the policy's and the allow-list.
var settable = append(settingNames(), "allow")

// setArgs is set's usage: each setting with the shape of its value.
func setArgs() string {
	var forms []string
	for _, s := range dataplane.Settings {
		forms = append(forms, s.Name+" "+s.Shape())
	}
	return strings.Join(append(forms, "allow CIDR[,CIDR...]|none"), " | ")
}

func settingNames() []string {
	names := make([]string, len(dataplane.Settings))
	for i, s := range dataplane.Settings {
		names[i] = s.Name
	}
	return names
}
