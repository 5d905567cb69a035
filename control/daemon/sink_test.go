package daemon

import (
	"bufio"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rstguard/rstguard/dataplane"
)

// A flood of events reaches the log at the rate cap and no faster; the rest
// is counted.
func TestEventLogRateCap(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Events: filepath.Join(dir, "events.jsonl"), EventsRate: 100, Host: "gw"}
	s, err := newEventSink(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	e := dataplane.Event{Time: time.Now(), Kind: dataplane.EventRST, Verdict: dataplane.VerdictSpoofed,
		Src: netip.MustParseAddrPort("192.0.2.1:1"), Dst: netip.MustParseAddrPort("192.0.2.2:2")}
	const flood = 5000
	start := time.Now()
	for range flood {
		if err := s.write(e, "eth0", "gw"); err != nil {
			t.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	s.Close()
	f, _ := os.Open(cfg.Events)
	defer f.Close()
	lines := 0
	for sc := bufio.NewScanner(f); sc.Scan(); {
		lines++
	}
	// A second's burst, plus what the rate refills while the loop runs.
	most := 100 + int(elapsed.Seconds()*100) + 1
	if lines < 100 || lines > most {
		t.Errorf("%d events written in %v, want 100 to %d", lines, elapsed, most)
	}
	if got := s.written.Load() + s.suppressed.Load(); got != flood || s.written.Load() != uint64(lines) {
		t.Errorf("written %d + capped %d, want %d in all and %d written", s.written.Load(), s.suppressed.Load(), flood, lines)
	}
}
