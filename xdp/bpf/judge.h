/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* rstguard.c, by concern: The RST judged: checksum, signals, weights, the verdict.
 * Included once, in order, by rstguard.c: one translation unit, so that
 * bpf2go and the verifier see one program. */

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

/* FLAG(j, RST_BURST) raises SIG_RST_BURST with its weight, SIGW_RST_BURST, and its
 * benign causes, SIGC_RST_BURST. */
#define FLAG(j, name) flag(j, SIG_##name, SIGW_##name, SIGC_##name)

/* Is the TCP checksum right? Partial checksums (TX offload on a sending host
 * or a veth: only the pseudo-header sum is filled in) count as right. A wrong
 * one marks a deliberate insertion packet (Geneva, INTANG) that the receiver
 * will discard anyway: reported, never scored. Returns 1 when wrong. */
static __noinline int bad_checksum(struct xdp_md *ctx, const struct packet *p)
{
	__u32 zero = 0, pseudo[10] = {}, pseudo_len, len = p->l4_len, sum;
	struct scratch *s = bpf_map_lookup_elem(&csum_scratch, &zero);
	const __u8 *src = SRC_ADDR(p, p->dir);
	const __u8 *dst = DST_ADDR(p, p->dir);
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

/* Timing (net4people #285): a RST/ACK that acknowledges the other side's
 * latest data sooner than half the sender's measured RTT after that data
 * passed this box answers something the sender cannot have seen yet. Only on
 * legs of MIN_TIMING_RTT or more: below that, host processing rather than the
 * path makes up the RTT, and a stack that was closing anyway acks data
 * microseconds after it arrived. The RTT is its floor (rtt_floor()): a leg
 * whose smallest sample straddled a tick of the coarse clock would otherwise
 * look up to a tick longer than it is, and a nearby client's real abort too
 * soon. now32 is the coarse clock, which lags the
 * precise one by up to a tick: not too soon by it is not too soon by the
 * precise clock either, and only a RST that looks too soon pays for the
 * precise read. A global function, called on every judged RST, as
 * rst_fit(): a precise read under judge_rst()'s own branches doubled the
 * paths the verifier walks after it. */
__noinline int too_soon(const struct packet *p, const struct flow_value *f, __u32 now32)
{
	const struct dir_state *snd, *rcv;
	__u32 since, rtt, half_rtt;

	if (!p || !f)
		return 0;
	snd = SENDER(f, p);
	rcv = RECEIVER(f, p);
	since = rcv->last_data_t;
	rtt = rtt_floor(snd->rtt);
	half_rtt = rtt / 2;
	if (!(p->tcp_flags & TH_ACK) || rtt < MIN_TIMING_RTT_T32 || !since || p->ack != rcv->next_seq)
		return 0;
	return now32 - since < half_rtt && time32(now_ns()) - since < half_rtt;
}

/* Both models' tests in one global function, verified once, as verdict_of():
 * at most one call on the RST path (fit_of()), not one per model. */
__noinline int rst_fit(const struct packet *p, const struct flow_value *f)
{
	const struct dir_state *snd, *rcv;

	if (!p || !f)
		return 0;
	snd = SENDER(f, p);
	rcv = RECEIVER(f, p);
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
	const struct dir_state *snd = SENDER(f, p);
	const struct dir_state *rcv = RECEIVER(f, p);
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
		 * route changes move it by 1-2 hops: weak within the tolerance.
		 * Where the baseline is a SYN and nothing else, it may not be the
		 * host's: port scanners write their SYNs on raw sockets with a TTL
		 * of their own (nmap draws each probe's from 37-59, build_tcp_raw()
		 * in tcpip.cc), and the scanning host's kernel, which holds no such
		 * connection, answers the SYN/ACK with a RST from its control socket
		 * at the system's TTL (RFC 9293 3.10.7.1; Linux tcp_v4_send_reset).
		 * There the raw_syn cause explains it; once the sender has sent
		 * anything after its SYN (its handshake's ACK), its kernel set the
		 * baseline, and nothing does. */
		__u8 d = ttl_distance(p->ttl, snd->ttl);
		int syn_only = (snd->flags & (DIR_SYN | DIR_ACKED)) == DIR_SYN;

		if (d > cfg->ttl_tolerance)
			flag(j, SIG_TTL_OFF, SIGW_TTL_OFF, syn_only ? SIGC_TTL_OFF : 0);
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

	if (too_soon(p, f, now32))
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

/* Bit i of 1 << i, in the top five bits of its product with a de Bruijn
 * sequence, whose 5-bit windows all differ (Leiserson, Prokop and Randall,
 * "Using de Bruijn Sequences to Index a 1 in a Computer Word", 1998). The
 * table is computed: bit_of_window[((1 << i) * DEBRUIJN_32) >> 27] = i. */
#define DEBRUIJN_32 0x077CB531U
static const __u8 bit_of_window[32] = {
	0,  1,  28, 2,  29, 14, 24, 3, 30, 22, 20, 15, 25, 17, 4,  8,
	31, 27, 13, 23, 21, 19, 16, 7, 26, 12, 18, 6,  11, 5,  10, 9,
};

struct signals_left {
	__u32 signals;
	__u32 slot;
};

/* Counts the lowest raised signal and clears it; stops when none is left. */
static long count_lowest_signal(__u32 i, struct signals_left *s)
{
	__u32 lowest = s->signals & -s->signals;

	if (!lowest)
		return 1;
	count_in_slot(s->slot, CNT_SIGNAL_BASE + bit_of_window[(__u32)(lowest * DEBRUIJN_32) >> 27]);
	s->signals &= s->signals - 1;
	return 0;
}

/* Counts each raised signal, in the interface's counter set: one pass per
 * raised signal, lowest first. A global function, so that the verifier
 * checks it once with signals unknown, not once for every path of
 * handle_rst() with its signals known; a pass over every signal up to the
 * highest raised one cost a flood of forged RSTs about 40 ns a RST. */
__noinline int count_signals(__u32 signals, __u32 slot)
{
	struct signals_left s = {.signals = signals, .slot = slot};

	bpf_loop(SIG_COUNT, count_lowest_signal, &s, 0);
	return 0;
}
