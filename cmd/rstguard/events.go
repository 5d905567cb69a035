package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rstguard/rstguard/control/daemon"
	"github.com/rstguard/rstguard/control/report"
)

func eventsCommand() command {
	return command{
		name:    "events",
		args:    "[--follow] [--json] [--last N] [--file PATH]",
		summary: `the judged RSTs and confirmations from the event log, newest last`,
		run: func(e *env, fs *flag.FlagSet, args []string) error {
			follow := fs.Bool("follow", false, "keep printing events as the daemon writes them")
			asJSON := fs.Bool("json", false, "print the log's JSON lines")
			last := fs.Int("last", 0, "only the last N events (0: all)")
			path := fs.String("file", daemon.DefaultEvents, "event log written by rstguard run --events")
			if err := parseNoArgs(fs, args); err != nil {
				return err
			}
			f, recs, bad, err := readEventLog(*path)
			if err != nil {
				return err
			}
			defer f.Close()
			if *last > 0 && len(recs) > *last {
				recs = recs[len(recs)-*last:]
			}
			print := func(r report.Record) error {
				if *asJSON {
					return json.NewEncoder(e.stdout).Encode(r)
				}
				_, err := fmt.Fprintln(e.stdout, r.Text())
				return err
			}
			for _, r := range recs {
				if err := print(r); err != nil {
					return err
				}
			}
			if bad > 0 {
				fmt.Fprintf(e.stderr, "rstguard events: %d unreadable line(s) skipped\n", bad)
			}
			if !*follow {
				return nil
			}
			return tail(f, e.ctx.Done(), print)
		},
	}
}

// readEventLog reads the daemon's event log and returns it open at its end,
// for following.
func readEventLog(path string) (*os.File, []report.Record, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("%w: is rstguard run writing its events elsewhere? (--file)", err)
	}
	recs, bad, err := report.ReadRecords(f)
	if err != nil {
		f.Close()
		return nil, nil, 0, err
	}
	return f, recs, bad, nil
}

// tail prints records appended to f until stop closes (Ctrl-C).
func tail(f *os.File, stop <-chan struct{}, print func(report.Record) error) error {
	rd := bufio.NewReader(f)
	var partial []byte
	for {
		line, err := rd.ReadBytes('\n')
		partial = append(partial, line...)
		if errors.Is(err, io.EOF) {
			select {
			case <-stop:
				return nil
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		if err != nil {
			return err
		}
		var r report.Record
		if json.Unmarshal(partial, &r) == nil {
			if err := print(r); err != nil {
				return err
			}
		}
		partial = partial[:0]
	}
}
