package dataplane

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/rstguard/rstguard/xdp"
)

// Reset forgets every flow, hold, count and event budget: the program's
// state as freshly loaded, so that one load judges capture after capture
// (rstguard analyze), each from nothing, without paying the verifier again.
// The policy, the allow-list and the zones stay.
func (d *Dataplane) Reset() error {
	return errors.Join(
		clearMap[xdp.RstguardFlowKey, xdp.RstguardFlowValue](d.objs.Flows),
		clearMap[xdp.RstguardFlowKey, xdp.RstguardFlowValue](d.objs.Embryonic),
		clearMap[xdp.RstguardFlowKey, xdp.RstguardHold](d.objs.Holds),
		zeroPerCPU(d.objs.Counters),
		zeroPerCPU(d.objs.CpuBudgets),
	)
}

// zeroPerCPU sets every value of a per-CPU array to zero on every CPU, in
// one batch.
func zeroPerCPU(m *ebpf.Map) error {
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return err
	}
	n := int(m.MaxEntries())
	keys := make([]uint32, n)
	for i := range keys {
		keys[i] = uint32(i)
	}
	zero := make([]byte, m.ValueSize())
	values := make([][]byte, n*cpus) // key i's value on CPU c at i*cpus+c
	for i := range values {
		values[i] = zero
	}
	if _, err := m.BatchUpdate(keys, values, nil); err != nil {
		return fmt.Errorf("zero %v: %w", m, err)
	}
	return nil
}
