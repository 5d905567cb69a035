package inject

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/rstguard/rstguard/bench/frames"
	"github.com/rstguard/rstguard/internal/tcpflag"
)

// Trigger is the packet that set the injector off (a client's request) and
// what the injector learnt of its connection from the handshake.
type Trigger struct {
	Client, Server netip.AddrPort
	Seq, Ack       uint32 // of the trigger
	PayloadLen     int
	TTL            uint8  // as the injector saw it, before its router decremented it
	IPID           uint16 // of the trigger
	Window         uint16 // of the trigger
	ClientISN      uint32 // from the client's SYN, 0 if not seen
}

// Profile is one injector's behaviour, after a published device or trace.
type Profile struct {
	Name string
	Doc  string
	// DropFirst: the device also swallows the trigger, so the client must
	// retransmit (the incident's device).
	DropFirst bool
	// Exact: its RSTs copy every header the gateway can check (ttl-forge):
	// only evidence after the fact, or hold mode's question, convicts them.
	Exact bool
	// Forge returns the segments to send for one trigger, in order: its
	// RSTs, and whatever it sends to prepare them; ttl is the injector's
	// own initial TTL.
	Forge func(t Trigger, ttl uint8) []frames.Segment
	// Gap is the time between two of its RSTs (0: back to back).
	Gap time.Duration
}

// towardServer is a RST to the server in the client's name: seq is what the
// server expects next from the client.
func towardServer(t Trigger) frames.Segment {
	return frames.Segment{Src: t.Client, Dst: t.Server, Seq: t.Seq, Flags: tcpflag.RST}
}

// towardClient is a RST/ACK to the client in the server's name, acknowledging
// the trigger.
func towardClient(t Trigger) frames.Segment {
	return frames.Segment{Src: t.Server, Dst: t.Client, Seq: t.Ack, Ack: t.Seq + uint32(t.PayloadLen),
		Flags: tcpflag.RST | tcpflag.ACK}
}

// ttlForge sends the TTL the trigger leaves the injector's router with (one
// less than it arrived with: the router decrements what it forwards, not what
// it originates), so the RST reaches the gateway with the real packet's TTL.
func ttlForge(t Trigger, _ uint8) []frames.Segment {
	s := towardServer(t)
	s.TTL, s.IPID, s.DF = t.TTL-1, t.IPID+1, true
	return []frames.Segment{s}
}

// profiles are every injector the lab knows.
var profiles = []Profile{
	{
		Name: "incident",
		Doc: "the incident's device: drops the client's first request and sends one RST to the server in the " +
			"client's name, exact sequence, its own TTL; the client's retransmission is then reset by the server " +
			"(curl exit 56)",
		DropFirst: true,
		Forge: func(t Trigger, ttl uint8) []frames.Segment {
			s := towardServer(t)
			s.TTL, s.IPID = ttl, uint16(rand.N(65535)+1)
			return []frames.Segment{s}
		},
	},
	{
		Name: "gfw",
		Doc: "the Great Firewall 2006-2017 (Clayton et al.; Wang et al. IMC 2017): one RST and three RST/ACKs " +
			"at X, X+1460, X+4380 toward both ends, cycling TTL and window",
		Forge: func(t Trigger, ttl uint8) []frames.Segment {
			var out []frames.Segment
			for _, base := range []frames.Segment{towardServer(t), towardClient(t)} {
				rst := base
				rst.Flags, rst.Ack = tcpflag.RST, 0
				rst.TTL, rst.Window, rst.IPID = ttl-17, 2050, uint16(rand.N(65535)+1)
				out = append(out, rst)
				for i, off := range []uint32{0, 1460, 4380} {
					ra := base
					ra.Flags = tcpflag.RST | tcpflag.ACK
					ra.Ack = base.Ack
					if base.Dst == t.Server {
						ra.Ack = t.Ack
					}
					ra.Seq += off
					ra.TTL, ra.Window, ra.IPID = ttl-16+uint8(i), 3074+uint16(i)*1024, uint16(rand.N(65535)+1)
					out = append(out, ra)
				}
			}
			return out
		},
	},
	{
		Name: "gfw2023",
		Doc:  "2023 injector (net4people bbs #285): three RST/ACKs to the client with one sequence number and TTLs 65, 66, 67",
		Forge: func(t Trigger, _ uint8) []frames.Segment {
			var out []frames.Segment
			for _, ttl := range []uint8{65, 66, 67} {
				s := towardClient(t)
				s.TTL, s.IPID = ttl, 0
				out = append(out, s)
			}
			return out
		},
	},
	{
		Name: "mirror",
		Doc: "the Zeek rst-inject-rae trace: a RST/ACK to the client in the server's name that copies the " +
			"trigger's IP-ID and window and acknowledges the client's ISN instead of what it sent",
		Forge: func(t Trigger, ttl uint8) []frames.Segment {
			s := towardClient(t)
			s.TTL, s.IPID, s.Window, s.DF = ttl, t.IPID, t.Window, true
			s.Ack = t.ClientISN
			return []frames.Segment{s}
		},
	},
	likeTTLForge("ttl-forge", "a careful injector: chooses its TTL so that the RST reaches the gateway with the client's TTL, "+
		"exact sequence, the next IP-ID; swallows the first request so the client retransmits. "+
		"Header signals cannot catch it: only evidence after the fact",
		0, ttlForge),
	likeTTLForge("volley", "ttl-forge sent three times, 2 ms apart, as GFW-style injectors send volleys: a later RST at the "+
		"client's exact sequence must not pass for the client's answer to hold mode's probe",
		2*time.Millisecond, func(t Trigger, ttl uint8) []frames.Segment {
			return volleyOf(ttlForge(t, ttl)[0], 3)
		}),
	likeTTLForge("second-rst", "two ttl-forge RST/ACKs 5 ms apart: the second comes when the first is decided, and must be "+
		"dropped as the first's proof convicts it, not asked again",
		5*time.Millisecond, func(t Trigger, ttl uint8) []frames.Segment {
			s := ttlForge(t, ttl)[0]
			s.Flags, s.Ack = tcpflag.RST|tcpflag.ACK, t.Ack
			return volleyOf(s, 2)
		}),
	likeTTLForge("spent-answers", "ttl-forge that knows hold mode: first an out-of-window ACK to the client in the server's name, "+
		"which Linux answers and then answers no other such segment for 500 ms (tcp_invalid_ratelimit), "+
		"then the RST 1 ms later: a probe without data would go unanswered",
		time.Millisecond, func(t Trigger, ttl uint8) []frames.Segment {
			spend := frames.Segment{Src: t.Server, Dst: t.Client, Seq: t.Ack - 1000, Ack: t.Seq, Flags: tcpflag.ACK,
				TTL: ttl, DF: true, Window: 502}
			return append([]frames.Segment{spend}, ttlForge(t, ttl)...)
		}),
	{
		Name: "ttl-forge-race",
		Doc: "ttl-forge without dropping the request: the RST follows the request with the sequence number " +
			"after it, so the server takes it as exact once the request is in",
		Exact: true,
		Forge: func(t Trigger, ttl uint8) []frames.Segment {
			segs := ttlForge(t, ttl)
			segs[0].Seq += uint32(t.PayloadLen)
			return segs
		},
	},
	{
		Name: "in-window",
		Doc: "a sloppy injector: sequence inside the server's window but not exact (RFC 5961 makes Linux answer " +
			"with a challenge ACK), its own TTL; swallows the first request",
		DropFirst: true,
		Forge: func(t Trigger, ttl uint8) []frames.Segment {
			s := towardServer(t)
			s.Seq += 1000
			s.TTL, s.IPID = ttl, uint16(rand.N(65535)+1)
			return []frames.Segment{s}
		},
	},
	{
		Name: "blind",
		Doc:  "an off-path guesser: random sequence numbers, its own TTL",
		Forge: func(t Trigger, ttl uint8) []frames.Segment {
			s := towardServer(t)
			s.Seq = rand.Uint32()
			s.TTL, s.IPID = ttl, uint16(rand.N(65535)+1)
			return []frames.Segment{s}
		},
	},
}

// likeTTLForge is a profile that forges as ttl-forge does, every header the
// gateway checks copied and the first request swallowed, its segments gap
// apart.
func likeTTLForge(name, doc string, gap time.Duration, forge func(Trigger, uint8) []frames.Segment) Profile {
	return Profile{Name: name, Doc: doc, DropFirst: true, Exact: true, Gap: gap, Forge: forge}
}

// Lookup finds a profile by name.
func Lookup(name string) (Profile, bool) {
	i := slices.IndexFunc(profiles, func(p Profile) bool { return p.Name == name })
	if i < 0 {
		return Profile{}, false
	}
	return profiles[i], true
}

// ProfileNames lists the profiles, sorted.
func ProfileNames() []string {
	names := make([]string, 0, len(profiles))
	for _, p := range profiles {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	return names
}

// ProfileHelp documents every profile, for --help.
func ProfileHelp() string {
	var b strings.Builder
	for _, n := range ProfileNames() {
		p, _ := Lookup(n)
		fmt.Fprintf(&b, "  %-15s %s\n", n, p.Doc)
	}
	return b.String()
}

// Targets says whom the profile's RSTs reach: the server, the client or both
// (what it sends to prepare them aside). Where a gateway must stand to see
// them follows from it.
func (p Profile) Targets() (server, client bool) {
	t := Trigger{Client: netip.MustParseAddrPort("192.0.2.1:40000"), Server: netip.MustParseAddrPort("198.51.100.1:80"),
		Seq: 1000, Ack: 5000, PayloadLen: 40, TTL: 61, IPID: 300, Window: 502, ClientISN: 999}
	for _, s := range p.Forge(t, 64) {
		if s.Flags&tcpflag.RST != 0 {
			server = server || s.Dst == t.Server
			client = client || s.Dst == t.Client
		}
	}
	return server, client
}

// volleyOf is n copies of a forged segment, each with the next IP-ID, as an
// injector's counter gives them.
func volleyOf(s frames.Segment, n int) []frames.Segment {
	segs := make([]frames.Segment, n)
	for i := range segs {
		segs[i] = s
		segs[i].IPID += uint16(i)
	}
	return segs
}
