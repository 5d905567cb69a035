package dataplane

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/rstguard/rstguard/xdp"
)

// tracefsRoots are where tracefs is found, newest first; the first is where
// it is mounted when it is nowhere.
var tracefsRoots = []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}

// redirectTracepoint is one of the tracepoints that report a redirect the
// kernel failed after the program made it (rstguard.c, "redirects that
// failed"), with the record layout the program reads it by.
type redirectTracepoint struct {
	name   string // in the xdp group
	prog   func(*Dataplane) *ebpf.Program
	record any // the generated twin of the program's record struct
}

var redirectTracepoints = []redirectTracepoint{
	{"xdp_redirect_err", func(d *Dataplane) *ebpf.Program { return d.objs.RstguardRedirectErr }, xdp.RstguardRedirectErrRecord{}},
	{"xdp_devmap_xmit", func(d *Dataplane) *ebpf.Program { return d.objs.RstguardDevmapXmit }, xdp.RstguardDevmapXmitRecord{}},
}

// WatchRedirects counts the frames the kernel could not send after the
// program redirected them out of a wire port's pair (wire_redirect_errors):
// for a daemon with wire pairs only, as xdp_devmap_xmit fires on every bulk
// send of every devmap on the box. The counting lasts until the returned
// Closer is closed (the daemon's lifetime). It mounts tracefs if it is
// nowhere, and refuses a tracepoint whose record is not laid out as the
// program reads it.
func (d *Dataplane) WatchRedirects() (io.Closer, error) {
	id, err := mapID(d.objs.WirePeers)
	if err != nil {
		return nil, err
	}
	if err := d.objs.WirePeersId.Set(id); err != nil {
		return nil, fmt.Errorf("tell the program its devmap's ID: %w", err)
	}
	root, err := tracefs()
	if err != nil {
		return nil, err
	}
	var links closers
	for _, tp := range redirectTracepoints {
		if err := checkRecord(filepath.Join(root, "events", "xdp", tp.name, "format"), tp.record); err != nil {
			links.Close()
			return nil, err
		}
		l, err := link.Tracepoint("xdp", tp.name, tp.prog(d), nil)
		if err != nil {
			links.Close()
			return nil, fmt.Errorf("attach to tracepoint xdp:%s: %w", tp.name, err)
		}
		links = append(links, l)
	}
	return links, nil
}

type closers []io.Closer

func (cs closers) Close() error {
	var errs []error
	for _, c := range cs {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

func mapID(m *ebpf.Map) (uint32, error) {
	info, err := m.Info()
	if err != nil {
		return 0, fmt.Errorf("map info: %w", err)
	}
	id, ok := info.ID()
	if !ok {
		return 0, errors.New("the kernel gives no map IDs")
	}
	return uint32(id), nil
}

// tracefs finds tracefs, or mounts it where distributions do.
func tracefs() (string, error) {
	for _, root := range tracefsRoots {
		var st unix.Statfs_t
		if unix.Statfs(root, &st) == nil && st.Type == unix.TRACEFS_MAGIC {
			return root, nil
		}
	}
	root := tracefsRoots[0]
	if err := unix.Mount("tracefs", root, "tracefs", 0, ""); err != nil {
		return "", fmt.Errorf("mount tracefs on %s: %w", root, err)
	}
	return root, nil
}

// checkRecord compares a tracepoint's format file with the struct the
// program reads its record by: every field of it (bar the common header)
// must be at the offset and of the size the format gives.
func checkRecord(format string, record any) error {
	f, err := os.Open(format)
	if err != nil {
		return fmt.Errorf("tracepoint format: %w", err)
	}
	defer f.Close()
	type place struct{ offset, size uintptr }
	fields := map[string]place{} // by the Go name bpf2go gives the C one
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// field:int from_ifindex;	offset:8;	size:4;	signed:1;
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "field:") {
			continue
		}
		var name string
		var p place
		for part := range strings.SplitSeq(line, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(part), ":")
			switch k {
			case "field":
				decl := strings.Fields(v)
				name = goName(decl[len(decl)-1])
			case "offset", "size":
				n, err := strconv.ParseUint(v, 10, 16)
				if err != nil {
					return fmt.Errorf("%s: %q: %w", format, line, err)
				}
				if k == "offset" {
					p.offset = uintptr(n)
				} else {
					p.size = uintptr(n)
				}
			}
		}
		fields[name] = p
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", format, err)
	}
	t := reflect.TypeOf(record)
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() || sf.Name == "Common" {
			continue
		}
		got, ok := fields[sf.Name]
		if want := (place{sf.Offset, sf.Type.Size()}); !ok || got != want {
			return fmt.Errorf("%s: field %s is %+v there, %+v in the program: this kernel's layout is not the one it reads",
				format, sf.Name, got, want)
		}
	}
	return nil
}

// goName is the Go name bpf2go gives a C field: from_ifindex is FromIfindex.
func goName(c string) string {
	var b strings.Builder
	for part := range strings.SplitSeq(c, "_") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}
