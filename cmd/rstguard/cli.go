package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/rstguard/rstguard/control/privilege"
)

// Exit codes: scripts rely on them.
const (
	exitOK      = 0
	exitUsage   = 1
	exitFailure = 2
)

// env is what commands touch outside themselves, so tests can run them
// in-process.
type env struct {
	stdout, stderr io.Writer
	// stop closes when the daemon should stop (SIGINT, SIGTERM; a test).
	stop <-chan struct{}
}

// command is one verb or noun of the CLI.
type command struct {
	name    string
	args    string // synopsis after the name
	summary string
	// run declares its flags on fs, parses args and does the work.
	run func(e *env, fs *flag.FlagSet, args []string) error
}

// usageError is a mistake in the command line: exit 1 with the usage.
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

func commands() []command {
	return []command{
		runCommand(),
		attachCommand(),
		detachCommand(),
		statusCommand(),
		flowsCommand(),
		eventsCommand(),
		setCommand(),
		reportCommand(),
		analyzeCommand(),
	}
}

func run(args []string, e *env) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(e.stdout, cmds)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range cmds {
		if c.name != args[0] {
			continue
		}
		fs := flag.NewFlagSet("rstguard "+c.name, flag.ContinueOnError)
		fs.SetOutput(e.stderr)
		fs.Usage = func() {
			fmt.Fprintf(fs.Output(), "usage: rstguard %s %s\n\n%s\n\nflags:\n", c.name, c.args, c.summary)
			fs.PrintDefaults()
		}
		err := c.run(e, fs, args[1:])
		var uerr usageError
		switch {
		case err == nil:
			return exitOK
		case errors.Is(err, flag.ErrHelp):
			fs.SetOutput(e.stdout)
			fs.Usage()
			return exitOK
		case errors.As(err, &uerr):
			fmt.Fprintf(e.stderr, "rstguard %s: %s\n", c.name, uerr.msg)
			fs.Usage()
			return exitUsage
		case errors.Is(err, errFlagParse):
			return exitUsage
		case errors.Is(err, errAlreadyReported):
			return exitFailure
		default:
			fmt.Fprintf(e.stderr, "rstguard %s: %v\n", c.name, err)
			return exitFailure
		}
	}
	fmt.Fprintf(e.stderr, "rstguard: unknown command %q\n\n", args[0])
	printUsage(e.stderr, cmds)
	return exitUsage
}

// errAlreadyReported: the command printed its own errors; exit 2.
var errAlreadyReported = errors.New("already reported")

// errFlagParse: the flag package already printed the problem and the usage.
var errFlagParse = errors.New("bad flags")

// parseFlags parses flags, keeping -h as flag.ErrHelp and any other failure
// as errFlagParse. Flags may follow positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errFlagParse
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func printUsage(w io.Writer, cmds []command) {
	fmt.Fprintln(w, "rstguard: stops forged TCP resets on a Linux gateway (XDP).")
	fmt.Fprintln(w, "\nusage: rstguard COMMAND [flags]   (rstguard COMMAND -h for its flags)\n\ncommands:")
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, strings.SplitN(c.summary, "\n", 2)[0])
	}
}

func newEnv() *env {
	return &env{stdout: os.Stdout, stderr: os.Stderr, stop: signalStop()}
}

// requireBPF checks for what loading and running the program needs.
func requireBPF() error {
	return privilege.Require(privilege.CapBPF, privilege.CapNetAdmin)
}
