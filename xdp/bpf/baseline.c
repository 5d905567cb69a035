// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Benchmark baselines for rstguard, measured in the same run as rstguard:
 * a bare XDP_PASS (and XDP_DROP, for floods), and the least any flow tracker
 * must do (rstguard's own parse and flow key, one LRU
 * hash lookup, an insert for a new flow; the table is sized at load time
 * like rstguard's), and for the box's forwarding rate the least a bump in the
 * wire does: every frame out of one devmap port.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "rstguard.h"
#include "consts.h"
#include "parse.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

FLOW_TABLE(baseline_flows, 1 << 16);

SEC("xdp")
int bare_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int bare_drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}

/* The port bare_redirect sends every frame out of (index 0), as rstguard
 * run --wire sends what it does not drop through its own devmap. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} baseline_out SEC(".maps");

SEC("xdp")
int bare_redirect(struct xdp_md *ctx)
{
	return bpf_redirect_map(&baseline_out, 0, XDP_PASS);
}

/* The least any flow tracker must do: parse the frame and build its flow
 * key as rstguard does (parse.h: VLAN tags, IPv4 and IPv6, the same key
 * and tie-break), find the flow, and insert it when it is new, so that at
 * N flows the table holds N flows and a lookup walks to its entry as
 * rstguard's does. Returns whether the flow was found; *rst whether the
 * segment is a RST. */
static __always_inline int track(struct xdp_md *ctx, int *rst)
{
	struct flow_value fresh = {};
	struct packet p;

	if (parse(ctx, &p) != PARSE_TCP)
		return 0;
	*rst = !!(p.tcp_flags & TH_RST);
	if (bpf_map_lookup_elem(&baseline_flows, &p.key))
		return 1;
	bpf_map_update_elem(&baseline_flows, &p.key, &fresh, BPF_NOEXIST);
	return 0;
}

/* The per-packet baseline: track, then pass. */
SEC("xdp")
int parse_lookup(struct xdp_md *ctx)
{
	int rst = 0;

	track(ctx, &rst);
	return XDP_PASS;
}

/* The flood baseline: track, and drop the RSTs of flows it knows (without
 * judging them), the bound for any RST filter that keeps flow state. */
SEC("xdp")
int parse_lookup_drop(struct xdp_md *ctx)
{
	int rst = 0;

	return track(ctx, &rst) && rst ? XDP_DROP : XDP_PASS;
}

/* The wire baseline with flow state: track, then send every frame out of
 * the devmap's port, as the least a stateful bump in the wire does. */
SEC("xdp")
int parse_lookup_redirect(struct xdp_md *ctx)
{
	int rst = 0;

	track(ctx, &rst);
	return bpf_redirect_map(&baseline_out, 0, XDP_PASS);
}
