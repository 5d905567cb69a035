package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rstguard/rstguard/control/attach"
	"github.com/rstguard/rstguard/control/bpffs"
	"github.com/rstguard/rstguard/control/daemon"
	"github.com/rstguard/rstguard/control/health"
	"github.com/rstguard/rstguard/dataplane"
)

type topOptions struct {
	interval time.Duration
	perCPU   bool
	count    int // frames to draw; 0 until Ctrl-C
}

func topCommand() command {
	return command{
		name: "top",
		args: "[--interval DURATION] [--per-cpu] [--count N]",
		summary: `a live view, redrawn every interval until Ctrl-C, as xdp-bench shows
One line per interface (packets, RSTs, spoofed, stopped, dropped and held
RSTs and lost events, per second; stopped is dropped plus held and proven
forged), their total, the flow table's fill and, with
--per-cpu, one line per CPU. On a terminal, q quits too. Also rstguard
status --watch.`,
		run: func(e *env, fs *flag.FlagSet, args []string) error {
			var o topOptions
			fs.DurationVar(&o.interval, "interval", time.Second, "redraw interval")
			fs.BoolVar(&o.perCPU, "per-cpu", false, "a line per CPU too")
			fs.IntVar(&o.count, "count", 0, "stop after N redraws (0: until Ctrl-C)")
			pinDir := fs.String("pin-dir", bpffs.DefaultDir, "bpffs directory of the pinned maps")
			if err := parseNoArgs(fs, args); err != nil {
				return err
			}
			if o.interval <= 0 {
				return usagef("--interval must be positive")
			}
			return runTop(e, *pinDir, o)
		},
	}
}

// topSample is one reading of everything top shows.
type topSample struct {
	at       time.Time
	total    dataplane.Counters
	ifaces   map[string]dataplane.Counters
	cpus     []dataplane.Counters
	capacity int
	used     int
	mode     dataplane.Mode
	// health is the daemon's last assessment, as status shows it; "" with
	// no daemon.
	health string
}

func runTop(e *env, pinDir string, o topOptions) error {
	dp, err := dataplane.OpenPinned(pinDir)
	if err != nil {
		return err
	}
	defer dp.Close()
	read := func() (topSample, error) {
		s := topSample{at: time.Now()}
		states, err := attach.Attached()
		if err != nil {
			return s, err
		}
		names := map[int]string{}
		for _, st := range states {
			names[st.Index] = st.Ifname
		}
		if s.ifaces, err = dp.InterfaceCounters(names); err != nil {
			return s, err
		}
		s.total = dataplane.TotalOf(s.ifaces)
		if o.perCPU {
			if s.cpus, err = dp.CPUCounters(); err != nil {
				return s, err
			}
		}
		pol, err := dp.Policy()
		if err != nil {
			return s, err
		}
		s.mode = pol.Mode
		if d, err := daemon.Running(pinDir); err == nil && d.Health != nil {
			r := health.Aged(*d.Health, s.at)
			s.health = r.Level.String()
			if r.Level != health.OK {
				s.health += ": " + r.Text()
			}
		}
		s.capacity, s.used, err = dp.FlowTable()
		return s, err
	}
	prev, err := read()
	if err != nil {
		return err
	}
	clear := isTerminal(e.stdout)
	var quit <-chan struct{}
	if clear && isTerminal(os.Stdin) {
		var restore func()
		if quit, restore, err = keyPressed(os.Stdin, 'q'); err != nil {
			return err
		}
		defer restore()
	}
	for n := 0; o.count == 0 || n < o.count; n++ {
		select {
		case <-e.ctx.Done():
			return nil
		case <-quit:
			return nil
		case <-time.After(o.interval):
		}
		cur, err := read()
		if err != nil {
			return err
		}
		if clear {
			io.WriteString(e.stdout, "\033[H\033[2J")
		}
		drawTop(e.stdout, prev, cur, o.interval)
		prev = cur
	}
	return nil
}

// drawTop writes one frame: the rates between two samples.
func drawTop(w io.Writer, prev, cur topSample, interval time.Duration) {
	secs := cur.at.Sub(prev.at).Seconds()
	fmt.Fprintf(w, "rstguard top  %s  mode %s  flows %d of %d (%.1f%%)  every %s, q or Ctrl-C to stop\n",
		cur.at.Format("15:04:05"), cur.mode, cur.used, cur.capacity, 100*float64(cur.used)/float64(max(cur.capacity, 1)), interval)
	if cur.health == "" {
		fmt.Fprint(w, "health: no daemon reads the events (rstguard status)\n\n")
	} else {
		fmt.Fprintf(w, "health %s\n\n", cur.health)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tPACKETS/S\tRSTS/S\tSPOOFED/S\tSTOPPED/S\tDROPPED/S\tHELD/S\tEVENTS LOST/S\tWIRE FWD/S\t")
	line := func(name string, a, b dataplane.Counters) {
		r := rates(a, b, secs)
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t\n", name, r["packets"], r["rsts"], r[dataplane.VerdictSpoofed.String()],
			r["stopped"], r["dropped"], r["held"], r["events_lost"], r["forwarded"])
	}
	names := make([]string, 0, len(cur.ifaces))
	for n := range cur.ifaces {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		line(n, prev.ifaces[n], cur.ifaces[n])
	}
	line("total", prev.total, cur.total)
	for cpu := range cur.cpus {
		if cpu < len(prev.cpus) {
			line(fmt.Sprintf("cpu%d", cpu), prev.cpus[cpu], cur.cpus[cpu])
		}
	}
	tw.Flush()
	if len(names) == 0 || len(names) == 1 && names[0] == "other" {
		fmt.Fprintln(w, "\nnot attached to any interface: nothing is judged")
	}
}

// isTerminal says whether w is a terminal, where top redraws in place;
// elsewhere (a pipe, a file) frames follow one another.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// keyPressed puts the terminal f in character mode (no line buffering, no
// echo) and reports when key is typed; restore puts the terminal back.
func keyPressed(f *os.File, key byte) (pressed <-chan struct{}, restore func(), err error) {
	fd := int(f.Fd())
	saved, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, nil, err
	}
	raw := *saved
	raw.Lflag &^= unix.ICANON | unix.ECHO
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return nil, nil, err
	}
	ch := make(chan struct{})
	go func() {
		b := make([]byte, 1)
		for {
			if _, err := f.Read(b); err != nil {
				return
			}
			if b[0] == key || b[0] == key-'a'+'A' {
				close(ch)
				return
			}
		}
	}()
	return ch, func() { unix.IoctlSetTermios(fd, unix.TCSETS, saved) }, nil
}
