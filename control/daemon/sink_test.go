package daemon

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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
		s.write(e, "eth0", "gw")
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

// failing takes nothing: the disk is full.
type failing struct{}

func (failing) Write([]byte) (int, error) { return 0, syscall.ENOSPC }

// A log that cannot be written costs its events, counted, and says so once;
// after the backoff the file is opened again and writing resumes by itself,
// each line whole.
func TestEventLogHealsAfterWriteErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Events: filepath.Join(dir, "events.jsonl"), EventsRate: 1 << 20, Host: "gw"}
	var logs strings.Builder
	s, err := newEventSink(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	e := dataplane.Event{Time: time.Now(), Kind: dataplane.EventRST, Verdict: dataplane.VerdictSuspect,
		Src: netip.MustParseAddrPort("192.0.2.1:1"), Dst: netip.MustParseAddrPort("192.0.2.2:2")}
	s.write(e, "eth0", "gw")
	s.out.Close()
	s.out = nopCloser{failing{}}
	for range 10 {
		s.write(e, "eth0", "gw")
	}
	if got := s.events.lost.Load(); got != 10 || !strings.Contains(s.events.Error(), "no space left") {
		t.Fatalf("lost %d (%q), want 10 lost to ENOSPC", got, s.events.Error())
	}
	if n := strings.Count(logs.String(), "write failed"); n != 1 {
		t.Errorf("%d error lines for one failure, want 1:\n%s", n, logs.String())
	}
	time.Sleep(firstRetry)
	s.write(e, "eth0", "gw")
	if s.events.Error() != "" || !strings.Contains(logs.String(), "event log writing again") || !strings.Contains(logs.String(), "lost=10") {
		t.Errorf("not recovered: %q\n%s", s.events.Error(), logs.String())
	}
	data, _ := os.ReadFile(cfg.Events)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 2 || uint64(len(lines)) != s.written.Load() {
		t.Fatalf("%d lines (written %d), want the one before and the one after:\n%s", len(lines), s.written.Load(), data)
	}
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Errorf("line %q: %v", l, err)
		}
	}
}
