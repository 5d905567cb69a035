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

	"github.com/rstguard/rstguard/control/report"
)

func eventsCommand() command {
	return command{
		name: "events",
		args: "[--follow] [--json] [--last N] " + logQueryArgs,
		summary: `the judged RSTs and confirmations from the event log, newest last
--follow starts at the end (after the --last N) and follows the log as
tail -F does, across logrotate's renames and copytruncate.`,
		run: func(e *env, fs *flag.FlagSet, args []string) error {
			follow := fs.Bool("follow", false, "print new events as the daemon writes them, from the end of the log")
			asJSON := fs.Bool("json", false, "print the log's JSON lines")
			last := fs.Int("last", 0, "only the last N events (0: all; with --follow, none)")
			log, err := openLog(e, fs, args)
			if err != nil {
				return err
			}
			defer log.file.Close()
			recs := log.records
			switch {
			case *last > 0 && len(recs) > *last:
				recs = recs[len(recs)-*last:]
			case *follow && *last == 0:
				recs = nil
			}
			print := func(r report.Record) error {
				if !log.match(r) {
					return nil
				}
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
			if !*follow {
				return nil
			}
			return tail(log.path, log.file, e.ctx.Done(), print)
		},
	}
}

// tail prints records appended to the log at path, read from f, until stop
// closes (Ctrl-C). As tail -F: when logrotate renames the log, it finishes
// the old file and goes on with the new one at path; when copytruncate
// empties it, it starts again at its beginning.
func tail(path string, f *os.File, stop <-chan struct{}, print func(report.Record) error) error {
	defer func() { f.Close() }() // the file read last
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
			if next, reset := reopened(path, f); next != nil {
				f.Close()
				f, partial = next, partial[:0]
				rd.Reset(f)
			} else if reset {
				f.Seek(0, io.SeekStart)
				rd.Reset(f)
				partial = partial[:0]
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

// reopened says whether the log was rotated away from f (next is the new
// file at path) or truncated under it (reset).
func reopened(path string, f *os.File) (next *os.File, reset bool) {
	cur, err := f.Stat()
	if err != nil {
		return nil, false
	}
	now, err := os.Stat(path)
	if err == nil && !os.SameFile(cur, now) {
		if next, err := os.Open(path); err == nil {
			return next, false
		}
		return nil, false
	}
	pos, err := f.Seek(0, io.SeekCurrent)
	return nil, err == nil && cur.Size() < pos
}
