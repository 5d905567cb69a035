package capture

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/rstguard/rstguard/control/logfile"
)

// Writer appends Ethernet frames to a classic pcap file (nanosecond
// timestamps), readable by root only: evidence names the hosts involved. It
// never truncates: an existing file of its own format is appended to, one of
// another format is set aside, and a file emptied under it (logrotate's
// copytruncate) gets a new header before the next frame. With a size limit
// it rotates: path.1 is the newest old file, path.N the oldest kept. It is
// safe for concurrent use.
type Writer struct {
	mu       sync.Mutex
	path     string
	maxSize  int64
	maxFiles int
	f        *os.File
	w        *pcapgo.Writer
	// SetAside names a file of another format found at the path and renamed
	// out of the way by the last open, for the caller to report.
	SetAside string
}

// snaplen is the largest frame a writer records.
const snaplen = 65535

// pcapHeader is the file header this writer writes: pcap with nanosecond
// timestamps, version 2.4, Ethernet, little-endian.
var pcapHeader = func() []byte {
	var b bytes.Buffer
	pcapgo.NewWriterNanos(&b).WriteFileHeader(snaplen, layers.LinkTypeEthernet)
	return b.Bytes()
}()

// OpenWriter opens path for evidence, appending. maxSize (bytes, 0 for no limit)
// and maxFiles (old files kept) bound it.
func OpenWriter(path string, maxSize int64, maxFiles int) (*Writer, error) {
	w := &Writer{path: path, maxSize: maxSize, maxFiles: maxFiles}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *Writer) open() error {
	f, err := logfile.Open(w.path)
	if err != nil {
		return err
	}
	head := make([]byte, len(pcapHeader))
	n, err := readHead(w.path, head)
	switch {
	case err != nil:
		f.Close()
		return err
	case n > 0 && !bytes.Equal(head[:n], pcapHeader[:n]) || n > 0 && n < len(pcapHeader):
		// Not this writer's pcap: keep it, out of the way.
		f.Close()
		w.SetAside = fmt.Sprintf("%s.%s.other", w.path, time.Now().UTC().Format("20060102T150405"))
		if err := os.Rename(w.path, w.SetAside); err != nil {
			return fmt.Errorf("set %s aside: %w", w.path, err)
		}
		if f, err = logfile.Open(w.path); err != nil {
			return err
		}
	}
	w.f, w.w = f, pcapgo.NewWriterNanos(f)
	return nil
}

func readHead(path string, head []byte) (int, error) {
	r, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	n, err := io.ReadFull(r, head)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = nil
	}
	return n, err
}

// Write records one frame; length is its length on the wire, which may
// exceed len(data) when only its start was kept.
func (w *Writer) Write(at time.Time, data []byte, length int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	fi, err := w.f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if w.maxSize > 0 && size > 0 && size+int64(16+len(data)) > w.maxSize {
		if err := w.rotate(); err != nil {
			return err
		}
		size = 0
	}
	if size == 0 { // new, rotated, or emptied by copytruncate
		if err := w.w.WriteFileHeader(snaplen, layers.LinkTypeEthernet); err != nil {
			return err
		}
	}
	ci := gopacket.CaptureInfo{Timestamp: at, CaptureLength: len(data), Length: max(length, len(data))}
	return w.w.WritePacket(ci, data)
}

// rotate moves path to path.1 (and path.1 to path.2, and so on, the oldest
// beyond maxFiles dropped) and starts a new file.
func (w *Writer) rotate() error {
	w.f.Close()
	if w.maxFiles > 0 {
		os.Remove(fmt.Sprintf("%s.%d", w.path, w.maxFiles))
		for i := w.maxFiles - 1; i >= 1; i-- {
			os.Rename(fmt.Sprintf("%s.%d", w.path, i), fmt.Sprintf("%s.%d", w.path, i+1))
		}
		if err := os.Rename(w.path, w.path+".1"); err != nil {
			return fmt.Errorf("rotate %s: %w", w.path, err)
		}
	} else if err := os.Remove(w.path); err != nil {
		return fmt.Errorf("rotate %s: %w", w.path, err)
	}
	return w.open()
}

// Reopen closes the file and opens the path again: after logrotate moved
// the file away (SIGHUP), writing goes on in a new one.
func (w *Writer) Reopen() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.f.Close()
	return w.open()
}

// Close closes the file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.f.Close()
}
