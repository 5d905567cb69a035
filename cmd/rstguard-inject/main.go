// Command rstguard-inject is the lab's on-path attacker. Run inside a router's
// network namespace, it sniffs the router's interfaces and, when a client's
// segment carries the trigger (by default an HTTP request for
// www.testaaa.com), forges TCP resets as the chosen profile describes.
// It is a test tool: it only acts inside namespaces the lab built.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/rstguard/rstguard/bench/inject"
	"github.com/rstguard/rstguard/internal/cmdline"
)

func main() {
	fs := cmdline.NewFlagSet("rstguard-inject", "usage: rstguard-inject [--profile NAME] [-i IFACE,...] [--match TEXT] [--ttl N]\n\n"+
		"The lab's on-path injector: sniffs a router and forges TCP resets when a client's\n"+
		"segment carries --match, once per connection.\n", "\nprofiles:\n"+inject.ProfileHelp())
	profile := fs.String("profile", "incident", "injector profile (see below)")
	ifaces := fs.String("i", "", "interfaces to sniff, comma-separated (default: all but lo)")
	match := fs.String("match", "Host: www.testaaa.com", "bytes in a client's segment that trigger the injector")
	ttl := fs.Uint("ttl", 64, "the injector's own initial TTL")
	if code, done := cmdline.Parse(fs, os.Args[1:]); done {
		os.Exit(code)
	}
	p, ok := inject.Lookup(*profile)
	if !ok {
		fmt.Fprintf(os.Stderr, "rstguard-inject: unknown profile %q: one of %s\n", *profile, strings.Join(inject.ProfileNames(), ", "))
		os.Exit(1)
	}
	if *ttl == 0 || *ttl > 255 {
		fmt.Fprintf(os.Stderr, "rstguard-inject: --ttl must be 1 to 255\n")
		os.Exit(1)
	}
	names, err := interfaces(*ifaces)
	if err != nil {
		fmt.Fprintf(os.Stderr, "rstguard-inject: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err = inject.Run(ctx, inject.Config{Profile: p, Match: []byte(*match), Interfaces: names, TTL: uint8(*ttl), Log: os.Stdout})
	if err != nil {
		fmt.Fprintf(os.Stderr, "rstguard-inject: %v\n", err)
		os.Exit(2)
	}
}

func interfaces(list string) ([]string, error) {
	if list != "" {
		return strings.Split(list, ","), nil
	}
	all, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, i := range all {
		if i.Flags&net.FlagLoopback == 0 {
			names = append(names, i.Name)
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no interface to sniff on")
	}
	return names, nil
}
