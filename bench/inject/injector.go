package inject

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/rstguard/rstguard/internal/tcpflag"
)

// Config is one injector's run.
type Config struct {
	Profile Profile
	// Match is the bytes a client's segment must carry to trigger (an HTTP
	// Host header, as DPI boxes key on).
	Match []byte
	// Interfaces to sniff on: the router's.
	Interfaces []string
	// TTL is the injector's own initial TTL.
	TTL uint8
	Log io.Writer
}

type connKey struct{ client, server netip.AddrPort }

// Injector sniffs a router's interfaces and forges resets on triggers, once
// per connection.
type Injector struct {
	cfg    Config
	sender *RawSender

	mu    sync.Mutex
	isn   map[connKey]uint32
	fired map[connKey]bool
}

// Run sniffs until ctx ends. It must run inside the router's namespace.
func Run(ctx context.Context, cfg Config) error {
	sender, err := NewRawSender()
	if err != nil {
		return err
	}
	defer sender.Close()
	inj := &Injector{cfg: cfg, sender: sender, isn: map[connKey]uint32{}, fired: map[connKey]bool{}}
	if cfg.Profile.DropFirst {
		if err := installDropFirst(); err != nil {
			return err
		}
		defer removeDropFirst()
	}
	errs := make(chan error, len(cfg.Interfaces))
	for _, ifname := range cfg.Interfaces {
		s, err := openSniffer(ifname)
		if err != nil {
			return fmt.Errorf("sniff on %s: %w", ifname, err)
		}
		defer s.close()
		go func() { errs <- inj.sniff(ctx, s) }()
	}
	fmt.Fprintf(cfg.Log, "injector %s: sniffing %s for %q\n", cfg.Profile.Name, strings.Join(cfg.Interfaces, ","), cfg.Match)
	select {
	case <-ctx.Done():
		return nil
	case err := <-errs:
		return err
	}
}

func (inj *Injector) sniff(ctx context.Context, s *sniffer) error {
	var eth layers.Ethernet
	var ip4 layers.IPv4
	var tcp layers.TCP
	var payload gopacket.Payload
	parser := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &ip4, &tcp, &payload)
	parser.IgnoreUnsupported = true
	var decoded []gopacket.LayerType
	buf := make([]byte, 65536)
	for ctx.Err() == nil {
		n, err := s.read(buf)
		if errors.Is(err, errTimeout) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		data := buf[:n]
		payload = payload[:0]
		if parser.DecodeLayers(data, &decoded) != nil || len(decoded) < 3 {
			continue
		}
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip4.SrcIP.To4())), uint16(tcp.SrcPort))
		dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip4.DstIP.To4())), uint16(tcp.DstPort))
		switch {
		case tcp.SYN && !tcp.ACK:
			// A new connection re-arms the injector; a retransmitted SYN does not.
			k := connKey{src, dst}
			inj.mu.Lock()
			if isn, ok := inj.isn[k]; !ok || isn != tcp.Seq {
				inj.isn[k] = tcp.Seq
				delete(inj.fired, k)
			}
			inj.mu.Unlock()
		case len(payload) > 0 && bytes.Contains(payload, inj.cfg.Match):
			inj.fire(Trigger{Client: src, Server: dst, Seq: tcp.Seq, Ack: tcp.Ack, PayloadLen: len(payload),
				TTL: ip4.TTL, IPID: ip4.Id, Window: tcp.Window})
		}
	}
	return nil
}

// fire forges for the first trigger of a connection only: a retransmission
// carries the same trigger again.
func (inj *Injector) fire(t Trigger) {
	k := connKey{t.Client, t.Server}
	inj.mu.Lock()
	if inj.fired[k] {
		inj.mu.Unlock()
		return
	}
	inj.fired[k] = true
	t.ClientISN = inj.isn[k]
	inj.mu.Unlock()
	for i, seg := range inj.cfg.Profile.Forge(t, inj.cfg.TTL) {
		if i > 0 {
			time.Sleep(inj.cfg.Profile.Gap)
		}
		frame, err := seg.Frame()
		if err == nil {
			err = inj.sender.SendFrame(frame)
		}
		if err != nil {
			fmt.Fprintf(inj.cfg.Log, "injector: send: %v\n", err)
			continue
		}
		kind := "RST"
		if seg.Flags&tcpflag.RST == 0 {
			kind = "segment" // one that prepares its RSTs
		}
		fmt.Fprintf(inj.cfg.Log, "injector %s: %s > %s %s flags %#x seq %d ack %d ttl %d id %d win %d\n",
			inj.cfg.Profile.Name, seg.Src, seg.Dst, kind, seg.Flags, seg.Seq, seg.Ack, seg.TTL, seg.IPID, seg.Window)
	}
}

// dropFirstRules swallow the first request segment of each client
// connection on this router and let its retransmission pass: the incident's
// device both dropped and reset.
const dropFirstRules = `table inet rstguard_inject {
	set seen {
		type ipv4_addr . inet_service
		flags dynamic
		timeout 5m
	}
	chain forward {
		type filter hook forward priority 0;
		tcp dport 80 @ih,0,32 { 0x48454144, 0x47455420 } ip saddr . tcp sport @seen accept
		tcp dport 80 @ih,0,32 { 0x48454144, 0x47455420 } add @seen { ip saddr . tcp sport } drop
	}
}
`

func installDropFirst() error {
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(dropFirstRules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("install drop-first rule (nft): %v: %s", err, out)
	}
	return nil
}

func removeDropFirst() {
	exec.Command("nft", "delete", "table", "inet", "rstguard_inject").Run()
}
