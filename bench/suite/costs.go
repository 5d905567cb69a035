package suite

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// HoldCost is what a decided hold costs, from control/hold's BenchmarkHold
// (go test, from the repository root): per case, the CPU a hold takes
// beyond receiving its frames (kernel and daemon, one core), holds decided
// a second, and the delay a released RST gets beyond the answer that
// decided it, p50 and p99.
type HoldCost struct {
	Case        string
	Holds       int
	CPUus       float64
	HoldsPerSec float64
	P50us       float64
	P99us       float64
}

// holdBenchLine is one of BenchmarkHold's result lines: kind, case, count
// and the metrics as value-unit pairs.
var holdBenchLine = regexp.MustCompile(`^BenchmarkHold/(throughput|latency)/(\S+?)-\d+\s+(\d+)\s+(.*)$`)

func (o Options) holdCosts() ([]HoldCost, error) {
	holds := 20_000
	if o.Short {
		holds = 500
	}
	out, err := exec.Command("go", "test", "-run", "^$", "-bench", "^BenchmarkHold$",
		fmt.Sprintf("-benchtime=%dx", holds), "./control/hold").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("go test -bench BenchmarkHold ./control/hold (run the suite from the repository root): %w\n%s", err, out)
	}
	var costs []HoldCost
	at := map[string]int{}
	for _, line := range strings.Split(string(out), "\n") {
		m := holdBenchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		i, ok := at[m[2]]
		if !ok {
			i = len(costs)
			at[m[2]] = i
			costs = append(costs, HoldCost{Case: m[2]})
		}
		costs[i].Holds, _ = strconv.Atoi(m[3])
		f := strings.Fields(m[4])
		for j := 0; j+1 < len(f); j += 2 {
			v, _ := strconv.ParseFloat(f[j], 64)
			switch f[j+1] {
			case "cpu-us/hold":
				costs[i].CPUus = v
			case "added-holds/s":
				costs[i].HoldsPerSec = v
			case "p50-added-us":
				costs[i].P50us = v
			case "p99-added-us":
				costs[i].P99us = v
			}
		}
	}
	if len(costs) == 0 {
		return nil, fmt.Errorf("BenchmarkHold printed no results:\n%s", out)
	}
	return costs, nil
}

// AnalyzeCost is `rstguard analyze` over one capture and over many: what
// a capture costs beyond the first, when the program is loaded once.
type AnalyzeCost struct {
	Files   int
	One     time.Duration // one capture, the setup included
	All     time.Duration // all of them
	PerFile time.Duration // each beyond the first
}

// analyzeCost times analyze on the dev corpus's captures
// (RSTGUARD_CORPUS, else ../shared/corpus/captures) or, without it, on
// testdata's captures repeated to as many files.
func (o Options) analyzeCost() (AnalyzeCost, error) {
	dir := os.Getenv("RSTGUARD_CORPUS")
	if dir == "" {
		dir = "../shared/corpus/captures"
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.pcap*"))
	if len(files) == 0 {
		local, _ := filepath.Glob("testdata/*.pcap")
		for len(local) > 0 && len(files) < 250 {
			files = append(files, local...)
		}
	}
	if o.Short && len(files) > 20 {
		files = files[:20]
	}
	if len(files) < 2 {
		return AnalyzeCost{}, fmt.Errorf("analyze: no captures in %s or testdata/", dir)
	}
	run := func(fs []string) (time.Duration, error) {
		start := time.Now()
		var errb bytes.Buffer
		cmd := exec.Command(o.Rstguard, append([]string{"analyze", "--json"}, fs...)...)
		cmd.Stderr = &errb
		out, err := cmd.Output()
		// A capture of the corpus may end short (exit 2, said on stderr):
		// what the command read still counts, its time too.
		if err != nil && len(out) == 0 {
			return 0, fmt.Errorf("rstguard analyze: %w: %s", err, errb.String())
		}
		return time.Since(start), nil
	}
	c := AnalyzeCost{Files: len(files)}
	var err error
	if c.One, err = run(files[:1]); err != nil {
		return c, err
	}
	if c.All, err = run(files); err != nil {
		return c, err
	}
	c.PerFile = (c.All - c.One) / time.Duration(len(files)-1)
	return c, nil
}
