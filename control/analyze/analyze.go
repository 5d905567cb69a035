// Package analyze judges captured traffic with the very XDP program that runs
// inline: every frame, in order, goes through BPF_PROG_TEST_RUN with the
// program's clock set to the frame's capture time.
package analyze

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/rstguard/rstguard/control/capture"
	"github.com/rstguard/rstguard/control/report"
	"github.com/rstguard/rstguard/dataplane"
)

// flowTableSize bounds the flows one capture may hold at once; the LRU
// table evicts the oldest beyond it, as it would inline.
const flowTableSize = 1 << 18

// Options choose what the analysis does and prints.
type Options struct {
	Mode dataplane.Mode
	JSON bool
	Out  io.Writer
	// Annotated, if set, receives every frame read, each judged one
	// commented with its verdict as the daemon's evidence is; each input
	// file is an interface of its own.
	Annotated *capture.Writer
	// Records, if set, sees every record printed (for rstguard analyze
	// --summary).
	Records func(report.Record)
	// Progress, if set, gets a line every ProgressEvery while a run lasts.
	Progress      io.Writer
	ProgressEvery time.Duration
	// CoarseTick, if set, judges as a live gateway whose coarse clock ticks
	// this often (Dataplane.SetCoarseTick); zero, on the capture's exact
	// timestamps.
	CoarseTick time.Duration
}

// Summary is what the analysis saw, over one file or several: the files and
// frames read, and the program's own counters summed over them (their JSON
// keys at the top level, as dataplane.Counters names them).
type Summary struct {
	Files      int    `json:"files"`
	Unreadable int    `json:"unreadable"`
	Frames     uint64 `json:"frames"`
	Skipped    uint64 `json:"skipped_frames"` // link types we cannot judge, frames too short
	Truncated  bool   `json:"truncated,omitempty"`
	dataplane.Counters
}

// NewSummary is an empty summary with every verdict and action present.
func NewSummary() Summary {
	var s Summary
	s.Counters.Add(dataplane.Counters{})
	return s
}

// Files analyses each capture with its own fresh flow table and prints as it
// goes. An unreadable file is reported on errOut and counted; the others are
// still analysed. The returned error is non-nil when any file failed.
//
// The program is loaded once, and its state reset between files
// (Dataplane.Reset): loading it is the verifier's work, which would be most
// of the time of many small captures.
func Files(paths []string, opts Options, errOut io.Writer) (Summary, error) {
	sum := NewSummary()
	dp, err := dataplane.Load(dataplane.Options{FlowTableSize: flowTableSize})
	if err != nil {
		return sum, err
	}
	defer dp.Close()
	if err := dp.SetCoarseTick(opts.CoarseTick); err != nil {
		return sum, err
	}
	// Offline, every event is wanted: no per-flow budget.
	pol := dataplane.DefaultPolicy()
	pol.Mode = opts.Mode
	pol.EventBudget = 1<<16 - 1
	if err := dp.SetPolicy(pol); err != nil {
		return sum, err
	}
	events, err := dp.NewEventReader(dataplane.CaptureClock)
	if err != nil {
		return sum, err
	}
	defer events.Close()
	var failed []error
	for _, p := range paths {
		sum.Files++
		if err := file(dp, events, p, opts, &sum); err != nil {
			sum.Unreadable++
			failed = append(failed, err)
			fmt.Fprintf(errOut, "rstguard analyze: %v\n", err)
		}
	}
	return sum, errors.Join(failed...)
}

func file(dp *dataplane.Dataplane, events *dataplane.EventReader, path string, opts Options, sum *Summary) error {
	r, err := capture.Open(path)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := dp.Reset(); err != nil {
		return err
	}
	// What an earlier file left in the ring, cut short by an error, is not
	// this file's.
	if _, err := events.Drain(); err != nil {
		return err
	}

	enc := json.NewEncoder(opts.Out)
	var readErr error
	unreadable := map[string]int{} // link type: frames
	var frame, emitted uint64      // this file's frames read and events
	nextProgress := time.Now().Add(opts.ProgressEvery)
	for {
		if opts.Progress != nil && time.Now().After(nextProgress) {
			fmt.Fprintf(opts.Progress, "rstguard analyze: %s: %d frames, %d events so far\n", path, frame, emitted)
			nextProgress = time.Now().Add(opts.ProgressEvery)
		}
		fr, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// A capture cut short (a crash, a full disk) still holds evidence:
			// judge what was read, then report the damage.
			readErr = fmt.Errorf("%s: frame %d: %w", path, sum.Frames+1, err)
			sum.Truncated = true
			break
		}
		sum.Frames++
		frame++
		if fr.Unreadable {
			unreadable[fr.Skipped]++
		}
		if fr.Skipped != "" {
			sum.Skipped++
			continue
		}
		var comments []string
		if _, err := dp.Run(fr.Data, fr.Time); err != nil && !errors.Is(err, dataplane.ErrShortFrame) {
			return fmt.Errorf("%s: %w", path, err)
		} else if err != nil {
			sum.Skipped++
		}
		evs, err := events.Drain()
		if err != nil {
			return fmt.Errorf("%s: read events: %w", path, err)
		}
		for _, e := range evs {
			rec := report.FromEvent(e, "", "")
			comments = append(comments, rec.Comment())
			if !report.Logged(e) { // for the annotated capture only
				continue
			}
			emitted++
			rec.File, rec.Frame = path, frame
			if opts.Records != nil {
				opts.Records(rec)
			}
			if opts.JSON {
				if err := enc.Encode(rec); err != nil {
					return err
				}
			} else {
				fmt.Fprintln(opts.Out, rec.Text())
			}
		}
		if opts.Annotated != nil {
			if _, _, err := opts.Annotated.Write(capture.EvidenceFrame{Time: fr.Time, Data: fr.Data, Length: len(fr.Data),
				Iface: filepath.Base(path), Comment: strings.Join(comments, "\n")}); err != nil {
				return fmt.Errorf("write annotated capture: %w", err)
			}
		}
	}
	c, err := dp.Counters()
	if err != nil {
		return err
	}
	sum.Counters.Add(c)
	if readErr == nil && len(unreadable) > 0 {
		// Nothing judged is not "nothing found": say so, and fail.
		var kinds []string
		for lt, n := range unreadable {
			kinds = append(kinds, fmt.Sprintf("%d frames of %s", n, lt))
		}
		slices.Sort(kinds)
		readErr = fmt.Errorf("%s: %s, which rstguard cannot read (it reads Ethernet, raw IP, Linux cooked and BSD loopback): not judged",
			path, strings.Join(kinds, ", "))
	}
	return readErr
}

// Print writes the summary: JSON as {"summary": {...}}, or text.
func (s Summary) Print(w io.Writer, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(map[string]Summary{"summary": s})
	}
	_, err := fmt.Fprintf(w, "summary: %d file(s), %d frames, %d RSTs: %s; confirmed forged %d, collateral resets %d, actions %s\n",
		s.Files, s.Frames, s.RSTs, counts(s.Verdicts), s.Confirmed, s.Collateral, counts(s.Actions))
	return err
}

func counts(m map[string]uint64) string {
	out := ""
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if out != "" {
			out += " "
		}
		out += fmt.Sprintf("%s=%d", k, m[k])
	}
	return out
}
