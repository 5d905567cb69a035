/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* rstguard.c, by concern: What one parse of a frame yields, and the helpers every path uses: counting, clocks, sequence arithmetic.
 * Included once, in order, by rstguard.c: one translation unit, so that
 * bpf2go and the verifier see one program. */

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

/* The flow's state of p's sender and of its receiver (macros: they keep
 * the flow's constness). */
#define SENDER(f, p) (&(f)->dir[(p)->dir & 1])
#define RECEIVER(f, p) (&(f)->dir[!(p)->dir])

/* p's source and destination address and port (the key keeps them lower
 * first); from_hi says the source is the key's addr_hi side. */
#define SRC_ADDR(p, from_hi) ((from_hi) ? (p)->key.addr_hi : (p)->key.addr_lo)
#define DST_ADDR(p, from_hi) ((from_hi) ? (p)->key.addr_lo : (p)->key.addr_hi)
#define SRC_PORT(p, from_hi) ((from_hi) ? (p)->key.port_hi : (p)->key.port_lo)
#define DST_PORT(p, from_hi) ((from_hi) ? (p)->key.port_lo : (p)->key.port_hi)

static __always_inline __u8 iface_slot(__u32 ifindex)
{
	return ifindex & (IFACE_SLOTS - 1);
}

static __always_inline void count_n_in_slot(__u32 slot, __u32 idx, __u64 n)
{
	__u32 key = slot * CNT_MAX + idx;
	__u64 *v = bpf_map_lookup_elem(&counters, &key);

	if (v)
		*v += n;
}

static __always_inline void count_in_slot(__u32 slot, __u32 idx)
{
	count_n_in_slot(slot, idx, 1);
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
