package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rstguard/rstguard/dataplane"
	"github.com/rstguard/rstguard/internal/testutil"
)

// runCLI runs rstguard in-process and returns its exit code and output.
func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &env{stdout: &out, stderr: &errOut, ctx: context.Background()})
	return code, out.String(), errOut.String()
}

// -h prints the usage once, on standard output; a bad flag prints one line
// and where to get help, on standard error.
func TestHelpForEveryCommand(t *testing.T) {
	for _, c := range commands() {
		code, out, errOut := runCLI(c.name, "-h")
		if code != exitOK || strings.Count(out, "usage: rstguard "+c.name) != 1 || errOut != "" {
			t.Errorf("%s -h: exit %d, stdout %q, stderr %q", c.name, code, out, errOut)
		}
		if _, helped, _ := runCLI("help", c.name); helped != out {
			t.Errorf("help %s differs from %s -h", c.name, c.name)
		}
		code, out, errOut = runCLI(c.name, "--no-such-flag")
		want := "rstguard " + c.name + ": flag provided but not defined: -no-such-flag (rstguard " + c.name + " -h for help)\n"
		if code != exitUsage || errOut != want || out != "" {
			t.Errorf("%s --no-such-flag: exit %d, stderr %q", c.name, code, errOut)
		}
	}
	if code, out, _ := runCLI("-h"); code != exitOK || !strings.Contains(out, "analyze") {
		t.Errorf("rstguard -h: %d %q", code, out)
	}
	if code, _, errOut := runCLI(); code != exitUsage || !strings.Contains(errOut, "commands:") {
		t.Errorf("rstguard alone: %d %q", code, errOut)
	}
}

func TestUnknownCommandSuggestsNearest(t *testing.T) {
	for typed, want := range map[string]string{"stauts": "status", "evnets": "events", "anal": "analyze", "frobnicate": ""} {
		code, _, errOut := runCLI(typed)
		if code != exitUsage || !strings.Contains(errOut, "unknown command \""+typed+"\"") {
			t.Errorf("%s: exit %d, %q", typed, code, errOut)
		}
		if got := strings.Contains(errOut, "did you mean"); got != (want != "") ||
			want != "" && !strings.Contains(errOut, "did you mean \""+want+"\"") {
			t.Errorf("%s: %q, want a suggestion of %q", typed, errOut, want)
		}
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI("--version")
	if code != exitOK || !strings.HasPrefix(out, "rstguard ") || !strings.Contains(out, fmt.Sprintf("BPF ABI %d", dataplane.ABI)) {
		t.Errorf("--version: %d %q", code, out)
	}
	if _, same, _ := runCLI("version"); same != out {
		t.Errorf("version %q differs from --version %q", same, out)
	}
}

// The completion scripts parse in their shells and offer every command and
// its flags.
func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh"} {
		code, script, errOut := runCLI("completion", shell)
		if code != exitOK {
			t.Fatalf("completion %s: %d %s", shell, code, errOut)
		}
		for _, want := range []string{"status", "--follow", "--pin-dir", "-i"} {
			if !strings.Contains(script, want) {
				t.Errorf("%s completion lacks %q", shell, want)
			}
		}
		if _, err := exec.LookPath(shell); err != nil {
			continue // zsh is not among the packages CI installs
		}
		path := filepath.Join(t.TempDir(), "c")
		os.WriteFile(path, []byte(script), 0o600)
		if out, err := exec.Command(shell, "-n", path).CombinedOutput(); err != nil {
			t.Errorf("%s -n: %v %s", shell, err, out)
		}
	}
	// What bash offers, word by word, as it runs the script.
	_, script, _ := runCLI("completion", "bash")
	for line, want := range map[string]string{
		"rstguard run --mode d":        "drop",
		"rstguard events --verdict sp": "spoofed",
		"rstguard set hold-m":          "hold-min hold-max",
		"rstguard set mode h":          "hold",
		"rstguard detach -i l":         "lo",
		"rstguard sta":                 "status",
	} {
		words := strings.Fields(line)
		cmd := exec.Command("bash", "-c", script+`
COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _rstguard; echo "${COMPREPLY[*]}"`, "bash")
		cmd.Args = append(cmd.Args, words...)
		out, err := cmd.Output()
		got := strings.TrimSpace(string(out))
		if want == "lo" && slices.Contains(strings.Fields(got), "lo") {
			got = "lo" // and whatever else this machine's interfaces starting with l are
		}
		if err != nil || got != want {
			t.Errorf("bash completion of %q: %q %v, want %q", line, got, err, want)
		}
	}
	if code, _, _ := runCLI("completion", "fish"); code != exitUsage {
		t.Errorf("completion fish: exit %d", code)
	}
	// bash offers the commands for the first word.
	code, script, _ := runCLI("completion", "bash")
	out, err := exec.Command("bash", "-c", script+`
COMP_WORDS=(rstguard sta); COMP_CWORD=1; _rstguard; echo "${COMPREPLY[@]}"
COMP_WORDS=(rstguard events --fo); COMP_CWORD=2; _rstguard; echo "${COMPREPLY[@]}"`).Output()
	if code != exitOK || err != nil || string(out) != "status\n--follow\n" {
		t.Errorf("bash completion offered %q (%v)", out, err)
	}
}

// The man page documents every command and every flag, and man renders it
// without warnings.
func TestManPage(t *testing.T) {
	code, page, _ := runCLI("man")
	if code != exitOK {
		t.Fatalf("man: exit %d", code)
	}
	for _, c := range commands() {
		if !strings.Contains(page, ".SS \""+c.name+" ") {
			t.Errorf("man page lacks command %s", c.name)
		}
		for _, f := range flagNames(declaredFlags(c)) {
			if !strings.Contains(page, ".B "+strings.ReplaceAll(f, "-", `\-`)) {
				t.Errorf("man page lacks %s %s", c.name, f)
			}
		}
	}
	if _, err := exec.LookPath("groff"); err != nil {
		return
	}
	cmd := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z")
	cmd.Stdin = strings.NewReader(page)
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("groff: %v %s", err, out)
	}
}

// analyze --write keeps the capture with the verdicts on its frames; each
// line names its file and frame; --summary adds the report; --progress
// reports on standard error.
func TestAnalyzeWritesAnnotatedCapture(t *testing.T) {
	testutil.RequireRoot(t, "BPF_PROG_TEST_RUN")
	const capture = "../../testdata/rst-inject-rae.pcap"
	annotated := filepath.Join(t.TempDir(), "annotated.pcapng")
	code, out, errOut := runCLI("analyze", "--json", "--summary", "--progress", "1ns", "--write", annotated, capture)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[5], `{"report":{`) || !strings.HasPrefix(lines[4], `{"summary":{`) {
		t.Fatalf("want 4 events, the summary and the report:\n%s", out)
	}
	if !strings.Contains(lines[0], `"verdict":"spoofed"`) || !strings.Contains(lines[0], `"file":"`+capture+`","frame":2`) {
		t.Errorf("first event: %s", lines[0])
	}
	if !strings.Contains(errOut, "rst-inject-rae.pcap: 9 frames, 4 events so far") {
		t.Errorf("no progress on stderr: %q", errOut)
	}
	// Every frame is kept; the spoofed one carries its verdict.
	all, err := exec.Command("tshark", "-r", annotated).Output()
	if err != nil || strings.Count(string(all), "\n") != 9 {
		t.Errorf("annotated capture: %v, %d frames", err, strings.Count(string(all), "\n"))
	}
	spoofed, err := exec.Command("tshark", "-r", annotated, "-Y", `frame.comment contains "rstguard rst spoofed"`,
		"-T", "fields", "-e", "frame.number").Output()
	if err != nil || string(spoofed) != "2\n" {
		t.Errorf("spoofed frames in the annotated capture: %q %v", spoofed, err)
	}
}

func TestRates(t *testing.T) {
	before := dataplane.Counters{Packets: 100, RSTs: 10, EventsLost: 5,
		Judged:  dataplane.Judged{Verdicts: map[string]uint64{"spoofed": 2}},
		Actions: map[string]uint64{"drop": 1}}
	after := dataplane.Counters{Packets: 300, RSTs: 30, EventsLost: 3, // a reused slot: went down
		Judged:  dataplane.Judged{Verdicts: map[string]uint64{"spoofed": 6}},
		Actions: map[string]uint64{"drop": 5, "hold": 2}, HoldForged: 2, WireForwarded: 40}
	got := rates(before, after, 2)
	want := map[string]float64{"packets": 100, "rsts": 10, "spoofed": 2, "dropped": 2, "stopped": 3, "held": 1, "events_lost": 0,
		"forwarded": 20, "valid": 0, "suspect": 0, "unknown": 0}
	if !maps.Equal(got, want) {
		t.Errorf("rates %v, want %v", got, want)
	}
}

// One row a setting (dataplane.Settings): each is a flag of run, a key of
// its config file, settable at run time by set, and a key of status --json.
func TestSettingsFromOneTable(t *testing.T) {
	fs := newTestFlagSet()
	s := defaultSettings()
	daemonFlags(fs, &s)
	path := filepath.Join(t.TempDir(), "rstguard.json")
	pol := dataplane.DefaultPolicy()
	var status map[string]any
	if data, err := json.Marshal(statusReport{policy: &pol}); err != nil || json.Unmarshal(data, &status) != nil {
		t.Fatalf("status JSON %s: %v", data, err)
	}
	for _, ps := range dataplane.Settings {
		def := ps.Get(dataplane.DefaultPolicy())
		key := strings.ReplaceAll(ps.Name, "-", "_")
		if got := fmt.Sprint(status[key]); got != def {
			t.Errorf("%s: status --json %q = %s, want %s", ps.Name, key, got, def)
		}
		if secs, ok := ps.Seconds(pol); ok && status[key+"_seconds"] != secs {
			t.Errorf("%s: status --json %q = %v, want %v", ps.Name, key+"_seconds", status[key+"_seconds"], secs)
		}
		if fs.Lookup(ps.Name) == nil {
			t.Errorf("%s: no flag", ps.Name)
		}
		if !slices.Contains(settable, ps.Name) {
			t.Errorf("%s: set does not take it", ps.Name)
		}
		value := def
		if ps.JSONString() {
			value = strconv.Quote(def)
		}
		os.WriteFile(path, []byte(`{"`+key+`": `+value+`}`), 0o600)
		merged, err := withConfigFile(newTestFlagSet(), defaultSettings(), path)
		if err != nil || merged.policy[ps.Name] != def {
			t.Errorf("%s in a config file: %v, read %q", ps.Name, err, merged.policy[ps.Name])
		}
	}
}

// Every daemon setting of the config file is a flag by the same name, and
// a flag given wins over the file.
func TestFlagsOverTheConfigFile(t *testing.T) {
	fs := newTestFlagSet()
	s := defaultSettings()
	daemonFlags(fs, &s)
	reportFlags(fs, &s)
	typ := reflect.TypeFor[settings]()
	for i := range typ.NumField() {
		if name, ok := settingFlag(typ.Field(i)); ok && fs.Lookup(name) == nil {
			t.Errorf("config key of %s has no flag %q", typ.Field(i).Name, name)
		}
	}
	path := filepath.Join(t.TempDir(), "rstguard.json")
	os.WriteFile(path, []byte(`{"interfaces": ["eth9"], "xdp_mode": "generic", "zones": ["eth9=1"], "flow_table_size": 5}`), 0o600)
	fs = newTestFlagSet()
	s = defaultSettings()
	daemonFlags(fs, &s)
	if err := fs.Parse([]string{"-i", "eth1", "--zone", "eth1=2"}); err != nil {
		t.Fatal(err)
	}
	merged, err := withConfigFile(fs, s, path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(merged.Interfaces, []string{"eth1"}) || !slices.Equal(merged.Zones, []string{"eth1=2"}) ||
		merged.XDPMode != "generic" || merged.FlowTableSize != 5 {
		t.Errorf("merged %+v: want -i and --zone from the flags, xdp_mode and flow_table_size from the file", merged)
	}
}

// The daemon's own settings in docs/DEPLOYMENT.md are its settings struct's
// fields: each one's flag as run declares it, its config key, its default
// in the config file's form, and the flag's usage.
func TestDaemonSettingsDoc(t *testing.T) {
	doc, err := os.ReadFile("../../docs/DEPLOYMENT.md")
	if err != nil {
		t.Fatal(err)
	}
	fs := newTestFlagSet()
	s := defaultSettings()
	daemonFlags(fs, &s)
	reportFlags(fs, &s)
	var want strings.Builder
	want.WriteString("| flag | config key | default | meaning |\n|---|---|---|---|\n")
	typ, defaults := reflect.TypeFor[settings](), reflect.ValueOf(s)
	for i := range typ.NumField() {
		name, ok := settingFlag(typ.Field(i))
		if !ok {
			continue
		}
		key, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		value, _ := json.Marshal(defaults.Field(i).Interface())
		def := "`" + string(value) + "`"
		switch {
		case name == "host":
			def = "the host's name"
		case string(value) == "null":
			def = "none"
		}
		dashes := "--"
		if len(name) == 1 {
			dashes = "-"
		}
		fmt.Fprintf(&want, "| `%s%s` | `%s` | %s | %s |\n", dashes, name, key, def, fs.Lookup(name).Usage)
	}
	if !strings.Contains(string(doc), want.String()) {
		t.Errorf("docs/DEPLOYMENT.md lacks the daemon's settings table, which must read:\n%s", want.String())
	}
}

// TestWireSettings: --wire and "wire" in the config file give the pairs,
// whose ports are interfaces too; a bad pair is a clear error.
func TestWireSettings(t *testing.T) {
	cfg := resolvedConfig(t, `{"wire": [["eth0", "eth1"]], "wire_fail": "closed"}`)
	if len(cfg.Wire) != 1 || cfg.Wire[0].String() != "eth0:eth1" || !cfg.WireFailClosed ||
		!slices.Equal(cfg.Interfaces, []string{"eth0", "eth1"}) {
		t.Errorf("config: %+v", cfg)
	}

	cfg = resolvedConfig(t, `{}`, "-i", "eth2", "--wire", "eth0:eth1,eth3:eth4")
	if len(cfg.Wire) != 2 || cfg.WireFailClosed || !slices.Equal(cfg.Interfaces, []string{"eth2", "eth0", "eth1", "eth3", "eth4"}) {
		t.Errorf("flags: %+v", cfg)
	}

	for _, bad := range [][]string{{"--wire", "eth0"}, {"--wire", "eth0:eth0"}, {"--wire", "a:b:c"}, {"--wire-fail", "half"}} {
		fs := newTestFlagSet()
		s := defaultSettings()
		daemonFlags(fs, &s)
		if err := fs.Parse(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	s := defaultSettings()
	s.Wire = [][]string{{"eth0", "eth1"}, {"eth1", "eth2"}}
	if _, err := s.resolve(); err == nil || !strings.Contains(err.Error(), "eth1 is in two pairs") {
		t.Errorf("a port in two pairs: %v", err)
	}
}
