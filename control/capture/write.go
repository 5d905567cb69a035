package capture

import (
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Writer appends Ethernet frames to a classic pcap file, readable by root
// only (evidence names the hosts involved). It is safe for concurrent use.
type Writer struct {
	mu sync.Mutex
	f  *os.File
	w  *pcapgo.Writer
}

// snaplen is the largest frame a writer records.
const snaplen = 65535

// Create creates (or truncates) path with mode 0600 and writes the header.
func Create(path string) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	w := pcapgo.NewWriterNanos(f)
	if err := w.WriteFileHeader(snaplen, layers.LinkTypeEthernet); err != nil {
		f.Close()
		return nil, fmt.Errorf("write pcap header to %s: %w", path, err)
	}
	return &Writer{f: f, w: w}, nil
}

// Write records one frame; length is its length on the wire, which may
// exceed len(data) when only its start was kept.
func (w *Writer) Write(at time.Time, data []byte, length int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	ci := gopacket.CaptureInfo{Timestamp: at, CaptureLength: len(data), Length: max(length, len(data))}
	return w.w.WritePacket(ci, data)
}

// Close flushes and closes the file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.f.Close()
}
