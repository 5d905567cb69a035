package main

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/rstguard/rstguard/bench/lab"
	"github.com/rstguard/rstguard/control/report"
	"github.com/rstguard/rstguard/dataplane"
)

// A legitimate reset in hold mode may have later RSTs that joined its hold
// and were dropped with it: as many as the released hold counted are not a
// reset lost; one more, or a hold decided forged, is.
func TestJudgeLegitJoiners(t *testing.T) {
	client, server := netip.MustParseAddrPort("10.99.0.1:39394"), netip.MustParseAddrPort("10.99.1.2:80")
	rst := func(a dataplane.Action) report.Record {
		return report.Record{Kind: dataplane.EventRST, Src: client, Dst: server, Verdict: dataplane.VerdictValid, Action: a}
	}
	hold := func(a dataplane.Action, joined int) report.Record {
		r := rst(a)
		r.Kind, r.Hold = dataplane.EventHold, &dataplane.HoldResult{Outcome: dataplane.HoldAnsweredRST, Frames: joined + 1, Joined: joined}
		return r
	}
	c := lab.Case{Name: "legit-client-abort", Mode: "hold"}
	off := lab.Outcome{Exit: 28}
	for _, tc := range []struct {
		name    string
		records []report.Record
		met     bool
		note    string
	}{
		{"no joiners", []report.Record{rst(dataplane.ActionHold), hold(dataplane.ActionPass, 0)}, true, ""},
		{"two joiners of a released hold", []report.Record{rst(dataplane.ActionHold), rst(dataplane.ActionDrop),
			rst(dataplane.ActionDrop), hold(dataplane.ActionPass, 2)}, true, "2 later RSTs joined a hold"},
		{"a drop beyond the hold's joiners", []report.Record{rst(dataplane.ActionHold), rst(dataplane.ActionDrop),
			rst(dataplane.ActionDrop), hold(dataplane.ActionPass, 1)}, false, ""},
		{"a hold decided forged", []report.Record{rst(dataplane.ActionHold), rst(dataplane.ActionDrop),
			hold(dataplane.ActionDrop, 1)}, false, ""},
	} {
		r := judgeLegit(c, lab.Outcome{Exit: 28, Records: tc.records}, off, "doc")
		if r.met != tc.met {
			t.Errorf("%s: met %v, want %v (%s)", tc.name, r.met, tc.met, r.comment)
		}
		if tc.met && strings.Contains(r.comment, "joined") != (tc.note != "") || !strings.Contains(r.comment, tc.note) {
			t.Errorf("%s: notes %q, want %q", tc.name, r.comment, tc.note)
		}
	}
}
