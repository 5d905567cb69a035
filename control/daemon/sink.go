package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rstguard/rstguard/control/capture"
	"github.com/rstguard/rstguard/control/logfile"
	"github.com/rstguard/rstguard/control/report"
	"github.com/rstguard/rstguard/control/version"
	"github.com/rstguard/rstguard/dataplane"
	"github.com/rstguard/rstguard/internal/tokenbucket"
)

// eventSink writes the event log and the evidence pcapng, for the ring-buffer
// reader and hold mode alike. Its rate cap bounds how fast the log grows
// whatever the program emits (docs/DEPLOYMENT.md gives the bound). Each file
// heals on its own: a failed write (a full disk) costs that file's record
// only, never the other file's, and the file is reopened after a backoff.
type eventSink struct {
	mu       sync.Mutex
	log      *slog.Logger
	path     string // "" for standard output
	out      io.WriteCloser
	evidence *capture.Writer
	limit    rate
	// written and suppressed count events the log took, and those the rate
	// cap kept out of it.
	written, suppressed atomic.Uint64
	// events and frames heal the event log and the evidence file.
	events, frames healing
}

// rate is the event log's cap: perSecond events, a second's worth deep.
type rate struct {
	perSecond float64
	bucket    tokenbucket.Bucket
}

func (r *rate) take(now time.Time) bool { return r.bucket.Take(now, r.perSecond, r.perSecond) }

// Backoff between attempts to write a failing file again: a full disk is
// not retried on every event, and writing resumes within seconds of space
// coming back.
const (
	firstRetry = 250 * time.Millisecond
	lastRetry  = 5 * time.Second
)

// healing is one file's failure state. The first failure is logged; until
// its retry time the file's records are counted lost without a write; then
// the file is reopened and the record tried; the first success is logged
// with what was lost meanwhile.
type healing struct {
	name    string // "event log", "evidence"
	since   time.Time
	retryAt time.Time
	backoff time.Duration
	lostNow uint64 // lost since this failure began
	// lost counts records lost to failures ever (rstguard_write_lost_total);
	// failing is the error while not recovered, read by health without
	// the sink's lock (a stalled writer holds it).
	lost    atomic.Uint64
	failing atomic.Pointer[string]
}

// attempt reports whether to write now, and whether to reopen first.
func (h *healing) attempt(now time.Time) (write, reopen bool) {
	if h.failing.Load() == nil {
		return true, false
	}
	if now.Before(h.retryAt) {
		h.lost.Add(1)
		h.lostNow++
		return false, false
	}
	return true, true
}

func (h *healing) failed(err error, now time.Time, log *slog.Logger) {
	if h.failing.Load() == nil {
		log.Error(h.name+" write failed: its records are counted as lost and writing is retried; judging goes on", "err", err)
		h.since, h.backoff, h.lostNow = now, firstRetry, 0
	} else {
		h.backoff = min(2*h.backoff, lastRetry)
	}
	text := err.Error()
	h.failing.Store(&text)
	h.retryAt = now.Add(h.backoff)
	h.lost.Add(1)
	h.lostNow++
}

func (h *healing) worked(now time.Time, log *slog.Logger) {
	if h.failing.Load() == nil {
		return
	}
	log.Info(h.name+" writing again", "lost", h.lostNow, "failed_for", now.Sub(h.since).Round(time.Millisecond).String())
	h.failing.Store(nil)
}

// Error is the file's error while it fails, "" while it writes.
func (h *healing) Error() string {
	if e := h.failing.Load(); e != nil {
		return *e
	}
	return ""
}

func newEventSink(cfg Config, log *slog.Logger) (*eventSink, error) {
	s := &eventSink{log: log, limit: rate{perSecond: float64(cfg.EventsRate)},
		events: healing{name: "event log"}, frames: healing{name: "evidence"}}
	if cfg.Events != "-" {
		s.path = cfg.Events
	}
	if err := s.openLog(); err != nil {
		return nil, err
	}
	if cfg.Pcap != "" {
		w, err := capture.OpenWriter(cfg.Pcap, capture.WriterOptions{MaxSize: cfg.PcapMaxSize, MaxFiles: cfg.PcapMaxFiles,
			Application: version.Get().String(), Host: cfg.Host, Interfaces: cfg.Interfaces})
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("evidence pcap: %w", err)
		}
		if w.SetAside != "" {
			log.Warn("the evidence file was not pcapng: set aside, not overwritten",
				"file", cfg.Pcap, "now", w.SetAside)
		}
		s.evidence = w
	}
	return s, nil
}

func (s *eventSink) openLog() error {
	if s.path == "" {
		s.out = nopCloser{os.Stdout}
		return nil
	}
	f, err := logfile.Open(s.path)
	if err != nil {
		return fmt.Errorf("event log: %w", err)
	}
	s.out = f
	return nil
}

// reopen closes and opens both files again: logrotate has moved them.
func (s *eventSink) reopen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.out.Close()
	errs := []error{s.openLog()}
	if s.evidence != nil {
		errs = append(errs, s.evidence.Reopen())
	}
	return errors.Join(errs...)
}

func (s *eventSink) writeEvent(d *daemon, e dataplane.Event) {
	s.write(e, d.ifname(e.Ifindex), d.cfg.Host)
}

// write writes an event's evidence, then the event; a failure of either is
// the healing's to log and count.
func (s *eventSink) write(e dataplane.Event, iface, host string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if !s.limit.take(now) {
		s.suppressed.Add(1)
		return
	}
	rec := report.FromEvent(e, iface, host)
	// The frame first, so that the event says where it went; an event whose
	// frame could not be written is still written, saying nothing of a file.
	if s.evidence != nil && report.IsEvidence(e) {
		if write, reopen := s.frames.attempt(now); write {
			err := s.writeEvidence(e, &rec, reopen)
			if err != nil {
				s.frames.failed(err, now, s.log)
				rec.File, rec.Frame = "", 0
			} else {
				s.frames.worked(now, s.log)
			}
		}
	}
	if !report.Logged(e) {
		return
	}
	write, reopen := s.events.attempt(now)
	if !write {
		return
	}
	if err := s.writeLine(rec, reopen); err != nil {
		s.events.failed(err, now, s.log)
		return
	}
	s.events.worked(now, s.log)
	s.written.Add(1)
}

// writeLine writes rec as one JSON line, whole or not at all: a short write
// (ENOSPC midway) is cut off again, so that the next line does not glue to
// a partial one.
func (s *eventSink) writeLine(rec report.Record, reopen bool) error {
	if reopen {
		s.out.Close()
		if err := s.openLog(); err != nil {
			s.out = nopCloser{io.Discard} // closed: nothing to write to until the next attempt
			return err
		}
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	n, err := s.out.Write(line)
	if err != nil && n > 0 {
		if f, ok := s.out.(*os.File); ok {
			if fi, serr := f.Stat(); serr == nil {
				err = errors.Join(err, f.Truncate(fi.Size()-int64(n)))
			}
		}
	}
	return err
}

// writeEvidence writes the event's frames, commented with its verdict, and
// notes in rec where they went.
func (s *eventSink) writeEvidence(e dataplane.Event, rec *report.Record, reopen bool) error {
	if reopen {
		if err := s.evidence.Reopen(); err != nil {
			return err
		}
	}
	path, n, err := s.evidence.Write(capture.EvidenceFrame{Time: e.Time, Data: e.Frame, Length: e.FrameLen,
		Iface: rec.Iface, Comment: rec.Comment()})
	if err != nil {
		return err
	}
	rec.File, rec.Frame = path, n
	if e.Kind == dataplane.EventHold && len(e.Hold.Answer) > 0 {
		_, _, err = s.evidence.Write(capture.EvidenceFrame{Time: e.Time, Data: e.Hold.Answer, Length: len(e.Hold.Answer),
			Iface: rec.Iface, Comment: fmt.Sprintf("rstguard hold answer: the claimed sender's reply to the probe (%s) of frame %d", e.Hold.Outcome, n)})
	}
	return err
}

func (s *eventSink) Close() error {
	var errs []error
	if s.evidence != nil {
		errs = append(errs, s.evidence.Close())
	}
	if s.out != nil {
		errs = append(errs, s.out.Close())
	}
	return errors.Join(errs...)
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
