package lab

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rstguard/rstguard/bench/inject"
	"github.com/rstguard/rstguard/control/report"
	"github.com/rstguard/rstguard/dataplane"
)

// Placement says where rstguard sits relative to the injector.
type Placement string

// Placements. Every placement has four forwarding hops between each end and
// the nearest gateway's far side, and the injector one hop from a gateway,
// so that its TTL differs from the real sender's as on a real path.
const (
	InFrontOfServer Placement = "server" // the incident
	InFrontOfClient Placement = "client"
	BothSides       Placement = "both" // for injectors that reset both ends
)

// PlacementFor puts an injector where a gateway sees its RSTs: in front of
// the end they reach, on both sides when they reach both.
func PlacementFor(p inject.Profile) Placement {
	switch server, client := p.Targets(); {
	case server && client:
		return BothSides
	case client:
		return InFrontOfClient
	}
	return InFrontOfServer
}

// roles are the chain's hosts, client first; gateways start with "gw".
func (p Placement) roles() []string {
	switch p {
	case InFrontOfClient:
		return []string{"client", "gw", "r1", "inj", "r2", "r3", "server"}
	case BothSides:
		return []string{"client", "gwc", "r1", "inj", "r2", "gws", "server"}
	}
	return []string{"client", "r1", "r2", "inj", "r3", "gw", "server"}
}

func (p Placement) gateways() []string {
	var out []string
	for _, r := range p.roles() {
		if strings.HasPrefix(r, "gw") {
			out = append(out, r)
		}
	}
	return out
}

// ServerName is the incident's site; curl resolves it to the lab's server.
const ServerName = "www.testaaa.com"

// Case is one run of the lab.
type Case struct {
	Name      string
	Placement Placement
	// Profile is the injector's profile; "" runs no injector.
	Profile string
	// Legit is a legitimate reset to provoke from the real stacks; "" is the
	// incident's plain `curl -I`.
	Legit string
	// Mode is rstguard's: "off" (not running), "monitor", "drop" or "hold".
	Mode string
	// Wire puts the gateways in the wire (rstguard run --wire): no
	// addresses, no hop; the hosts on either side share a subnet. With
	// rstguard off nothing crosses them: compare with the routed "off".
	Wire bool
}

// Outcome is how a case ended.
type Outcome struct {
	// Exit is the client's exit code (curl's); Message its error line.
	Exit    int
	Message string
	Output  string
	// Records are every gateway's events; Injected the injector's log.
	Records  []report.Record
	Injected []string
	// Events and Evidence are the files each gateway wrote.
	Events   []string
	Evidence []string
}

// Lab runs cases with the rstguard and rstguard-inject binaries.
type Lab struct {
	Rstguard string
	Injector string
	// Dir receives each case's event logs and evidence.
	Dir string
	Log io.Writer
}

// Run builds a fresh network for the case, runs it and removes the network.
func (l *Lab) Run(ctx context.Context, c Case) (out Outcome, err error) {
	prefix := UniquePrefix()
	var wired []string
	if c.Wire {
		wired = c.Placement.gateways()
	}
	chain, err := NewWiredChain(prefix, wired, c.Placement.roles()...)
	if err != nil {
		return out, err
	}
	defer chain.Close()
	client, server := chain.Host("client"), chain.Host("server")
	srvIP := chain.Addr("server")

	srv, err := startServer(server, srvIP)
	if err != nil {
		return out, err
	}
	defer srv.close()
	if c.Legit == "firewall-reject" {
		if err := nft(ctx, server, firewallRules); err != nil {
			return out, err
		}
	}

	var daemons []*exec.Cmd
	defer func() {
		for _, d := range daemons {
			d.Process.Signal(syscall.SIGTERM)
			d.Wait()
		}
		// A stopped daemon detaches but keeps its maps pinned for a restart;
		// the lab's runs do not restart.
		for _, gw := range c.Placement.gateways() {
			dataplane.Unpin(pinDir(prefix, gw))
		}
	}()
	if c.Mode != "off" {
		for _, gw := range c.Placement.gateways() {
			d, events, evidence, err := l.startRstguard(ctx, chain.Host(gw), gw, prefix, c)
			if err != nil {
				return out, err
			}
			daemons = append(daemons, d)
			out.Events = append(out.Events, events)
			out.Evidence = append(out.Evidence, evidence)
		}
	}
	var injected *Output
	if c.Profile != "" {
		cmd, buf, err := l.startInjector(ctx, chain.Host("inj"), c.Profile)
		if err != nil {
			return out, err
		}
		injected = buf
		defer func() {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}()
	}

	out.Exit, out.Message, out.Output, err = l.client(ctx, c, client, server, srv, srvIP)
	if err != nil {
		return out, err
	}
	// curl gives up at the first RST of a volley, while the injector is
	// still sending the rest (a few ms apart at most, each logged as it
	// goes): they must still meet a running gateway to be judged.
	if injected != nil {
		injected.awaitQuiet(100*time.Millisecond, 2*time.Second)
	}
	// A stopping daemon detaches, decides what it holds and drains its
	// ring buffer before it closes the log: nothing to wait for here.
	for _, d := range daemons {
		d.Process.Signal(syscall.SIGTERM)
		d.Wait()
	}
	daemons = nil
	for _, path := range out.Events {
		f, err := os.Open(path)
		if err != nil {
			return out, err
		}
		recs, _, err := report.ReadRecords(f)
		f.Close()
		if err != nil {
			return out, err
		}
		out.Records = append(out.Records, recs...)
	}
	if injected != nil {
		out.Injected = injected.lines()
	}
	return out, nil
}

func (l *Lab) startRstguard(ctx context.Context, h *Host, role, prefix string, c Case) (*exec.Cmd, string, string, error) {
	base := filepath.Join(l.Dir, fmt.Sprintf("%s-%s", sanitize(c.Name), role))
	events, evidence := base+"-events.jsonl", base+"-evidence.pcapng"
	os.Remove(events)
	os.Remove(evidence)
	ready, err := NewNotify()
	if err != nil {
		return nil, "", "", err
	}
	defer ready.Close()
	args := []string{"run", "-i", ClientSide + "," + ServerSide}
	if c.Wire {
		args = []string{"run", "--wire", ClientSide + ":" + ServerSide}
	}
	args = append(args, "--mode", c.Mode, "--pin-dir", pinDir(prefix, role), "--events", events, "--pcap", evidence,
		"--metrics", "", "--host", role, "--flow-table-size", "65536")
	cmd := h.Command(context.Background(), l.Rstguard, args...)
	cmd.Env = append(os.Environ(), ready.Env())
	logs := &Output{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return nil, "", "", fmt.Errorf("start rstguard on %s: %w", role, err)
	}
	if err := ready.Wait("READY=1", 10*time.Second); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, "", "", fmt.Errorf("rstguard on %s did not start: %w\n%s", role, err, logs.String())
	}
	return cmd, events, evidence, nil
}

func (l *Lab) startInjector(ctx context.Context, h *Host, profile string) (*exec.Cmd, *Output, error) {
	cmd := h.Command(context.Background(), l.Injector, "--profile", profile)
	buf := &Output{}
	cmd.Stdout, cmd.Stderr = buf, buf
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start injector: %w", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), "sniffing") {
		if time.Now().After(deadline) || ctx.Err() != nil || cmd.ProcessState != nil {
			cmd.Process.Kill()
			cmd.Wait()
			return nil, nil, fmt.Errorf("injector did not start:\n%s", buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cmd, buf, nil
}

func pinDir(prefix, role string) string { return "/sys/fs/bpf/" + prefix + "-" + role }

// curlArgs is the incident's request: curl -I http://www.testaaa.com/.
func curlArgs(srvIP netip.Addr, port int, path string, extra ...string) []string {
	args := []string{"-sS", "-m", "3", "--resolve", fmt.Sprintf("%s:%d:%s", ServerName, port, srvIP)}
	args = append(args, extra...)
	return append(args, fmt.Sprintf("http://%s:%d%s", ServerName, port, path))
}

// client plays the client's part of the case and reports how it ended.
func (l *Lab) client(ctx context.Context, c Case, client, server *Host, srv *labServer, srvIP netip.Addr) (int, string, string, error) {
	curl := func(args ...string) (int, string, string, error) {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		cmd := client.Command(cctx, "curl", args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			return 0, "", "", fmt.Errorf("run curl: %w", err)
		}
		return cmd.ProcessState.ExitCode(), strings.TrimSpace(stderr.String()), stdout.String(), nil
	}
	switch c.Legit {
	case "":
		return curl(curlArgs(srvIP, 80, "/", "-I")...)
	case "refused":
		return curl(curlArgs(srvIP, 81, "/")...)
	case "firewall-reject":
		return curl(curlArgs(srvIP, 82, "/")...)
	case "server-abort":
		return curl(curlArgs(srvIP, 80, "/abort")...)
	case "unread-close":
		body := filepath.Join(l.Dir, "body.bin")
		if err := os.WriteFile(body, bytes.Repeat([]byte("x"), 1<<20), 0o600); err != nil {
			return 0, "", "", err
		}
		return curl(curlArgs(srvIP, 80, "/unread", "--data-binary", "@"+body)...)
	case "client-abort":
		code, msg, _, err := curl(curlArgs(srvIP, 80, "/big", "-o", "/dev/null", "--limit-rate", "200k", "-m", "1")...)
		return code, msg, "", err
	case "stale":
		return staleConnection(ctx, client, server, srv, srvIP)
	}
	return 0, "", "", fmt.Errorf("unknown legitimate case %q", c.Legit)
}

// staleConnection: a client keeps a connection the server has forgotten (a
// restart: the socket vanished without a word), then speaks on it; the
// server's kernel answers with a stateless RST.
func staleConnection(ctx context.Context, client, server *Host, srv *labServer, srvIP netip.Addr) (int, string, string, error) {
	var conn net.Conn
	if err := client.Do(func() (err error) {
		conn, err = net.DialTimeout("tcp", netip.AddrPortFrom(srvIP, 80).String(), 5*time.Second)
		return err
	}); err != nil {
		return 0, "", "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, "GET /hold HTTP/1.1\r\nHost: "+ServerName+"\r\n\r\n"); err != nil {
		return 0, "", "", err
	}
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return 0, "", "", fmt.Errorf("first request: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	// The server forgets the connection silently: its RST is swallowed.
	if err := nft(ctx, server, silenceRules); err != nil {
		return 0, "", "", err
	}
	held := <-srv.held
	held.(*net.TCPConn).SetLinger(0)
	held.Close()
	time.Sleep(50 * time.Millisecond)
	if err := nft(ctx, server, "delete table inet rstguard_lab_silence\n"); err != nil {
		return 0, "", "", err
	}
	io.WriteString(conn, "GET / HTTP/1.1\r\nHost: "+ServerName+"\r\n\r\n")
	_, err = http.ReadResponse(r, nil)
	if err == nil {
		return 0, "second request answered", "", nil
	}
	return 1, err.Error(), "", nil
}

const (
	firewallRules = `table inet rstguard_lab_fw {
	chain input {
		type filter hook input priority 0;
		tcp dport 82 reject with tcp reset
	}
}
`
	silenceRules = `table inet rstguard_lab_silence {
	chain output {
		type filter hook output priority 0;
		tcp flags rst drop
	}
}
`
)

func nft(ctx context.Context, h *Host, rules string) error {
	cmd := h.Command(ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft in %s: %v: %s", h.Name, err, out)
	}
	return nil
}

// Records kinds and verdicts in a compact form.
func (o Outcome) Verdicts() []string {
	var out []string
	for _, r := range o.Records {
		v := r.Verdict.String()
		switch {
		case r.Kind == dataplane.EventHold && r.Hold != nil:
			v = "hold:" + r.Hold.Outcome.String()
		case r.Kind != dataplane.EventRST:
			v = r.Kind.String()
		}
		out = append(out, v+"/"+r.Action.String())
	}
	return out
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, strings.ToLower(s))
}
