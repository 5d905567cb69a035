package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/rstguard/rstguard/control/attach"
	"github.com/rstguard/rstguard/control/bpffs"
	"github.com/rstguard/rstguard/control/daemon"
	"github.com/rstguard/rstguard/control/privilege"
	"github.com/rstguard/rstguard/dataplane"
)

// settings are the daemon's options as flags and config file share them.
// Keys are the long flag names with dashes as underscores; a flag named
// otherwise says so in its field's flag tag (settingFlag).
type settings struct {
	Interfaces   []string `json:"interfaces" flag:"i"`
	XDPMode      string   `json:"xdp_mode"`
	Events       string   `json:"events"`
	Pcap         string   `json:"pcap"`
	PcapMaxSize  int64    `json:"pcap_max_size"`
	PcapMaxFiles int      `json:"pcap_max_files"`
	EventsRate   int      `json:"events_rate"`
	Metrics      string   `json:"metrics"`
	Allow        []string `json:"allow"`
	Zones        []string `json:"zones" flag:"zone"`
	// Wire are the --wire pairs, each [A, B]; WireFail is open or closed.
	Wire          [][]string `json:"wire"`
	WireFail      string     `json:"wire_fail"`
	Host          string     `json:"host"`
	PinDir        string     `json:"pin_dir"`
	FlowTableSize uint32     `json:"flow_table_size"`
	// policy are the policy's settings a flag or the config file gave
	// (dataplane.Settings, by name), as given: only those change the
	// pinned policy; resolve reads them.
	policy map[string]string
	// explicit names the settings a flag or the config file gave (flag
	// names).
	explicit map[string]bool
}

func defaultSettings() settings {
	host, _ := os.Hostname()
	return settings{
		XDPMode: "auto", WireFail: "open", Events: daemon.DefaultEvents, Pcap: daemon.DefaultPcap,
		PcapMaxSize: daemon.DefaultPcapMaxSize, PcapMaxFiles: daemon.DefaultPcapMaxFiles, EventsRate: daemon.DefaultEventsRate,
		Metrics: daemon.DefaultMetrics, Host: host, PinDir: bpffs.DefaultDir,
		FlowTableSize: dataplane.DefaultFlowTableSize, policy: map[string]string{}, explicit: map[string]bool{},
	}
}

// listFlag is a comma-separated list.
type listFlag struct{ v *[]string }

func (l listFlag) String() string {
	if l.v == nil {
		return ""
	}
	return strings.Join(*l.v, ",")
}

// Set adds to the list: a flag given twice accumulates (-i eth0 -i eth1).
func (l listFlag) Set(s string) error {
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*l.v = append(*l.v, part)
		}
	}
	return nil
}

// daemonFlags declares the flags run and attach share on fs, writing into s.
func daemonFlags(fs *flag.FlagSet, s *settings) {
	fs.Var(listFlag{&s.Interfaces}, "i", "interfaces, comma-separated: all of a gateway's, so both directions share one flow table")
	// Flag values are checked as they are parsed, so that a bad one is a
	// usage error (exit 1), as the same mistake in a config file is.
	for _, ps := range dataplane.Settings {
		fs.Func(ps.Name, fmt.Sprintf("%s (default: the pinned policy's, else %s)", ps.Usage, ps.Get(dataplane.DefaultPolicy())),
			func(v string) error {
				if err := ps.Set(&dataplane.Policy{}, v); err != nil {
					return err
				}
				s.policy[ps.Name] = v
				return nil
			})
	}
	fs.Func("xdp-mode", "auto (native, else generic), native or generic (default auto)", func(v string) error {
		_, err := attach.ParseMode(v)
		s.XDPMode = v
		return err
	})
	fs.Func("allow", "CIDRs whose RSTs are reported but never dropped (your own firewalls), comma-separated", func(v string) error {
		if err := (listFlag{&s.Allow}).Set(v); err != nil {
			return err
		}
		_, err := parsePrefixes(s.Allow)
		return err
	})
	fs.Func("zone", "IFACE[.VLAN]=N: the zone of an interface or one of its VLANs, for overlapping address spaces, comma-separated or repeated (an interface in a VRF takes the VRF's table)", func(v string) error {
		if err := (listFlag{&s.Zones}).Set(v); err != nil {
			return err
		}
		_, err := parseZones(s.Zones)
		return err
	})
	fs.Func("wire", "A:B: a bump in the wire, two ports without addresses; what is not dropped or held leaves by the other port, unchanged; comma-separated or repeated for several pairs", func(v string) error {
		for _, part := range strings.Split(v, ",") {
			w, err := daemon.ParseWire(strings.TrimSpace(part))
			if err != nil {
				return err
			}
			s.Wire = append(s.Wire, []string{w.A, w.B})
		}
		return nil
	})
	fs.Func("wire-fail", "open (a pair with a port down carries what it can) or closed (it drops every frame, as a cut cable; default open)", func(v string) error {
		s.WireFail = v
		return checkWireFail(v)
	})
	fs.StringVar(&s.PinDir, "pin-dir", s.PinDir, "bpffs directory for the pinned maps (kept across restarts)")
	fs.Func("flow-table-size", fmt.Sprintf("flows tracked at once (default %d)", s.FlowTableSize), func(v string) error {
		if _, err := fmt.Sscan(v, &s.FlowTableSize); err != nil {
			return err
		}
		if s.FlowTableSize == 0 {
			return errors.New("must be at least 1")
		}
		return nil
	})
}

// reportFlags declares run's own flags on fs, writing into s: what the
// daemon writes and serves (attach, which only attaches, has none of them).
func reportFlags(fs *flag.FlagSet, s *settings) {
	fs.StringVar(&s.Events, "events", s.Events, "event log, JSON lines; - for standard output")
	fs.StringVar(&s.Pcap, "pcap", s.Pcap, "evidence pcapng of suspect and spoofed RSTs, each frame commented with its verdict; empty for none")
	fs.Int64Var(&s.PcapMaxSize, "pcap-max-size", s.PcapMaxSize, "rotate the evidence at this many bytes; 0 never")
	fs.IntVar(&s.PcapMaxFiles, "pcap-max-files", s.PcapMaxFiles, "rotated evidence files kept (FILE.1 newest)")
	fs.IntVar(&s.EventsRate, "events-rate", s.EventsRate, "events written per second at most (a flood's log growth); more are counted, not written")
	fs.StringVar(&s.Metrics, "metrics", s.Metrics, "Prometheus endpoint address; empty for none")
	fs.StringVar(&s.Host, "host", s.Host, "this gateway's name on every event and metric")
}

// daemonCapabilities are what rstguard run needs, and what
// contrib/systemd/rstguard.service grants.
var daemonCapabilities = []int{privilege.CapBPF, privilege.CapNetAdmin, privilege.CapSysAdmin, privilege.CapNetRaw}

func runCommand() command {
	return command{
		name: "run",
		args: "-i IFACE[,IFACE...] | --wire A:B[,C:D] [--wire-fail open|closed] [--mode monitor|drop|hold] [--xdp-mode auto|native|generic] [--events FILE|-] [--pcap FILE] [--metrics ADDR] [--allow CIDR,...] [--config FILE]",
		summary: `the daemon: attach to a gateway's interfaces, judge every RST, report
Attaches over netlink (native XDP, generic as an announced fallback) with one
flow table for all interfaces, pinned under bpffs so that a restart keeps
every flow. Writes one JSON object per event to the event log, every suspect
and spoofed RST (and what followed it) to the evidence pcapng, and serves
Prometheus metrics. Follows interfaces that go down, return or are renamed. Stops cleanly on SIGINT or
SIGTERM (detaches; the pinned maps stay). Killed, it leaves the program
attached and judging: traffic keeps flowing; rstguard detach cleans up.`,
		run: func(e *env, fs *flag.FlagSet, args []string) error {
			s := defaultSettings()
			daemonFlags(fs, &s)
			reportFlags(fs, &s)
			configPath := fs.String("config", "", "JSON file of settings (keys as the flags, e.g. \"xdp_mode\"); flags override it")
			test := fs.Bool("test", false, "check the settings (flags and --config) and exit: 0 when they are right")
			rest, err := parseFlags(fs, args)
			if err != nil {
				return err
			}
			if len(rest) > 0 {
				return usagef("unexpected argument %q", rest[0])
			}
			fs.Visit(func(f *flag.Flag) { s.explicit[f.Name] = true })
			// A settings mistake, on the command line or in the file, is a
			// usage error (exit 1): the unit's RestartPreventExitStatus=1
			// then does not restart a daemon that would fail the same way.
			if *configPath != "" {
				if s, err = withConfigFile(fs, s, *configPath); err != nil {
					return usagef("%v", err)
				}
			}
			cfg, err := s.resolve()
			if err != nil {
				return usagef("%v", err)
			}
			if *test {
				fmt.Fprintf(e.stdout, "configuration OK: %s\n", s.summary())
				return nil
			}
			if err := privilege.Require(daemonCapabilities...); err != nil {
				return err
			}
			hup := e.hup
			if hup == nil {
				hup = notifyHUP()
			}
			return daemon.Run(e.ctx, cfg, e.stderr, hup)
		},
		stops: true,
	}
}

// withConfigFile reads a config file under the flags: a flag given on the
// command line wins over the file.
func withConfigFile(fs *flag.FlagSet, fromFlags settings, path string) (settings, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return fromFlags, fmt.Errorf("config: %w", err)
	}
	merged := defaultSettings()
	// The daemon's own settings into their fields (unknown keys are
	// checked below, with the policy's, which have no field here).
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&merged); err != nil {
		return fromFlags, configError(path, data, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fromFlags, fmt.Errorf("config %s:%s: trailing data after the JSON object", path, lineCol(data, dec.InputOffset()))
	}
	entries, err := configEntries(data)
	if err != nil {
		return fromFlags, fmt.Errorf("config %s: %w", path, err)
	}
	merged.explicit = fromFlags.explicit
	fields := settingsKeys()
	for _, e := range entries {
		name := strings.ReplaceAll(e.key, "_", "-")
		merged.explicit[name] = true
		if ps, ok := dataplane.SettingNamed(name); ok {
			v, kind := configValue(e.raw, ps.JSONString())
			if kind != "" {
				return fromFlags, fmt.Errorf("config %s:%s: setting %q: %s where %s belongs", path, lineCol(data, e.end), e.key, kind, ps.Kind)
			}
			merged.policy[ps.Name] = v // read by resolve, as the flags' are
		} else if !fields[e.key] {
			return fromFlags, fmt.Errorf("config %s:%s: unknown setting %q (the keys are the flags' names with _ for -, e.g. \"hold_max\")",
				path, lineCol(data, e.keyAt), e.key)
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, v := range fromFlags.policy {
		merged.policy[name] = v
	}
	to, from := reflect.ValueOf(&merged).Elem(), reflect.ValueOf(fromFlags)
	for i := range to.NumField() {
		if name, ok := settingFlag(to.Type().Field(i)); ok && set[name] {
			to.Field(i).Set(from.Field(i))
		}
	}
	return merged, nil
}

// settingFlag is the flag that sets a settings field: its flag tag, else its
// config key with - for _.
func settingFlag(f reflect.StructField) (string, bool) {
	if name := f.Tag.Get("flag"); name != "" {
		return name, true
	}
	key, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return strings.ReplaceAll(key, "_", "-"), key != ""
}

// configEntry is one key of a config file's object: the key, its value, and
// where the key starts and the value ends (byte offsets).
type configEntry struct {
	key        string
	raw        json.RawMessage
	keyAt, end int64
}

// configEntries walks a config file's top-level object, known to be valid
// JSON (the settings decoded from it).
func configEntries(data []byte) ([]configEntry, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // {
		return nil, err
	}
	var out []configEntry
	for dec.More() {
		at := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		at += int64(len(data[at:]) - len(bytes.TrimLeft(data[at:], " \t\r\n,")))
		key, _ := tok.(string)
		out = append(out, configEntry{key: key, raw: raw, keyAt: at, end: dec.InputOffset()})
	}
	return out, nil
}

// configValue is a policy setting's value in a config file as text, for
// Setting.Set: a JSON string unquoted, a number as written. kind is the
// JSON kind found when it is not the one wanted, else "".
func configValue(raw json.RawMessage, wantString bool) (value, kind string) {
	switch raw[0] {
	case '"':
		if wantString {
			json.Unmarshal(raw, &value)
			return value, ""
		}
		return "", "string"
	case '{':
		return "", "object"
	case '[':
		return "", "array"
	case 't', 'f':
		return "", "bool"
	case 'n':
		return "", "null"
	}
	if wantString {
		return "", "number"
	}
	return string(raw), ""
}

// settingsKeys are the config keys of the daemon's own settings: the JSON
// names of settings's fields.
func settingsKeys() map[string]bool {
	keys := map[string]bool{}
	t := reflect.TypeFor[settings]()
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name != "" {
			keys[name] = true
		}
	}
	return keys
}

// configError says where in the file a JSON mistake is (line:column) and
// which setting it is, in JSON's terms, not Go's.
func configError(path string, data []byte, err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Errorf("config %s:%s: %v", path, lineCol(data, syntax.Offset-1), syntax) // Offset is past the character
	case errors.As(err, &typ):
		want := map[reflect.Kind]string{reflect.String: "a string", reflect.Slice: "a list", reflect.Bool: "true or false",
			reflect.Int: "a number", reflect.Int64: "a number", reflect.Uint8: "a number", reflect.Uint32: "a number",
			reflect.Uint64: "a number", reflect.Int32: "a number", reflect.Uint: "a number"}[typ.Type.Kind()]
		if want == "" {
			want = "another kind of value"
		}
		return fmt.Errorf("config %s:%s: setting %q: %s where %s belongs", path, lineCol(data, typ.Offset), typ.Field, typ.Value, want)
	}
	return fmt.Errorf("config %s: %w", path, err)
}

// lineCol is a byte offset of data as line:column, both from 1.
func lineCol(data []byte, offset int64) string {
	before := data[:min(int(offset), len(data))]
	line := bytes.Count(before, []byte("\n")) + 1
	return fmt.Sprintf("%d:%d", line, len(before)-bytes.LastIndexByte(before, '\n'))
}

// summary prints the settings as key=value, the file's keys, in one line.
func (s settings) summary() string {
	data, _ := json.Marshal(s)
	var kv map[string]any
	json.Unmarshal(data, &kv)
	for _, ps := range dataplane.Settings { // as given, else the default
		v, ok := s.policy[ps.Name]
		if !ok {
			v = ps.Get(dataplane.DefaultPolicy())
		}
		kv[ps.Key()] = v
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(kv)) {
		if kv[k] == nil {
			continue
		}
		v, _ := json.Marshal(kv[k])
		out = append(out, k+"="+strings.Trim(string(v), `"`))
	}
	return strings.Join(out, " ")
}

// resolve checks every value and names the one that is wrong.
func (s settings) resolve() (daemon.Config, error) {
	wires, err := parseWires(s.Wire)
	if err != nil {
		return daemon.Config{}, err
	}
	if err := checkWireFail(s.WireFail); err != nil {
		return daemon.Config{}, err
	}
	// A wire pair's ports are interfaces the daemon attaches to, like -i's.
	interfaces := slices.Clone(s.Interfaces)
	for _, w := range wires {
		for _, port := range []string{w.A, w.B} {
			if !slices.Contains(interfaces, port) {
				interfaces = append(interfaces, port)
			}
		}
	}
	if len(interfaces) == 0 {
		return daemon.Config{}, usagef("no interface: give -i IFACE[,IFACE...] or --wire A:B (or \"interfaces\" or \"wire\" in the config file)")
	}
	xdpMode, err := attach.ParseMode(s.XDPMode)
	if err != nil {
		return daemon.Config{}, err
	}
	allow, err := parsePrefixes(s.Allow)
	if err != nil {
		return daemon.Config{}, fmt.Errorf("allow: %w", err)
	}
	zones, err := parseZones(s.Zones)
	if err != nil {
		return daemon.Config{}, err
	}
	if s.FlowTableSize == 0 {
		return daemon.Config{}, fmt.Errorf("flow table size must be at least 1")
	}
	if s.EventsRate < 1 || s.PcapMaxSize < 0 || s.PcapMaxFiles < 0 {
		return daemon.Config{}, fmt.Errorf("events-rate must be at least 1, pcap-max-size and pcap-max-files at least 0")
	}
	// The policy's settings given, read into the default policy for their
	// bounds; the daemon applies them to the pinned policy.
	given := maps.Clone(s.policy)
	bounds := dataplane.DefaultPolicy()
	for _, ps := range dataplane.Settings {
		if v, ok := given[ps.Name]; ok {
			if err := ps.Set(&bounds, v); err != nil {
				return daemon.Config{}, err
			}
		}
	}
	if err := bounds.Check(); err != nil {
		return daemon.Config{}, err
	}
	policy := func(p *dataplane.Policy) {
		for _, ps := range dataplane.Settings {
			if v, ok := given[ps.Name]; ok {
				ps.Set(p, v) // read above already
			}
		}
	}
	return daemon.Config{
		Interfaces: interfaces, Wire: wires, WireFailClosed: s.WireFail == "closed", Policy: policy, XDPMode: xdpMode, Events: s.Events, Pcap: s.Pcap,
		PcapMaxSize: s.PcapMaxSize, PcapMaxFiles: s.PcapMaxFiles, EventsRate: s.EventsRate,
		Metrics: s.Metrics, Allow: allow, Zones: zones, Host: s.Host, PinDir: s.PinDir, FlowTableSize: s.FlowTableSize,
	}, nil
}

func checkWireFail(v string) error {
	if v != "open" && v != "closed" {
		return fmt.Errorf("wire-fail %q: want open or closed", v)
	}
	return nil
}

// parseWires reads the pairs, [A, B] each, and refuses a port in two.
func parseWires(list [][]string) ([]daemon.WireSpec, error) {
	var out []daemon.WireSpec
	for _, pair := range list {
		if len(pair) != 2 {
			return nil, fmt.Errorf("wire %q: want two ports, [\"A\", \"B\"]", pair)
		}
		w, err := daemon.ParseWire(pair[0] + ":" + pair[1])
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, daemon.CheckWires(out)
}

func parseZones(list []string) ([]daemon.ZoneSpec, error) {
	var out []daemon.ZoneSpec
	for _, s := range list {
		z, err := daemon.ParseZone(s)
		if err != nil {
			return nil, err
		}
		out = append(out, z)
	}
	return out, nil
}

// inAny says whether one of addrs (IPv4-mapped or not) lies in one of the
// prefixes: the --addr filters.
func inAny(prefixes []netip.Prefix, addrs ...netip.Addr) bool {
	return slices.ContainsFunc(prefixes, func(p netip.Prefix) bool {
		return slices.ContainsFunc(addrs, func(a netip.Addr) bool { return p.Contains(a.Unmap()) })
	})
}

func parsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("%q is not a CIDR or address", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p)
	}
	return out, nil
}
