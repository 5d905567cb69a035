/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* rstguard.c, by concern: Flows: the handshake, promotion, pick-up mid-stream, context events, zones.
 * Included once, in order, by rstguard.c: one translation unit, so that
 * bpf2go and the verifier see one program. */

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

/* The sender's source MAC and outer VLAN, from its SYN or SYN/ACK only: a
 * later forgery cannot move where hold mode in the wire probes it. */
static __always_inline void learn_l2(struct xdp_md *ctx, const struct packet *p, struct flow_value *f)
{
	/* Two branches, not an index: clang would OR the index into the
	 * pointer, which the verifier rejects. */
	if (p->dir) {
		bpf_xdp_load_bytes(ctx, ETH_ALEN, f->l2_mac[1], ETH_ALEN);
		f->l2_vlan[1] = p->vlan;
	} else {
		bpf_xdp_load_bytes(ctx, ETH_ALEN, f->l2_mac[0], ETH_ALEN);
		f->l2_vlan[0] = p->vlan;
	}
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
		if (f && f->state == STATE_SYN_SENT && (SENDER(f, p)->flags & DIR_SYN) &&
		    SENDER(f, p)->isn == p->seq) {
			SENDER(f, p)->flags |= DIR_SYN_RETRANS;
			return XDP_PASS;
		}
		learn_syn(SENDER(&fresh, p), p, &opts, now32);
		learn_l2(ctx, p, &fresh);
		fresh.state = STATE_SYN_SENT;
		fresh.flags = p->dir ? FLOW_INIT_HI : 0;
		return insert_flow(p->ifindex, &p->key, &fresh, BPF_ANY);
	}

	/* SYN/ACK */
	if (!f) {
		learn_syn(SENDER(&fresh, p), p, &opts, now32);
		learn_l2(ctx, p, &fresh);
		fresh.state = STATE_SYN_RCVD;
		fresh.flags = FLOW_MIDSTREAM | (p->dir ? 0 : FLOW_INIT_HI);
		return insert_flow(p->ifindex, &p->key, &fresh, BPF_NOEXIST);
	}
	s = SENDER(f, p);
	if (rst_pending(f, p->dir) && !(f->flags & FLOW_CONFIRMED))
		confirm_after_rst(ctx, p, f);
	if (f->state == STATE_SYN_SENT || f->state == STATE_RESET) {
		const struct dir_state *init = RECEIVER(f, p);

		if (init->last_data_t && !(s->flags & DIR_SYN) && !(init->flags & DIR_SYN_RETRANS))
			s->rtt = now32 - init->last_data_t;
		f->state = STATE_SYN_RCVD;
	}
	if (!(s->flags & DIR_SYN))
		learn_l2(ctx, p, f);
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

	learn(SENDER(&fresh, p), p, &now32);
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
	__u32 now32 = time32(now_coarse_ns());
	struct event *e;

	if (!left)
		return;
	if (now32 - f->rst_t > CONTEXT_SECONDS * ONE_SECOND_T32) {
		f->budget.context = 0;
		return;
	}
	/* From a non-zero read, so a concurrent update costs one packet more or
	 * less, never a wrap to 65535. */
	f->budget.context = left - 1;
	e = event_start(ctx, p, EVENT_CONTEXT, now32, &f->budget, cfg->event_budget);
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

	if ((f->flags & FLOW_HELD) && hold_answer(ctx, p, f, &slot) == ACTION_HOLD)
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
	struct event *e = event_start(ctx, p, EVENT_TINY_FRAGMENT, time32(now_coarse_ns()), no_flow_budget(), NO_FLOW_EVENT_BUDGET);

	if (e) {
		e->action = action;
		event_submit(e);
	}
	return xdp_code(action, 0);
}
