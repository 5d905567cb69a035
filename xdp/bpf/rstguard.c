// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * rstguard XDP program: tracks every TCP flow's handshake and sequence state
 * and judges every RST against it. Everything that is not a RST passes.
 *
 * Sources cited below:
 *   RFC 5961 section 3     - RST acceptable only at seq == RCV.NXT; in-window draws a challenge ACK.
 *   RFC 9293 3.10.7        - SYN-SENT accepts a RST only if its ACK acknowledges the SYN.
 *   RFC 7323 section 3, 5  - timestamps, once negotiated, are sent on every segment but RSTs may omit them.
 *   Weaver, Sommer, Paxson, "Detecting Forged TCP Reset Packets", NDSS 2009 (DATA SEQ RST, RST SEQ CHANGE).
 *   Wang et al., "Your State is Not Mine", IMC 2017 (GFW RST windows, TTLs, ack = ISN).
 *   zeek/zeek testing trace rst-inject-rae.pcap (IP-ID and window mirrored from the trigger).
 *   net4people bbs #285 (2023: three RST/ACKs, TTL 65/66/67; RST 8 ms after SYN, SYN/ACK after 248 ms).
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

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* ------------------------------------------------------------ verifier notes
 *
 * - The RST, SYN and rare per-flow paths are __noinline BPF-to-BPF calls:
 *   each is verified once. Inlined into the main function, their branches
 *   multiply with the parser's and the program passes the verifier's limit.
 * - TCP options are copied to the stack with bpf_xdp_load_bytes() and walked
 *   in a bpf_loop() callback, and signals are counted in one: a bounded loop
 *   over packet pointers cost 875,000 of the 1,000,000 instructions
 *   (measured on this project's kernel, 6.18); the callbacks cost a few
 *   thousand. Counting signals is a global function that takes them by
 *   value: as a static one that read the caller's judgement, unrolling its
 *   loop or clearing each bit as it was counted each took the verifier past
 *   1,000,000.
 * - barrier_var() keeps clang from folding a two-sided bounds check into one
 *   compare on a temporary, after which the verifier has lost the bound.
 * - ctx fields are read once, at the top of the program: clang may merge
 *   reads from several branches into a modified ctx pointer, which the
 *   verifier rejects.
 * - rst_fit(), too_soon(), verdict_of() and count_signals() are global
 *   functions: the verifier checks each once on its own, against its
 *   prototype. As static subprograms inside judge_rst(), the first and the
 *   third took it to 472,819 instructions (their branches multiply with
 *   judge_rst()'s); inlined, past 1,000,000.
 * - The RST path's frames (rstguard, handle_rst, hold_rst) come within 512
 *   bytes of stack only because hold_rst() builds its record in a per-CPU
 *   scratch map (hold_scratch) and count_signals() is a frame of its own.
 * - TestVerifierBudget keeps the verified instruction count under 200,000.
 */


#include "consts.h"
#include "maps.h"
#include "packet.h"
#include "parse.h"
#include "options.h"
#include "learn.h"
#include "events.h"
#include "judge.h"
#include "hold.h"
#include "rst.h"
#include "flows.h"

/* Judges one frame: every exit is an XDP code, XDP_PASS for whatever is not
 * a RST to stop or hold. */
static __always_inline int judge_frame(struct xdp_md *ctx, __u32 ifindex, __u32 queue)
{
	struct packet p; /* parse() clears it once the frame is TCP */
	struct flow_value *f;
	struct dir_state *s;
	const struct dir_state *peer;
	__u32 now32 = 0;
	int r, rtt_sample;

	r = parse(ctx, &p);
	count(ifindex, r);
	if (r != PARSE_TCP && r != PARSE_TINY_FRAGMENT)
		return XDP_PASS;

	p.ifindex = ifindex;
	p.queue = queue;
	if (zones_in_use)
		p.key.zone = zone_of(ifindex, p.vlan);
	if (r == PARSE_TINY_FRAGMENT)
		return tiny_fragment(ctx, &p);
	f = bpf_map_lookup_elem(&flows, &p.key);
	if (!f)
		f = bpf_map_lookup_elem(&embryonic, &p.key);
	if (p.tcp_flags & TH_RST)
		return handle_rst(ctx, &p, f);
	if (p.tcp_flags & TH_SYN)
		return handle_syn(ctx, &p, f);
	if (!f)
		return pick_up_flow(&p);

	/* The common path: an established flow's data or ACK. Evidence is
	 * weighed against the baseline before this packet joins it. */
	if (f->state == STATE_SYN_RCVD || (p.tcp_flags & TH_FIN) || (f->flags & FLOW_HELD) ||
	    ((f->flags & FLOW_RST_PENDING) && !(f->flags & FLOW_CONFIRMED)) || f->budget.context) {
		r = flow_events(ctx, &p, f);
		if (r != XDP_PASS)
			return r;
	}
	s = &f->dir[p.dir & 1];
	peer = &f->dir[!p.dir];
	/* The first ACK that covers all the peer's data samples this side's
	 * answer time; the smallest sample is its leg's RTT at this box. A
	 * sample is never below the true delay, so a handshake RTT inflated by
	 * ARP or neighbour discovery corrects itself. A leg already known to be
	 * under MIN_TIMING_RTT is not timed at all: no more clock reads for it. */
	rtt_sample = (p.tcp_flags & TH_ACK) && (!s->rtt || s->rtt >= MIN_TIMING_RTT_T32) &&
		     peer->last_data_t && p.ack == peer->next_seq &&
		     (!(s->flags & DIR_ACKED) || seq_before(s->max_ack, p.ack));
	learn(s, &p, &now32);
	if (rtt_sample) {
		/* A sample at or below zero is under a tick of the coarse clock
		 * (which lags the precise one that stamped a SYN/ACK, and reads the
		 * same on both sides of a fast answer): this leg is faster than the
		 * clock can time. It counts as the smallest time, 1, under
		 * MIN_TIMING_RTT, and never wraps into a huge RTT; dropped, it would
		 * leave the RTT to the slow samples, an answer held up by its
		 * application. */
		__s32 sample = clock32(&now32) - peer->last_data_t;

		if (sample < 1)
			sample = 1;
		if (!s->rtt || (__u32)sample < s->rtt)
			s->rtt = sample;
	}
	if (f->flags & FLOW_EMBRYONIC)
		promote(&p, f);
	return XDP_PASS;
}

/* Where a frame to pass goes: on a router, the kernel's stack; on a port of
 * a wire pair, out of the pair's other port, unchanged (no FIB, no TTL), as
 * a cable would carry it, whatever it is (ARP, LLDP, VLAN-tagged, not IP).
 * A pair closed by --wire-fail closed drops. A port whose peer is missing
 * from the devmap passes to the stack: fail open. */
static __always_inline int forward(__u32 ifindex, int action)
{
	struct wire_port *w;

	if (action != XDP_PASS || !wire_in_use)
		return action;
	w = bpf_map_lookup_elem(&wire_ports, &ifindex);
	if (!w)
		return XDP_PASS;
	if (w->closed) {
		count(ifindex, CNT_WIRE_CLOSED);
		return XDP_DROP;
	}
	action = bpf_redirect_map(&wire_peers, ifindex, XDP_PASS);
	count(ifindex, action == XDP_REDIRECT ? CNT_WIRE_FORWARDED : CNT_WIRE_NO_PEER);
	return action;
}

/* ---------------------------------------------------- redirects that failed
 *
 * bpf_redirect_map() only queues a frame: the kernel sends it later, and a
 * frame it then cannot send (the port's TX ring full, the port down, too
 * big for it, a veth peer with no XDP program) is freed with no trace in
 * the program. Two tracepoints report those (include/trace/events/xdp.h;
 * xdp-tools' xdp-monitor counts the same ones): xdp:xdp_redirect_err, per
 * frame the redirect itself refused, and xdp:xdp_devmap_xmit, per bulk of
 * frames sent out of a devmap's port, with the number dropped. Neither
 * fires on the XDP program's path, and xdp_redirect_err not at all while
 * redirects succeed. Their records below are the layout of Linux 5.8 and
 * later; the daemon checks them against each tracepoint's format file
 * before it attaches, and counts nothing rather than misread them. */
struct redirect_err_record {
	__u64 common;
	__s32 prog_id;
	__u32 act;
	__s32 ifindex; /* where the frame arrived */
	__s32 err;
	__s32 to_ifindex;
	__u32 map_id;
	__s32 map_index;
};

struct devmap_xmit_record {
	__u64 common;
	__s32 from_ifindex; /* where the frames arrived */
	__u32 act;
	__s32 to_ifindex;
	__s32 drops;
	__s32 sent;
	__s32 err;
};

SEC("tracepoint/xdp/xdp_redirect_err")
int rstguard_redirect_err(struct redirect_err_record *r)
{
	/* Frames for the AF_XDP sockets (xsks) are not counted here: the
	 * sockets' own statistics count them (rstguard_hold_socket_drops_total). */
	if (r->map_id && r->map_id == wire_peers_id)
		count(r->ifindex, CNT_WIRE_REDIRECT_ERRORS);
	return 0;
}

/* Only rstguard's program runs on a wire port, and its only devmap is
 * wire_peers: what a wire port's frames lost in a bulk send is the pair's. */
SEC("tracepoint/xdp/xdp_devmap_xmit")
int rstguard_devmap_xmit(struct devmap_xmit_record *r)
{
	__u32 from = r->from_ifindex;

	if (r->drops > 0 && bpf_map_lookup_elem(&wire_ports, &from))
		count_n_in_slot(iface_slot(from), CNT_WIRE_REDIRECT_ERRORS, r->drops);
	return 0;
}

SEC("xdp")
int rstguard(struct xdp_md *ctx)
{
	/* ctx fields read once, here: clang may otherwise merge reads from several
	 * branches into a modified ctx pointer, which the verifier rejects. */
	__u32 ifindex = ctx->ingress_ifindex;
	__u32 queue = ctx->rx_queue_index;

	return forward(ifindex, judge_frame(ctx, ifindex, queue));
}
