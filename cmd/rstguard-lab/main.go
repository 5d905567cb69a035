// Command rstguard-lab builds namespace networks with real Linux TCP, an
// on-path injector and rstguard on the gateway, and replays attacks and
// legitimate resets through them.
//
//	rstguard-lab demo     replay the incident without and with rstguard
//	rstguard-lab matrix   every injector profile and legitimate reset, every mode
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"syscall"

	"github.com/rstguard/rstguard/bench/lab"
	"github.com/rstguard/rstguard/control/privilege"
	"github.com/rstguard/rstguard/internal/cmdline"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	usage := func(w io.Writer) {
		fmt.Fprintln(w, "usage: rstguard-lab demo|matrix [flags]   (rstguard-lab COMMAND -h for flags)")
		fmt.Fprintln(w, "  demo     replay the incident: curl fails without rstguard, succeeds with it")
		fmt.Fprintln(w, "  matrix   run every injector profile and legitimate reset in each mode, write the detection matrix")
	}
	if len(args) == 0 {
		usage(stderr)
		return 1
	}
	if args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		return 0
	}
	fs := flag.NewFlagSet("rstguard-lab "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	self, _ := os.Executable()
	binDir := filepath.Dir(self)
	l := &lab.Lab{Log: stdout}
	fs.StringVar(&l.Rstguard, "rstguard", filepath.Join(binDir, "rstguard"), "rstguard binary")
	fs.StringVar(&l.Injector, "inject", filepath.Join(binDir, "rstguard-inject"), "rstguard-inject binary")
	fs.StringVar(&l.Dir, "out", "lab-output", "directory for event logs and evidence pcaps")
	matrixOut := fs.String("matrix", "docs/detection-matrix.md", "matrix: where to write the table")
	only := fs.String("only", "", "matrix: run only the cases whose name matches this regexp (and their baselines); writes no table")
	wire := fs.Bool("wire", false, "demo: the gateway as a bump in the wire (rstguard run --wire), no addresses, no hop")
	var cmd func(context.Context, *lab.Lab) (bool, error)
	switch args[0] {
	case "demo":
		cmd = func(ctx context.Context, l *lab.Lab) (bool, error) { return demo(ctx, l, *wire) }
	case "matrix":
		cmd = func(ctx context.Context, l *lab.Lab) (bool, error) {
			var re *regexp.Regexp
			if *only != "" {
				var err error
				if re, err = regexp.Compile(*only); err != nil {
					return false, fmt.Errorf("--only: %w", err)
				}
			}
			return matrix(ctx, l, *matrixOut, re)
		}
	default:
		fmt.Fprintf(stderr, "rstguard-lab: unknown command %q\n", args[0])
		usage(stderr)
		return 1
	}
	if code, done := cmdline.Parse(fs, args[1:]); done {
		return code
	}
	if err := privilege.Require(privilege.CapBPF, privilege.CapNetAdmin, privilege.CapSysAdmin); err != nil {
		fmt.Fprintf(stderr, "rstguard-lab: %v\n", err)
		return 2
	}
	for _, bin := range []string{l.Rstguard, l.Injector} {
		if _, err := os.Stat(bin); err != nil {
			fmt.Fprintf(stderr, "rstguard-lab: %v: build it first (make build)\n", err)
			return 2
		}
	}
	if err := os.MkdirAll(l.Dir, 0o700); err != nil {
		fmt.Fprintf(stderr, "rstguard-lab: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ok, err := cmd(ctx, l)
	if err != nil {
		fmt.Fprintf(stderr, "rstguard-lab %s: %v\n", args[0], err)
		return 2
	}
	if !ok {
		return 1
	}
	return 0
}
