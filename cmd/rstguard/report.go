package main

import (
	"encoding/json"
	"flag"

	"github.com/rstguard/rstguard/control/report"
)

func reportCommand() command {
	return command{
		name: "report",
		args: "[--json] [--top N] " + logQueryArgs,
		summary: `a summary to act on: verdicts, signals, most attacked flows and hosts, where the injector sits
Reads the event log. For forged RSTs whose real sender's TTL is known, turns
the TTL difference into an estimate of the injector's hop distance.`,
		run: func(e *env, fs *flag.FlagSet, args []string) error {
			top := fs.Int("top", 10, "length of the top lists")
			asJSON := fs.Bool("json", false, "JSON output")
			log, err := openLog(e, fs, args)
			if err != nil {
				return err
			}
			log.file.Close()
			s := report.Summarize(log.records, *top)
			if *asJSON {
				return json.NewEncoder(e.stdout).Encode(s)
			}
			s.Print(e.stdout)
			return nil
		},
	}
}
