package main

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rstguard/rstguard/control/daemon"
	"github.com/rstguard/rstguard/control/report"
	"github.com/rstguard/rstguard/dataplane"
)

// logQuery is which event log to read and which of its records, by
// verdict, kind, address and time: the flags events and report share.
type logQuery struct {
	path            string
	verdicts, kinds []string
	prefixes        []netip.Prefix
	since, until    time.Time
}

// logQueryArgs is the usage of logQuery's flags.
const logQueryArgs = "[--file PATH] [--verdict V,...] [--kind K,...] [--addr CIDR,...] [--since T] [--until T]"

func (f *logQuery) flags(fs *flag.FlagSet) {
	fs.StringVar(&f.path, "file", daemon.DefaultEvents, "event log written by rstguard run --events")
	fs.Func("verdict", "only these verdicts, comma-separated ("+enumList(dataplane.Verdicts)+")", func(v string) error {
		return setNames(&f.verdicts, v, func(s string) error { var x dataplane.Verdict; return x.UnmarshalText([]byte(s)) })
	})
	fs.Func("kind", "only these kinds, comma-separated ("+enumList(dataplane.EventKinds)+")", func(v string) error {
		return setNames(&f.kinds, v, func(s string) error { var x dataplane.EventKind; return x.UnmarshalText([]byte(s)) })
	})
	fs.Func("addr", "only events with an address in these CIDRs (or addresses), on either side, comma-separated", func(v string) error {
		p, err := parsePrefixes(strings.Split(v, ","))
		f.prefixes = append(f.prefixes, p...)
		return err
	})
	fs.Func("since", "only events at or after this time: RFC 3339 (2026-11-26T09:00:00Z) or a duration ago (90m)", func(v string) error {
		t, err := parseWhen(v)
		f.since = t
		return err
	})
	fs.Func("until", "only events before this time: RFC 3339 or a duration ago", func(v string) error {
		t, err := parseWhen(v)
		f.until = t
		return err
	})
}

// enumList joins the names of an enum's values for a help text.
func enumList[T fmt.Stringer](values []T) string {
	return strings.Join(enumWords(values), ", ")
}

func setNames(dst *[]string, list string, valid func(string) error) error {
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if err := valid(s); err != nil {
			return err
		}
		*dst = append(*dst, s)
	}
	return nil
}

// parseWhen reads a time as RFC 3339, or as a duration before now.
func parseWhen(s string) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	// Days, as an operator says them (7d): Go's durations stop at hours.
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if days, err := strconv.ParseUint(n, 10, 16); err == nil {
			return time.Now().AddDate(0, 0, -int(days)), nil
		}
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration (90m, 24h, 7d)", s)
	}
	return t, nil
}

func (f logQuery) match(r report.Record) bool {
	if len(f.verdicts) > 0 && !slices.Contains(f.verdicts, r.Verdict.String()) {
		return false
	}
	if len(f.kinds) > 0 && !slices.Contains(f.kinds, r.Kind.String()) {
		return false
	}
	if !f.since.IsZero() && r.Time.Before(f.since) || !f.until.IsZero() && !r.Time.Before(f.until) {
		return false
	}
	if len(f.prefixes) > 0 && !inAny(f.prefixes, r.Src.Addr(), r.Dst.Addr()) {
		return false
	}
	return true
}

// eventLog is the event log a logQuery chose, read to its end.
type eventLog struct {
	logQuery
	// file is the log, open at its end, for following.
	file    *os.File
	records []report.Record // those that match the query
}

// openLog declares the log query's flags on fs, parses args (flags only)
// and reads the log. Lines it cannot read are skipped and counted on
// stderr: a log cut by a full disk or a crash still reads.
func openLog(e *env, fs *flag.FlagSet, args []string) (*eventLog, error) {
	var log eventLog
	log.flags(fs)
	if err := parseNoArgs(fs, args); err != nil {
		return nil, err
	}
	f, err := os.Open(log.path)
	if err != nil {
		return nil, fmt.Errorf("%w: is rstguard run writing its events elsewhere? (--file)", err)
	}
	recs, bad, err := report.ReadRecords(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	if bad > 0 {
		fmt.Fprintf(e.stderr, "%s: %d unreadable line(s) skipped\n", fs.Name(), bad)
	}
	log.file = f
	log.records = slices.DeleteFunc(recs, func(r report.Record) bool { return !log.match(r) })
	return &log, nil
}
