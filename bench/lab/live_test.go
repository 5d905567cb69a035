package lab

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"

	"github.com/rstguard/rstguard/dataplane"
	"github.com/rstguard/rstguard/internal/testutil"
	"github.com/rstguard/rstguard/xdp"
)

// BenchmarkLiveTCP measures the program under real traffic: curl downloads
// from a Go server through a gateway namespace whose two veths carry, in
// turn, a bare XDP_PASS program, the parse + lookup baseline and rstguard
// (monitor mode, real clocks).
// The kernel's own run-time statistics (bpf_stats) give the cost per packet,
// this time with every data segment advancing its flow. Report the ratio;
// the throughput shows what veth itself costs.
func BenchmarkLiveTCP(b *testing.B) {
	testutil.RequireRoot(b, "namespaces, BPF")
	chain, err := NewChain(UniquePrefix(), "client", "gw", "server")
	if err != nil {
		b.Fatal(err)
	}
	defer chain.Close()
	srv, err := startServer(chain.Host("server"), chain.Addr("server"))
	if err != nil {
		b.Fatal(err)
	}
	defer srv.close()
	stats, err := ebpf.EnableStats(0) // BPF_STATS_RUN_TIME
	if err != nil {
		b.Fatal(err)
	}
	defer stats.Close()

	var base xdp.BaselineObjects
	if err := xdp.LoadBaselineObjects(&base, nil); err != nil {
		b.Fatal(err)
	}
	defer base.Close()
	dp, err := dataplane.Load(dataplane.Options{FlowTableSize: 4096})
	if err != nil {
		b.Fatal(err)
	}
	defer dp.Close()

	gw, client := chain.Host("gw"), chain.Host("client")
	url := "http://" + chain.Addr("server").String() + "/big"
	measure := func(prog *ebpf.Program) (nsPerPkt, mbitPerSec float64, pkts uint64) {
		for _, ifname := range []string{ClientSide, ServerSide} {
			link, err := gw.Netlink().LinkByName(ifname)
			if err != nil {
				b.Fatal(err)
			}
			if err := gw.Do(func() error {
				return netlink.LinkSetXdpFdWithFlags(link, prog.FD(), nl.XDP_FLAGS_DRV_MODE)
			}); err != nil {
				b.Fatal(err)
			}
		}
		before, err := prog.Stats()
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := client.Command(ctx, "curl", "-sS", "-o", "/dev/null", "-w", "%{speed_download}", url).Output()
		if err != nil {
			b.Fatalf("curl: %v", err)
		}
		after, err := prog.Stats()
		if err != nil {
			b.Fatal(err)
		}
		bytesPerSec, _ := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
		pkts = after.RunCount - before.RunCount
		return float64(after.Runtime-before.Runtime) / float64(pkts), bytesPerSec * 8 / 1e6, pkts
	}
	var bareNs, lookupNs, guardNs, bareMbit, guardMbit float64
	var pkts uint64
	for range b.N {
		ns, mbit, _ := measure(base.BarePass)
		bareNs, bareMbit = bareNs+ns, bareMbit+mbit
		// The lookup baseline inserts the download's flow on its first
		// packet and finds it on every other, as rstguard does.
		ns, _, _ = measure(base.ParseLookup)
		lookupNs += ns
		ns, mbit, n := measure(dp.Program())
		guardNs, guardMbit, pkts = guardNs+ns, guardMbit+mbit, pkts+n
	}
	c, err := dp.Counters()
	if err != nil || c.TCP == 0 {
		b.Fatalf("rstguard saw no TCP: %+v %v", c, err)
	}
	n := float64(b.N)
	b.ReportMetric(guardNs/n, "ns/pkt")
	b.ReportMetric(bareNs/n, "bare-ns/pkt")
	b.ReportMetric(guardNs/bareNs, "x-bare")
	b.ReportMetric(guardNs/lookupNs, "x-lookup")
	b.ReportMetric(guardMbit/bareMbit, "x-throughput")
	b.ReportMetric(float64(pkts)/n, "pkts/op")
	b.ReportMetric(0, "ns/op")
}
