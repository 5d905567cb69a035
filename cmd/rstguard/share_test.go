package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/rstguard/rstguard/bench/lab"
	"github.com/rstguard/rstguard/control/bpffs"
	"github.com/rstguard/rstguard/dataplane"
)

// xdpTool runs one of Debian's xdp-tools in the gateway's namespace.
func (g *gateway) xdpTool(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := g.gw.Command(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// TestSharedInterface puts rstguard and xdp-filter (Debian's xdp-tools,
// which loads through libxdp) on one interface. This kernel refuses the
// freplace programs libxdp's dispatcher is made of (docs/DEPLOYMENT.md,
// "Sharing an interface"), so libxdp loads one program per interface: the
// two cannot run together, and neither may replace the other. rstguard's
// refusal names the program that holds the interface, and a start refused
// on one interface leaves the others as they were.
func TestSharedInterface(t *testing.T) {
	for _, tool := range []string{"xdp-filter", "xdp-loader"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s: %v (the xdp-tools package: .ci/deps installs it)", tool, err)
		}
	}
	g := newGateway(t)
	// libxdp works under /sys/fs/bpf and gives up when bpffs is not there.
	if err := bpffs.Ensure(g.pinDir); err != nil {
		t.Fatal(err)
	}
	if out, err := g.xdpTool("xdp-filter", "load", "-m", "native", lab.ClientSide); err != nil {
		t.Fatalf("xdp-filter load: %v: %s", err, out)
	}
	t.Cleanup(func() { g.xdpTool("xdp-filter", "unload", lab.ClientSide) })
	filterID := g.progOn(lab.ClientSide)
	if filterID == 0 {
		t.Fatal("xdp-filter load attached nothing")
	}
	filter, err := ebpf.NewProgramFromID(ebpf.ProgramID(filterID))
	if err != nil {
		t.Fatal(err)
	}
	info, err := filter.Info()
	filter.Close()
	if err != nil {
		t.Fatal(err)
	}

	_, errOut, code := g.rstguard("run", "-i", lab.ClientSide+","+lab.ServerSide, "--pin-dir", g.pinDir,
		"--events", g.events, "--metrics", "")
	want := fmt.Sprintf("another XDP program is attached (%s, id %d)", info.Name, filterID)
	if code == 0 || !strings.Contains(errOut, want) {
		t.Fatalf("rstguard run on xdp-filter's interface: exit %d, %q; want a refusal saying %q", code, errOut, want)
	}
	t.Logf("rstguard on xdp-filter's interface: %s", strings.TrimSpace(errOut))
	if id := g.progOn(lab.ClientSide); id != filterID {
		t.Errorf("after rstguard's refusal %s carries program %d, want xdp-filter's %d", lab.ClientSide, id, filterID)
	}
	if id := g.progOn(lab.ServerSide); id != 0 {
		t.Errorf("a refused start left program %d on %s", id, lab.ServerSide)
	}
	if out, err := g.curl(); err != nil {
		t.Fatalf("curl through xdp-filter: %v %s", err, out)
	}

	// The other way round: libxdp refuses to replace rstguard.
	if out, err := g.xdpTool("xdp-filter", "unload", lab.ClientSide); err != nil {
		t.Fatalf("xdp-filter unload: %v: %s", err, out)
	}
	g.startDaemon("drop")
	ours := g.progOn(lab.ClientSide)
	out, err := g.xdpTool("xdp-filter", "load", "-m", "native", lab.ClientSide)
	if err == nil {
		t.Fatalf("xdp-filter load on rstguard's interface succeeded: %s", out)
	}
	t.Logf("xdp-filter on rstguard's interface: %s", strings.TrimSpace(out))
	if id := g.progOn(lab.ClientSide); id != ours {
		t.Errorf("after xdp-filter's attempt %s carries program %d, want rstguard's %d", lab.ClientSide, id, ours)
	}
	status, err := g.xdpTool("xdp-loader", "status", lab.ClientSide)
	if err != nil || !strings.Contains(status, dataplane.ProgramName) || !strings.Contains(status, fmt.Sprint(ours)) {
		t.Errorf("xdp-loader status does not list rstguard (%s, id %d): %v\n%s", dataplane.ProgramName, ours, err, status)
	}
	if out, err := g.curl(); err != nil {
		t.Fatalf("curl through rstguard: %v %s", err, out)
	}
	for _, st := range g.status().Interfaces {
		if st.Ifname == lab.ClientSide && (st.ProgID != ours || !st.Ours) {
			t.Errorf("status shows %+v on %s, want rstguard's program %d", st, lab.ClientSide, ours)
		}
	}
}
