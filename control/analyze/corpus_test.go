package analyze

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rstguard/rstguard/control/report"
	"github.com/rstguard/rstguard/dataplane"
)

// The real-traffic corpus (../shared/corpus beside the repository, or
// $RSTGUARD_CORPUS): public captures that hold a RST, reviewed by hand. Its
// README says how a build is scored; scoreCorpus does exactly that.
var (
	corpusTable  = flag.Bool("corpus-table", false, "print the corpus's per-capture table (make corpus)")
	updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/corpus.golden.json")
)

// The goals (issue 17): false spoofed per 1,000 RSTs judged, at most.
const maxFalseSpoofedPerMille = 1.0

type corpusLabels struct {
	Forged  []string `json:"forged"`  // "capture|src>dst": the RST's sender and receiver
	Crafted []string `json:"crafted"` // captures left out of every figure
}

// corpusScore is what the README counts, over the RSTs of captures that are
// not crafted.
type corpusScore struct {
	RSTs          int            // judged (kind rst or collateral_reset)
	FalseSpoofed  []string       // judged spoofed, flow not forged
	FalseConfirm  []string       // data_after_rst on a flow not forged
	Caught        map[string]int // forged flows judged spoofed or confirmed
	SuspectOnly   map[string]int // forged flows judged suspect, never spoofed or confirmed
	DropsOfLegit  []string       // drop mode: legitimate RSTs it dropped
	Harmless      int            // RSTs the harm model passed
	PerCapture    map[string]map[string]int
	forgedFlows   map[string]bool
	craftedByName map[string]bool
}

func corpusDir() string {
	if d := os.Getenv("RSTGUARD_CORPUS"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "..", "shared", "corpus")
}

// TestCorpus runs every capture of the corpus through the program, in
// monitor mode (the README's scoring) and in drop mode (what drop mode
// would have dropped), and fails on a missed goal or a changed verdict. It
// does so twice: on the captures' exact timestamps, and as a live gateway
// would, whose data path reads a coarse clock (xdp/bpf/packet.h) that ticks
// every 4 ms (HZ=250, Debian's kernels). The verdicts must not depend on it.
func TestCorpus(t *testing.T) {
	for _, tick := range []time.Duration{0, 4 * time.Millisecond} {
		name := "exact clock"
		if tick != 0 {
			name = fmt.Sprintf("coarse clock, %s tick", tick)
		}
		t.Run(name, func(t *testing.T) { scoreCorpus(t, tick) })
	}
}

func scoreCorpus(t *testing.T, tick time.Duration) {
	requireRoot(t)
	dir := corpusDir()
	raw, err := os.ReadFile(filepath.Join(dir, "labels.json"))
	if os.IsNotExist(err) {
		t.Skipf("no corpus at %s (set RSTGUARD_CORPUS): not scored", dir)
	}
	if err != nil {
		t.Fatal(err)
	}
	var labels corpusLabels
	if err := json.Unmarshal(raw, &labels); err != nil {
		t.Fatalf("labels.json: %v", err)
	}
	paths, err := filepath.Glob(filepath.Join(dir, "captures", "*"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no captures in %s: %v", dir, err)
	}
	slices.Sort(paths)

	score := corpusScore{Caught: map[string]int{}, SuspectOnly: map[string]int{},
		PerCapture: map[string]map[string]int{}, forgedFlows: map[string]bool{}, craftedByName: map[string]bool{}}
	for _, f := range labels.Forged {
		score.forgedFlows[f] = true
	}
	for _, c := range labels.Crafted {
		score.craftedByName[c] = true
	}
	// Unreadable captures are part of the corpus (garbage in, a clear error
	// out): their error is not a failure of the scoring.
	run := func(mode dataplane.Mode, each func(report.Record)) {
		if _, err := Files(paths, Options{Mode: mode, Out: io.Discard, Records: each, CoarseTick: tick}, io.Discard); err != nil {
			t.Logf("%s mode: %v", mode, err)
		}
	}
	run(dataplane.ModeMonitor, score.monitorRecord)
	run(dataplane.ModeDrop, score.dropRecord)
	for flow := range score.Caught {
		delete(score.SuspectOnly, flow)
	}

	perMille := func(n int) float64 { return 1000 * float64(n) / float64(max(score.RSTs, 1)) }
	t.Logf("corpus: %d captures, %d RSTs judged outside the crafted ones", len(paths), score.RSTs)
	t.Logf("false spoofed: %d (%.1f per 1,000; goal at most %.1f)", len(score.FalseSpoofed),
		perMille(len(score.FalseSpoofed)), maxFalseSpoofedPerMille)
	t.Logf("false confirmations: %d", len(score.FalseConfirm))
	t.Logf("forged flows: %d; spoofed or confirmed %d, suspect only %d", len(score.forgedFlows),
		len(score.Caught), len(score.SuspectOnly))
	t.Logf("drop mode: %d legitimate RSTs dropped (%.1f per 1,000); %d RSTs passed as harmless",
		len(score.DropsOfLegit), perMille(len(score.DropsOfLegit)), score.Harmless)
	for _, s := range score.FalseSpoofed {
		t.Logf("  false spoofed: %s", s)
	}
	for _, s := range score.DropsOfLegit {
		t.Logf("  dropped in drop mode: %s", s)
	}
	if *corpusTable && tick == 0 {
		score.printTable(os.Stdout)
	}

	if perMille(len(score.FalseSpoofed)) > maxFalseSpoofedPerMille {
		t.Errorf("%.1f false spoofed per 1,000 RSTs, goal at most %.1f", perMille(len(score.FalseSpoofed)), maxFalseSpoofedPerMille)
	}
	for _, c := range score.FalseConfirm {
		t.Errorf("false confirmation: %s", c)
	}
	for flow := range score.forgedFlows {
		if score.Caught[flow] == 0 && score.SuspectOnly[flow] == 0 {
			t.Errorf("forged flow %s neither spoofed, confirmed nor suspect", flow)
		}
	}
	checkCorpusGolden(t, score.PerCapture)
}

// flowOf names a record's flow as labels.json does: its sender first.
func flowOf(r report.Record) (capture, flow string) {
	capture = filepath.Base(r.File)
	return capture, capture + "|" + r.Src.String() + ">" + r.Dst.String()
}

func judgedRST(r report.Record) bool {
	return r.Kind == dataplane.EventRST || r.Kind == dataplane.EventCollateral
}

func (s *corpusScore) monitorRecord(r report.Record) {
	capture, flow := flowOf(r)
	counts := s.PerCapture[capture]
	if counts == nil {
		counts = map[string]int{}
		s.PerCapture[capture] = counts
	}
	if judgedRST(r) {
		counts[r.Verdict.String()]++
	}
	if r.Kind == dataplane.EventConfirmed {
		counts["confirmed"]++
	}
	if s.craftedByName[capture] {
		return
	}
	forged := s.forgedFlows[flow]
	switch {
	case judgedRST(r):
		s.RSTs++
		if slices.Contains(r.Signals, dataplane.SignalHarmless.String()) {
			s.Harmless++
		}
		switch {
		case r.Verdict == dataplane.VerdictSpoofed && forged:
			s.Caught[flow]++
		case r.Verdict == dataplane.VerdictSpoofed:
			s.FalseSpoofed = append(s.FalseSpoofed, fmt.Sprintf("%s frame %d %v", flow, r.Frame, r.Signals))
		case r.Verdict == dataplane.VerdictSuspect && forged:
			s.SuspectOnly[flow]++
		}
	case r.Kind == dataplane.EventConfirmed && forged:
		s.Caught[flow]++
	case r.Kind == dataplane.EventConfirmed:
		s.FalseConfirm = append(s.FalseConfirm, fmt.Sprintf("%s frame %d", flow, r.Frame))
	}
}

func (s *corpusScore) dropRecord(r report.Record) {
	capture, flow := flowOf(r)
	if s.craftedByName[capture] || s.forgedFlows[flow] {
		return
	}
	if judgedRST(r) && r.Action == dataplane.ActionDrop {
		s.DropsOfLegit = append(s.DropsOfLegit, fmt.Sprintf("%s frame %d %v", flow, r.Frame, r.Signals))
	}
}

func (s *corpusScore) printTable(w io.Writer) {
	fmt.Fprintf(w, "%-90s %6s %6s %7s %7s %9s\n", "capture", "valid", "unkn", "suspect", "spoofed", "confirmed")
	for _, c := range slices.Sorted(maps.Keys(s.PerCapture)) {
		n := s.PerCapture[c]
		mark := ""
		if s.craftedByName[c] {
			mark = " (crafted)"
		}
		fmt.Fprintf(w, "%-90s %6d %6d %7d %7d %9d%s\n", c, n["valid"], n["unknown"], n["suspect"], n["spoofed"], n["confirmed"], mark)
	}
}

// checkCorpusGolden compares each capture's verdict counts with the
// committed ones, so that every change of verdict shows in review
// (-update-corpus rewrites them).
func checkCorpusGolden(t *testing.T, got map[string]map[string]int) {
	t.Helper()
	path := filepath.Join("testdata", "corpus.golden.json")
	out, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, '\n')
	if *updateCorpus {
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run make corpus-update to write it)", err)
	}
	var wantCounts map[string]map[string]int
	if err := json.Unmarshal(want, &wantCounts); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for _, c := range slices.Sorted(maps.Keys(got)) {
		if fmt.Sprint(got[c]) != fmt.Sprint(wantCounts[c]) {
			t.Errorf("%s: verdicts %v, golden %v", c, got[c], wantCounts[c])
		}
	}
	for c := range wantCounts {
		if _, ok := got[c]; !ok {
			t.Errorf("%s: in the golden file, not judged now", c)
		}
	}
	if t.Failed() {
		t.Log("a verdict changed: if it is meant to, run make corpus-update and review the diff")
	}
}
