// Package capture reads and writes packet captures. Reading turns every
// frame, whatever the capture's link type, into the Ethernet frame the XDP
// program sees on a wire; writing produces pcap files tcpdump and tshark open.
package capture

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Frame is one captured frame, as Ethernet.
type Frame struct {
	Time time.Time
	Data []byte
	// Skipped says why a frame carries no data: a link type or family this
	// reader cannot turn into Ethernet. Such frames are counted, not judged.
	Skipped string
	// Unreadable: the capture's link type is none this reader knows
	// (Skipped names it), so no frame of it can be judged.
	Unreadable bool
}

// ErrRecordTooLong means a record claims more bytes than any frame has:
// a corrupt or hostile capture. Reading stops there.
var ErrRecordTooLong = errors.New("record longer than 16 MiB: corrupt capture")

// maxRecordBytes bounds what is read for one frame, whatever the record's
// header claims: a stream that claims gigabytes costs no more than this.
const maxRecordBytes = 16 << 20

// recordGuard fails a read once maxRecordBytes were read since the last
// frame was returned.
type recordGuard struct {
	r    io.Reader
	left int
}

func (g *recordGuard) Read(p []byte) (int, error) {
	if g.left <= 0 {
		return 0, ErrRecordTooLong
	}
	n, err := g.r.Read(p[:min(len(p), g.left)])
	g.left -= n
	return n, err
}

// ErrNotCapture means the input is neither pcap nor pcapng.
var ErrNotCapture = errors.New("not a pcap or pcapng file")

type packetSource interface {
	ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
}

// Reader reads frames from a pcap or pcapng file.
type Reader struct {
	f        *os.File
	guard    *recordGuard
	src      packetSource
	linkType func(ci gopacket.CaptureInfo) layers.LinkType
}

// Open opens a capture file, pcap or pcapng, judged by its magic number;
// "-" reads standard input (tcpdump -w - | rstguard analyze -).
func Open(path string) (*Reader, error) {
	f := os.Stdin
	if path != "-" {
		var err error
		if f, err = os.Open(path); err != nil {
			return nil, err
		}
	}
	r, err := newReader(f)
	if err != nil {
		if path != "-" {
			f.Close()
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if path != "-" {
		r.f = f // Close closes what Open opened, never standard input
	}
	return r, nil
}

func newReader(in io.Reader) (*Reader, error) {
	guard := &recordGuard{r: in, left: maxRecordBytes}
	br := bufio.NewReaderSize(guard, 1<<16)
	magic, err := br.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("%w: %d bytes", ErrNotCapture, len(magic))
	}
	switch binary.BigEndian.Uint32(magic) {
	case 0x0a0d0d0a:
		ng, err := pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return nil, fmt.Errorf("read pcapng header: %w", err)
		}
		return &Reader{guard: guard, src: ng, linkType: func(ci gopacket.CaptureInfo) layers.LinkType {
			if iface, err := ng.Interface(ci.InterfaceIndex); err == nil {
				return iface.LinkType
			}
			return ng.LinkType()
		}}, nil
	case 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1:
		p, err := pcapgo.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("read pcap header: %w", err)
		}
		lt := p.LinkType()
		return &Reader{guard: guard, src: p, linkType: func(gopacket.CaptureInfo) layers.LinkType { return lt }}, nil
	}
	return nil, fmt.Errorf("%w: magic %x", ErrNotCapture, magic)
}

// Next returns the next frame, or io.EOF at the end. A truncated last
// record is an error that wraps io.ErrUnexpectedEOF.
func (r *Reader) Next() (Frame, error) {
	data, ci, err := r.src.ReadPacketData()
	if err != nil {
		if errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return Frame{}, io.EOF
		}
		return Frame{}, fmt.Errorf("read frame: %w", err)
	}
	r.guard.left = maxRecordBytes
	fr := Frame{Time: ci.Timestamp}
	fr.Data, fr.Skipped, fr.Unreadable = toEthernet(r.linkType(ci), data)
	return fr, nil
}

// Close closes the file.
func (r *Reader) Close() error {
	if r.f == nil {
		return nil
	}
	return r.f.Close()
}

// syntheticMACs stand in for the link header a capture did not record.
var syntheticMACs = []byte{0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1}

const (
	etherTypeIPv4 = 0x0800
	etherTypeIPv6 = 0x86dd
)

func withEthernet(etherType uint16, payload []byte) []byte {
	f := make([]byte, 14+len(payload))
	copy(f, syntheticMACs)
	binary.BigEndian.PutUint16(f[12:], etherType)
	copy(f[14:], payload)
	return f
}

// toEthernet rewrites one frame of the given link type as Ethernet, or says
// why it cannot, and whether that is because the link type is unknown here.
func toEthernet(lt layers.LinkType, data []byte) ([]byte, string, bool) {
	switch lt {
	case layers.LinkTypeEthernet:
		return data, "", false
	case layers.LinkTypeRaw, 12, 14, layers.LinkTypeIPv4, layers.LinkTypeIPv6:
		// Raw IP: the version nibble says which.
		if len(data) == 0 {
			return nil, "empty raw IP frame", false
		}
		switch data[0] >> 4 {
		case 4:
			return withEthernet(etherTypeIPv4, data), "", false
		case 6:
			return withEthernet(etherTypeIPv6, data), "", false
		}
		return nil, fmt.Sprintf("raw frame of IP version %d", data[0]>>4), false
	case layers.LinkTypeLinuxSLL:
		// 16 bytes: packet type, ARPHRD, address length, address(8), protocol.
		if len(data) < 16 {
			return nil, "short Linux cooked header", false
		}
		return withEthernet(binary.BigEndian.Uint16(data[14:]), data[16:]), "", false
	case layers.LinkTypeLinuxSLL2:
		// 20 bytes: protocol, reserved, ifindex, ARPHRD, packet type, address length, address(8).
		if len(data) < 20 {
			return nil, "short Linux cooked v2 header", false
		}
		return withEthernet(binary.BigEndian.Uint16(data[0:]), data[20:]), "", false
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		// BSD loopback: a 4-byte address family, in the capturing host's byte
		// order for NULL and in network order for LOOP. IPv6's family differs
		// between BSDs (24, 28, 30).
		if len(data) < 4 {
			return nil, "short loopback header", false
		}
		family := binary.LittleEndian.Uint32(data)
		if family > 0xffff {
			family = binary.BigEndian.Uint32(data)
		}
		switch family {
		case 2:
			return withEthernet(etherTypeIPv4, data[4:]), "", false
		case 24, 28, 30:
			return withEthernet(etherTypeIPv6, data[4:]), "", false
		}
		return nil, fmt.Sprintf("loopback family %d", family), false
	}
	return nil, fmt.Sprintf("link type %s (%d)", lt, int(lt)), true
}
