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

/* ------------------------------------------------------------ constants
 *
 * Every number the program judges or parses by, in one place (as katran's
 * balancer_consts.h). Times are time32: nanoseconds >> TIME32_SHIFT. */

/* Parsing: how deep, and the header fields read by mask. */
/* How deep: MAX_VLAN and MAX_IPV6_EXT are in rstguard.h (enum parse_limits),
 * shared with the daemon's parser. */
#define TCP_OPT_MAX 40      /* the TCP option space (RFC 9293 3.1) */
#define TCP_FLAGS_OFFSET 13 /* the flags byte in the TCP header */
#define IP_DF 0x4000        /* IPv4 frag_off (RFC 791) */
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff
#define IP6_OFFSET 0xfff8   /* IPv6 fragment header (RFC 8200 4.5) */
#define IP6_MF 0x0001
#define IP6_FLOWLABEL 0xfffff
#define VLAN_VID_MASK 0x0fff
#define TCPOPT_EOL 0        /* TCP option kinds (RFC 9293 3.2, RFC 7323) */
#define TCPOPT_NOP 1
#define TCPOPT_WINDOW 3
#define TCPOPT_TIMESTAMP 8
#define TCPOPT_MD5SIG 19    /* RFC 2385 */
#define TCPOPT_AO 29        /* RFC 5925 */
#define TCPOPT_NOP_NOP_TS 0x0101080a /* NOP, NOP, timestamps (RFC 7323 Appendix A layout) */
#define AF_INET 2           /* bpf_fib_lookup families */
#define AF_INET6 10
#define EEXIST 17

/* Checksums: bpf_csum_diff takes at most 512 bytes a call; three calls cover
 * any segment of a 1500-byte MTU. */
#define CSUM_MAX 512
#define CSUM_CHUNKS 3

/* Timing. */
#define ONE_SECOND_NS 1000000000ULL
#define ONE_SECOND_T32 (ONE_SECOND_NS >> TIME32_SHIFT)
#define MIN_TIMING_RTT_T32 (1000000ULL >> TIME32_SHIFT) /* 1 ms: below, hosts, not paths, make the RTT */
/* How long after a RST the claimed sender's data still proves it alive: its
 * retransmission timer starts at 200 ms (RFC 6298 section 2.4 with Linux's
 * TCP_RTO_MIN) and doubles, so a few seconds cover the first backoffs, and a
 * few RTTs more on long paths. A port a scanner reuses 15 s later proves
 * nothing. */
#define CONFIRM_WINDOW_FLOOR_T32 (3000000000ULL >> TIME32_SHIFT)
#define CONFIRM_WINDOW_RTTS 8
/* The reply model's horizon: ack_floor is an ACK its side sent at least this
 * long ago (and at most twice as long), so that a reply to any segment that
 * passed this box within it is recognised. Generous on purpose: every seq
 * the model accepts lies below what the receiver already acknowledged, which
 * the receiver discards (the harm model), so a long horizon lets no RST
 * reset anything. */
#define REPLY_HORIZON_T32 ONE_SECOND_T32
/* The largest scale a window may have (RFC 7323 section 2.3). */
#define MAX_WSCALE 14

/* Hold mode: the XSKMAP's slots (interfaces times RX queues). */
#define MAX_XSK 256

/* ------------------------------------------------------------ verifier notes
 *
 * - The RST, SYN and rare per-flow paths are __noinline BPF-to-BPF calls:
 *   each is verified once. Inlined into the main function, their branches
 *   multiply with the parser's and the program passes the verifier's limit.
 * - TCP options are copied to the stack with bpf_xdp_load_bytes() and walked
 *   in a bpf_loop() callback, and signals are counted in one: a bounded loop
 *   over packet pointers cost 875,000 of the 1,000,000 instructions
 *   (measured on this project's kernel, 6.18); the callbacks cost a few
 *   thousand. The signals' callback must leave the judgement as it found
 *   it: unrolling the loop, or clearing each bit as it is counted (to run
 *   once per raised signal), each took the verifier past 1,000,000.
 * - barrier_var() keeps clang from folding a two-sided bounds check into one
 *   compare on a temporary, after which the verifier has lost the bound.
 * - ctx fields are read once, at the top of the program: clang may merge
 *   reads from several branches into a modified ctx pointer, which the
 *   verifier rejects.
 * - rst_fit() and verdict_of() are global functions: the verifier
 *   checks each once on its own, against its prototype. As static
 *   subprograms inside judge_rst() they took it to 472,819 instructions (their
 *   branches multiply with judge_rst()'s); inlined, past 1,000,000.
 * - The RST path's frames (rstguard, handle_rst, hold_rst) come within 512
 *   bytes of stack only because hold_rst() builds its record in a per-CPU
 *   scratch map (hold_scratch) and count_signals() is a frame of its own.
 * - TestVerifierBudget keeps the verified instruction count under 200,000.
 */

/* The flow table: one entry per connection, both directions, for
 * connections whose handshake this box saw complete (or, picked up
 * mid-stream, whose two sides each acknowledged the other's data). Size set
 * at load time. Only such connections compete for its room: a flood of
 * half-open flows cannot evict them. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, DEFAULT_FLOW_TABLE_SIZE);
	__type(key, struct flow_key);
	__type(value, struct flow_value);
} flows SEC(".maps");

/* Flows that have not yet shown a completed handshake or a two-way
 * exchange: SYN-opened and mid-stream entries, promoted to flows when they
 * do. A flood of SYNs, or of packets of made-up flows, evicts only these.
 * Size set at load time. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1 << 18);
	__type(key, struct flow_key);
	__type(value, struct flow_value);
} embryonic SEC(".maps");

/* Per-CPU counters indexed by interface slot * CNT_MAX + enum counter;
 * readers sum over CPUs (and slots, for totals). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CNT_MAX * IFACE_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* Run-time policy, one entry; read only on the RST path. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} policy SEC(".maps");

/* Prefixes whose RSTs are never dropped, only reported: the operator's own
 * firewalls and load balancers reset on the servers' behalf (--allow). */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct allow_key);
	__type(value, __u8);
} allow SEC(".maps");

/* Judged RSTs and after-the-fact confirmations, struct event each. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

struct scratch {
	__u8 buf[CSUM_MAX + 4];
};

/* Event budgets per CPU: [0] for RSTs of no tracked flow, [1] for all events. */
enum { BUDGET_NO_FLOW = 0, BUDGET_GLOBAL = 1 };
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct event_budget);
} cpu_budgets SEC(".maps");

/* Room to copy a RST's TCP segment for checksum verification. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} csum_scratch SEC(".maps");

/* Room to build a hold record: on the stack it would take the RST path's
 * three frames past the verifier's 512 bytes. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hold);
} hold_scratch SEC(".maps");

/* The daemon's AF_XDP sockets (hold mode), by slot. A socket leaves the map
 * when it closes, so a dead daemon's slots redirect nothing. */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, MAX_XSK);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

/* Which slot serves which (interface, RX queue): a redirect to a socket bound
 * to another queue fails and the frame vanishes, so only a frame whose own
 * interface and queue have a socket is redirected. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_XSK);
	__type(key, struct xsk_key);
	__type(value, struct xsk_slot);
} xsk_slots SEC(".maps");

/* Held flows (hold mode), one entry per flow while its RSTs wait in the
 * daemon. A plain hash: a hold is never evicted, and a full table makes new
 * RSTs pass. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_HOLDS);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* held flows are few: allocate as they come */
	__type(key, struct flow_key);
	__type(value, struct hold);
} holds SEC(".maps");

/* Zones, set by the daemon (--zone, VRF masters); consulted only while
 * zones_in_use, so that a gateway without overlapping address spaces pays
 * no lookup on the common path. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct zone_key);
	__type(value, __u16);
} zones SEC(".maps");

volatile __u32 zones_in_use;

/* Puts the shared types in BTF so that bpf2go generates their Go twins:
 * Go then never restates a layout or an enum value by hand. */
struct btf_anchor {
	struct event event;
	struct allow_key allow_key;
	struct xsk_key xsk_key;
	struct xsk_slot xsk_slot;
	struct zone_key zone_key;
	struct hold hold;
	enum hold_outcome hold_outcome;
	enum hold_evidence hold_evidence;
	enum hold_limits hold_limits;
	enum parse_limits parse_limits;
	enum policy_default policy_default;
	enum time_unit time_unit;
	enum signal_weight signal_weight;
	enum benign_cause benign_cause;
	enum signal_causes signal_causes;
	enum tcp_flag tcp_flag;
	enum event_budgets event_budgets;
	enum signal signal;
	enum verdict verdict;
	enum action action;
	enum counter counter;
	enum iface_slots iface_slots;
	enum event_kind event_kind;
	enum context_limits context_limits;
	enum flow_state flow_state;
	enum ipid_model ipid_model;
	enum mode mode;
	enum abi abi;
	enum dir_flag dir_flag;
	enum flow_flag flow_flag;
};
const struct btf_anchor *unused_btf_anchor __attribute__((unused));

/* Set by `rstguard analyze` so that a capture's own timestamps drive every
 * timing signal; 0 on a live interface. */
volatile __u64 clock_override_ns;

/* What one parse of a frame yields. */
struct packet {
	struct flow_key key;
	__u32 seq;
	__u32 ack;
	__u32 tsval;
	__u32 flow_label;
	__u32 payload_len;
	__u16 l4_off;
	__u16 l4_len; /* TCP header + payload, from the IP length (GSO-safe) */
	__u16 window;
	__u16 ip_id;
	__u16 frame_len;
	__u8 tcp_hdr_len;
	__u8 tcp_flags;
	__u8 ttl;
	__u8 df;
	__u8 ipv6;
	__u8 has_ts;
	__u8 dir; /* 0: sent by the addr_lo side */
	__u8 pad[3];
	__u32 ifindex; /* where it arrived: interface and RX queue */
	__u32 queue;
	__u8 first_fragment; /* the first fragment of a datagram: payload incomplete */
	__u8 ipv6_fixed_ext; /* IPv6 with a routing, fragment or AH header before TCP: hold mode cannot release it */
	__u16 vlan;          /* the outer VLAN ID; 0 untagged */
};

static __always_inline __u8 iface_slot(__u32 ifindex)
{
	return ifindex & (IFACE_SLOTS - 1);
}

static __always_inline void count_in_slot(__u32 slot, __u32 idx)
{
	__u32 key = slot * CNT_MAX + idx;
	__u64 *v = bpf_map_lookup_elem(&counters, &key);

	if (v)
		*v += 1;
}

/* Counts one idx for the interface a frame arrived on. */
static __always_inline void count(__u32 ifindex, __u32 idx)
{
	count_in_slot(iface_slot(ifindex), idx);
}

static __always_inline __u64 now_ns(void)
{
	__u64 t = clock_override_ns;

	return t ? t : bpf_ktime_get_ns();
}

/* The coarse clock costs half as much; used on the data path, where it can only
 * make elapsed times look longer and so only make TOO_SOON rarer. */
static __always_inline __u64 now_coarse_ns(void)
{
	__u64 t = clock_override_ns;

	return t ? t : bpf_ktime_get_coarse_ns();
}

/* A time32 duration in nanoseconds, saturating at 4.29 s instead of wrapping. */
static __always_inline __u32 ns_of(__u32 t32)
{
	return t32 > (0xffffffffU >> TIME32_SHIFT) ? 0xffffffffU : t32 << TIME32_SHIFT;
}

static __always_inline __u32 time32(__u64 ns)
{
	return (__u32)(ns >> TIME32_SHIFT) | 1; /* never 0: 0 means "not recorded" */
}

/* The data path's clock, read at most once per packet and only when asked;
 * *cached is 0 until then. */
static __always_inline __u32 clock32(__u32 *cached)
{
	if (!*cached)
		*cached = time32(now_coarse_ns());
	return *cached;
}

/* Does the flow remember a RST sent by the side dir (0: addr_lo's)? */
static __always_inline int rst_pending(const struct flow_value *f, __u8 dir)
{
	return (f->flags & FLOW_RST_PENDING) && !!(f->flags & FLOW_RST_FROM_HI) == dir;
}

/* Sequence-space comparisons, wrap-aware (RFC 9293 3.4). */
static __always_inline int seq_before(__u32 a, __u32 b)
{
	return (__s32)(a - b) < 0;
}

static __always_inline int seq_after(__u32 a, __u32 b)
{
	return (__s32)(b - a) < 0;
}

/* ---------------------------------------------------------------- parsing */

/* Each result is also the counter it lands in: one increment, no branches. */
enum parse_result {
	PARSE_TCP = CNT_TCP,
	PARSE_NOT_TCP = CNT_NOT_TCP,
	PARSE_ERROR = CNT_PARSE_ERROR,
	PARSE_FRAGMENT = CNT_FRAGMENT,
	PARSE_IPV6_EXT_LIMIT = CNT_IPV6_EXT_LIMIT,
	PARSE_TINY_FRAGMENT = CNT_TINY_FRAGMENT,
};

struct vlan_hdr {
	__be16 tci;
	__be16 proto;
};

/* Orders the two endpoints so both directions build the same key. */
static __always_inline void set_key(struct packet *p, const __u32 *src, const __u32 *dst,
				    __u16 sport, __u16 dport)
{
	int src_is_lo = 0;
	int i;

#pragma unroll
	for (i = 0; i < 4; i++) {
		if (src[i] != dst[i]) {
			src_is_lo = bpf_ntohl(src[i]) < bpf_ntohl(dst[i]);
			goto ordered;
		}
	}
	src_is_lo = bpf_ntohs(sport) <= bpf_ntohs(dport);
ordered:
	__builtin_memcpy(p->key.addr_lo, src_is_lo ? src : dst, 16);
	__builtin_memcpy(p->key.addr_hi, src_is_lo ? dst : src, 16);
	p->key.port_lo = src_is_lo ? sport : dport;
	p->key.port_hi = src_is_lo ? dport : sport;
	p->dir = !src_is_lo;
}

/* Reads the timestamp option where Linux and BSD put it on every segment:
 * NOP, NOP, TS at the start of a 32-byte header (RFC 7323 Appendix A layout). */
static __always_inline void fast_timestamp(struct packet *p, struct tcphdr *th, void *data_end)
{
	__u32 *opt = (void *)(th + 1);

	if (p->tcp_hdr_len != 32 || (void *)(opt + 3) > data_end)
		return;
	if (opt[0] != bpf_htonl(TCPOPT_NOP_NOP_TS))
		return;
	p->has_ts = 1;
	p->tsval = bpf_ntohl(opt[1]);
}

/* Where parsing stands: the next header and the frame's end (xdp-tools'
 * struct hdr_cursor). Each parse_* step checks its header's bounds once and
 * moves the cursor past it. */
struct cursor {
	void *pos;
	void *end;
};

static __always_inline int is_vlan(__u16 proto)
{
	return proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD);
}

/* Hop-by-hop, routing, destination options, fragment and AH (RFC 8200 4.1). */
static __always_inline int is_ipv6_ext(__u8 proto)
{
	return proto == IPPROTO_HOPOPTS || proto == IPPROTO_ROUTING || proto == IPPROTO_DSTOPTS ||
	       proto == IPPROTO_FRAGMENT || proto == IPPROTO_AH;
}

/* Ethernet and up to MAX_VLAN tags (the outer tag's ID in *vlan). Returns
 * the next protocol, network order, or -1 when the frame is cut short. */
static __always_inline int parse_eth(struct cursor *c, __u16 *vlan)
{
	struct ethhdr *eth = c->pos;
	__u16 proto;
	int i;

	if ((void *)(eth + 1) > c->end)
		return -1;
	proto = eth->h_proto;
	c->pos = eth + 1;
#pragma unroll
	for (i = 0; i < MAX_VLAN; i++) {
		struct vlan_hdr *vh = c->pos;

		if (!is_vlan(proto))
			break;
		if ((void *)(vh + 1) > c->end)
			return -1;
		if (!i)
			*vlan = bpf_ntohs(vh->tci) & VLAN_VID_MASK;
		proto = vh->proto;
		c->pos = vh + 1;
	}
	return proto;
}

/* IPv4 to the TCP header: clears p (a TCP frame's only) and fills its IP
 * fields; the addresses IPv4-mapped in src and dst, the TCP length (header
 * and payload, from the IP length: GSO-safe) in *l4_len. */
static __always_inline int parse_ipv4(struct cursor *c, struct packet *p, __u32 *src, __u32 *dst, __u32 *l4_len)
{
	struct iphdr *iph = c->pos;
	__u32 ihl, len;

	if ((void *)(iph + 1) > c->end)
		return PARSE_ERROR;
	ihl = iph->ihl * 4;
	if (ihl < sizeof(*iph))
		return PARSE_ERROR;
	if (iph->protocol != IPPROTO_TCP)
		return PARSE_NOT_TCP;
	if (iph->frag_off & bpf_htons(IP_OFFSET))
		return PARSE_FRAGMENT;
	len = bpf_ntohs(iph->tot_len);
	if (len < ihl)
		return PARSE_ERROR;
	__builtin_memset(p, 0, sizeof(*p));
	p->ttl = iph->ttl;
	p->ip_id = bpf_ntohs(iph->id);
	p->df = !!(iph->frag_off & bpf_htons(IP_DF));
	p->first_fragment = !!(iph->frag_off & bpf_htons(IP_MF));
	src[3] = iph->saddr;
	dst[3] = iph->daddr;
	*l4_len = len - ihl;
	c->pos += ihl;
	return PARSE_TCP;
}

/* IPv6 and its extension headers to the TCP header, as parse_ipv4; *src
 * and *dst point into the header. */
static __always_inline int parse_ipv6(struct cursor *c, struct packet *p, __u32 **src, __u32 **dst, __u32 *l4_len)
{
	struct ipv6hdr *ip6h = c->pos;
	__u32 len;
	__u8 next, first = 0, fixed = 0;
	int i;

	if ((void *)(ip6h + 1) > c->end)
		return PARSE_ERROR;
	next = ip6h->nexthdr;
	len = bpf_ntohs(ip6h->payload_len);
	c->pos = ip6h + 1;
#pragma unroll
	for (i = 0; i < MAX_IPV6_EXT; i++) {
		__u8 *ext = c->pos;
		__u32 ext_len;

		if (!is_ipv6_ext(next))
			break;
		if ((void *)(ext + 8) > c->end)
			return PARSE_ERROR;
		if (next == IPPROTO_FRAGMENT) {
			if (*(__be16 *)(ext + 2) & bpf_htons(IP6_OFFSET))
				return PARSE_FRAGMENT;
			first = !!(*(__be16 *)(ext + 2) & bpf_htons(IP6_MF));
			ext_len = 8;
		} else if (next == IPPROTO_AH) {
			ext_len = (ext[1] + 2) * 4;
		} else {
			ext_len = (ext[1] + 1) * 8;
		}
		if (len < ext_len)
			return PARSE_ERROR;
		len -= ext_len;
		/* Hop-by-hop and destination options are what forwarding leaves
		 * alone and the daemon walks; a routing header changes the
		 * pseudo-header's destination (RFC 8200 8.1), a fragment or AH
		 * header ties the segment to what it cannot see. */
		fixed |= next != IPPROTO_HOPOPTS && next != IPPROTO_DSTOPTS;
		next = ext[0];
		c->pos += ext_len;
	}
	if (is_ipv6_ext(next))
		return PARSE_IPV6_EXT_LIMIT;
	if (next != IPPROTO_TCP)
		return PARSE_NOT_TCP;
	__builtin_memset(p, 0, sizeof(*p));
	p->ttl = ip6h->hop_limit;
	p->ipv6 = 1;
	p->flow_label = bpf_ntohl(*(__be32 *)ip6h) & IP6_FLOWLABEL;
	p->first_fragment = first;
	p->ipv6_fixed_ext = fixed;
	*src = (__u32 *)&ip6h->saddr;
	*dst = (__u32 *)&ip6h->daddr;
	*l4_len = len;
	return PARSE_TCP;
}

/* The TCP header at the cursor, all its bounds checked here: a first
 * fragment that does not hold it all is a tiny fragment (its key without
 * ports), any other short one an error. */
static __always_inline int parse_tcp(struct cursor *c, struct packet *p, void *data, const __u32 *src,
				     const __u32 *dst, __u32 l4_len)
{
	struct tcphdr *th = c->pos;

	p->frame_len = c->end - data;
	if ((void *)(th + 1) > c->end || l4_len < sizeof(*th)) {
		if (!p->first_fragment)
			return PARSE_ERROR;
		set_key(p, src, dst, 0, 0);
		return PARSE_TINY_FRAGMENT;
	}
	set_key(p, src, dst, th->source, th->dest);
	p->tcp_hdr_len = th->doff * 4;
	if (p->tcp_hdr_len < sizeof(*th))
		return PARSE_ERROR;
	if (l4_len < p->tcp_hdr_len)
		return p->first_fragment ? PARSE_TINY_FRAGMENT : PARSE_ERROR;
	p->l4_off = c->pos - data;
	p->l4_len = l4_len;
	p->payload_len = l4_len - p->tcp_hdr_len;
	p->seq = bpf_ntohl(th->seq);
	p->ack = bpf_ntohl(th->ack_seq);
	p->window = bpf_ntohs(th->window);
	p->tcp_flags = ((__u8 *)th)[TCP_FLAGS_OFFSET];
	fast_timestamp(p, th, c->end);
	return PARSE_TCP;
}

/* Parses a frame down to TCP: an L3 step, then one TCP step. Fills p for
 * TCP only: frames that are not TCP leave it untouched, so that they do not
 * pay for clearing it. */
static __always_inline int parse(struct xdp_md *ctx, struct packet *p)
{
	void *data = (void *)(long)ctx->data;
	struct cursor c = {.pos = data, .end = (void *)(long)ctx->data_end};
	__u32 v4src[4] = {0, 0, bpf_htonl(0xffff)}, v4dst[4] = {0, 0, bpf_htonl(0xffff)}; /* IPv4-mapped */
	__u32 *src = v4src, *dst = v4dst, l4_len = 0;
	__u16 vlan = 0;
	int proto, r;

	proto = parse_eth(&c, &vlan);
	if (proto == bpf_htons(ETH_P_IP))
		r = parse_ipv4(&c, p, v4src, v4dst, &l4_len);
	else if (proto == bpf_htons(ETH_P_IPV6))
		r = parse_ipv6(&c, p, &src, &dst, &l4_len);
	else
		return proto < 0 ? PARSE_ERROR : PARSE_NOT_TCP;
	if (r != PARSE_TCP)
		return r;
	p->vlan = vlan;
	return parse_tcp(&c, p, data, src, dst, l4_len);
}

/* Options of SYNs and RSTs, walked in a bpf_loop callback over a stack copy:
 * a direct walk over packet pointers nearly exhausts the verifier (verifier notes above). */
struct tcp_options {
	__u8 buf[TCP_OPT_MAX];
	__u32 len;
	__u32 pos;
	__u32 tsval;
	__u8 wscale;
	__u8 has_wscale;
	__u8 has_ts;
	__u8 has_auth; /* TCP-MD5 or TCP-AO */
};

static long walk_option(__u32 i, struct tcp_options *o)
{
	__u32 pos = o->pos;
	__u8 kind, len;

	if (pos >= o->len || pos >= TCP_OPT_MAX)
		return 1;
	kind = o->buf[pos];
	if (kind == TCPOPT_EOL)
		return 1;
	if (kind == TCPOPT_NOP) {
		o->pos = pos + 1;
		return 0;
	}
	if (pos + 1 >= TCP_OPT_MAX || pos + 1 >= o->len)
		return 1;
	len = o->buf[pos + 1];
	if (len < 2 || pos + len > o->len)
		return 1;
	if (kind == TCPOPT_WINDOW && len == 3 && pos + 2 < TCP_OPT_MAX) {
		o->wscale = o->buf[pos + 2];
		o->has_wscale = 1;
	} else if (kind == TCPOPT_TIMESTAMP && len == 10 && pos + 5 < TCP_OPT_MAX) {
		o->tsval = ((__u32)o->buf[pos + 2] << 24) | ((__u32)o->buf[pos + 3] << 16) |
			   ((__u32)o->buf[pos + 4] << 8) | o->buf[pos + 5];
		o->has_ts = 1;
	} else if (kind == TCPOPT_MD5SIG || kind == TCPOPT_AO) {
		o->has_auth = 1;
	}
	o->pos = pos + len;
	return 0;
}

static __noinline int read_options(struct xdp_md *ctx, struct packet *p, struct tcp_options *o)
{
	__u32 len = p->tcp_hdr_len;

	if (len <= sizeof(struct tcphdr) || len > sizeof(struct tcphdr) + TCP_OPT_MAX)
		return 0;
	len -= sizeof(struct tcphdr);
	if (bpf_xdp_load_bytes(ctx, p->l4_off + sizeof(struct tcphdr), o->buf, len))
		return 0;
	o->len = len;
	bpf_loop(TCP_OPT_MAX, walk_option, o, 0);
	if (o->has_ts) {
		p->has_ts = 1;
		p->tsval = o->tsval;
	}
	return 0;
}

/* ------------------------------------------------------------ learning */

/* Classifies the sender's IP-ID behaviour from its steps. A stateless RST
 * (Linux: DF and ID 0) never disturbs the model. */
static __always_inline void learn_ipid(struct dir_state *s, const struct packet *p)
{
	__u16 step;
	__u8 cls;

	if (p->ipv6)
		return;
	if (p->ip_id == 0) {
		if (s->ipid_model == IPID_UNKNOWN && s->ip_id == 0)
			s->ipid_model = IPID_ZERO;
		return;
	}
	if (s->ip_id == 0) { /* first non-zero ID: nothing to step from yet */
		s->ipid_model = IPID_UNKNOWN;
		s->ip_id = p->ip_id;
		return;
	}
	step = p->ip_id - s->ip_id;
	if (step >= 1 && step <= IPID_PER_FLOW_STEP)
		cls = IPID_PER_FLOW;
	else if (step > IPID_PER_FLOW_STEP && step <= IPID_GLOBAL_STEP)
		cls = IPID_GLOBAL;
	else
		cls = IPID_RANDOM;
	if (cls == IPID_PER_FLOW && s->ipid_model == IPID_GLOBAL)
		cls = IPID_GLOBAL; /* a global counter also steps by one at times */
	s->ipid_model = cls;
	s->ip_id = p->ip_id;
}

/* The reply model's memory, moved on as the side's ACK advances: the floor
 * takes the stage, the stage the ACK as it stands, at most once per
 * REPLY_HORIZON. A side whose ACK stops advancing keeps an older floor,
 * which only widens what counts as a reply to it (see REPLY_HORIZON_T32). */
static __always_inline void shift_ack_floor(struct dir_state *s, __u32 now32)
{
	if (now32 - s->floor_t < REPLY_HORIZON_T32)
		return;
	s->ack_floor = s->ack_stage;
	s->ack_stage = s->max_ack;
	s->floor_t = now32;
}

/* Records what a non-RST packet shows of its sender. */
static __always_inline void learn(struct dir_state *s, const struct packet *p, __u32 *now32)
{
	__u32 end = p->seq + p->payload_len + !!(p->tcp_flags & (TH_SYN | TH_FIN));

	if (!(s->flags & DIR_SEEN) || seq_after(end, s->next_seq)) {
		s->next_seq = end;
		if (p->payload_len)
			s->last_data_t = clock32(now32);
	}
	if (p->tcp_flags & TH_ACK) {
		if (!(s->flags & DIR_ACKED)) {
			s->max_ack = s->ack_stage = s->ack_floor = p->ack;
		} else if (seq_after(p->ack, s->max_ack)) {
			shift_ack_floor(s, clock32(now32));
			s->max_ack = p->ack;
		}
		s->flags |= DIR_ACKED;
	}
	if (p->has_ts)
		s->tsval = p->tsval;
	learn_ipid(s, p);
	s->window = p->window;
	s->ttl = p->ttl;
	s->flow_label = p->flow_label;
	s->flags = (s->flags & ~DIR_DF) | DIR_SEEN | (p->df ? DIR_DF : 0);
}

/* ------------------------------------------------------------ events */

/* A budget per flow (and one per CPU for RSTs of no flow) so that a flood
 * cannot starve the ring buffer; counters stay exact either way. */
static __always_inline int event_allowed(__u32 ifindex, struct event_budget *b, __u32 limit, __u64 now)
{
	__u32 t = time32(now);

	if (t - b->window_t > ONE_SECOND_T32) {
		b->window_t = t;
		b->count = 0;
	}
	if (b->count >= limit) {
		count(ifindex, CNT_EVENT_SUPPRESSED);
		return 0;
	}
	b->count++;
	return 1;
}

/* The per-CPU budget of events that belong to no flow: RSTs of no flow and
 * tiny fragments. */
static __always_inline struct event_budget *no_flow_budget(void)
{
	__u32 no_flow = BUDGET_NO_FLOW;

	return bpf_map_lookup_elem(&cpu_budgets, &no_flow);
}

/* Reserves an event about p, charged to budget b (limit a second: the
 * flow's, or no_flow_budget()) and to the CPU's budget for all events. NULL
 * when a budget is spent or the ring buffer full; either is counted. The
 * caller fills in the rest and calls event_submit(). */
static __always_inline struct event *event_start(struct xdp_md *ctx, const struct packet *p, __u8 kind,
						 __u64 now, struct event_budget *b, __u32 limit)
{
	__u32 global = BUDGET_GLOBAL, cap;
	struct event_budget *g = bpf_map_lookup_elem(&cpu_budgets, &global);
	struct event *e;

	if (!b || !event_allowed(p->ifindex, b, limit, now))
		return 0;
	if (g && !event_allowed(p->ifindex, g, GLOBAL_EVENT_BUDGET, now))
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(p->ifindex, CNT_EVENT_LOST);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->time_ns = now;
	e->kind = kind;
	e->ifindex = p->ifindex;
	__builtin_memcpy(e->saddr, p->dir ? p->key.addr_hi : p->key.addr_lo, 16);
	__builtin_memcpy(e->daddr, p->dir ? p->key.addr_lo : p->key.addr_hi, 16);
	e->sport = bpf_ntohs(p->dir ? p->key.port_hi : p->key.port_lo);
	e->dport = bpf_ntohs(p->dir ? p->key.port_lo : p->key.port_hi);
	e->zone = p->key.zone;
	e->seq = p->seq;
	e->ack = p->ack;
	e->window = p->window;
	e->ip_id = p->ip_id;
	e->ttl = p->ttl;
	e->tcp_flags = p->tcp_flags;
	e->pkt_len = p->frame_len;
	cap = p->frame_len;
	barrier_var(cap); /* keep clang from re-masking cap after the bounds checks */
	if (cap > EVENT_PKT_MAX)
		cap = EVENT_PKT_MAX;
	if (cap >= ETH_HLEN && bpf_xdp_load_bytes(ctx, 0, e->pkt, cap) == 0)
		e->cap_len = cap;
	return e;
}

static __always_inline void event_submit(struct event *e)
{
	__u32 ifindex = e->ifindex;

	bpf_ringbuf_submit(e, 0);
	count(ifindex, CNT_EVENT_SENT);
}

static __always_inline const struct config *get_config(void)
{
	static const struct config defaults = {
		.abi = RSTGUARD_ABI, .mode = MODE_MONITOR, .ttl_tolerance = DEFAULT_TTL_TOLERANCE,
		.event_budget = DEFAULT_EVENT_BUDGET, .hold_min_us = DEFAULT_HOLD_MIN_US,
		.hold_max_us = DEFAULT_HOLD_MAX_US, .hold_frames = DEFAULT_HOLD_FRAMES,
		.probe_rate = DEFAULT_PROBE_RATE,
	};
	__u32 zero = 0;
	const struct config *cfg = bpf_map_lookup_elem(&policy, &zero);

	return cfg && cfg->abi == RSTGUARD_ABI ? cfg : &defaults;
}

/* ------------------------------------------------------------ judging */

/* Weights (enum signal_weight): weak 1, medium 2, strong 4. A RST is spoofed
 * when its medium and strong signals alone reach 4 (one strong, or two
 * medium); suspect when all its signals reach 2. Weak signals never convict, however many: each has an
 * innocent cause that real traffic shows together with the others (a stateless
 * RST has no timestamps, a new IP-ID and window 0; two hosts share a window by
 * chance). Weaver et al. prefer false negatives to false positives, and so do
 * we. */

struct judgement {
	__u32 signals;
	__u32 exp_seq;
	__u32 exp_ack;
	__u64 explained; /* per benign cause, a byte: the medium and strong weight it explains */
	__u8 score;   /* every signal */
	__u8 hard;    /* medium and strong signals only */
	__u8 verdict;
	__u8 iface_slot; /* the counters' set, for count_signal */
};

/* One byte lane per benign cause, 1 in each lane of a cause in the mask:
 * weight * cause_lanes(mask) adds the weight to every such cause at once.
 * The masks are constants, so this folds at compile time. */
static __always_inline __u64 cause_lanes(__u32 causes)
{
	__u64 lanes = 0;
	int c;

#pragma unroll
	for (c = 0; c < CAUSE_COUNT; c++)
		if (causes & (1U << c))
			lanes |= 1ULL << (8 * c);
	return lanes;
}

static __always_inline void flag(struct judgement *j, enum signal sig, __u8 weight, __u32 causes)
{
	j->signals |= 1U << sig;
	j->score += weight;
	if (weight >= WEIGHT_MEDIUM) {
		j->hard += weight;
		j->explained += weight * cause_lanes(causes);
	}
}

/* The verdict of a judgement. Evidence by cause (enum benign_cause): the
 * signals one benign cause raises together count once, so whatever the most
 * generous single cause explains is set aside, and what is left of the
 * medium and strong weight must still convict. A global function: the
 * verifier checks it once on its own, not once for every path through
 * judge_rst(), whose branches would otherwise multiply with its own. */
__noinline int verdict_of(const struct judgement *j)
{
	__u8 most = 0;
	int c;

	if (!j)
		return VERDICT_UNKNOWN;
#pragma unroll
	for (c = 0; c < CAUSE_COUNT; c++) {
		__u8 w = j->explained >> (8 * c);

		if (w > most)
			most = w;
	}
	if (j->hard - most >= WEIGHT_STRONG)
		return VERDICT_SPOOFED;
	if (j->score >= WEIGHT_MEDIUM)
		return VERDICT_SUSPECT;
	return VERDICT_VALID;
}

/* FLAG(j, TTL_OFF) raises SIG_TTL_OFF with its weight, SIGW_TTL_OFF, and its
 * benign causes, SIGC_TTL_OFF. */
#define FLAG(j, name) flag(j, SIG_##name, SIGW_##name, SIGC_##name)

/* Is the TCP checksum right? Partial checksums (TX offload on a sending host
 * or a veth: only the pseudo-header sum is filled in) count as right. A wrong
 * one marks a deliberate insertion packet (Geneva, INTANG) that the receiver
 * will discard anyway: reported, never scored. Returns 1 when wrong. */
static __noinline int bad_checksum(struct xdp_md *ctx, const struct packet *p)
{
	__u32 zero = 0, pseudo[10] = {}, pseudo_len, len = p->l4_len, sum;
	struct scratch *s = bpf_map_lookup_elem(&csum_scratch, &zero);
	const __u8 *src = p->dir ? p->key.addr_hi : p->key.addr_lo;
	const __u8 *dst = p->dir ? p->key.addr_lo : p->key.addr_hi;
	__u16 check = 0, pseudo_folded;
	__s64 r;
	int i;

	if (!s)
		return 0;
	/* A first fragment holds part of the segment: its checksum covers bytes
	 * this box does not have. Jumbo segments are beyond CSUM_CHUNKS. Both
	 * are judged without it, and the latter counted. */
	if (p->first_fragment)
		return 0;
	if (len > CSUM_MAX * CSUM_CHUNKS || p->l4_off + len > p->frame_len) {
		count(p->ifindex, CNT_CSUM_UNCHECKED);
		return 0;
	}
	if (len < sizeof(struct tcphdr))
		return 0;

	if (p->ipv6) {
		__builtin_memcpy(&pseudo[0], src, 16);
		__builtin_memcpy(&pseudo[4], dst, 16);
		pseudo[8] = bpf_htonl(len);
		pseudo[9] = bpf_htonl(IPPROTO_TCP);
		pseudo_len = 40;
	} else {
		__builtin_memcpy(&pseudo[0], src + 12, 4);
		__builtin_memcpy(&pseudo[1], dst + 12, 4);
		pseudo[2] = bpf_htonl((IPPROTO_TCP << 16) | len);
		pseudo_len = 12;
	}
	r = bpf_csum_diff(0, 0, pseudo, pseudo_len, 0);
	if (r < 0)
		return 0;
	sum = (__u32)r;
	pseudo_folded = (sum & 0xffff) + (sum >> 16);
	pseudo_folded = (pseudo_folded & 0xffff) + (pseudo_folded >> 16);

	/* The segment in chunks of CSUM_MAX, each summed onto the last; only the
	 * last can be short, and only it is padded. */
#pragma unroll
	for (i = 0; i < CSUM_CHUNKS; i++) {
		__u32 off = i * CSUM_MAX, n, padded;

		if (off >= len)
			break;
		n = len - off;
		if (n > CSUM_MAX)
			n = CSUM_MAX;
		/* Two separate checks: clang would fold a range check into one
		 * compare on a temporary, and the verifier would lose n's bounds. */
		barrier_var(n);
		if (n < 1)
			return 0;
		if (bpf_xdp_load_bytes(ctx, p->l4_off + off, s->buf, n))
			return 0;
		s->buf[n] = 0;
		s->buf[n + 1] = 0;
		s->buf[n + 2] = 0;
		padded = (n + 3) & ~3U;
		if (i == 0)
			check = *(__u16 *)&s->buf[16];
		r = bpf_csum_diff(0, 0, (void *)s->buf, padded, sum);
		if (r < 0)
			return 0;
		sum = (__u32)r;
	}
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	if (sum == 0xffff)
		return 0;
	return check != pseudo_folded;
}

static __always_inline __u8 abs_diff(__u8 a, __u8 b)
{
	return a > b ? a - b : b - a;
}

/* The initial TTL a sender most likely used: the nearest common one at or
 * above what arrived (32, 64, 128, 255). */
static __always_inline __u8 initial_ttl(__u8 ttl)
{
	return ttl <= 32 ? 32 : ttl <= 64 ? 64 : ttl <= 128 ? 128 : 255;
}

/* How far a RST's TTL is from its sender's. Where both arrived from the same
 * initial TTL, the difference; where not, the difference in hop counts: Linux
 * sends stateless RSTs from a per-namespace control socket with the system's
 * default TTL (64) while an application may send with its own (IP_TTL 128,
 * or another OS's default): the same distance, another start. An injector at
 * another distance still differs; one that picks another initial TTL at the
 * sender's own distance is missed. */
static __always_inline __u8 ttl_distance(__u8 rst, __u8 baseline)
{
	__u8 a = initial_ttl(rst), b = initial_ttl(baseline);

	if (a == b)
		return abs_diff(rst, baseline);
	return abs_diff(a - rst, b - baseline);
}

/* Does p's IPv4 ID step off its sender's model (learn_ipid)? */
static __always_inline int ipid_off_model(const struct dir_state *s, const struct packet *p)
{
	__u16 step = p->ip_id - s->ip_id;

	if (p->ipv6)
		return 0;
	if (s->ipid_model == IPID_ZERO)
		return p->ip_id != 0;
	if (s->ipid_model == IPID_PER_FLOW)
		return step == 0 || step > IPID_PER_FLOW_STEP;
	if (s->ipid_model == IPID_GLOBAL)
		return step == 0 || step > IPID_GLOBAL_STEP;
	return 0;
}

/* The harm model: would the RST's receiver discard it? RFC 9293 3.10.7.4
 * and RFC 5961 3.2: a synchronised receiver accepts a RST only at RCV.NXT
 * (RFC 5961) or, in older stacks, anywhere in [RCV.NXT, RCV.NXT + RCV.WND);
 * nothing outside that window resets any stack. RCV.NXT is at least what
 * the receiver acknowledged (it cannot acknowledge what it has not
 * received, nor take it back), and at most what the sender sent: of the
 * two, the lower is a bound the box can trust. The window's right edge
 * is at most the last one the receiver advertised plus one largest window
 * (RFC 7323 section 2.3), and only known when both SYNs were seen. RFC
 * 9293 3.10.7.3: in SYN-SENT a RST is acceptable only if it acknowledges
 * the SYN. Where the box cannot be sure (no ACK from the receiver yet, a
 * window of unknown scale), the RST could reset: not harmless. */
static __always_inline int harmless(const struct packet *p, const struct flow_value *f,
				    const struct dir_state *snd, const struct dir_state *rcv)
{
	int has_ack = p->tcp_flags & TH_ACK, handshake;
	__u32 lo, span = 1U << 31;

	handshake = (snd->flags & DIR_SYN) && (rcv->flags & DIR_SYN) && !(f->flags & FLOW_MIDSTREAM);

	if ((rcv->flags & DIR_SYN) && !(rcv->flags & DIR_ACKED) && !(f->flags & FLOW_MIDSTREAM))
		return !has_ack || p->ack != rcv->isn + 1; /* SYN-SENT */
	if (!(rcv->flags & DIR_ACKED))
		return 0;
	lo = rcv->max_ack;
	if ((snd->flags & DIR_SEEN) && seq_before(snd->next_seq, lo))
		lo = snd->next_seq;
	if (handshake) {
		__u32 scale = (snd->flags & DIR_WSCALE) && (rcv->flags & DIR_WSCALE) ? rcv->wscale : 0;

		if (scale > MAX_WSCALE)
			scale = MAX_WSCALE;
		span = ((__u32)rcv->window << scale) + (0xffffU << scale);
	}
	/* Below lo (at most 2^31 behind it), or span or more beyond it. */
	return p->seq - lo >= span;
}

/* How a RST fits the reply model (judge_rst()), its seq and its ack (a
 * plain RST's ack fits), and whether the harm model finds it harmless. */
enum rst_fit {
	FIT_REPLY_SEQ = 1,
	FIT_REPLY_ACK = 2,
	FIT_HARMLESS = 4,
};

static __always_inline int replies(const struct packet *p, const struct dir_state *snd,
				   const struct dir_state *rcv)
{
	if (!(rcv->flags & DIR_ACKED) || seq_before(p->seq, rcv->ack_floor) || seq_after(p->seq, rcv->max_ack))
		return 0;
	if (!(p->tcp_flags & TH_ACK) ||
	    ((snd->flags & DIR_ACKED) && !seq_before(p->ack, snd->ack_floor) && !seq_after(p->ack, rcv->next_seq)))
		return FIT_REPLY_SEQ | FIT_REPLY_ACK;
	return FIT_REPLY_SEQ;
}

/* Both models' tests in one global function, verified once, as verdict_of():
 * at most one call on the RST path (fit_of()), not one per model. */
__noinline int rst_fit(const struct packet *p, const struct flow_value *f)
{
	const struct dir_state *snd, *rcv;

	if (!p || !f)
		return 0;
	snd = &f->dir[p->dir & 1];
	rcv = &f->dir[!p->dir];
	return replies(p, snd, rcv) | (harmless(p, f, snd, rcv) ? FIT_HARMLESS : 0);
}

/* rst_fit(), computed on first use only: most RSTs are exact, with an ack
 * that fits, and never need either model. *fit is -1 until then. */
static __always_inline int fit_of(const struct packet *p, const struct flow_value *f, int *fit)
{
	if (*fit < 0)
		*fit = rst_fit(p, f);
	return *fit;
}

static __always_inline int is_reply(int fit)
{
	return fit >= 0 && (fit & (FIT_REPLY_SEQ | FIT_REPLY_ACK)) == (FIT_REPLY_SEQ | FIT_REPLY_ACK);
}

/* Computes the signals of a RST from the sender's side against what the flow
 * has shown; fills j and returns the verdict. */
static __noinline __u8 judge_rst(const struct packet *p, struct flow_value *f,
				 const struct config *cfg, __u32 now32, struct judgement *j)
{
	const struct dir_state *snd = &f->dir[p->dir & 1];
	const struct dir_state *rcv = &f->dir[!p->dir];
	int has_ack = p->tcp_flags & TH_ACK;
	int fit = -1, exact = 0;

	/* Nothing to convict without a receiver in a synchronised state: a RST
	 * toward a side that never sent SYN or SYN/ACK hits LISTEN, which
	 * ignores it (RFC 9293 3.10.7.2). */
	if (!(rcv->flags & DIR_SEEN) || !((rcv->flags & DIR_SYN) || (f->flags & FLOW_MIDSTREAM)))
		return VERDICT_UNKNOWN;
	if (f->flags & FLOW_MIDSTREAM)
		FLAG(j, MIDSTREAM);

	/* The reply model, RFC 9293 3.10.7.1: a host without the connection (or
	 * closing it) answers each segment that reaches it with a RST at seq =
	 * that segment's ACK, and, as some stacks do (Windows), an ack = its
	 * end. Segments that crossed the close in flight, or arrived late or
	 * out of order, carry ACKs the receiver sent earlier, so a real stack's
	 * RSTs step through them, behind what this box saw last. A RST whose
	 * seq lies among the ACKs the receiver sent within the horizon
	 * [ack_floor, max_ack], and whose ack, if any, lies among the ends of
	 * its recent segments (at least what the sender acknowledged a horizon
	 * ago, at most what the receiver sent), is such a reply: no sign of an
	 * injector in its seq, its ack, or in several of them in a row. It opens
	 * nothing to one: each seq below max_ack is one the receiver discards
	 * (harmless(), below), and max_ack itself is judged exact anyway. The
	 * model is consulted (fit_of()) only where an exact test below would
	 * raise a signal; reply is raised where it explained one. */

	/* Sequence, RFC 5961 section 3.2: only seq == RCV.NXT resets. RCV.NXT is
	 * what the receiver last acknowledged, or the sender's next sequence. */
	if (snd->flags & DIR_SEEN) {
		__u32 rcv_nxt = (rcv->flags & DIR_ACKED) ? rcv->max_ack : snd->next_seq;
		__u32 wscale = (rcv->flags & DIR_WSCALE) && (snd->flags & DIR_WSCALE) ? rcv->wscale :
			       (f->flags & FLOW_MIDSTREAM) ? 14 : 0;
		__u32 wnd = (__u32)rcv->window << (wscale & 15);

		j->exp_seq = snd->next_seq;
		exact = p->seq == snd->next_seq || p->seq == rcv_nxt;
		if (exact)
			FLAG(j, SEQ_EXACT);
		else if (is_reply(fit_of(p, f, &fit)))
			; /* answers an older segment of the receiver's */
		else if (!seq_before(p->seq, rcv_nxt) && seq_before(p->seq, rcv_nxt + wnd))
			FLAG(j, SEQ_IN_WINDOW);
		else
			FLAG(j, SEQ_OUT_OF_WINDOW);
	}

	/* ACK field, RFC 9293 3.10.7.3 and Wang et al. 2017 Table 3: a real RST/ACK
	 * never acknowledges less than the SYN, more than was sent, or less than
	 * its sender acknowledged before. */
	j->exp_ack = rcv->next_seq;
	if (has_ack) {
		/* No stack acknowledges less than the SYN it answers: every
		 * segment it ever received lies beyond the ISN. No benign cause. */
		if ((rcv->flags & DIR_SYN) && !seq_after(p->ack, rcv->isn))
			FLAG(j, ACK_BELOW_SYN);
		else if ((seq_after(p->ack, rcv->next_seq) ||
			  ((snd->flags & DIR_ACKED) && seq_before(p->ack, snd->max_ack))) &&
			 !is_reply(fit_of(p, f, &fit)))
			FLAG(j, ACK_MISMATCH);
	}

	if (snd->flags & DIR_SEEN) {
		/* TTL / hop limit off the sender's baseline: the injector sits at
		 * another hop count (Weaver et al. 2009; Cloudflare 2023). ECMP and
		 * route changes move it by 1-2 hops: weak within the tolerance. */
		__u8 d = ttl_distance(p->ttl, snd->ttl);

		if (d > cfg->ttl_tolerance)
			FLAG(j, TTL_OFF);
		else if (d)
			FLAG(j, TTL_DRIFT);

		/* IP-ID off the sender's model (GFW write-ups, net4people #46).
		 * Weak: stateless RSTs (ID 0 with DF) legitimately leave it. */
		if (!(p->ip_id == 0 && p->df) && ipid_off_model(snd, p))
			FLAG(j, IPID_OFF_MODEL);

		/* IPv6 flow label: a stack keeps one label per connection (RFC 6437). */
		if (p->ipv6 && snd->flow_label && p->flow_label != snd->flow_label)
			FLAG(j, FLOWLABEL_OFF);

		/* Timestamps going backwards (RFC 7323 section 5): the sender's clock
		 * does not run back. */
		if (p->has_ts && (snd->flags & DIR_TS) && seq_before(p->tsval, snd->tsval))
			FLAG(j, TS_BACKWARDS);
	}

	/* Fields copied from the trigger, the packet the other side sent last
	 * (zeek rst-inject-rae.pcap). IP-ID 0 and window 0 are too common to
	 * count, and so is a value the sender uses itself: two stacks that both
	 * send one constant IP-ID, or the same window, mirror nothing. */
	if (!p->ipv6 && p->ip_id && p->ip_id == rcv->ip_id && p->ip_id != snd->ip_id)
		FLAG(j, IPID_MIRRORED);
	if (p->window && p->window == rcv->window && p->window != snd->window)
		FLAG(j, WINDOW_MIRRORED);

	/* Real stacks send a plain RST with window 0; GFW type-1/2 RSTs do not
	 * (Wang et al. 2017; INTANG). Some old stacks put their own receive
	 * window on RSTs: the sender's usual window is no signal. */
	if (!has_ack && p->window && p->window != snd->window)
		FLAG(j, WINDOW_NONZERO);

	/* Negotiated timestamps but none on a RST/ACK, which a socket's abort
	 * sends with its options (Zeek qi_internet trace). A plain RST is a
	 * stateless reply (Linux tcp_v4_send_reset), which never carries any. */
	if (has_ack && (snd->flags & DIR_TS) && (rcv->flags & DIR_TS) && !p->has_ts)
		FLAG(j, TS_MISSING);

	/* Timing (net4people #285): a RST/ACK that acknowledges the other side's
	 * latest data sooner than half the sender's measured RTT after that data
	 * passed this box answers something the sender cannot have seen yet.
	 * Only on legs of MIN_TIMING_RTT or more: below that, host processing
	 * rather than the path makes up the RTT, and a stack that was closing
	 * anyway acks data microseconds after it arrived. */
	if (has_ack && snd->rtt >= MIN_TIMING_RTT_T32 && rcv->last_data_t && p->ack == rcv->next_seq &&
	    now32 - rcv->last_data_t < snd->rtt / 2)
		FLAG(j, TOO_SOON);

	/* Several RSTs for one event with differing seq or hop count: the GFW's
	 * volleys (Clayton et al. 2006, Wang et al. 2017, net4people #285),
	 * Weaver's RST SEQ CHANGE. A real stack's RSTs differ in seq only where
	 * each answers another segment of the peer, at seq = that segment's ACK
	 * (RFC 9293 3.10.7.1): a seq among the peer's recent ACKs is no change.
	 * They differ in TTL only where one came from the host's control socket
	 * (the system's initial TTL) and one from the connection's socket: the
	 * same hop count (ttl_distance()). */
	if (rst_pending(f, p->dir) && now32 - f->rst_t < ONE_SECOND_T32 &&
	    ((f->rst_seq != p->seq && !(fit_of(p, f, &fit) & FIT_REPLY_SEQ)) || ttl_distance(p->ttl, f->rst_ttl)))
		FLAG(j, RST_BURST);

	if (is_reply(fit))
		FLAG(j, REPLY);
	/* An exact RST to a synchronised receiver is the one it accepts (RFC
	 * 5961 3.2): nothing for the harm model to find. */
	if ((!exact || !(rcv->flags & DIR_ACKED)) && (fit_of(p, f, &fit) & FIT_HARMLESS))
		FLAG(j, HARMLESS);
	/* Most RSTs carry no medium or strong signal: nothing to weigh by cause. */
	if (j->hard >= WEIGHT_STRONG)
		return verdict_of(j);
	return j->score >= WEIGHT_MEDIUM ? VERDICT_SUSPECT : VERDICT_VALID;
}

static __always_inline int allowed(const struct packet *p)
{
	struct allow_key k = {.prefixlen = 128};

	__builtin_memcpy(k.addr, p->key.addr_lo, 16);
	if (bpf_map_lookup_elem(&allow, &k))
		return 1;
	__builtin_memcpy(k.addr, p->key.addr_hi, 16);
	return bpf_map_lookup_elem(&allow, &k) != 0;
}

/* Counts signal i if it was raised; stops the loop after the highest raised
 * one, so that a RST pays for the signals up to its last, not for every one
 * there is. */
static long count_signal(__u32 i, struct judgement *j)
{
	if (j->signals & (1U << i))
		count_in_slot(j->iface_slot, CNT_SIGNAL_BASE + i);
	return !(j->signals >> i >> 1);
}

/* Counts the judgement's signals. reply and harmless, raised on most real
 * RSTs, sit high in the enum: counted on their own, so that the loop still
 * stops after the highest other raised signal (a valid RST counts one or
 * two, not twenty-odd). The loop sees the judgement without them and gets
 * it back as it was. */
static __noinline void count_signals(struct judgement *j)
{
	const __u32 own = (1U << SIG_REPLY) | (1U << SIG_HARMLESS);
	__u32 all = j->signals;

	if (all & (1U << SIG_REPLY))
		count_in_slot(j->iface_slot, CNT_SIGNAL_BASE + SIG_REPLY);
	if (all & (1U << SIG_HARMLESS))
		count_in_slot(j->iface_slot, CNT_SIGNAL_BASE + SIG_HARMLESS);
	j->signals = all & ~own;
	if (j->signals)
		bpf_loop(SIG_COUNT, count_signal, j, 0);
	j->signals = all;
}

/* ------------------------------------------------------------ hold mode */

/* The XSKMAP slot of the daemon's socket for this interface and queue, or
 * NULL: a slot whose socket closed (the daemon died) redirects nothing. */
static __always_inline __u32 *xsk_slot(__u32 ifindex, __u32 queue)
{
	struct xsk_key k = {.ifindex = ifindex, .queue = queue};
	struct xsk_slot *s = bpf_map_lookup_elem(&xsk_slots, &k);

	if (s && bpf_map_lookup_elem(&xsks, &s->slot))
		return &s->slot;
	return 0;
}

/* Where the kernel would forward p (back: toward its sender instead):
 * egress interface and L2 addresses from the box's own tables, so that the
 * daemon releases a held RST exactly there and probes its claimed sender
 * where that sender really is, whatever L2 header a forgery carried. Fails
 * for an address this box would deliver locally or cannot resolve (fail
 * open: pass). */
static __always_inline int route(struct xdp_md *ctx, const struct packet *p, int back, __u32 *ifindex,
				 __u8 *smac, __u8 *dmac)
{
	struct bpf_fib_lookup fib = {};
	int from_hi = back ? !p->dir : p->dir;
	const __u8 *src = from_hi ? p->key.addr_hi : p->key.addr_lo;
	const __u8 *dst = from_hi ? p->key.addr_lo : p->key.addr_hi;

	if (p->ipv6) {
		fib.family = AF_INET6;
		__builtin_memcpy(fib.ipv6_src, src, 16);
		__builtin_memcpy(fib.ipv6_dst, dst, 16);
		fib.tot_len = p->l4_len;
	} else {
		fib.family = AF_INET;
		__builtin_memcpy(&fib.ipv4_src, src + 12, 4);
		__builtin_memcpy(&fib.ipv4_dst, dst + 12, 4);
		fib.tot_len = p->l4_len + sizeof(struct iphdr);
	}
	fib.l4_protocol = IPPROTO_TCP;
	fib.sport = from_hi ? p->key.port_hi : p->key.port_lo;
	fib.dport = from_hi ? p->key.port_lo : p->key.port_hi;
	fib.ifindex = p->ifindex;
	if (bpf_fib_lookup(ctx, &fib, sizeof(fib), 0) != BPF_FIB_LKUP_RET_SUCCESS)
		return -1;
	*ifindex = fib.ifindex;
	__builtin_memcpy(smac, fib.smac, 6);
	__builtin_memcpy(dmac, fib.dmac, 6);
	return 0;
}

/* A RST of a flow with a hold record from its claimed sender: the hold's
 * business, decided here without the daemon where the daemon needs not
 * see it. Returns ACTION_DROP (proven alive, or joining the hold),
 * ACTION_HOLD (the probe's answer, for the daemon), or ACTION_PASS with *stale set when the record is over and a new
 * hold may begin. */
static __always_inline __u8 held_rst(const struct packet *p, struct hold *held, const struct config *cfg,
				     __u64 now, __u32 *slot, int *stale)
{
	__u32 *s;

	/* Proven alive moments ago: the same evidence convicts this one too,
	 * and a new probe would go unanswered (PROVEN_ALIVE_MS). */
	if (held->evidence == HOLD_EVIDENCE_PROVEN) {
		if (now - held->decided_ns < PROVEN_ALIVE_MS * 1000000ULL + 2ULL * held->rtt_ns) {
			count(p->ifindex, CNT_HOLD_PROVEN_DROP);
			return ACTION_DROP;
		}
		*stale = 1;
		return ACTION_PASS;
	}
	/* A hold the daemon never decided (it died, or lost the frame) is
	 * over once the longest hold would be: fail open. */
	if (now - held->held_ns > (__u64)cfg->hold_max_us * 1000 + ONE_SECOND_NS) {
		*stale = 1;
		return ACTION_PASS;
	}
	s = xsk_slot(p->ifindex, p->queue);
	if (!s) {
		count(p->ifindex, CNT_HOLD_NO_SOCKET);
		return ACTION_PASS;
	}
	/* A stack without the connection answers the probe with a RST at seq =
	 * the probe's ACK (RFC 9293 3.10.7.1): the nonce, which nobody knows
	 * who has not read the probe. That answer goes to the daemon. */
	if (p->seq == held->nonce) {
		count(p->ifindex, CNT_HOLD_ANSWER);
		*slot = *s;
		return ACTION_HOLD;
	}
	/* Any other RST in the sender's name joins the hold: it waits in the
	 * hold's count, not in the daemon's socket, whose ring a flood would
	 * fill with joiners until the answers that decide the holds were lost.
	 * None of it carries the nonce, so a forgery's volley is stopped whole.
	 * With a real RST released, its stack's later RSTs are not needed: the
	 * receiver discards a RST for a connection it no longer has (RFC 9293
	 * 3.10.7.1), and one the first did not reset (not at its exact
	 * sequence) draws a challenge ACK (RFC 5961 3.2), which the real stack
	 * answers with a RST at exactly that sequence, held and released anew.
	 * The daemon reads the count into the hold's report. */
	__sync_fetch_and_add(&held->joined, 1);
	count(p->ifindex, CNT_HOLD_JOINED);
	return ACTION_DROP;
}

/* Hold mode: a RST that headers cannot clear waits in the daemon while it
 * asks the claimed sender whether its connection is alive (a keepalive-style
 * probe: a live Linux stack answers it with an ACK, one without the
 * connection with a RST, as control/hold's tests show). Only a synchronised
 * connection can be asked: a RST in SYN-SENT answers a SYN. Later RSTs of
 * the same sender join the hold: one question per flow. Every way this can
 * fail passes the RST, as monitor mode would. Returns ACTION_HOLD with *slot
 * set, or ACTION_PASS. */
static __noinline __u8 hold_rst(struct xdp_md *ctx, const struct packet *p, struct flow_value *f,
				__u64 now, __u32 *slot)
{
	const struct config *cfg = get_config();
	const struct dir_state *snd = &f->dir[p->dir & 1];
	const struct dir_state *rcv = &f->dir[!p->dir];
	__u32 *s, zero = 0;
	struct hold *h;
	long err;

	if (f->flags & FLOW_HELD) {
		struct hold *held = bpf_map_lookup_elem(&holds, &p->key);
		int stale = 0;
		__u8 action;

		if (!held) {
			f->flags &= ~FLOW_HELD;
		} else if (held->from_hi != p->dir) {
			return ACTION_PASS; /* the other side's RST: not what is being asked */
		} else {
			action = held_rst(p, held, cfg, now, slot, &stale);
			if (!stale)
				return action;
			bpf_map_delete_elem(&holds, &p->key);
			f->flags &= ~FLOW_HELD;
		}
	}
	if ((f->state != STATE_ESTABLISHED && f->state != STATE_CLOSING) || !(snd->flags & DIR_SEEN) ||
	    !(rcv->flags & DIR_SEEN) || allowed(p))
		return ACTION_PASS;
	/* The daemon re-parses what it holds: only Ethernet, VLAN tags, IPv4
	 * with options, IPv6 with hop-by-hop and destination options, and whole
	 * segments. A RST in fragments passes: no real stack fragments a RST
	 * (a few dozen bytes, under any path's MTU: RFC 791's 68, RFC 8200's
	 * 1280), yet dropping one could cost a real RST that carries data, so
	 * this stays a documented limit (docs/ARCHITECTURE.md). */
	if (p->first_fragment || p->ipv6_fixed_ext) {
		count(p->ifindex, CNT_HOLD_UNRELEASABLE);
		return ACTION_PASS;
	}
	s = xsk_slot(p->ifindex, p->queue);
	if (!s)
		goto no_socket;
	*slot = *s;
	h = bpf_map_lookup_elem(&hold_scratch, &zero);
	if (!h)
		return ACTION_PASS;
	__builtin_memset(h, 0, sizeof(*h));
	if (route(ctx, p, 0, &h->egress_ifindex, h->egress_smac, h->egress_dmac) ||
	    route(ctx, p, 1, &h->probe_ifindex, h->probe_smac, h->probe_dmac)) {
		count(p->ifindex, CNT_HOLD_UNROUTED);
		return ACTION_PASS;
	}
	if (!xsk_slot(h->egress_ifindex, 0) || !xsk_slot(h->probe_ifindex, 0))
		goto no_socket;
	h->held_ns = now;
	h->probe_seq = rcv->next_seq - 1;
	h->probe_ack = snd->next_seq;
	h->nonce = h->probe_ack - 1 - (bpf_get_prandom_u32() & PROBE_NONCE_SPAN);
	h->rtt_ns = ns_of(snd->rtt);
	h->ingress_ifindex = p->ifindex;
	h->from_hi = p->dir;
	err = bpf_map_update_elem(&holds, &p->key, h, BPF_NOEXIST);
	if (err && err != -EEXIST) {
		count(p->ifindex, CNT_HOLD_TABLE_FULL);
		return ACTION_PASS;
	}
	f->flags |= FLOW_HELD;
	if (err) {
		/* Held already: FLOW_HELD was lost to the other direction's
		 * concurrent update of the flow's flags. Join that hold. */
		struct hold *held = bpf_map_lookup_elem(&holds, &p->key);
		int stale = 0;

		return held && held->from_hi == p->dir ? held_rst(p, held, cfg, now, slot, &stale) : ACTION_PASS;
	}
	count(p->ifindex, CNT_HOLD_STARTED);
	return ACTION_HOLD;
no_socket:
	count(p->ifindex, CNT_HOLD_NO_SOCKET);
	return ACTION_PASS;
}

/* The claimed sender's answer to the daemon's probe: a pure ACK that
 * acknowledges the probe (ack = probe seq + 1) at the sender's next sequence,
 * arriving no sooner than half its leg RTT after the hold began (an ACK sent
 * before the probe could reach it is no answer). Its seq may be ahead of
 * what this box saw of the sender: segments lost before the box (the
 * incident's device swallowed the request) still advanced it, by at most a
 * window (HOLD_ANSWER_SEQ_SLACK). It is addressed to the other endpoint,
 * which never asked, so it goes to the daemon instead. */
static __always_inline __u8 hold_answer(const struct packet *p, struct flow_value *f, __u32 *slot)
{
	struct hold *h = bpf_map_lookup_elem(&holds, &p->key);
	__u32 *s;

	if (!h) {
		f->flags &= ~FLOW_HELD;
		return ACTION_PASS;
	}
	if (h->from_hi != p->dir || p->payload_len || (p->tcp_flags & (TH_SYN | TH_FIN | TH_ACK)) != TH_ACK ||
	    p->seq - h->probe_ack > HOLD_ANSWER_SEQ_SLACK || p->ack != h->probe_seq + 1 ||
	    now_ns() - h->held_ns < h->rtt_ns / 2)
		return ACTION_PASS;
	s = xsk_slot(p->ifindex, p->queue);
	if (!s)
		return ACTION_PASS;
	count(p->ifindex, CNT_HOLD_ANSWER);
	*slot = *s;
	return ACTION_HOLD;
}

/* The one exit of every judged packet: its action becomes an XDP code. A
 * redirect that finds no socket in the slot passes (XDP_PASS in the flags). */
static __always_inline int xdp_code(__u8 action, __u32 slot)
{
	if (action == ACTION_DROP)
		return XDP_DROP;
	if (action == ACTION_HOLD)
		return bpf_redirect_map(&xsks, slot, XDP_PASS);
	return XDP_PASS;
}

static __noinline int handle_rst(struct xdp_md *ctx, struct packet *p, struct flow_value *f)
{
	const struct config *cfg = get_config();
	struct judgement j = {};
	struct tcp_options opts = {};
	__u64 now = now_ns();
	__u32 now32 = time32(now);
	__u32 slot = 0;
	__u8 action = ACTION_PASS, kind = EVENT_RST;
	struct event *e;

	count(p->ifindex, CNT_RST);
	if (!f) {
		count(p->ifindex, CNT_RST_NO_FLOW);
		j.verdict = VERDICT_UNKNOWN;
	} else if (bad_checksum(ctx, p)) {
		FLAG(&j, BAD_CHECKSUM);
		j.verdict = VERDICT_UNKNOWN;
	} else {
		if (p->tcp_hdr_len > sizeof(struct tcphdr))
			read_options(ctx, p, &opts);
		if (opts.has_auth && !((f->dir[0].flags | f->dir[1].flags) & DIR_AUTH)) {
			/* A TCP-MD5 or TCP-AO option the connection never negotiated:
			 * the receiver discards the segment (RFC 2385 section 2.0,
			 * RFC 5925 section 7.7; Linux counts TCPMD5Unexpected), so it
			 * is an evasion tool's insertion decoy (Geneva, INTANG), not
			 * an injection: reported, never scored. */
			FLAG(&j, AUTH_DECOY);
			j.verdict = VERDICT_UNKNOWN;
		} else {
			j.verdict = judge_rst(p, f, cfg, now32, &j);
		}
		/* The victim endpoint answering the real sender after a forged RST
		 * (the incident's last packet): legitimate, and worth reporting. */
		if (j.verdict != VERDICT_UNKNOWN && rst_pending(f, !p->dir) &&
		    ((f->flags & FLOW_CONFIRMED) || f->rst_verdict == VERDICT_SPOOFED)) {
			FLAG(&j, COLLATERAL);
			count(p->ifindex, CNT_COLLATERAL);
			kind = EVENT_COLLATERAL_RESET;
		}
	}

	if ((j.signals & (1U << SIG_HARMLESS)) && !(cfg->mode == MODE_HOLD && f && (f->flags & FLOW_HELD))) {
		/* The receiver discards it: dropping or holding it protects
		 * nothing, and it leaves the connection as it was. Of a flow
		 * under hold, it is the hold's: the dead stack's answer to the
		 * probe lies below what the receiver acknowledged too. */
	} else if (j.verdict == VERDICT_SPOOFED && cfg->mode != MODE_MONITOR) {
		if (allowed(p))
			FLAG(&j, ALLOWED);
		else
			action = ACTION_DROP;
	} else if (cfg->mode == MODE_HOLD && f && j.verdict != VERDICT_UNKNOWN) {
		action = hold_rst(ctx, p, f, now, &slot);
	}

	count(p->ifindex, CNT_VERDICT_BASE + j.verdict);
	count(p->ifindex, CNT_ACTION_BASE + action);
	j.iface_slot = iface_slot(p->ifindex);
	count_signals(&j);

	if (f) {
		const struct dir_state *snd = &f->dir[p->dir & 1];

		f->rst_seq = p->seq;
		f->rst_t = now32;
		f->rst_ttl = p->ttl;
		f->rst_verdict = j.verdict;
		f->budget.context = j.verdict == VERDICT_SUSPECT || j.verdict == VERDICT_SPOOFED ? CONTEXT_PACKETS : 0;
		f->flags = (f->flags & ~(FLOW_RST_FROM_HI | FLOW_CONFIRMED | FLOW_RST_HELD)) | FLOW_RST_PENDING |
			   (p->dir ? FLOW_RST_FROM_HI : 0) | (action == ACTION_HOLD ? FLOW_RST_HELD : 0);
		if (action == ACTION_PASS && kind != EVENT_COLLATERAL_RESET && !(j.signals & (1U << SIG_HARMLESS)))
			f->state = STATE_RESET;

		e = event_start(ctx, p, kind, now, &f->budget, cfg->event_budget);
		if (e) {
			e->verdict = j.verdict;
			e->action = action;
			e->signals = j.signals;
			e->score = j.score;
			e->exp_seq = j.exp_seq;
			e->exp_ack = j.exp_ack;
			e->exp_ttl = (snd->flags & DIR_SEEN) ? snd->ttl : 0;
			e->exp_window = f->dir[!p->dir].window;
			e->ipid_model = snd->ipid_model;
			e->rtt_ns = ns_of(snd->rtt);
			event_submit(e);
		}
	} else {
		e = event_start(ctx, p, kind, now, no_flow_budget(), NO_FLOW_EVENT_BUDGET);
		if (e) {
			e->verdict = j.verdict;
			event_submit(e);
		}
	}
	return xdp_code(action, slot);
}

/* Weaver et al.'s DATA SEQ RST, held to proof: the claimed sender of a RST
 * sends payload that goes on from the RST's seq, with an acceptable ACK,
 * soon after, with its own TTL and IP-ID model. A stack that reset sends
 * nothing more. A SYN/ACK that acknowledges the SYN after a "RST" that
 * refused it proves the same (rst-inject-rae.pcap). Pure ACKs and FINs
 * without payload prove nothing (a pure ACK may have crossed the RST in
 * flight), nor does anything after a RST judged unknown (no baseline, bad
 * checksum, an insertion decoy). */
static __always_inline int proves_alive(const struct packet *p, const struct flow_value *f,
					const struct config *cfg, __u32 now32)
{
	const struct dir_state *snd = &f->dir[p->dir & 1];
	const struct dir_state *rcv = &f->dir[!p->dir];

	if (f->rst_verdict == VERDICT_UNKNOWN)
		return 0;
	if (now32 - f->rst_t > CONFIRM_WINDOW_FLOOR_T32 + CONFIRM_WINDOW_RTTS * snd->rtt)
		return 0;
	if ((snd->flags & DIR_SEEN) &&
	    (abs_diff(p->ttl, snd->ttl) > cfg->ttl_tolerance || ipid_off_model(snd, p)))
		return 0;
	if (p->tcp_flags & TH_SYN)
		return (p->tcp_flags & TH_ACK) && p->ack == rcv->next_seq;
	if (!p->payload_len)
		return 0;
	/* The payload covers the RST's seq: the sender goes on where it "reset". */
	if (seq_after(p->seq, f->rst_seq) || !seq_after(p->seq + p->payload_len, f->rst_seq))
		return 0;
	/* An acceptable ACK: no more than the peer sent, no less than before. */
	return (p->tcp_flags & TH_ACK) && !seq_after(p->ack, rcv->next_seq) &&
	       (!(snd->flags & DIR_ACKED) || !seq_before(p->ack, snd->max_ack));
}

static __noinline int confirm_after_rst(struct xdp_md *ctx, struct packet *p, struct flow_value *f)
{
	const struct config *cfg = get_config();
	const struct dir_state *snd = &f->dir[p->dir & 1];
	__u64 now = now_ns();
	struct event *e;
	__u8 rst_action;

	if (!proves_alive(p, f, cfg, time32(now)))
		return 0;
	f->flags |= FLOW_CONFIRMED;
	/* What became of the forged RST: stopped here, or let through. */
	rst_action = f->rst_verdict == VERDICT_SPOOFED && cfg->mode != MODE_MONITOR ? ACTION_DROP :
		     (f->flags & FLOW_RST_HELD)                                     ? ACTION_HOLD :
										      ACTION_PASS;
	count(p->ifindex, CNT_CONFIRMED);
	count(p->ifindex, CNT_CONFIRMED_ACTION_BASE + rst_action);
	if (f->flags & FLOW_HELD) {
		struct hold *h = bpf_map_lookup_elem(&holds, &p->key);

		/* The daemon drops the held RST on this evidence. A hold
		 * decided forged already keeps its mark (and the time it was
		 * decided): the sender's data then only confirms it. */
		if (h && h->from_hi == p->dir && h->evidence != HOLD_EVIDENCE_PROVEN) {
			h->evidence = HOLD_EVIDENCE_DATA;
			count(p->ifindex, CNT_HOLD_DATA);
		}
	}
	e = event_start(ctx, p, EVENT_DATA_AFTER_RST, now, &f->budget, cfg->event_budget);
	if (!e)
		return 1;
	e->verdict = VERDICT_SPOOFED;
	e->action = rst_action;
	e->exp_ttl = (snd->flags & DIR_SEEN) ? snd->ttl : p->ttl;
	e->rst_seq = f->rst_seq;
	e->rst_ttl = f->rst_ttl;
	e->rst_verdict = f->rst_verdict;
	e->ipid_model = snd->ipid_model;
	e->rtt_ns = ns_of(snd->rtt);
	event_submit(e);
	return 1;
}

/* ------------------------------------------------------------ flows */

/* Adds a flow to the embryonic table; a failed insert leaves it untracked
 * (fail open). A SYN that starts a new connection on an address and port
 * pair the flow table holds ends the old connection's entry there: the
 * pair was reused, as real stacks do, and the old state would misjudge the
 * new connection. */
static __always_inline int insert_flow(__u32 ifindex, const struct flow_key *key, struct flow_value *fresh, __u64 flags)
{
	fresh->flags |= FLOW_EMBRYONIC;
	if (flags == BPF_ANY)
		bpf_map_delete_elem(&flows, key);
	if (bpf_map_update_elem(&embryonic, key, fresh, flags)) {
		count(ifindex, CNT_FLOW_INSERT_FAIL);
		return XDP_PASS;
	}
	count(ifindex, CNT_FLOW_INSERT);
	if (fresh->flags & FLOW_MIDSTREAM)
		count(ifindex, CNT_MIDSTREAM);
	return XDP_PASS;
}

/* What a SYN or SYN/ACK tells of its sender. */
static __always_inline void learn_syn(struct dir_state *s, const struct packet *p,
				      const struct tcp_options *o, __u32 now32)
{
	s->isn = p->seq;
	learn(s, p, &now32);
	s->wscale = o->wscale;
	s->flags |= DIR_SYN | (o->has_ts ? DIR_TS : 0) | (o->has_wscale ? DIR_WSCALE : 0) |
		    (o->has_auth ? DIR_AUTH : 0);
	s->last_data_t = now32;
}

/* SYN, SYN/ACK: the rare path. Reads options and the precise clock. */
static __noinline int handle_syn(struct xdp_md *ctx, struct packet *p, struct flow_value *f)
{
	struct tcp_options opts = {};
	struct flow_value fresh = {};
	struct dir_state *s;
	__u32 now32 = time32(now_ns());

	read_options(ctx, p, &opts);

	if (!(p->tcp_flags & TH_ACK)) {
		/* A retransmitted SYN keeps the entry; any other SYN starts a
		 * connection. Karn's rule (RFC 6298 section 3): a SYN/ACK after a
		 * retransmission answers one of several SYNs, so it times nothing. */
		if (f && f->state == STATE_SYN_SENT && (f->dir[p->dir & 1].flags & DIR_SYN) &&
		    f->dir[p->dir & 1].isn == p->seq) {
			f->dir[p->dir & 1].flags |= DIR_SYN_RETRANS;
			return XDP_PASS;
		}
		learn_syn(&fresh.dir[p->dir & 1], p, &opts, now32);
		fresh.state = STATE_SYN_SENT;
		fresh.flags = p->dir ? FLOW_INIT_HI : 0;
		return insert_flow(p->ifindex, &p->key, &fresh, BPF_ANY);
	}

	/* SYN/ACK */
	if (!f) {
		learn_syn(&fresh.dir[p->dir & 1], p, &opts, now32);
		fresh.state = STATE_SYN_RCVD;
		fresh.flags = FLOW_MIDSTREAM | (p->dir ? 0 : FLOW_INIT_HI);
		return insert_flow(p->ifindex, &p->key, &fresh, BPF_NOEXIST);
	}
	s = &f->dir[p->dir & 1];
	if (rst_pending(f, p->dir) && !(f->flags & FLOW_CONFIRMED))
		confirm_after_rst(ctx, p, f);
	if (f->state == STATE_SYN_SENT || f->state == STATE_RESET) {
		const struct dir_state *init = &f->dir[!p->dir];

		if (init->last_data_t && !(s->flags & DIR_SYN) && !(init->flags & DIR_SYN_RETRANS))
			s->rtt = now32 - init->last_data_t;
		f->state = STATE_SYN_RCVD;
	}
	learn_syn(s, p, &opts, now32);
	return XDP_PASS;
}

/* Moves a flow from the embryonic table to the flow table once it shows
 * what a flood cannot: a handshake completed from both sides, or, picked up
 * mid-stream, each side acknowledging all the other sent. */
static __noinline void promote(const struct packet *p, struct flow_value *f)
{
	const struct dir_state *a = &f->dir[0], *b = &f->dir[1];
	int handshake = (a->flags & DIR_SYN) && (b->flags & DIR_SYN) && f->state >= STATE_ESTABLISHED;
	int exchange = (a->flags & DIR_ACKED) && (b->flags & DIR_ACKED) && (a->flags & DIR_SEEN) &&
		       (b->flags & DIR_SEEN) && a->max_ack == b->next_seq && b->max_ack == a->next_seq;

	if (!handshake && !exchange)
		return;
	f->flags &= ~FLOW_EMBRYONIC;
	if (bpf_map_update_elem(&flows, &p->key, f, BPF_ANY)) {
		f->flags |= FLOW_EMBRYONIC;
		return;
	}
	bpf_map_delete_elem(&embryonic, &p->key);
	count(p->ifindex, CNT_FLOW_PROMOTED);
}

/* The first packet of a flow we never saw open: learn what can be learnt. */
static __noinline int pick_up_flow(struct packet *p)
{
	struct flow_value fresh = {};
	__u32 now32 = 0;

	learn(&fresh.dir[p->dir & 1], p, &now32);
	fresh.state = (p->tcp_flags & TH_FIN) ? STATE_CLOSING : STATE_ESTABLISHED;
	fresh.flags = FLOW_MIDSTREAM;
	return insert_flow(p->ifindex, &p->key, &fresh, BPF_NOEXIST);
}

/* Sends one packet as context after a suspect or spoofed RST (enum
 * context_limits), while the flow's context lasts. */
static __noinline void context_event(struct xdp_md *ctx, struct packet *p, struct flow_value *f)
{
	const struct config *cfg = get_config();
	__u16 left = *(volatile __u16 *)&f->budget.context; /* once: the other direction may write it */
	__u64 now = now_ns();
	struct event *e;

	if (!left)
		return;
	if (time32(now) - f->rst_t > CONTEXT_SECONDS * ONE_SECOND_T32) {
		f->budget.context = 0;
		return;
	}
	/* From a non-zero read, so a concurrent update costs one packet more or
	 * less, never a wrap to 65535. */
	f->budget.context = left - 1;
	e = event_start(ctx, p, EVENT_CONTEXT, now, &f->budget, cfg->event_budget);
	if (!e)
		return;
	e->verdict = f->rst_verdict;
	e->action = ACTION_PASS;
	event_submit(e);
}

/* Handshake completion, FIN, evidence after a RST, context packets after a
 * suspect or spoofed one, and answers to a hold's probe: rarely taken. The
 * handshake ACK's RTT is the common path's first sample of that leg.
 * Returns the packet's XDP code: only a probe answer is not passed. */
static __noinline int flow_events(struct xdp_md *ctx, struct packet *p, struct flow_value *f)
{
	__u32 slot = 0;

	if ((f->flags & FLOW_HELD) && hold_answer(p, f, &slot) == ACTION_HOLD)
		return xdp_code(ACTION_HOLD, slot);
	if (f->state == STATE_SYN_RCVD && (p->tcp_flags & TH_ACK) &&
	    !!(f->flags & FLOW_INIT_HI) == p->dir)
		f->state = STATE_ESTABLISHED;
	if ((p->tcp_flags & TH_FIN) && f->state != STATE_RESET)
		f->state = STATE_CLOSING;
	/* A packet that proves the RST forged is in its confirmation event: no
	 * context event repeats it. */
	if (rst_pending(f, p->dir) && !(f->flags & FLOW_CONFIRMED) && confirm_after_rst(ctx, p, f))
		return XDP_PASS;
	if (f->budget.context)
		context_event(ctx, p, f);
	return XDP_PASS;
}

/* The zone of a frame: its interface and outer VLAN's, else its
 * interface's, else 0. */
static __noinline __u16 zone_of(__u32 ifindex, __u16 vlan)
{
	struct zone_key k = {.ifindex = ifindex, .vlan = vlan};
	__u16 *z = bpf_map_lookup_elem(&zones, &k);

	if (!z && vlan) {
		k.vlan = 0;
		z = bpf_map_lookup_elem(&zones, &k);
	}
	return z ? *z : 0;
}

/* A first fragment too short to hold the whole TCP header keeps the flags
 * from every filter that judges first fragments: the tiny-fragment attack
 * (RFC 1858 section 3.1; RFC 3128). No stack sends one. Reported, and dropped
 * outside monitor mode: dropping it drops the datagram. */
static __noinline int tiny_fragment(struct xdp_md *ctx, struct packet *p)
{
	const struct config *cfg = get_config();
	__u8 action = cfg->mode == MODE_MONITOR ? ACTION_PASS : ACTION_DROP;
	struct event *e = event_start(ctx, p, EVENT_TINY_FRAGMENT, now_ns(), no_flow_budget(), NO_FLOW_EVENT_BUDGET);

	if (e) {
		e->action = action;
		event_submit(e);
	}
	return xdp_code(action, 0);
}

SEC("xdp")
int rstguard(struct xdp_md *ctx)
{
	/* ctx fields read once, here: clang may otherwise merge reads from several
	 * branches into a modified ctx pointer, which the verifier rejects. */
	__u32 ifindex = ctx->ingress_ifindex;
	__u32 queue = ctx->rx_queue_index;
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
		/* The coarse clock lags the precise one that stamped a SYN/ACK by
		 * up to a tick: a sample at or below zero is under a tick, too
		 * small to time anything by, and must not wrap into a huge RTT. */
		__s32 sample = clock32(&now32) - peer->last_data_t;

		if (sample > 0 && (!s->rtt || (__u32)sample < s->rtt))
			s->rtt = sample;
	}
	if (f->flags & FLOW_EMBRYONIC)
		promote(&p, f);
	return XDP_PASS;
}
