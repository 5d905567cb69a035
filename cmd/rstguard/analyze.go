package main

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"time"

	"github.com/rstguard/rstguard/control/analyze"
	"github.com/rstguard/rstguard/control/capture"
	"github.com/rstguard/rstguard/control/report"
	"github.com/rstguard/rstguard/control/version"
	"github.com/rstguard/rstguard/dataplane"
)

func analyzeCommand() command {
	return command{
		name: "analyze",
		args: "[--json] [--mode monitor|drop] [--write ANNOTATED.pcapng] [--summary] FILE...",
		summary: `judge every RST in pcap/pcapng captures with the real XDP program
Every frame goes, in order, through the same program that runs inline
(BPF_PROG_TEST_RUN), with the capture's timestamps as its clock. Prints one
line (or JSON object) per judged RST and per after-the-fact confirmation,
then a summary. Reads Ethernet, raw IPv4/IPv6, Linux cooked (v1, v2) and
BSD loopback captures; FILE "-" is standard input (tcpdump -w - | rstguard
analyze -). Each line names the file and frame it came from; --write keeps
the capture with each judged frame commented, as the daemon's evidence is.
Exit 2 when a file cannot be read (the others are still analysed).`,
		run: func(e *env, fs *flag.FlagSet, args []string) error {
			asJSON := fs.Bool("json", false, "print one JSON object per line, then {\"summary\": {...}}")
			modeName := fs.String("mode", "monitor", "policy to replay: monitor (report) or drop (what drop mode would drop)")
			write := fs.String("write", "", "write the frames read to this pcapng, judged ones commented with their verdict (replaces the file)")
			summary := fs.Bool("summary", false, "then print `rstguard report` over the results (JSON: {\"report\": {...}})")
			progress := fs.Duration("progress", 5*time.Second, "report progress on standard error this often during a long run (0: never)")
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
			opts := analyze.Options{Mode: mode, JSON: *asJSON, Out: e.stdout}
			if *progress > 0 {
				opts.Progress, opts.ProgressEvery = e.stderr, *progress
			}
			var recs []report.Record
			if *summary {
				opts.Records = func(r report.Record) { recs = append(recs, r) }
			}
			if *write != "" {
				if err := os.Remove(*write); err != nil && !errors.Is(err, os.ErrNotExist) {
					return err
				}
				w, err := capture.OpenWriter(*write, capture.WriterOptions{Application: version.Get().String()})
				if err != nil {
					return err
				}
				defer w.Close()
				opts.Annotated = w
			}
			sum, ferr := analyze.Files(files, opts, e.stderr)
			if err := sum.Print(e.stdout, *asJSON); err != nil {
				return err
			}
			if *summary {
				rep := report.Summarize(recs, 10)
				if *asJSON {
					if err := json.NewEncoder(e.stdout).Encode(map[string]report.Summary{"report": rep}); err != nil {
						return err
					}
				} else {
					rep.Print(e.stdout)
				}
			}
			if ferr != nil {
				return errAlreadyReported
			}
			return nil
		},
	}
}
