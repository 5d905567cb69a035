package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rstguard/rstguard/control/health"
	"github.com/rstguard/rstguard/control/version"
)

// RuntimeDir holds each running daemon's state file (systemd's
// RuntimeDirectory=rstguard).
const RuntimeDir = "/run/rstguard"

// State is what a running daemon tells rstguard status about itself: who
// it is, since when, and which files it writes.
type State struct {
	PID        int       `json:"pid"`
	Started    time.Time `json:"started"`
	Version    string    `json:"version"`
	Host       string    `json:"host"`
	Interfaces []string  `json:"interfaces"`
	PinDir     string    `json:"pin_dir"`
	Events     string    `json:"events"`
	Pcap       string    `json:"pcap"`
	Metrics    string    `json:"metrics"`
	// Wire are the --wire pairs, "A:B" each, and what a pair with a port
	// down does (--wire-fail).
	Wire     []string `json:"wire,omitempty"`
	WireFail string   `json:"wire_fail,omitempty"`
	// PromiscSet are the ports this daemon turned promiscuous: it turns
	// them back as it stops; after kill -9, rstguard detach does.
	PromiscSet []string `json:"promisc_set,omitempty"`
	// Health is the daemon's latest assessment (health.StateEvery fresh at
	// least): what status and status --check show.
	Health *health.Result `json:"health,omitempty"`
}

// StatePath is where the daemon using pinDir writes its state.
func StatePath(pinDir string) string {
	return filepath.Join(RuntimeDir, strings.ReplaceAll(strings.Trim(pinDir, "/"), "/", "_")+".json")
}

// stateWriter writes the daemon's state file, first at start, then with
// each health result (replaced whole: a reader never sees half a file).
func stateWriter(cfg Config, promiscSet []string) (write func(health.Result) error, remove func()) {
	s := State{PID: os.Getpid(), Started: time.Now().UTC(), Version: version.Get().String(), Host: cfg.Host,
		Interfaces: cfg.Interfaces, PinDir: cfg.PinDir, Events: cfg.Events, Pcap: cfg.Pcap, Metrics: cfg.Metrics}
	s.Wire = cfg.wirePairs()
	s.PromiscSet = promiscSet
	if len(cfg.Wire) > 0 {
		s.WireFail = cfg.wireFail()
	}
	path := StatePath(cfg.PinDir)
	write = func(r health.Result) error {
		s.Health = &r
		data, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			return err
		}
		if err := os.MkdirAll(RuntimeDir, 0o755); err != nil {
			return err
		}
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
			return err
		}
		return os.Rename(tmp, path)
	}
	return write, func() { os.Remove(path) }
}

// ErrNoDaemon means no daemon uses the pin directory: the program, if
// attached, judges and drops on its own, but nobody reads its events.
var ErrNoDaemon = errors.New("no daemon (rstguard run) is using")

// Running reports the daemon using pinDir, from its state file: the pid
// must still be an rstguard process (kill -9 leaves the file behind).
func Running(pinDir string) (State, error) {
	s, err := lastState(pinDir)
	if err != nil {
		return State{}, err
	}
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(s.PID) + "/comm")
	if err != nil || !strings.HasPrefix(string(comm), "rstguard") {
		return State{}, fmt.Errorf("%w --pin-dir %s (pid %d in %s is gone)", ErrNoDaemon, pinDir, s.PID, StatePath(pinDir))
	}
	return s, nil
}

// LeftBehind is the state file of a daemon on pinDir that is gone without
// removing it (kill -9): what it changed that detach puts back.
func LeftBehind(pinDir string) (State, bool) {
	if _, err := Running(pinDir); err == nil {
		return State{}, false
	}
	s, err := lastState(pinDir)
	return s, err == nil
}

// lastState reads the state file of the daemon on pinDir, running or not.
func lastState(pinDir string) (State, error) {
	var s State
	data, err := os.ReadFile(StatePath(pinDir))
	if errors.Is(err, os.ErrNotExist) {
		return State{}, fmt.Errorf("%w --pin-dir %s", ErrNoDaemon, pinDir)
	}
	if err != nil {
		return State{}, err
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return State{}, fmt.Errorf("%s: %w", StatePath(pinDir), err)
	}
	return s, nil
}

// Live lists the running daemons, from their state files: each one's pin
// directory and pid.
func Live() []State {
	paths, _ := filepath.Glob(filepath.Join(RuntimeDir, "*.json"))
	var out []State
	for _, p := range paths {
		data, err := os.ReadFile(p)
		var s State
		if err != nil || json.Unmarshal(data, &s) != nil {
			continue
		}
		if live, err := Running(s.PinDir); err == nil {
			out = append(out, live)
		}
	}
	return out
}
