/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* rstguard.c, by concern: every number the program judges or parses by, in
 * one place (as katran's balancer_consts.h). Times are time32: nanoseconds
 * >> TIME32_SHIFT. Included once, in order, by rstguard.c: one translation
 * unit, so that bpf2go and the verifier see one program. */

/* Parsing: the header fields read by mask. How deep the parser walks
 * (MAX_VLAN, MAX_IPV6_EXT) is in rstguard.h, enum parse_limits, shared with
 * the daemon's parser. */
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
#define TCPOPT_NOP_NOP_SACK 0x01010500 /* NOP, NOP, SACK (RFC 2018), its length in the low byte */
#define TCPOLEN_SACK_BLOCK1 10         /* a SACK option of one block, or more than one: at least this */
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
