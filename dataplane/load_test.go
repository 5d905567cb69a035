package dataplane

import (
	"testing"
	"unsafe"

	"github.com/rstguard/rstguard/xdp"
)

// maxVerifiedInsns guards against changes that make the program expensive to
// verify: a direct TCP option walk once took 875,000 of the 1,000,000 allowed.
// The program verifies in about 164,000 today.
const maxVerifiedInsns = 200_000

func TestVerifierBudget(t *testing.T) {
	requireRoot(t)
	dp, err := Load(Options{FlowTableSize: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	info, err := dp.Program().Info()
	if err != nil {
		t.Fatal(err)
	}
	n, ok := info.VerifiedInstructions()
	if !ok {
		t.Skip("kernel does not report verified instructions")
	}
	t.Logf("verified %d instructions", n)
	if n > maxVerifiedInsns {
		t.Errorf("verified %d instructions, budget %d", n, maxVerifiedInsns)
	}
}

// The kernel's hash tables store key and value each rounded up to 8 bytes:
// 40 + 136 = 176 bytes a flow: the zone in the key; in each direction the
// reply model's ACK floor, its stage and their time (12 bytes; 136 before
// them); each side's MAC and VLAN from its handshake, for probes in the wire
// (16 bytes; 160 before them).
func TestFlowEntrySize(t *testing.T) {
	const most = 176
	round8 := func(n uintptr) uintptr { return (n + 7) &^ 7 }
	key, val := unsafe.Sizeof(xdp.RstguardFlowKey{}), unsafe.Sizeof(xdp.RstguardFlowValue{})
	if round8(key)+round8(val) > most {
		t.Errorf("flow key %d + value %d bytes, stored as %d > %d", key, val, round8(key)+round8(val), most)
	}
}
