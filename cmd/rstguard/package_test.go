package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rstguard/rstguard/control/privilege"
)

const unitFile = "../../contrib/systemd/rstguard.service"

// unitSettings reads a systemd unit's Key=Value lines (the last of each).
func unitSettings(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), "="); ok && !strings.HasPrefix(k, "#") {
			out[k] = v
		}
	}
	return out
}

// The unit waits for the daemon's READY, reloads with SIGHUP, restarts on
// failure, grants exactly the capabilities run checks for, and reads the
// default settings file.
func TestSystemdUnit(t *testing.T) {
	u := unitSettings(t, unitFile)
	for k, want := range map[string]string{
		"Type": "notify", "ExecReload": "kill -HUP $MAINPID", "Restart": "on-failure",
		"ExecStart": "/usr/sbin/rstguard run --config /etc/rstguard/rstguard.json",
	} {
		if u[k] != want {
			t.Errorf("%s=%q, want %q", k, u[k], want)
		}
	}
	var caps []string
	for _, c := range daemonCapabilities {
		caps = append(caps, privilege.Name(c))
	}
	for _, k := range []string{"CapabilityBoundingSet", "AmbientCapabilities"} {
		got := strings.Fields(u[k])
		if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(caps))) {
			t.Errorf("%s=%v, want what run checks for: %v", k, got, caps)
		}
	}
	// The settings file the unit reads is one run accepts.
	fs := newTestFlagSet()
	s := defaultSettings()
	daemonFlags(fs, &s)
	s, err := withConfigFile(fs, s, "../../contrib/rstguard.json")
	if err != nil {
		t.Fatalf("contrib/rstguard.json: %v", err)
	}
	s.Interfaces = []string{"eth0"}
	if _, err := s.resolve(); err != nil {
		t.Errorf("contrib/rstguard.json with an interface: %v", err)
	}
}

// make deb builds a package that installs into a scratch root: binary,
// unit (which systemd-analyze verify accepts as installed), logrotate file,
// settings, man page and completions.
func TestDebianPackage(t *testing.T) {
	for _, tool := range []string{"make", "dpkg", "dpkg-deb", "systemd-analyze"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	out, err := exec.Command("make", "-C", "../..", "--no-print-directory", "deb").Output()
	if err != nil {
		t.Fatalf("make deb: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	deb := filepath.Join("../..", lines[len(lines)-1])
	// Its version sorts by history, as dpkg compares versions: before any
	// tag, by the commit count (a bare commit hash would not sort).
	v, _ := exec.Command("dpkg-deb", "-f", deb, "Version").Output()
	version := strings.TrimSpace(string(v))
	if tags, _ := exec.Command("git", "-C", "../..", "tag", "--list", "v[0-9]*").Output(); len(tags) == 0 {
		n, _ := exec.Command("git", "-C", "../..", "rev-list", "--count", "HEAD").Output()
		count, _ := strconv.Atoi(strings.TrimSpace(string(n)))
		older := fmt.Sprintf("0~git%d.gffffff", count-1)
		if !strings.HasPrefix(version, fmt.Sprintf("0~git%d.g", count)) ||
			exec.Command("dpkg", "--compare-versions", version, "gt", older).Run() != nil {
			t.Errorf("package version %q: want 0~git%d.gHASH, sorting after %s", version, count, older)
		}
	}
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), nil, 0o644)
	// --force-depends: the scratch root has no libc6 package recorded.
	install := exec.Command("dpkg", "--root="+root, "--force-depends", "--force-not-root", "--log=/dev/null", "-i", deb)
	// dpkg refuses to run without ldconfig and start-stop-daemon in PATH,
	// which a user's PATH (no /usr/sbin) lacks.
	install.Env = append(os.Environ(), "PATH="+os.Getenv("PATH")+":/usr/sbin:/sbin")
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("dpkg -i: %v\n%s", err, out)
	}
	for _, f := range []string{"usr/sbin/rstguard", "usr/lib/systemd/system/rstguard.service", "etc/logrotate.d/rstguard",
		"etc/rstguard/rstguard.json", "usr/share/man/man8/rstguard.8.gz", "usr/share/bash-completion/completions/rstguard",
		"usr/share/zsh/vendor-completions/_rstguard"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("the package does not install %s: %v", f, err)
		}
	}
	if out, err := exec.Command(filepath.Join(root, "usr/sbin/rstguard"), "--version").Output(); err != nil ||
		!strings.HasPrefix(string(out), "rstguard ") || strings.Contains(string(out), "rstguard dev ") {
		t.Errorf("installed rstguard --version: %q %v (want a stamped version)", out, err)
	}
	if out, err := exec.Command("dpkg-query", "--admindir="+filepath.Join(root, "var/lib/dpkg"), "-W", "-f=${Conffiles}", "rstguard").Output(); err != nil ||
		!strings.Contains(string(out), "/etc/rstguard/rstguard.json") {
		t.Errorf("settings are not a conffile: %q %v", out, err)
	}
	// systemd-analyze verify prints warnings and still exits 0: any output
	// fails. It checks that ExecStart exists, so it points at the scratch
	// root's binary.
	unit, _ := os.ReadFile(filepath.Join(root, "usr/lib/systemd/system/rstguard.service"))
	verify := filepath.Join(t.TempDir(), "rstguard.service")
	os.WriteFile(verify, []byte(strings.ReplaceAll(string(unit), "/usr/sbin/rstguard", filepath.Join(root, "usr/sbin/rstguard"))), 0o644)
	if out, err := exec.Command("systemd-analyze", "verify", "--man=no", verify).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// logrotate accepts the shipped file and rotates the event log with it.
func TestLogrotateFile(t *testing.T) {
	if _, err := exec.LookPath("logrotate"); err != nil {
		t.Skip("logrotate not installed")
	}
	dir := t.TempDir()
	conf, err := os.ReadFile("../../contrib/logrotate/rstguard")
	if err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "events.jsonl")
	os.WriteFile(log, []byte("{}\n"), 0o600)
	path := filepath.Join(dir, "rstguard.conf")
	local := strings.ReplaceAll(string(conf), "/var/log/rstguard", dir)
	// The test runs as root but the files are its own: no su, no create owner.
	local = strings.ReplaceAll(local, "create 0600 root root", "create 0600")
	os.WriteFile(path, []byte(local), 0o644)
	out, err := exec.Command("logrotate", "--force", "--state", filepath.Join(dir, "state"), path).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("logrotate: %v\n%s", err, out)
	}
	if _, err := os.Stat(log + ".1"); err != nil {
		t.Errorf("not rotated: %v", err)
	}
}

// The alert rules load, and each fires (or stays quiet) as its unit tests
// say (contrib/prometheus/rstguard-rules.test.yml).
func TestPrometheusRules(t *testing.T) {
	if _, err := exec.LookPath("promtool"); err != nil {
		t.Skip("promtool (Debian: prometheus) not installed")
	}
	for _, args := range [][]string{{"check", "rules", "rstguard-rules.yml"}, {"test", "rules", "rstguard-rules.test.yml"}} {
		cmd := exec.Command("promtool", args...)
		cmd.Dir = "../../contrib/prometheus"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}

// metricNamesIn lists the rstguard metrics the alert rules and the
// dashboard query, for the daemon test to find in a real scrape.
func metricNamesIn(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	re := regexp.MustCompile(`\brstguard_[a-z_]+`)
	for _, f := range []string{"../../contrib/prometheus/rstguard-rules.yml", "../../contrib/grafana/rstguard.json"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range re.FindAllString(string(data), -1) {
			names[strings.TrimSuffix(n, "_bucket")] = true
		}
	}
	return names
}

// The dashboard is valid JSON whose every panel queries something.
func TestGrafanaDashboard(t *testing.T) {
	data, err := os.ReadFile("../../contrib/grafana/rstguard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(data, &dash); err != nil || dash.Title == "" || len(dash.Panels) == 0 {
		t.Fatalf("dashboard: %v %+v", err, dash)
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 || p.Targets[0].Expr == "" {
			t.Errorf("panel %q queries nothing", p.Title)
		}
	}
}
