/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* rstguard.c, by concern: the TCP options of SYNs and RSTs (RFC 9293 3.2,
 * RFC 7323, RFC 2385, RFC 5925).
 * Included once, in order, by rstguard.c: one translation unit, so that
 * bpf2go and the verifier see one program. */

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
