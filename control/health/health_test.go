package health

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestAssess(t *testing.T) {
	now := time.Unix(1e9, 0)
	up := func(name string) Interface {
		return Interface{Name: name, Present: true, Ours: true, Queues: 2, SocketQueues: 2}
	}
	for _, c := range []struct {
		name  string
		view  View
		level Level
		codes []string // worst first
		text  string
	}{
		{"all in force", View{Mode: "hold", Daemon: true, Interfaces: []Interface{up("eth0"), up("eth1")}, TableKnown: true,
			FlowsTracked: 10, FlowTableSize: 100, TwoWayFlows: 50, OneWayFlows: 3}, OK, nil, ""},
		{"nothing attached", View{Mode: "drop"}, Critical, []string{NotAttached}, "not attached to any interface"},
		{"one interface without our program, one gone", View{Mode: "drop", Daemon: true, Interfaces: []Interface{
			up("eth0"), {Name: "eth1", Present: true}, {Name: "eth2"}}}, Critical, []string{NotAttached},
			"not attached to eth1; eth2 gone"},
		{"hold mode, a returned interface without sockets", View{Mode: "hold", Daemon: true, Interfaces: []Interface{
			up("eth0"), {Name: "eth1", Present: true, Ours: true, Queues: 2}}}, Critical, []string{HoldNoSocket},
			"eth1 (2 of 2 queues)"},
		{"sockets do not matter outside hold mode", View{Mode: "drop", Daemon: true, Interfaces: []Interface{
			{Name: "eth0", Present: true, Ours: true, Queues: 2}}}, OK, nil, ""},
		{"no daemon, stale holds", View{Mode: "hold", Interfaces: []Interface{up("eth0")}, StaleHoldRecords: 1},
			Warning, []string{NoDaemon, StaleHolds}, "no daemon reads its events"},
		{"a full disk", View{Mode: "drop", Daemon: true, Interfaces: []Interface{up("eth0")},
			EventsError: "no space left on device", EvidenceError: "no space left on device"}, Warning,
			[]string{EventsFailing, EvidenceFailing}, "the event log cannot be written (no space left on device)"},
		{"events lost and the table full, with a gateway gone", View{Mode: "drop", Daemon: true, EventsLost: 7,
			TableKnown: true, FlowsTracked: 95, FlowTableSize: 100, Interfaces: []Interface{{Name: "eth0"}}},
			Critical, []string{NotAttached, EventsLost, TableFull}, "flow table 95% full"},
		{"asymmetric routing", View{Mode: "drop", Daemon: true, Interfaces: []Interface{up("eth0")},
			OneWayFlows: 300, TwoWayFlows: 20}, Warning, []string{OneWay}, "300 of 320 sampled flows"},
		{"a few one-way flows on a quiet box are no asymmetry", View{Mode: "drop", Daemon: true,
			Interfaces: []Interface{up("eth0")}, OneWayFlows: oneWayMin - 1}, OK, nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := Assess(c.view, now)
			var codes []string
			for _, x := range r.Reasons {
				codes = append(codes, x.Code)
			}
			if r.Level != c.level || strings.Join(codes, ",") != strings.Join(c.codes, ",") || !strings.Contains(r.Text(), c.text) {
				t.Errorf("got %s %v %q, want %s %v containing %q", r.Level, codes, r.Text(), c.level, c.codes, c.text)
			}
		})
	}
}

func TestAgedAndJSON(t *testing.T) {
	at := time.Unix(1e9, 0).UTC()
	r := Assess(View{Mode: "drop", Daemon: true, Interfaces: []Interface{{Name: "eth0", Present: true, Ours: true}}}, at)
	if got := Aged(r, at.Add(StaleAfter)); got.Level != OK {
		t.Errorf("fresh result aged to %s", got.Level)
	}
	old := Aged(r, at.Add(StaleAfter+time.Second))
	if l, ok := old.Of(DaemonStalled); !ok || l != Warning || old.Level != Warning || len(r.Reasons) != 0 {
		t.Errorf("stale result %+v (original %+v)", old, r)
	}
	data, _ := json.Marshal(old)
	want := `{"level":"warning","reasons":[{"reason":"daemon_stalled","level":"warning","text":"the daemon's last health assessment is 16s old: it is not assessing"}],"at":"2001-09-09T01:46:40Z"}`
	if string(data) != want {
		t.Errorf("JSON %s\nwant %s", data, want)
	}
	var back Result
	if err := json.Unmarshal(data, &back); err != nil || !back.Same(old) {
		t.Errorf("round trip: %v %+v", err, back)
	}
}
