package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"runtime"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// "-" reads a capture from standard input, as from tcpdump -w -.
func TestOpenStdin(t *testing.T) {
	data, err := os.ReadFile("../../testdata/seed-client-side.pcap")
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stdin
	os.Stdin = r
	defer func() { os.Stdin = saved }()
	go func() {
		w.Write(data)
		w.Close()
	}()
	rd, err := Open("-")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		fr, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(fr.Data) < 14 || fr.Skipped != "" {
			t.Errorf("frame %d: %+v", n, fr)
		}
		n++
	}
	if n != 6 {
		t.Errorf("%d frames, want 6", n)
	}
}

// A record whose header claims gigabytes costs at most maxRecordBytes of
// reading and memory, and stops the read with an error.
func TestHugeRecordIsBounded(t *testing.T) {
	var f bytes.Buffer
	w := pcapgo.NewWriter(&f)
	w.WriteFileHeader(0xffffffff, layers.LinkTypeEthernet) // a hostile snap length
	w.WritePacket(gopacket.CaptureInfo{CaptureLength: 60, Length: 60}, make([]byte, 60))
	hdr := make([]byte, 16)
	binary.LittleEndian.PutUint32(hdr[8:], 0xf0000000)  // captured length: 3.75 GiB
	binary.LittleEndian.PutUint32(hdr[12:], 0xf0000000) // original length
	f.Write(hdr)
	body := &countingReader{n: 64 << 20} // 64 MiB of stream behind the header
	r, err := newReader(io.MultiReader(&f, body))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != nil {
		t.Fatalf("first frame: %v", err)
	}
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = r.Next()
	if !errors.Is(err, ErrRecordTooLong) {
		t.Fatalf("second frame: %v, want ErrRecordTooLong", err)
	}
	if body.read > maxRecordBytes+(1<<16) {
		t.Errorf("read %d bytes of the stream for one record", body.read)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 4*maxRecordBytes {
		t.Errorf("allocated %d bytes for one record", grew)
	}
}

// countingReader yields n zero bytes and counts what was read.
type countingReader struct{ n, read int }

func (c *countingReader) Read(p []byte) (int, error) {
	if c.read >= c.n {
		return 0, io.EOF
	}
	k := min(len(p), c.n-c.read)
	clear(p[:k])
	c.read += k
	return k, nil
}

// Every link type the reader knows becomes the Ethernet frame the program
// sees; others are named and marked unreadable.
func TestToEthernet(t *testing.T) {
	ip4 := []byte{0x45, 0, 0, 20}
	ip6 := []byte{0x60, 0, 0, 0}
	sll := append(make([]byte, 14), 0x08, 0x00)
	sll2 := append([]byte{0x86, 0xdd}, make([]byte, 18)...)
	null := []byte{2, 0, 0, 0}
	loop := []byte{0, 0, 0, 24}
	for _, tc := range []struct {
		name      string
		lt        layers.LinkType
		data      []byte
		etherType uint16
		skip      bool
		unknown   bool
	}{
		{"raw IPv4", layers.LinkTypeRaw, ip4, 0x0800, false, false},
		{"raw IPv6 (229)", layers.LinkTypeIPv6, ip6, 0x86dd, false, false},
		{"Linux cooked", layers.LinkTypeLinuxSLL, append(sll, ip4...), 0x0800, false, false},
		{"Linux cooked v2", layers.LinkTypeLinuxSLL2, append(sll2, ip6...), 0x86dd, false, false},
		{"BSD loopback, host order", layers.LinkTypeNull, append(null, ip4...), 0x0800, false, false},
		{"OpenBSD loopback, network order", layers.LinkTypeLoop, append(loop, ip6...), 0x86dd, false, false},
		{"raw IP of version 5", layers.LinkTypeRaw, []byte{0x50}, 0, true, false},
		{"short cooked header", layers.LinkTypeLinuxSLL, []byte{1, 2}, 0, true, false},
		{"802.11", layers.LinkTypeIEEE802_11, ip4, 0, true, true},
	} {
		f, skip, unknown := toEthernet(tc.lt, tc.data)
		if (skip != "") != tc.skip || unknown != tc.unknown {
			t.Errorf("%s: skipped %q, unknown %v", tc.name, skip, unknown)
			continue
		}
		if !tc.skip && (len(f) < 14 || binary.BigEndian.Uint16(f[12:]) != tc.etherType) {
			t.Errorf("%s: frame %x", tc.name, f)
		}
	}
}
