package capture

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/rstguard/rstguard/control/logfile"
)

// EvidenceFrame is one frame of evidence.
type EvidenceFrame struct {
	Time time.Time
	Data []byte
	// Length is the frame's length on the wire, which may exceed len(Data)
	// when only its start was kept.
	Length int
	// Iface is the interface it arrived on ("" if unknown): each gets its
	// own interface block, as a capture on several interfaces has.
	Iface string
	// Comment goes on the frame (Wireshark: frame.comment).
	Comment string
}

// WriterOptions bound and describe an evidence file.
type WriterOptions struct {
	// MaxSize (bytes, 0 for no limit) rotates the file; MaxFiles old files
	// are kept (path.1 the newest).
	MaxSize  int64
	MaxFiles int
	// Application and Host name the writer and this box in each section
	// header, so the file says where it came from without the event log.
	Application, Host string
	// Interfaces get their interface blocks at the start of each section
	// (the attached interfaces); others are added as frames name them.
	Interfaces []string
}

// Writer appends frames to a pcapng file, readable by root only: evidence
// names the hosts involved. Each run, rotation or copytruncate starts a new
// section (section header, interface blocks) in the same file, as pcapng
// allows; frames are numbered across the whole file, as Wireshark numbers
// them. It never truncates: a file that is not pcapng is set aside. It is
// safe for concurrent use.
type Writer struct {
	mu   sync.Mutex
	path string
	opts WriterOptions
	f    *os.File
	// ng writes the current section; nil until its first frame.
	ng     *pcapgo.NgWriter
	ifaces map[string]int // interface block ids of this section
	// frames counts the frames in the file, the last one's number.
	frames uint64
	// SetAside names a file of another format found at the path and renamed
	// out of the way by the last open, for the caller to report.
	SetAside string
}

// pcapngMagic starts every pcapng file: a section header block's type.
var pcapngMagic = []byte{0x0a, 0x0d, 0x0d, 0x0a}

// snaplen is the largest frame a writer records.
const snaplen = 65535

// OpenWriter opens path for evidence, appending.
func OpenWriter(path string, opts WriterOptions) (*Writer, error) {
	w := &Writer{path: path, opts: opts}
	if err := w.open(); err != nil {
		return nil, err
	}
	return w, nil
}

// Path is the file frames go to now.
func (w *Writer) Path() string { return w.path }

func (w *Writer) open() error {
	f, err := logfile.Open(w.path)
	if err != nil {
		return err
	}
	w.ng, w.frames = nil, 0
	frames, ours, err := countFrames(w.path)
	switch {
	case err != nil:
		f.Close()
		return err
	case !ours:
		f.Close()
		w.SetAside = fmt.Sprintf("%s.%s.other", w.path, time.Now().UTC().Format("20060102T150405"))
		if err := os.Rename(w.path, w.SetAside); err != nil {
			return fmt.Errorf("set %s aside: %w", w.path, err)
		}
		if f, err = logfile.Open(w.path); err != nil {
			return err
		}
	}
	w.f, w.frames = f, frames
	return nil
}

// countFrames counts the frames of the pcapng file at path; ours is false
// for a file of another format (empty files are ours).
func countFrames(path string) (frames uint64, ours bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<16)
	magic, err := br.Peek(len(pcapngMagic))
	switch {
	case err == io.EOF && len(magic) == 0:
		return 0, true, nil // empty
	case err != nil && err != io.EOF:
		return 0, false, err
	case !bytes.Equal(magic, pcapngMagic):
		return 0, false, nil
	}
	r, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{})
	if err != nil {
		return 0, false, nil
	}
	for {
		// A torn last block (a crash mid-write) ends the count: the next
		// section starts after it and readers stop there too.
		if _, _, err := r.ReadPacketData(); err != nil {
			return frames, true, nil
		}
		frames++
	}
}

// startSection writes a section header and the interface blocks.
func (w *Writer) startSection(firstIface string) error {
	names := append([]string{firstIface}, w.opts.Interfaces...)
	comment := "rstguard evidence: RSTs judged suspect or spoofed, each frame commented with its verdict"
	if w.opts.Host != "" {
		comment += "; host " + w.opts.Host
	}
	section := pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{
		Hardware: runtime.GOARCH, OS: runtime.GOOS, Application: w.opts.Application, Comment: comment}}
	ng, err := pcapgo.NewNgWriterInterface(w.f, ngInterface(names[0]), section)
	if err != nil {
		return err
	}
	w.ng, w.ifaces = ng, map[string]int{names[0]: 0}
	for _, n := range names[1:] {
		if _, err := w.interfaceID(n); err != nil {
			return err
		}
	}
	return nil
}

func ngInterface(name string) pcapgo.NgInterface {
	if name == "" {
		name = "unknown"
	}
	return pcapgo.NgInterface{Name: name, OS: runtime.GOOS, LinkType: layers.LinkTypeEthernet,
		SnapLength: snaplen, TimestampResolution: 9}
}

func (w *Writer) interfaceID(name string) (int, error) {
	if id, ok := w.ifaces[name]; ok {
		return id, nil
	}
	id, err := w.ng.AddInterface(ngInterface(name))
	if err != nil {
		return 0, err
	}
	w.ifaces[name] = id
	return id, nil
}

// Write records one frame and returns its number in the file (from 1, as
// Wireshark's frame.number) and the file's path.
func (w *Writer) Write(fr EvidenceFrame) (path string, number uint64, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fi, err := w.f.Stat()
	if err != nil {
		return "", 0, err
	}
	size := fi.Size()
	if w.maxSizeReached(size, len(fr.Data)) {
		if err := w.rotate(); err != nil {
			return "", 0, err
		}
		size = 0
	}
	if size == 0 { // new, rotated, or emptied by copytruncate
		w.ng, w.frames = nil, 0
	}
	if err := w.writeFrame(fr); err != nil {
		// Whole blocks or nothing: a write cut short (a full disk) is cut
		// off again, and the next write starts a new section, as the
		// buffered writer that failed keeps its error.
		w.ng = nil
		return "", 0, errors.Join(err, w.f.Truncate(size))
	}
	w.frames++
	return w.path, w.frames, nil
}

func (w *Writer) writeFrame(fr EvidenceFrame) error {
	if w.ng == nil {
		if err := w.startSection(fr.Iface); err != nil {
			return err
		}
	}
	id, err := w.interfaceID(fr.Iface)
	if err != nil {
		return err
	}
	ci := gopacket.CaptureInfo{Timestamp: fr.Time, CaptureLength: len(fr.Data), Length: max(fr.Length, len(fr.Data)),
		InterfaceIndex: id}
	var opts pcapgo.NgPacketOptions
	if fr.Comment != "" {
		opts.Comments = []string{fr.Comment}
	}
	if err := w.ng.WritePacketWithOptions(ci, fr.Data, opts); err != nil {
		return err
	}
	return w.ng.Flush()
}

// maxSizeReached: a frame of n bytes (and its block, options and, for a
// new section, headers: 1 KiB is ample) would take the file past MaxSize.
func (w *Writer) maxSizeReached(size int64, n int) bool {
	return w.opts.MaxSize > 0 && size > 0 && size+int64(n)+1024 > w.opts.MaxSize
}

// rotate moves path to path.1 (and path.1 to path.2, and so on, the oldest
// beyond MaxFiles dropped) and starts a new file.
func (w *Writer) rotate() error {
	w.f.Close()
	if w.opts.MaxFiles > 0 {
		os.Remove(fmt.Sprintf("%s.%d", w.path, w.opts.MaxFiles))
		for i := w.opts.MaxFiles - 1; i >= 1; i-- {
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
