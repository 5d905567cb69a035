package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rstguard/rstguard/bench/lab"
	"github.com/rstguard/rstguard/control/capture"
	"github.com/rstguard/rstguard/dataplane"
	"github.com/rstguard/rstguard/internal/testutil"
)

// progOn is the ID of the XDP program on an interface of the gateway.
func (g *gateway) progOn(ifname string) uint32 {
	g.t.Helper()
	link, err := g.gw.Netlink().LinkByName(ifname)
	if err != nil {
		g.t.Fatal(err)
	}
	if x := link.Attrs().Xdp; x != nil && x.Attached {
		return x.ProgId
	}
	return 0
}

func pcapFrames(t *testing.T, path string) int {
	t.Helper()
	r, err := capture.Open(path)
	if err != nil {
		t.Fatalf("open evidence: %v", err)
	}
	defer r.Close()
	n := 0
	for {
		if _, err := r.Next(); err != nil {
			return n
		}
		n++
	}
}

// The daemon loses no protection, evidence or events around restarts,
// rotations, a second instance, renames and failed starts.
func TestDaemonLifecycle(t *testing.T) {
	g := newGateway(t)
	g.startDaemon("monitor")
	h := g.hold()

	t.Run("a second daemon on another pin directory is refused, naming the first's", func(t *testing.T) {
		prog := g.progOn(lab.ClientSide)
		other := g.pinDir + "-other"
		t.Cleanup(func() { dataplane.Unpin(other) })
		_, errOut, code := g.rstguard("run", "-i", lab.ClientSide, "--pin-dir", other, "--events", "-",
			"--metrics", "", "--pcap", "", "--flow-table-size", "4096")
		if code != exitFailure || !strings.Contains(errOut, "another pin directory") || !strings.Contains(errOut, g.pinDir) {
			t.Errorf("exit %d: %s", code, errOut)
		}
		if g.progOn(lab.ClientSide) != prog {
			t.Error("the first daemon's program was replaced")
		}
		// The refused run leaves nothing pinned: the directory claims nothing.
		if _, err := os.Stat(other); !os.IsNotExist(err) {
			t.Errorf("the refused run left %s behind: %v", other, err)
		}
		// Cleaning up that other pin directory touches nothing of the first daemon's.
		out, errOut, code := g.rstguard("detach", "--all", "--purge", "--pin-dir", other)
		if code != 0 || strings.Contains(out, "detached from") || !strings.Contains(out, "left "+lab.ClientSide) {
			t.Errorf("detach --all --purge --pin-dir %s: exit %d: %s%s", other, code, out, errOut)
		}
		_, errOut, code = g.rstguard("detach", "-i", lab.ClientSide, "--pin-dir", other)
		if code != exitFailure || !strings.Contains(errOut, g.pinDir) {
			t.Errorf("detach -i %s --pin-dir %s: exit %d: %s", lab.ClientSide, other, code, errOut)
		}
		if g.progOn(lab.ClientSide) != prog || g.progOn(lab.ServerSide) == 0 {
			t.Error("cleaning up another pin directory took the first daemon's program off")
		}
	})

	t.Run("detach refuses while the daemon holds its pin directory, naming its pid", func(t *testing.T) {
		prog := g.progOn(lab.ClientSide)
		_, errOut, code := g.rstguard("detach", "--all", "--pin-dir", g.pinDir)
		if code != exitFailure || !strings.Contains(errOut, fmt.Sprintf("pid %d", g.daemon.Process.Pid)) {
			t.Errorf("exit %d: %s", code, errOut)
		}
		if g.progOn(lab.ClientSide) != prog {
			t.Error("detach took the running daemon's program off")
		}
	})

	t.Run("the daemon puts its program back when someone takes it off", func(t *testing.T) {
		prog := g.progOn(lab.ClientSide)
		if out, err := g.gw.Command(context.Background(), "ip", "link", "set", "dev", lab.ClientSide, "xdp", "off").CombinedOutput(); err != nil {
			t.Fatalf("ip link set xdp off: %v: %s", err, out)
		}
		g.waitFor("the program back on "+lab.ClientSide, func() bool { return g.progOn(lab.ClientSide) == prog })
		g.waitFor("the removal logged", func() bool {
			return strings.Contains(g.logs.String(), "rstguard's program was taken off the interface: re-attaching")
		})
	})

	t.Run("attach and detach --purge refuse while the daemon holds the pins", func(t *testing.T) {
		for _, args := range [][]string{
			{"attach", "-i", lab.ClientSide, "--pin-dir", g.pinDir, "--flow-table-size", "4096"},
			{"detach", "--purge", "--pin-dir", g.pinDir},
		} {
			_, errOut, code := g.rstguard(args...)
			if code != exitFailure || !strings.Contains(errOut, "a daemon (rstguard run) is using --pin-dir "+g.pinDir) {
				t.Errorf("%v: exit %d: %s", args, code, errOut)
			}
		}
	})

	t.Run("SIGHUP reopens the event log and the evidence (logrotate)", func(t *testing.T) {
		os.Rename(g.events, g.events+".1")
		os.Rename(g.pcap, g.pcap+".1")
		g.daemon.Process.Signal(syscall.SIGHUP)
		for _, state := range []string{"RELOADING=1", "READY=1"} {
			if err := g.ready.Wait(state, 5*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		// The log reaches us through a pipe, after READY perhaps.
		g.waitFor("reopen logged", func() bool { return strings.Contains(g.logs.String(), "SIGHUP: event log and evidence reopened") })
		g.forgeClientRST(h) // spoofed, passed in monitor mode
		g.waitFor("the event in the new log", func() bool { return g.countRecords("rst", "spoofed") == 1 })
		if n := pcapFrames(t, g.pcap); n != 1 {
			t.Errorf("new evidence holds %d frames, want 1", n)
		}
		if st := g.status(); st.mode() != "monitor" {
			t.Errorf("daemon after SIGHUP: %+v", st)
		}
	})

	t.Run("logrotate's postrotate reloads the daemon alone: an events --follow lives on", func(t *testing.T) {
		conf, err := os.ReadFile("../../contrib/logrotate/rstguard")
		if err != nil {
			t.Fatal(err)
		}
		_, script, _ := strings.Cut(string(conf), "postrotate\n")
		script, _, _ = strings.Cut(script, "endscript")
		follow := exec.Command(rstguardBin, "events", "--follow", "--file", g.events)
		if err := follow.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { follow.Process.Kill(); follow.Wait() }()
		time.Sleep(100 * time.Millisecond) // let it reach its loop
		reopened := strings.Count(g.logs.String(), "SIGHUP: event log and evidence reopened")
		if out, err := exec.Command("sh", "-c", script).CombinedOutput(); err != nil {
			t.Fatalf("postrotate: %v: %s", err, out)
		}
		g.waitFor("the daemon's reopen logged", func() bool {
			return strings.Count(g.logs.String(), "SIGHUP: event log and evidence reopened") > reopened
		})
		time.Sleep(100 * time.Millisecond)
		if err := follow.Process.Signal(syscall.Signal(0)); err != nil {
			t.Errorf("events --follow died with the rotation: %v", err)
		}
		// And a SIGHUP sent to it directly ends it no more.
		follow.Process.Signal(syscall.SIGHUP)
		time.Sleep(100 * time.Millisecond)
		if err := follow.Process.Signal(syscall.Signal(0)); err != nil {
			t.Errorf("events --follow died of SIGHUP: %v", err)
		}
	})

	t.Run("a restart keeps the pinned mode and the evidence, and says when a flag changes the mode", func(t *testing.T) {
		g.mustRstguard("set", "mode", "drop", "--pin-dir", g.pinDir)
		frames := pcapFrames(t, g.pcap)
		g.stopDaemon(syscall.SIGTERM)
		g.startDaemon("")
		if st := g.status(); st.mode() != "drop" {
			t.Errorf("mode %s after a restart without --mode, want drop", st.mode())
		}
		if strings.Contains(g.logs.String(), "policy changed") {
			t.Errorf("the policy changed without a flag:\n%s", g.logs.String())
		}
		if !strings.Contains(g.logs.String(), "settings kept from the pinned policy") || !strings.Contains(g.logs.String(), `kept="mode=drop"`) {
			t.Errorf("the restart inherited mode drop without a word:\n%s", g.logs.String())
		}
		if n := pcapFrames(t, g.pcap); n != frames {
			t.Errorf("evidence holds %d frames after the restart, want the %d it had", n, frames)
		}
		g.stopDaemon(syscall.SIGTERM)
		g.startDaemon("monitor")
		if !strings.Contains(g.logs.String(), "policy changed") {
			t.Errorf("--mode monitor changed the policy without a word:\n%s", g.logs.String())
		}
		if strings.Contains(g.logs.String(), "settings kept") {
			t.Errorf("a run that gave every setting it differs in warned of kept settings:\n%s", g.logs.String())
		}
	})

	t.Run("an interface renamed while the daemon runs is detached at a clean stop", func(t *testing.T) {
		g.stopDaemon(syscall.SIGTERM)
		addVeth(t, g.gw, "extra0")
		g.startDaemon("monitor", "extra0")
		nl := g.gw.Netlink()
		link, _ := nl.LinkByName("extra0")
		nl.LinkSetDown(link)
		if err := nl.LinkSetName(link, "renamed0"); err != nil {
			t.Fatal(err)
		}
		nl.LinkSetUp(link)
		g.waitFor("rename seen", func() bool { return strings.Contains(g.logs.String(), "change=renamed") })
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		out, _ := g.gw.Command(ctx, "curl", "-sS", "http://127.0.0.1:19742/metrics").Output()
		if !strings.Contains(string(out), `rstguard_attached{host="gw-test",iface="renamed0",xdp_mode="native"} 1`) {
			t.Errorf("metrics do not show renamed0 attached:\n%s", grepLines(string(out), "rstguard_attached"))
		}
		g.stopDaemon(syscall.SIGTERM)
		if id := g.progOn("renamed0"); id != 0 {
			t.Errorf("program %d left on the renamed interface", id)
		}
	})

	t.Run("a failed start after kill -9 leaves the interfaces as it found them", func(t *testing.T) {
		g.startDaemon("drop")
		g.stopDaemon(syscall.SIGKILL)
		prog := g.progOn(lab.ClientSide)
		if prog == 0 {
			t.Fatal("no program left by the killed daemon")
		}
		// The metrics port is taken.
		var ln net.Listener
		if err := g.gw.Do(func() (err error) { ln, err = net.Listen("tcp", "127.0.0.1:19742"); return err }); err != nil {
			t.Fatal(err)
		}
		_, errOut, code := g.rstguard("run", "-i", lab.ClientSide+","+lab.ServerSide, "--pin-dir", g.pinDir,
			"--events", g.events, "--pcap", "", "--metrics", "127.0.0.1:19742", "--flow-table-size", "4096")
		ln.Close()
		if code != exitFailure || !strings.Contains(errOut, "19742") {
			t.Errorf("exit %d: %s", code, errOut)
		}
		if got := g.progOn(lab.ClientSide); got != prog {
			t.Errorf("program %d on %s after the failed start, want the killed daemon's %d", got, lab.ClientSide, prog)
		}
		// Attaching fails on the second interface (no native XDP on lo).
		_, errOut, code = g.rstguard("run", "-i", lab.ClientSide+",lo", "--xdp-mode", "native", "--pin-dir", g.pinDir,
			"--events", g.events, "--pcap", "", "--metrics", "", "--flow-table-size", "4096")
		if code != exitFailure {
			t.Errorf("exit %d: %s", code, errOut)
		}
		if got := g.progOn(lab.ClientSide); got != prog {
			t.Errorf("program %d on %s after a failed attach, want the killed daemon's %d put back", got, lab.ClientSide, prog)
		}
		g.mustRstguard("detach", "--all", "--pin-dir", g.pinDir)
	})
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// A command blocked in a read (report on a FIFO nobody writes) ends on
// SIGTERM, and on Ctrl-C; it does not hang.
func TestCommandsEndOnSignals(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "events.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(rstguardBin, "report", "--file", fifo)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond) // blocked opening the FIFO
			cmd.Process.Signal(sig)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
				if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
					t.Errorf("exit %d, want %d", code, exitInterrupted)
				}
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				t.Fatal(fmt.Sprintf("still running 5 s after %s", sig))
			}
		})
	}
}

// Nagios runs its checks unprivileged: what such a user cannot read is
// UNKNOWN (3), not CRITICAL, and the line says where to look instead.
func TestCheckUnprivilegedIsUnknown(t *testing.T) {
	testutil.RequireRoot(t, "run the check as another user")
	dir, err := os.MkdirTemp("", "rstguard-nobody")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "rstguard")
	data, err := os.ReadFile(rstguardBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil || os.Chmod(dir, 0o755) != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "status", "--check")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != nagiosUnknown || !strings.HasPrefix(string(out), "RSTGUARD UNKNOWN - cannot read") {
		t.Errorf("status --check as nobody: %v: %q", err, out)
	}
}

// A pin directory whose parent is no bpffs gets one mounted, and the daemon
// says where (issue 19: every bpffs mount is logged; in a private mount
// namespace, as under ip netns exec, it warns that nothing else sees it).
func TestDaemonSaysWhereItMountsBPFFS(t *testing.T) {
	g := newGateway(t)
	root := filepath.Join(t.TempDir(), "bpf")
	g.pinDir = filepath.Join(root, "pins")
	g.startDaemon("monitor")
	defer func() {
		g.stopDaemon(syscall.SIGTERM)
		g.rstguard("detach", "--all", "--purge", "--pin-dir", g.pinDir)
		unix.Unmount(root, unix.MNT_DETACH)
	}()
	if !strings.Contains(g.logs.String(), `msg="mounted bpffs" host=gw-test root=`+root) {
		t.Errorf("no word of the bpffs mounted on %s:\n%s", root, g.logs.String())
	}
	if st := g.status(); st.mode() != "monitor" || len(st.Interfaces) != 2 {
		t.Errorf("status on the new bpffs: mode %q, interfaces %v", st.mode(), st.Interfaces)
	}
}
