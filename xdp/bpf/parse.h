/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* rstguard.c, by concern: Ethernet, VLAN tags, IPv4, IPv6 and its extension headers, TCP and its options.
 * Included once, in order, by rstguard.c: one translation unit, so that
 * bpf2go and the verifier see one program. */

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
