package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/rstguard/rstguard/control/logfile"
	"github.com/rstguard/rstguard/control/report"
	"github.com/rstguard/rstguard/dataplane"
)

// policyPoll is how often the daemon looks for run-time changes to log
// (rstguard set writes the pinned maps directly, daemon or not).
const policyPoll = time.Second

// Settings names each run-time setting as the flags do, with its value.
func Settings(p dataplane.Policy, allow []netip.Prefix) map[string]string {
	prefixes := make([]string, len(allow))
	for i, a := range allow {
		prefixes[i] = a.String()
	}
	slices.Sort(prefixes)
	list := strings.Join(prefixes, ",")
	if list == "" {
		list = "none"
	}
	out := map[string]string{"allow": list}
	for _, s := range dataplane.Settings {
		out[s.Name] = s.Get(p)
	}
	return out
}

// ReadSettings reads the run-time settings from the pinned maps.
func ReadSettings(dp *dataplane.Dataplane) (map[string]string, error) {
	p, err := dp.Policy()
	if err != nil {
		return nil, err
	}
	allow, err := dp.Allow()
	if err != nil {
		return nil, err
	}
	return Settings(p, allow), nil
}

// KeptFromPins lists, as key=value, the settings of the policy in force
// that a fresh start with the same settings given (apply) would not have:
// those the run did not give and kept from the pins (an earlier run's, or
// rstguard set's). "" when there are none. Said, so that no run inherits a
// mode in silence.
func KeptFromPins(inForce dataplane.Policy, apply func(*dataplane.Policy)) string {
	fresh := dataplane.DefaultPolicy()
	apply(&fresh)
	var kept []string
	for _, c := range Changes(Settings(fresh, nil), Settings(inForce, nil)) {
		kept = append(kept, c.Setting+"="+c.To)
	}
	return strings.Join(kept, " ")
}

// Changes are the settings whose value differs, in name order.
func Changes(before, after map[string]string) []report.PolicyChange {
	names := make([]string, 0, len(after))
	for k := range after {
		names = append(names, k)
	}
	slices.Sort(names)
	var out []report.PolicyChange
	for _, k := range names {
		if before[k] != after[k] {
			out = append(out, report.PolicyChange{Setting: k, From: before[k], To: after[k]})
		}
	}
	return out
}

// RecordChanges appends a policy_change record per change to the running
// daemon's event log, as rstguard set does: the log then says what policy
// judged what followed. Each record is one append, as the daemon's are.
func RecordChanges(d State, changes []report.PolicyChange) error {
	if d.Events == "-" || d.Events == "" {
		return fmt.Errorf("the daemon writes its events to standard output")
	}
	f, err := logfile.Open(d.Events)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, c := range changes {
		line, err := json.Marshal(report.PolicyRecord(time.Now().UTC(), d.Host, c))
		if err != nil {
			return err
		}
		if _, err := f.Write(append(line, '\n')); err != nil {
			return err
		}
	}
	return nil
}

// watchPolicy logs every change of a run-time setting, whoever made it
// (rstguard set records its own in the event log).
func (d *daemon) watchPolicy(ctx context.Context) {
	last, err := ReadSettings(d.dp)
	if err != nil {
		d.log.Error("read policy", "err", err)
	}
	every(ctx, policyPoll, func(time.Time) {
		now, err := ReadSettings(d.dp)
		if err != nil {
			return
		}
		if last != nil {
			for _, c := range Changes(last, now) {
				d.log.Info("policy changed at run time", "setting", c.Setting, "from", c.From, "to", c.To)
			}
		}
		last = now
	})
}
