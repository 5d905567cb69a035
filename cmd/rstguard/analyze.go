package main

import (
	"flag"

	"github.com/rstguard/rstguard/control/analyze"
	"github.com/rstguard/rstguard/dataplane"
)

func analyzeCommand() command {
	return command{
		name: "analyze",
		args: "[--json] [--mode monitor|drop] FILE...",
		summary: `judge every RST in pcap/pcapng captures with the real XDP program
Every frame goes, in order, through the same program that runs inline
(BPF_PROG_TEST_RUN), with the capture's timestamps as its clock. Prints one
line (or JSON object) per judged RST and per after-the-fact confirmation,
then a summary. Reads Ethernet, raw IPv4/IPv6, Linux cooked (v1, v2) and
BSD loopback captures; FILE "-" is standard input (tcpdump -w - | rstguard analyze -). Exit 2 when a file cannot be read (the others are
still analysed).`,
		run: func(e *env, fs *flag.FlagSet, args []string) error {
			asJSON := fs.Bool("json", false, "print one JSON object per line, then {\"summary\": {...}}")
			modeName := fs.String("mode", "monitor", "policy to replay: monitor (report) or drop (what drop mode would drop)")
			files, err := parseFlags(fs, args)
			if err != nil {
				return err
			}
			mode, err := dataplane.ParseMode(*modeName)
			if err != nil {
				return usagef("%v", err)
			}
			if len(files) == 0 {
				return usagef("no capture file given")
			}
			if err := requireBPF(); err != nil {
				return err
			}
			sum, ferr := analyze.Files(files, analyze.Options{Mode: mode, JSON: *asJSON, Out: e.stdout}, e.stderr)
			if err := sum.Print(e.stdout, *asJSON); err != nil {
				return err
			}
			if ferr != nil {
				return errAlreadyReported
			}
			return nil
		},
	}
}
