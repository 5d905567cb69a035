/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* rstguard.c, by concern: What each side of a flow shows: its IP-ID model, TTL, window, next sequence.
 * Included once, in order, by rstguard.c: one translation unit, so that
 * bpf2go and the verifier see one program. */

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
