package frames

import (
	"net/netip"

	"github.com/rstguard/rstguard/internal/tcpflag"
)

// Side names one end of a Conn.
type Side int

// The two ends.
const (
	Client Side = iota
	Server
)

// Peer is one end of a Conn and what it puts in its headers.
type Peer struct {
	Addr   netip.AddrPort
	TTL    uint8  // as seen where the frames are judged
	ISN    uint32 // initial sequence number
	IPID   uint16 // next IPv4 ID
	Window uint16
	WScale uint8
	// IPIDStep is how far the ID moves per packet: 1 for Linux's per-flow
	// counter; 0 keeps it at IPID (zero model when IPID is 0).
	IPIDStep uint16
	// TS makes the peer send timestamps; TSval is its clock.
	TS    bool
	TSval uint32
	// FlowLabel is the IPv6 flow label the peer keeps for the connection.
	FlowLabel uint32
	// MD5 makes the peer sign every segment with TCP-MD5 (RFC 2385).
	MD5 bool

	next  uint32 // next sequence number to send
	acked uint32 // next sequence number expected from the other end
}

// Conn plays both ends of one TCP connection: each method returns the frame
// that end would send and advances its state, as a real stack does.
type Conn struct {
	peers [2]Peer
}

// NewConn starts a connection between client and server.
func NewConn(client, server Peer) *Conn {
	c := &Conn{peers: [2]Peer{client, server}}
	for i := range c.peers {
		c.peers[i].next = c.peers[i].ISN
	}
	return c
}

// Peer returns the current state of one end.
func (c *Conn) Peer(s Side) Peer { return c.peers[s] }

// Segment is what side s would send now with these flags and payload; it
// changes nothing, so that a test or injector can alter it first.
func (c *Conn) Segment(s Side, flags uint8, payload []byte) Segment {
	me, them := &c.peers[s], &c.peers[1-s]
	seg := Segment{
		Src: me.Addr, Dst: them.Addr, Seq: me.next, Flags: flags,
		Window: me.Window, TTL: me.TTL, IPID: me.IPID, DF: true, Payload: payload, FlowLabel: me.FlowLabel,
		MD5: me.MD5,
	}
	if flags&tcpflag.ACK != 0 {
		seg.Ack = me.acked
	}
	if flags&tcpflag.SYN != 0 {
		seg.MSS, seg.WScale, seg.SACKPermitted = 1460, me.WScale, true
	}
	if flags&(tcpflag.RST|tcpflag.ACK) == tcpflag.RST {
		// A plain RST is Linux's stateless reset (tcp_v4_send_reset): window 0,
		// IP-ID 0 with DF, no timestamps. A RST/ACK from a socket (abort) keeps them.
		seg.Window, seg.IPID = 0, 0
		return seg
	}
	if me.TS {
		seg.TS, seg.TSval = true, me.TSval
		if flags&tcpflag.SYN == 0 || flags&tcpflag.ACK != 0 {
			seg.TSecr = them.TSval
		}
	}
	return seg
}

// Send turns seg into a frame and advances side s as if it had sent it.
func (c *Conn) Send(s Side, seg Segment) []byte {
	me, them := &c.peers[s], &c.peers[1-s]
	end := seg.Seq + uint32(len(seg.Payload))
	if seg.Flags&(tcpflag.SYN|tcpflag.FIN) != 0 {
		end++
	}
	if int32(end-me.next) > 0 {
		me.next = end
	}
	if int32(end-them.acked) > 0 || them.acked == 0 {
		them.acked = end
	}
	me.IPID += me.IPIDStep
	me.TSval++
	return seg.MustFrame()
}

// Handshake returns the SYN, SYN/ACK and ACK that open the connection.
func (c *Conn) Handshake() [][]byte {
	return [][]byte{
		c.Send(Client, c.Segment(Client, tcpflag.SYN, nil)),
		c.Send(Server, c.Segment(Server, tcpflag.SYN|tcpflag.ACK, nil)),
		c.Send(Client, c.Segment(Client, tcpflag.ACK, nil)),
	}
}

// Data sends payload from side s with PSH/ACK.
func (c *Conn) Data(s Side, payload []byte) []byte {
	return c.Send(s, c.Segment(s, tcpflag.PSH|tcpflag.ACK, payload))
}

// ACK sends a pure ACK from side s.
func (c *Conn) ACK(s Side) []byte { return c.Send(s, c.Segment(s, tcpflag.ACK, nil)) }

// FIN sends FIN/ACK from side s.
func (c *Conn) FIN(s Side) []byte { return c.Send(s, c.Segment(s, tcpflag.FIN|tcpflag.ACK, nil)) }
