package dataplane

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/rstguard/rstguard/bench/frames"
	"github.com/rstguard/rstguard/internal/tcpflag"
	"github.com/rstguard/rstguard/xdp"
)

// benchFlows is how many distinct connections each path is measured over,
// so that the flow table is exercised beyond one hot key. BPF_PROG_TEST_RUN
// repeats one frame, so flows rotate between runs, not within one.
const benchFlows = 64

// benchRepeat is how often the kernel runs each frame per b.N. Each test run
// has a fixed cost of milliseconds here; short repeats measure only noise.
const benchRepeat = 20000

// flowConn is connection i of the benchmark set.
func flowConn(i int, v6 bool) *frames.Conn {
	var client, server netip.AddrPort
	if v6 {
		client = netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)}), uint16(10000+i))
		server = server6
	} else {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], 0x0a000000+uint32(i))
		client = netip.AddrPortFrom(netip.AddrFrom4(a), uint16(10000+i))
		server = serverAddr
	}
	return linuxPair(client, server)
}

// cost is the mean kernel-measured time of one run of each program over
// the same frames, measured side by side frame after frame so that the
// machine's drift hits all of them alike.
func cost(b *testing.B, progs []*ebpf.Program, fs [][]byte) []float64 {
	b.Helper()
	sums := make([]float64, len(progs))
	for _, f := range fs {
		for i, p := range progs {
			_, d, err := p.Benchmark(f, benchRepeat*b.N, nil)
			if err != nil {
				b.Fatal(err)
			}
			sums[i] += float64(d.Nanoseconds())
		}
	}
	for i := range sums {
		sums[i] /= float64(len(fs))
	}
	return sums
}

// BenchmarkPaths measures each path through rstguard beside two baselines
// measured in the same run, frame by frame: a bare XDP_PASS, and parse + one LRU lookup with
// rstguard's key layout over the same flows. Compare the x-bare and x-lookup
// ratios, not the times: this machine is shared and noisy.
func BenchmarkPaths(b *testing.B) {
	requireRoot(b)
	var base xdp.BaselineObjects
	if err := xdp.LoadBaselineObjects(&base, nil); err != nil {
		b.Fatal(err)
	}
	defer base.Close()

	h := newHarness(b, ModeDrop)
	var data, syn, synACK, pureACK, fin, validRST, forgedRST, data6, udp [][]byte
	for i := range benchFlows {
		c := flowConn(i, false)
		hs := c.Handshake()
		for _, f := range hs {
			if _, err := h.dp.Run(f, t0); err != nil {
				b.Fatal(err)
			}
		}
		data = append(data, c.Data(frames.Client, make([]byte, 1000)))
		if _, err := h.dp.Run(data[i], t0); err != nil {
			b.Fatal(err)
		}
		syn, synACK = append(syn, hs[0]), append(synACK, hs[1])
		pureACK = append(pureACK, c.ACK(frames.Server))
		fin = append(fin, c.Segment(frames.Client, tcpflag.FIN|tcpflag.ACK, nil).MustFrame())
		validRST = append(validRST, c.Segment(frames.Server, tcpflag.RST|tcpflag.ACK, nil).MustFrame())
		forgedRST = append(forgedRST, forgedFromClient(c).MustFrame())
		c6 := flowConn(i, true)
		for _, f := range c6.Handshake() {
			if _, err := h.dp.Run(f, t0); err != nil {
				b.Fatal(err)
			}
		}
		data6 = append(data6, c6.Data(frames.Client, make([]byte, 1000)))
		udp = append(udp, withIPProto(data[i], 17))
	}
	// The baseline table holds the same keys as rstguard's.
	if err := copyFlowKeys(h.dp.objs.Flows, base.BaselineFlows); err != nil {
		b.Fatal(err)
	}
	h.drain()

	// The lookup baseline parses IPv4 TCP only: its ratio means nothing elsewhere.
	paths := []struct {
		name     string
		fs       [][]byte
		vsLookup bool
	}{
		{"established", data, true},
		{"established-ipv6", data6, false},
		{"not-tcp", udp, false},
		{"syn", syn, true},
		{"syn-ack", synACK, true},
		{"pure-ack", pureACK, true},
		// A FIN changes its flow's state once; its repeats are retransmissions.
		{"fin", fin, true},
		{"valid-rst", validRST, true},
		{"forged-rst-drop", forgedRST, true},
	}
	for _, p := range paths {
		b.Run(p.name, func(b *testing.B) {
			c := cost(b, []*ebpf.Program{base.BarePass, base.ParseLookup, h.dp.Program()}, p.fs)
			bare, lookup, ns := c[0], c[1], c[2]
			b.ReportMetric(ns, "ns/pkt")
			b.ReportMetric(ns/bare, "x-bare")
			if p.vsLookup {
				b.ReportMetric(ns/lookup, "x-lookup")
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

// copyFlowKeys fills dst with src's keys so both programs look up the same flows.
func copyFlowKeys(src, dst *ebpf.Map) error {
	var key xdp.RstguardFlowKey
	var val xdp.RstguardFlowValue
	it := src.Iterate()
	for it.Next(&key, &val) {
		if err := dst.Put(&key, &val); err != nil {
			return err
		}
	}
	return it.Err()
}
