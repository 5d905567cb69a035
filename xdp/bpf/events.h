/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* rstguard.c, by concern: The ring-buffer events, their budgets, and the policy read.
 * Included once, in order, by rstguard.c: one translation unit, so that
 * bpf2go and the verifier see one program. */

/* A budget per flow (and one per CPU for RSTs of no flow) so that a flood
 * cannot starve the ring buffer; counters stay exact either way. */
static __always_inline int event_allowed(__u32 ifindex, struct event_budget *b, __u32 limit, __u32 t)
{
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
 * caller fills in the rest and calls event_submit(). The budgets' one-second
 * windows run on the caller's clock, now32 (the coarse one serves); only an
 * event sent reads the precise one, so that a flood over its budget does
 * not pay for it. */
static __always_inline struct event *event_start(struct xdp_md *ctx, const struct packet *p, __u8 kind,
						 __u32 now32, struct event_budget *b, __u32 limit)
{
	__u32 global = BUDGET_GLOBAL, cap;
	struct event_budget *g = bpf_map_lookup_elem(&cpu_budgets, &global);
	struct event *e;

	if (!b || !event_allowed(p->ifindex, b, limit, now32))
		return 0;
	if (g && !event_allowed(p->ifindex, g, GLOBAL_EVENT_BUDGET, now32))
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(p->ifindex, CNT_EVENT_LOST);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->time_ns = now_ns();
	e->kind = kind;
	e->ifindex = p->ifindex;
	__builtin_memcpy(e->saddr, SRC_ADDR(p, p->dir), 16);
	__builtin_memcpy(e->daddr, DST_ADDR(p, p->dir), 16);
	e->sport = bpf_ntohs(SRC_PORT(p, p->dir));
	e->dport = bpf_ntohs(DST_PORT(p, p->dir));
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
