package capture

import (
	"errors"
	"io"
	"os"
	"testing"
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
