package report

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"hash/fnv"
	"net/netip"

	"github.com/rstguard/rstguard/dataplane"
)

// Schema names the event layout; it changes only when a key changes
// meaning (keys are only ever added).
const Schema = "rstguard.event.v1"

// EVE is the part of a record in Suricata's EVE JSON layout, so that a
// pipeline built for eve.json (Filebeat's and Vector's Suricata inputs,
// Splunk's and Elastic's parsers) takes rstguard's events as they are.
type EVE struct {
	// Timestamp is Suricata's format: microseconds and a numeric zone.
	Timestamp string `json:"timestamp"`
	// EventType is the event's kind (rst, data_after_rst, hold, ...).
	EventType string     `json:"event_type"`
	SrcIP     netip.Addr `json:"src_ip"`
	SrcPort   uint16     `json:"src_port"`
	DestIP    netip.Addr `json:"dest_ip"`
	DestPort  uint16     `json:"dest_port"`
	Proto     string     `json:"proto,omitempty"`
	InIface   string     `json:"in_iface,omitempty"`
	// FlowID is the same for every event of one connection (both
	// directions, one zone): FNV-1a of the connection's key in the
	// program's tables, cut to 53 bits so that a JSON parser's float64
	// holds it exactly.
	FlowID uint64 `json:"flow_id,omitempty"`
	// CommunityID is Community ID v1, seed 0, as Zeek and Suricata compute
	// it: the same connection carries the same value in their logs.
	CommunityID string `json:"community_id,omitempty"`
	// EventID is unique per event and the same when the same event is
	// written again (a replayed analysis, a re-shipped log): a hash of the
	// host, the time and the packet.
	EventID  string `json:"event_id"`
	Schema   string `json:"schema"`
	Severity int    `json:"severity"`
}

// Severities, Suricata's scale: 1 is the most severe.
const (
	SeverityHigh   = 1 // a RST judged spoofed or proven forged
	SeverityMedium = 2 // suspect, or the collateral of a forgery
	SeverityLow    = 3 // a RST judged valid or not judged
)

// eveTimeLayout is Suricata's timestamp layout.
const eveTimeLayout = "2006-01-02T15:04:05.000000-0700"

func newEVE(r Record) EVE {
	e := EVE{
		Timestamp: r.Time.Format(eveTimeLayout), EventType: r.Kind.String(),
		SrcIP: r.Src.Addr(), SrcPort: r.Src.Port(), DestIP: r.Dst.Addr(), DestPort: r.Dst.Port(),
		InIface: r.Iface, EventID: eventID(r), Schema: Schema, Severity: severity(r),
	}
	if r.Src.IsValid() { // a packet's event, not a policy change
		e.Proto, e.FlowID, e.CommunityID = "TCP", FlowID(r.Src, r.Dst, r.Zone), CommunityID(r.Src, r.Dst, ipProtoTCP)
	}
	return e
}

const ipProtoTCP = 6

func severity(r Record) int {
	switch {
	case r.Kind == dataplane.EventConfirmed:
		return SeverityHigh
	case r.Kind == dataplane.EventHold && r.Hold != nil && r.Hold.Outcome.Forged():
		return SeverityHigh
	case r.Kind == dataplane.EventHold:
		return SeverityLow
	case r.Kind == dataplane.EventCollateral, r.Kind == dataplane.EventTinyFragment:
		return SeverityMedium
	case r.Verdict == dataplane.VerdictSpoofed:
		return SeverityHigh
	case r.Verdict == dataplane.VerdictSuspect:
		return SeverityMedium
	}
	return SeverityLow
}

// CommunityID is the Community ID v1 of a flow, seed 0
// (https://github.com/corelight/community-id-spec): base64 of the SHA-1 of
// seed, ordered addresses, protocol, a zero pad byte and ordered ports, all
// in network byte order.
func CommunityID(src, dst netip.AddrPort, proto uint8) string {
	a, b := src, dst // the smaller address (then port) first, whichever way the packet went
	if a.Compare(b) > 0 {
		a, b = b, a
	}
	h := sha1.New()
	h.Write([]byte{0, 0}) // seed 0
	h.Write(a.Addr().Unmap().AsSlice())
	h.Write(b.Addr().Unmap().AsSlice())
	h.Write([]byte{proto, 0})
	h.Write(binary.BigEndian.AppendUint16(nil, a.Port()))
	h.Write(binary.BigEndian.AppendUint16(nil, b.Port()))
	return "1:" + base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// FlowID is the flow_id of a connection in a zone; see EVE.FlowID.
func FlowID(src, dst netip.AddrPort, zone uint16) uint64 {
	key, _ := dataplane.Segment{Src: src, Dst: dst}.Key(zone)
	h := fnv.New64a()
	binary.Write(h, binary.LittleEndian, key) // fixed-size fields: cannot fail
	return h.Sum64() & (1<<53 - 1)
}

func eventID(r Record) string {
	h := sha256.New()
	h.Write([]byte(r.Host + "\x00" + r.Iface + "\x00" + r.Kind.String() + "\x00"))
	if p := r.Policy; p != nil {
		h.Write([]byte(p.Setting + "\x00" + p.From + "\x00" + p.To + "\x00"))
	}
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(r.Time.UnixNano())))
	for _, ep := range []netip.AddrPort{r.Src, r.Dst} {
		b, _ := ep.MarshalBinary()
		h.Write(b)
	}
	h.Write(binary.BigEndian.AppendUint32(nil, r.Seq))
	h.Write(binary.BigEndian.AppendUint32(nil, r.Ack))
	return hex.EncodeToString(h.Sum(nil)[:16])
}
