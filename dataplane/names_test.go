package dataplane

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rstguard/rstguard/xdp"
)

// docs/SIGNALS.md's table lists every signal the program has, with the
// weight xdp/rstguard.h gives it, and nothing else: the header is the one
// source, the page its reader's view.
func TestSignalsDocMatchesHeader(t *testing.T) {
	doc, err := os.ReadFile("../docs/SIGNALS.md")
	if err != nil {
		t.Fatal(err)
	}
	weights := map[string]int{"info": 0, "never scored": 0, "weak": 1, "medium": 2, "strong": 4}
	row := regexp.MustCompile("(?m)^\\| `([a-z_0-9]+)` \\| (info|never scored|weak|medium|strong) \\|")
	documented := map[string]int{}
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = weights[m[2]]
	}
	for i := range SignalCount {
		s := Signal(i)
		w, ok := documented[s.String()]
		switch {
		case !ok:
			t.Errorf("signal %s is not in docs/SIGNALS.md's table", s)
		case w != s.Weight():
			t.Errorf("signal %s: weight %d in the docs, %d in rstguard.h", s, w, s.Weight())
		}
		delete(documented, s.String())
	}
	for name := range documented {
		t.Errorf("docs/SIGNALS.md lists %s, which the program does not have", name)
	}
}

// docs/SIGNALS.md's cause table ("Benign causes") gives every scored
// signal the causes xdp/rstguard.h gives it (enum signal_causes), in the
// header's order, "none" for none: the verdict rule reads the header, the
// reviewer the page.
func TestCausesDocMatchesHeader(t *testing.T) {
	doc, err := os.ReadFile("../docs/SIGNALS.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## Benign causes\n")
	if !ok {
		t.Fatal("docs/SIGNALS.md has no \"## Benign causes\" section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	row := regexp.MustCompile("(?m)^\\| `([a-z_0-9]+)` \\| ([a-z_, ]+) \\|")
	documented := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		documented[m[1]] = m[2]
	}
	for i := range SignalCount {
		s := Signal(i)
		if s.Weight() == 0 {
			continue // counts nothing: nothing to explain away
		}
		want := strings.Join(s.Causes(), ", ")
		if want == "" {
			want = "none"
		}
		got, ok := documented[s.String()]
		switch {
		case !ok:
			t.Errorf("signal %s is not in docs/SIGNALS.md's cause table", s)
		case got != want:
			t.Errorf("signal %s: causes %q in the docs, %q in rstguard.h", s, got, want)
		}
		delete(documented, s.String())
	}
	for name := range documented {
		t.Errorf("docs/SIGNALS.md's cause table lists %s, which is not a scored signal", name)
	}
}

// Every signal has a weight of its own in the header's table.
func TestEverySignalHasAWeight(t *testing.T) {
	if len(signalWeights) != SignalCount {
		t.Errorf("%d weights for %d signals", len(signalWeights), SignalCount)
	}
	for i := range SignalCount {
		if _, ok := signalWeights[Signal(i).String()]; !ok {
			t.Errorf("signal %s has no SIGW_ entry in rstguard.h", Signal(i))
		}
	}
	if len(verdictNames) != int(xdp.RstguardVerdictVERDICT_COUNT) || len(actionNames) != int(xdp.RstguardActionACTION_COUNT) {
		t.Errorf("verdict or action names out of step with rstguard.h")
	}
}

// The Go lists that metrics, status and summaries range over hold every
// value the header has: a value added there and not here fails.
func TestListsCoverHeader(t *testing.T) {
	for _, c := range []struct {
		name        string
		list, names int
	}{
		{"Verdicts", len(Verdicts), len(verdictNames)},
		{"Actions", len(Actions), len(actionNames)},
		{"Modes", len(Modes), len(modeNames)},
		{"EventKinds", len(EventKinds), len(eventKindNames)},
	} {
		if c.list != c.names {
			t.Errorf("%s lists %d, the header has %d", c.name, c.list, c.names)
		}
	}
}

// docs/EVENTS.md's counter table lists every counter of the program, in
// the header's order, and nothing else: a counter added to enum counter
// fails here until the page says what it counts.
func TestCountersDocMatchesHeader(t *testing.T) {
	doc, err := os.ReadFile("../docs/EVENTS.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n### The program's counters\n")
	if !ok {
		t.Fatal("docs/EVENTS.md has no \"### The program's counters\" section")
	}
	section, _, _ = strings.Cut(section, "\n#")
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_0-9]+)` \\| [^|]+ \\|$").FindAllStringSubmatch(section, -1) {
		documented = append(documented, m[1])
	}
	if !slices.Equal(documented, counterNames) {
		t.Errorf("docs/EVENTS.md's counters:\n%v\nenum counter's:\n%v", documented, counterNames)
	}
}
