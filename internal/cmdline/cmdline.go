// Package cmdline is what the lab's and the bench's commands share of their
// command lines: -h prints the usage and ends the command with 0, a mistake
// prints it and ends it with 1, a usage error.
package cmdline

import (
	"errors"
	"flag"
	"fmt"
)

// NewFlagSet is a flag set named name whose usage is head, then "flags:"
// and the flags, then tail.
func NewFlagSet(name, head, tail string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\nflags:\n", head)
		fs.PrintDefaults()
		fmt.Fprint(fs.Output(), tail)
	}
	return fs
}

// Parse reads args into fs. When done, the command ends with code: 0 after
// -h, 1 after a mistake (the flag package has printed it and the usage).
func Parse(fs *flag.FlagSet, args []string) (code int, done bool) {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, flag.ErrHelp):
		return 0, true
	}
	return 1, true
}
