// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * rstguard-pktgen's live engine. Run with BPF_F_TEST_XDP_LIVE_FRAMES over one
 * template frame (Ethernet, IPv4 or IPv6 without options or extensions,
 * TCP), it turns each repetition into a frame of the next of `flows`
 * connections and sends it out of tx_ifindex: xdp-trafficgen's method.
 * The client side's address and port change, on whichever side of the frame
 * the client is; both checksums are recomputed from the template's own
 * values (RFC 1624), so it does not matter whether the kernel hands the
 * program the template again or its last rewrite. A frame's page comes back
 * to the run after the kernel is done with it, with what the path wrote into
 * it: a router forwarding it rewrites its MACs and its TTL in place. Both are
 * restored from the template, or every frame after the first few hundred
 * would carry the next hop's MACs (bench/suite's routing subject).
 * bench/pktgen's Template documents the numbering of flows and does the same
 * rewrite in Go.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the generator before each run. */
volatile __u32 tx_ifindex;
volatile __u32 flows = 1;      /* the flow index runs 0 .. flows-1, then again */
volatile __u32 ports = 50000;  /* client ports per client address */
volatile __u32 first_port = 10000;
volatile __u8 client_is_dst;   /* the template's client is its destination */
volatile __u8 ipv6;
/* The template's client address (its last 32 bits, network order) and
 * port, and its IP and TCP checksums, as the generator built it. */
volatile __u32 tmpl_addr;
volatile __u16 tmpl_port;
volatile __u16 tmpl_ip_check;
volatile __u16 tmpl_tcp_check;
/* The template's destination and source MACs, and its TTL or hop limit. */
volatile __u8 tmpl_macs[12];
volatile __u8 tmpl_ttl;

/* The next flow's index. The generator sets it before each run and runs
 * one template at a time from one thread, so a plain global suffices. */
volatile __u32 next_flow;
/* Frames this run may still send. A signal interrupts a run (EINTR) and
 * cilium/ebpf starts it again with the whole repeat count: past the budget,
 * frames are dropped, so that a run sends exactly what was asked. */
volatile __u32 budget;

/* One's-complement update of a checksum for old -> new (RFC 1624 eq. 3). */
static __always_inline __u16 csum_replace(__u16 check, __u32 old, __u32 new)
{
	__u32 sum = (__u16)~check;

	sum += (__u16)~old + (__u16)~(old >> 16) + (__u16)new + (__u16)(new >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

SEC("xdp")
int pktgen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 i = next_flow, addr;
	__u16 port;
	struct tcphdr *th;
	__be32 *ip_addr;

	if (budget == 0)
		return XDP_DROP;
	budget--;
	next_flow = i + 1 >= flows ? 0 : i + 1;
	addr = bpf_htonl(bpf_ntohl(tmpl_addr) + i / ports);
	port = bpf_htons(first_port + i % ports);

	if ((void *)((struct ethhdr *)data + 1) > data_end)
		return XDP_ABORTED;
#pragma unroll
	for (int b = 0; b < 12; b++)
		((__u8 *)data)[b] = tmpl_macs[b];
	if (ipv6) {
		struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);

		th = (void *)(ip6 + 1);
		if ((void *)(th + 1) > data_end)
			return XDP_ABORTED;
		ip6->hop_limit = tmpl_ttl;
		ip_addr = client_is_dst ? &ip6->daddr.in6_u.u6_addr32[3] : &ip6->saddr.in6_u.u6_addr32[3];
	} else {
		struct iphdr *ip = data + sizeof(struct ethhdr);

		th = (void *)(ip + 1);
		if ((void *)(th + 1) > data_end)
			return XDP_ABORTED;
		ip_addr = client_is_dst ? &ip->daddr : &ip->saddr;
		ip->ttl = tmpl_ttl;
		ip->check = csum_replace(tmpl_ip_check, tmpl_addr, addr);
	}
	*ip_addr = addr;
	if (client_is_dst)
		th->dest = port;
	else
		th->source = port;
	/* The pseudo-header's address and the port, in one update each. */
	th->check = csum_replace(csum_replace(tmpl_tcp_check, tmpl_addr, addr), tmpl_port, port);
	return bpf_redirect(tx_ifindex, 0);
}
