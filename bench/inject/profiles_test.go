package inject

import (
	"net/netip"
	"testing"

	"github.com/rstguard/rstguard/internal/tcpflag"
)

// Every profile forges RSTs in the names the placement expects, each a
// frame a stack would parse; what prepares them comes first.
func TestProfiles(t *testing.T) {
	tr := Trigger{Client: netip.MustParseAddrPort("10.99.0.1:40000"), Server: netip.MustParseAddrPort("10.99.5.2:80"),
		Seq: 1000, Ack: 5000, PayloadLen: 40, TTL: 61, IPID: 300, Window: 502, ClientISN: 999}
	for _, name := range ProfileNames() {
		p, ok := Lookup(name)
		segs := p.Forge(tr, 64)
		if !ok || len(segs) == 0 || p.Doc == "" {
			t.Errorf("%s: %d segments, doc %q", name, len(segs), p.Doc)
			continue
		}
		if server, client := p.Targets(); !server && !client {
			t.Errorf("%s: its RSTs reach neither end, so no gateway can be placed to see them", name)
		}
		if segs[len(segs)-1].Flags&tcpflag.RST == 0 {
			t.Errorf("%s: its last segment is no RST: %+v", name, segs[len(segs)-1])
		}
		for _, s := range segs {
			if s.Src != tr.Client && s.Src != tr.Server {
				t.Errorf("%s: in nobody's name: %s", name, s.Src)
			}
			if _, err := s.Frame(); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
	// ttl-forge copies what the gateway checks: the client's TTL as the
	// trigger leaves the injector's router, the next IP-ID, exact seq.
	s := mustLookup(t, "ttl-forge").Forge(tr, 64)[0]
	if s.Src != tr.Client || s.TTL != tr.TTL-1 || s.IPID != tr.IPID+1 || s.Seq != tr.Seq || !s.DF {
		t.Errorf("ttl-forge: %+v", s)
	}
	// spent-answers spends the client's answer to out-of-window segments
	// first: an ACK to it, in the server's name, below what it has.
	if segs := mustLookup(t, "spent-answers").Forge(tr, 64); len(segs) != 2 || segs[0].Src != tr.Server ||
		segs[0].Dst != tr.Client || segs[0].Flags != tcpflag.ACK || segs[0].Seq-tr.Ack < 1<<31 {
		t.Errorf("spent-answers: %+v", segs)
	}
	if ProfileHelp() == "" {
		t.Error("no profile help")
	}
}

func mustLookup(t *testing.T, name string) Profile {
	t.Helper()
	p, ok := Lookup(name)
	if !ok {
		t.Fatalf("no profile %q", name)
	}
	return p
}
