/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* rstguard.c, by concern: what one parse of a frame yields, and the parse:
 * Ethernet, VLAN tags, IPv4, IPv6 and its extension headers, TCP.
 * Included once, in order, by rstguard.c: one translation unit, so that
 * bpf2go and the verifier see one program. baseline.c includes it too: its
 * stateful bound parses and keys a frame as rstguard does. Needs consts.h
 * and rstguard.h. */

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
