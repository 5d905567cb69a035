/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* rstguard.c, by concern: The RST path (handle_rst) and what proves a RST forged after the fact.
 * Included once, in order, by rstguard.c: one translation unit, so that
 * bpf2go and the verifier see one program. */

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
	/* The coarse clock: the precise one costs more than any signal, and
	 * only TOO_SOON (judge_rst), a hold and an event's time need it; each
	 * reads it itself. */
	__u32 now32 = time32(now_coarse_ns());
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
		action = hold_rst(ctx, p, f, &slot);
	}

	count(p->ifindex, CNT_VERDICT_BASE + j.verdict);
	count(p->ifindex, CNT_ACTION_BASE + action);
	count_signals(j.signals, iface_slot(p->ifindex));

	if (f) {
		const struct dir_state *snd = SENDER(f, p);

		f->rst_seq = p->seq;
		f->rst_t = now32;
		f->rst_ttl = p->ttl;
		f->rst_verdict = j.verdict;
		f->budget.context = j.verdict == VERDICT_SUSPECT || j.verdict == VERDICT_SPOOFED ? CONTEXT_PACKETS : 0;
		f->flags = (f->flags & ~(FLOW_RST_FROM_HI | FLOW_CONFIRMED | FLOW_RST_HELD)) | FLOW_RST_PENDING |
			   (p->dir ? FLOW_RST_FROM_HI : 0) | (action == ACTION_HOLD ? FLOW_RST_HELD : 0);
		if (action == ACTION_PASS && kind != EVENT_COLLATERAL_RESET && !(j.signals & (1U << SIG_HARMLESS)))
			f->state = STATE_RESET;

		e = event_start(ctx, p, kind, now32, &f->budget, cfg->event_budget);
		if (e) {
			e->verdict = j.verdict;
			e->action = action;
			e->signals = j.signals;
			e->score = j.score;
			e->exp_seq = j.exp_seq;
			e->exp_ack = j.exp_ack;
			e->exp_ttl = (snd->flags & DIR_SEEN) ? snd->ttl : 0;
			e->exp_window = RECEIVER(f, p)->window;
			e->ipid_model = snd->ipid_model;
			e->rtt_ns = ns_of(snd->rtt);
			event_submit(e);
		}
	} else {
		e = event_start(ctx, p, kind, now32, no_flow_budget(), NO_FLOW_EVENT_BUDGET);
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
	const struct dir_state *snd = SENDER(f, p);
	const struct dir_state *rcv = RECEIVER(f, p);

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
	const struct dir_state *snd = SENDER(f, p);
	__u32 now32 = time32(now_ns());
	struct event *e;
	__u8 rst_action;

	if (!proves_alive(p, f, cfg, now32))
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
	e = event_start(ctx, p, EVENT_DATA_AFTER_RST, now32, &f->budget, cfg->event_budget);
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
