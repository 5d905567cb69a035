package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/rstguard/rstguard/control/privilege"
)

// Exit codes: scripts rely on them.
const (
	exitOK          = 0
	exitUsage       = 1
	exitFailure     = 2
	exitInterrupted = 130 // SIGINT or SIGTERM, as shells report 128 + SIGINT
)

// env is what commands touch outside themselves, so tests can run them
// in-process.
type env struct {
	stdout, stderr io.Writer
	// ctx ends on SIGINT or SIGTERM (or when a test ends it).
	ctx context.Context
	// hup receives SIGHUP, for the daemon; nil: run asks for it itself.
	hup <-chan struct{}
}

// command is one verb or noun of the CLI.
type command struct {
	name    string
	args    string // synopsis after the name
	summary string
	// run declares its flags on fs, parses args and does the work.
	run func(e *env, fs *flag.FlagSet, args []string) error
	// stops: run returns by itself soon after e.ctx ends (it has something
	// to finish, as the daemon has). Any other command is abandoned at once.
	stops bool
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
		topCommand(),
		flowsCommand(),
		eventsCommand(),
		setCommand(),
		reportCommand(),
		analyzeCommand(),
		versionCommand(),
		completionCommand(),
		manCommand(),
	}
}

func run(args []string, e *env) int {
	cmds := commands()
	if len(args) == 0 {
		printUsage(e.stderr, cmds)
		return exitUsage
	}
	switch args[0] {
	case "-h", "--help":
		printUsage(e.stdout, cmds)
		return exitOK
	case "--version":
		args = []string{"version"}
	case "help": // help [COMMAND]
		if len(args) == 1 {
			printUsage(e.stdout, cmds)
			return exitOK
		}
		args = []string{args[1], "-h"}
	}
	c, ok := findCommand(cmds, args[0])
	if !ok {
		fmt.Fprintf(e.stderr, "rstguard: unknown command %q", args[0])
		if near := nearestCommand(cmds, args[0]); near != "" {
			fmt.Fprintf(e.stderr, "; did you mean %q?", near)
		}
		fmt.Fprintln(e.stderr, " (rstguard -h lists the commands)")
		return exitUsage
	}
	fs := newFlagSet(c)
	err, interrupted := runUntilInterrupted(e, c, fs, args[1:])
	if interrupted {
		fmt.Fprintf(e.stderr, "rstguard %s: interrupted\n", c.name)
		return exitInterrupted
	}
	var uerr usageError
	var ferr flagError
	var code exitCode
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &code):
		return int(code)
	case errors.Is(err, flag.ErrHelp):
		printCommandUsage(e.stdout, c, fs)
		return exitOK
	case errors.As(err, &uerr), errors.As(err, &ferr):
		// One line and where to read more, as git and ip do: the full
		// usage would push the mistake off the screen.
		fmt.Fprintf(e.stderr, "rstguard %s: %v (rstguard %s -h for help)\n", c.name, err, c.name)
		return exitUsage
	case errors.Is(err, errAlreadyReported):
		return exitFailure
	default:
		fmt.Fprintf(e.stderr, "rstguard %s: %v\n", c.name, err)
		return exitFailure
	}
}

func findCommand(cmds []command, name string) (command, bool) {
	for _, c := range cmds {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// nearestCommand is the command a typo most likely meant: the closest by
// edit distance, if within two edits, or the only one it is a prefix of.
func nearestCommand(cmds []command, typed string) string {
	best, bestDist := "", 3
	var prefixed []string
	for _, c := range cmds {
		if d := editDistance(typed, c.name); d < bestDist {
			best, bestDist = c.name, d
		}
		if strings.HasPrefix(c.name, typed) {
			prefixed = append(prefixed, c.name)
		}
	}
	if best == "" && len(prefixed) == 1 {
		best = prefixed[0]
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// newFlagSet is c's flag set. It prints nothing itself: run reports a bad
// flag in one line and prints the usage on -h, once, on standard output.
func newFlagSet(c command) *flag.FlagSet {
	fs := flag.NewFlagSet("rstguard "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

func printCommandUsage(w io.Writer, c command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: rstguard %s %s\n\n%s\n", c.name, c.args, c.summary)
	if hasFlags(fs) {
		fmt.Fprintf(w, "\nflags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// runUntilInterrupted runs c until it returns or, for a command that does not stop by
// itself, until e.ctx ends: a command blocked in a read of a FIFO or a slow
// device must not outlive Ctrl-C.
func runUntilInterrupted(e *env, c command, fs *flag.FlagSet, args []string) (err error, interrupted bool) {
	if c.stops || e.ctx == nil {
		return c.run(e, fs, args), false
	}
	done := make(chan error, 1)
	go func() { done <- c.run(e, fs, args) }()
	select {
	case err := <-done:
		return err, e.ctx.Err() != nil
	case <-e.ctx.Done():
		return nil, true
	}
}

// errAlreadyReported: the command printed its own errors; exit 2.
var errAlreadyReported = errors.New("already reported")

// flagError is a flag the flag package refused: exit 1, in one line.
type flagError struct{ err error }

func (f flagError) Error() string { return f.err.Error() }

// parseFlags parses flags, keeping -h as flag.ErrHelp and any other failure
// as a flagError. Flags may follow positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, flagError{err}
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
	fmt.Fprintln(w, "\nusage: rstguard COMMAND [flags]   (rstguard help COMMAND, or rstguard COMMAND -h, for its flags)\n\ncommands:")
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, strings.SplitN(c.summary, "\n", 2)[0])
	}
}

// newEnv is the process's env. The first SIGINT or SIGTERM ends its
// context and gives the signals back to their default: a second one kills a
// shutdown that hangs. SIGHUP is the daemon's "reopen your files" (run asks
// for it, notifyHUP); every other command ignores it, so that a log rotation
// that signals rstguard processes never ends an operator's `events --follow`
// or `top`.
func newEnv() *env {
	signal.Ignore(syscall.SIGHUP)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	return &env{stdout: os.Stdout, stderr: os.Stderr, ctx: ctx}
}

// notifyHUP delivers SIGHUP on a channel (and so stops it from killing the
// process): the daemon's "reopen your files".
func notifyHUP() <-chan struct{} {
	sigs := make(chan os.Signal, 1)
	hup := make(chan struct{}, 1)
	signal.Notify(sigs, syscall.SIGHUP)
	go func() {
		for range sigs {
			select {
			case hup <- struct{}{}:
			default:
			}
		}
	}()
	return hup
}

// requireBPF checks for what loading and running the program needs.
func requireBPF() error {
	return privilege.Require(privilege.CapBPF, privilege.CapNetAdmin)
}

// parseNoArgs parses flags and refuses positional arguments.
func parseNoArgs(fs *flag.FlagSet, args []string) error {
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	return nil
}
