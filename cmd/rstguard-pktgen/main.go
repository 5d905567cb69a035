// Command rstguard-pktgen sends a gateway's TCP traffic out of an interface
// to load-test an inline box (rstguard or anything else): many concurrent
// flows with handshakes, data both ways, FINs, legitimate resets and forged
// ones, in a chosen mix, or a SYN or RST flood.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rstguard/rstguard/bench/pktgen"
	"github.com/rstguard/rstguard/control/privilege"
	"github.com/rstguard/rstguard/internal/cmdline"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := cmdline.NewFlagSet("rstguard-pktgen", "usage: rstguard-pktgen -i IFACE [--engine live|afxdp|kernel] [--flows N] "+
		"[--mix K=W,... | --preset NAME] [--size BYTES] [--ipv6] [--rate PPS] [--count N] [--duration D] [--json]\n\n"+
		"Sends a gateway's TCP traffic out of IFACE: every flow's handshake first (unless the mix is only SYNs),\n"+
		"then the mix, rewriting the client's address and port per flow.\n", "")
	iface := fs.String("i", "", "interface to send out of (required)")
	engine := fs.String("engine", "live", "how to send: "+strings.Join(pktgen.Engines, ", "))
	flows := fs.Uint("flows", 1000, fmt.Sprintf("concurrent flows, 1 to %d", pktgen.MaxFlows))
	mixFlag := fs.String("mix", "", "weights of kinds, e.g. data=90,rst=1,forged=1 (kinds: "+strings.Join(pktgen.Kinds, ", ")+")")
	preset := fs.String("preset", "", "a named mix: gateway, syn-flood, rst-flood (default gateway)")
	size := fs.Int("size", pktgen.MinSize, fmt.Sprintf("frame size on the wire with the FCS, %d to %d", pktgen.MinSize, pktgen.MaxSize))
	ipv6 := fs.Bool("ipv6", false, "send IPv6 instead of IPv4")
	rate := fs.Float64("rate", 0, "packets per second (0: as fast as possible)")
	count := fs.Uint64("count", 0, "packets of the mix to send (0: no limit)")
	duration := fs.Duration("duration", 0, "how long to send the mix (0: no limit; with neither, until interrupted)")
	dstMAC := fs.String("dst-mac", "ff:ff:ff:ff:ff:ff", "the frames' destination MAC: the box under test's port")
	burst := fs.Uint("handshake-burst", pktgen.DefaultHandshakeBurst, "flows that open at once (SYNs, then their SYN/ACKs, then their ACKs): at most half what the box keeps half-open")
	asJSON := fs.Bool("json", false, "print the summary as JSON, no progress line")
	if code, done := cmdline.Parse(fs, args); done {
		return code
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "rstguard-pktgen: "+format+"\n", a...)
		return 1
	}
	switch {
	case fs.NArg() > 0:
		return usage("unexpected argument %q", fs.Arg(0))
	case *iface == "":
		return usage("-i IFACE is required")
	case !slices.Contains(pktgen.Engines, *engine):
		return usage("--engine must be one of %s, not %q", strings.Join(pktgen.Engines, ", "), *engine)
	case *flows < 1 || *flows > pktgen.MaxFlows:
		return usage("--flows must be 1 to %d", pktgen.MaxFlows)
	case *mixFlag != "" && *preset != "":
		return usage("--mix and --preset are exclusive")
	case *size < pktgen.MinSize || *size > pktgen.MaxSize:
		return usage("--size must be %d to %d", pktgen.MinSize, pktgen.MaxSize)
	case *burst < 1 || *burst > pktgen.MaxFlows:
		return usage("--handshake-burst must be 1 to %d", pktgen.MaxFlows)
	case *rate < 0:
		return usage("--rate must not be negative")
	case *duration < 0:
		return usage("--duration must not be negative")
	}
	mix, ok := pktgen.Presets[*preset]
	if *preset == "" {
		mix = pktgen.Presets["gateway"]
	} else if !ok {
		return usage("unknown preset %q: gateway, syn-flood or rst-flood", *preset)
	}
	if *mixFlag != "" {
		var err error
		if mix, err = pktgen.ParseMix(*mixFlag); err != nil {
			return usage("--%v", err)
		}
	}
	dst, err := net.ParseMAC(*dstMAC)
	if err != nil || len(dst) != 6 {
		return usage("--dst-mac %q is not an Ethernet address", *dstMAC)
	}

	if err := privilege.Require(privilege.CapBPF, privilege.CapNetAdmin); err != nil {
		fmt.Fprintf(os.Stderr, "rstguard-pktgen: %v\n", err)
		return 2
	}
	ifc, err := net.InterfaceByName(*iface)
	if err != nil {
		fmt.Fprintf(os.Stderr, "rstguard-pktgen: interface %q: %v\n", *iface, err)
		return 2
	}
	if ifc.Flags&net.FlagUp == 0 {
		fmt.Fprintf(os.Stderr, "rstguard-pktgen: interface %s is down\n", *iface)
		return 2
	}
	traffic, err := pktgen.BuildTraffic(mix, *size, *ipv6, ifc.HardwareAddr, dst)
	if err != nil {
		return usage("%v", err)
	}
	eng, err := pktgen.OpenEngine(*engine, ifc, uint32(*flows))
	if err != nil {
		fmt.Fprintf(os.Stderr, "rstguard-pktgen: %v\n", err)
		return 2
	}
	defer eng.Close()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg := pktgen.Config{Flows: uint32(*flows), Rate: *rate, Count: *count, Duration: *duration, HandshakeBurst: uint32(*burst)}
	if !*asJSON {
		cfg.Progress = func(s pktgen.Stats) {
			fmt.Fprintf(os.Stderr, "\r%s  %12d packets  %10.0f pps ", s.Elapsed.Round(time.Second), s.Sent, s.PPS)
		}
	}
	st, err := pktgen.Run(ctx, eng, traffic, cfg)
	if cfg.Progress != nil {
		fmt.Fprintln(os.Stderr)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "rstguard-pktgen: %v\n", err)
		return 2
	}
	if *asJSON {
		out, _ := json.Marshal(struct {
			Engine string `json:"engine"`
			Iface  string `json:"interface"`
			Size   int    `json:"size"`
			IPv6   bool   `json:"ipv6"`
			pktgen.Stats
		}{*engine, *iface, *size, *ipv6, st})
		fmt.Println(string(out))
		return 0
	}
	fmt.Printf("%s engine, %s: %d flows, %d handshake packets, then %d packets in %.2fs: %.0f pps\n",
		*engine, *iface, st.Flows, st.Handshake, st.Sent, st.Seconds, st.PPS)
	for _, k := range pktgen.Kinds {
		if n := st.ByKind[k]; n > 0 {
			fmt.Printf("  %-7s %d\n", k, n)
		}
	}
	return 0
}
