/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* rstguard.c, by concern: Hold mode: a held RST's record, its route, its answers.
 * Included once, in order, by rstguard.c: one translation unit, so that
 * bpf2go and the verifier see one program. */

/* The XSKMAP slot of the daemon's socket for this interface and queue, or
 * NULL: a slot whose socket closed (the daemon died) redirects nothing. */
static __always_inline __u32 *xsk_slot(__u32 ifindex, __u32 queue)
{
	struct xsk_key k = {.ifindex = ifindex, .queue = queue};
	struct xsk_slot *s = bpf_map_lookup_elem(&xsk_slots, &k);

	if (s && bpf_map_lookup_elem(&xsks, &s->slot))
		return &s->slot;
	return 0;
}

/* Where the kernel would forward p (back: toward its sender instead):
 * egress interface and L2 addresses from the box's own tables, so that the
 * daemon releases a held RST exactly there and probes its claimed sender
 * where that sender really is, whatever L2 header a forgery carried. Fails
 * for an address this box would deliver locally or cannot resolve (fail
 * open: pass). */
static __always_inline int route(struct xdp_md *ctx, const struct packet *p, int back, __u32 *ifindex,
				 __u8 *smac, __u8 *dmac)
{
	struct bpf_fib_lookup fib = {};
	int from_hi = back ? !p->dir : p->dir;
	const __u8 *src = SRC_ADDR(p, from_hi);
	const __u8 *dst = DST_ADDR(p, from_hi);

	if (p->ipv6) {
		fib.family = AF_INET6;
		__builtin_memcpy(fib.ipv6_src, src, 16);
		__builtin_memcpy(fib.ipv6_dst, dst, 16);
		fib.tot_len = p->l4_len;
	} else {
		fib.family = AF_INET;
		__builtin_memcpy(&fib.ipv4_src, src + 12, 4);
		__builtin_memcpy(&fib.ipv4_dst, dst + 12, 4);
		fib.tot_len = p->l4_len + sizeof(struct iphdr);
	}
	fib.l4_protocol = IPPROTO_TCP;
	fib.sport = SRC_PORT(p, from_hi);
	fib.dport = DST_PORT(p, from_hi);
	fib.ifindex = p->ifindex;
	if (bpf_fib_lookup(ctx, &fib, sizeof(fib), 0) != BPF_FIB_LKUP_RET_SUCCESS)
		return -1;
	*ifindex = fib.ifindex;
	__builtin_memcpy(smac, fib.smac, 6);
	__builtin_memcpy(dmac, fib.dmac, 6);
	return 0;
}

/* Where a RST held on a wire port goes, and its probe (rstguard run --wire):
 * released out of the pair's other port as it came (its own MACs), probed
 * out of the port it came in on, to the claimed sender's MAC and VLAN from
 * its handshake, from the receiver's. A flow whose handshake this box did
 * not see has neither: fails (fail open: pass). */
static __always_inline int wire_route(struct xdp_md *ctx, const struct packet *p, const struct flow_value *f,
				      const struct wire_port *w, struct hold *h)
{
	const __u8 *to = f->l2_mac[0], *from = f->l2_mac[1];
	__u8 known_to = 0, known_from = 0;

	if (p->dir) {
		to = f->l2_mac[1];
		from = f->l2_mac[0];
	}

#pragma unroll
	for (int i = 0; i < ETH_ALEN; i++) {
		known_to |= to[i];
		known_from |= from[i];
	}
	if (!known_to || !known_from)
		return -1;
	if (bpf_xdp_load_bytes(ctx, 0, h->egress_dmac, ETH_ALEN) ||
	    bpf_xdp_load_bytes(ctx, ETH_ALEN, h->egress_smac, ETH_ALEN))
		return -1;
	h->egress_ifindex = w->peer_ifindex;
	h->probe_ifindex = p->ifindex;
	__builtin_memcpy(h->probe_dmac, to, ETH_ALEN);
	__builtin_memcpy(h->probe_smac, from, ETH_ALEN);
	h->probe_vlan = p->dir ? f->l2_vlan[1] : f->l2_vlan[0];
	h->wire = 1;
	return 0;
}

/* The daemon re-parses what it is handed (dataplane.ParseSegment): only
 * Ethernet, VLAN tags, IPv4 with options, IPv6 with hop-by-hop and
 * destination options, and whole segments. Anything else must not reach it:
 * it could not send it on. */
static __always_inline int daemon_parses(const struct packet *p)
{
	return !p->first_fragment && !p->ipv6_fixed_ext;
}

/* A RST of a flow with a hold record from its claimed sender: the hold's
 * business, decided here without the daemon where the daemon needs not
 * see it. Returns ACTION_DROP (proven alive, or joining the hold),
 * ACTION_HOLD (the probe's answer, for the daemon), or ACTION_PASS with
 * *stale set when the record is over and a new hold may begin. */
static __always_inline __u8 held_rst(const struct packet *p, struct hold *held, const struct config *cfg,
				     __u64 now, __u32 *slot, int *stale)
{
	__u32 *s;

	/* Proven alive moments ago: the same evidence convicts this one too,
	 * and a new probe would go unanswered (PROVEN_ALIVE_MS). */
	if (held->evidence == HOLD_EVIDENCE_PROVEN) {
		if (now - held->decided_ns < PROVEN_ALIVE_MS * 1000000ULL + 2ULL * held->rtt_ns) {
			count(p->ifindex, CNT_HOLD_PROVEN_DROP);
			return ACTION_DROP;
		}
		*stale = 1;
		return ACTION_PASS;
	}
	/* A hold the daemon never decided (it died, or lost the frame) is
	 * over once the longest hold would be: fail open. */
	if (now - held->held_ns > (__u64)cfg->hold_max_us * 1000 + ONE_SECOND_NS) {
		*stale = 1;
		return ACTION_PASS;
	}
	s = xsk_slot(p->ifindex, p->queue);
	if (!s) {
		count(p->ifindex, CNT_HOLD_NO_SOCKET);
		return ACTION_PASS;
	}
	/* A stack without the connection answers the probe with a RST at seq =
	 * the probe's ACK (RFC 9293 3.10.7.1): the nonce, which nobody knows
	 * who has not read the probe. That answer goes to the daemon. */
	if (p->seq == held->nonce) {
		count(p->ifindex, CNT_HOLD_ANSWER);
		*slot = *s;
		return ACTION_HOLD;
	}
	/* Any other RST in the sender's name joins the hold: it waits in the
	 * hold's count, not in the daemon's socket, whose ring a flood would
	 * fill with joiners until the answers that decide the holds were lost.
	 * None of it carries the nonce, so a forgery's volley is stopped whole.
	 * With a real RST released, its stack's later RSTs are not needed: the
	 * receiver discards a RST for a connection it no longer has (RFC 9293
	 * 3.10.7.1), and one the first did not reset (not at its exact
	 * sequence) draws a challenge ACK (RFC 5961 3.2), which the real stack
	 * answers with a RST at exactly that sequence, held and released anew.
	 * The daemon reads the count into the hold's report. */
	__sync_fetch_and_add(&held->joined, 1);
	count(p->ifindex, CNT_HOLD_JOINED);
	return ACTION_DROP;
}

/* Hold mode: a RST that headers cannot clear waits in the daemon while it
 * asks the claimed sender whether its connection is alive (a keepalive-style
 * probe: a live Linux stack answers it with an ACK, one without the
 * connection with a RST, as control/hold's tests show). Only a synchronised
 * connection can be asked: a RST in SYN-SENT answers a SYN. Later RSTs of
 * the same sender join the hold: one question per flow. Every way this can
 * fail passes the RST, as monitor mode would. Returns ACTION_HOLD with *slot
 * set, or ACTION_PASS. */
static __noinline __u8 hold_rst(struct xdp_md *ctx, const struct packet *p, struct flow_value *f, __u32 *slot)
{
	const struct config *cfg = get_config();
	__u64 now = now_ns();
	const struct dir_state *snd = SENDER(f, p);
	const struct dir_state *rcv = RECEIVER(f, p);
	__u32 *s, zero = 0;
	const struct wire_port *w;
	struct hold *h;
	long err;

	if (f->flags & FLOW_HELD) {
		struct hold *held = bpf_map_lookup_elem(&holds, &p->key);
		int stale = 0;
		__u8 action;

		if (!held) {
			f->flags &= ~FLOW_HELD;
		} else if (held->from_hi != p->dir) {
			return ACTION_PASS; /* the other side's RST: not what is being asked */
		} else {
			action = held_rst(p, held, cfg, now, slot, &stale);
			if (!stale)
				return action;
			bpf_map_delete_elem(&holds, &p->key);
			f->flags &= ~FLOW_HELD;
		}
	}
	if ((f->state != STATE_ESTABLISHED && f->state != STATE_CLOSING) || !(snd->flags & DIR_SEEN) ||
	    !(snd->flags & DIR_ACKED) || !(rcv->flags & DIR_SEEN) || allowed(p))
		return ACTION_PASS;
	/* A RST in fragments passes: no real stack fragments a RST (a few
	 * dozen bytes, under any path's MTU: RFC 791's 68, RFC 8200's 1280),
	 * yet dropping one could cost a real RST that carries data, so this
	 * stays a documented limit (docs/HOLD.md). */
	if (!daemon_parses(p)) {
		count(p->ifindex, CNT_HOLD_UNRELEASABLE);
		return ACTION_PASS;
	}
	s = xsk_slot(p->ifindex, p->queue);
	if (!s)
		goto no_socket;
	*slot = *s;
	h = bpf_map_lookup_elem(&hold_scratch, &zero);
	if (!h)
		return ACTION_PASS;
	__builtin_memset(h, 0, sizeof(*h));
	w = wire_in_use ? bpf_map_lookup_elem(&wire_ports, &p->ifindex) : 0;
	if (w ? wire_route(ctx, p, f, w, h)
	      : route(ctx, p, 0, &h->egress_ifindex, h->egress_smac, h->egress_dmac) ||
		    route(ctx, p, 1, &h->probe_ifindex, h->probe_smac, h->probe_dmac)) {
		count(p->ifindex, CNT_HOLD_UNROUTED);
		return ACTION_PASS;
	}
	if (!xsk_slot(h->egress_ifindex, 0) || !xsk_slot(h->probe_ifindex, 0))
		goto no_socket;
	h->held_ns = now;
	/* The probe carries one byte the claimed sender acknowledged already,
	 * and ends below its last ACK: a segment of old data, which every stack
	 * answers with an ACK at once, as its peer's retransmission recovery
	 * needs (RFC 9293 3.10.7.4; RFC 1122 4.2.3.6 keep-alives carry one such
	 * octet). A segment without data would draw the same duplicate ACK, but
	 * Linux answers those at most once per 500 ms a socket
	 * (tcp_oow_rate_limited(), net.ipv4.tcp_invalid_ratelimit; data is
	 * exempt), and an injector that first sends the sender one in its
	 * peer's name would spend that answer: the probe went unanswered and
	 * the forgery was released (TestHoldMode). Ending two below the ACK,
	 * the byte is old to Linux's own test too (it is below rcv_wup, the
	 * ACK's point), which answers before it reads the probe's ACK field;
	 * and it is one the sender has: it can never be taken as new data. */
	h->probe_seq = snd->max_ack - 2;
	h->peer_next = rcv->next_seq;
	h->probe_ack = snd->next_seq;
	h->nonce = h->probe_ack - 1 - (bpf_get_prandom_u32() & PROBE_NONCE_SPAN);
	h->rtt_ns = ns_of(snd->rtt);
	h->ingress_ifindex = p->ifindex;
	h->from_hi = p->dir;
	err = bpf_map_update_elem(&holds, &p->key, h, BPF_NOEXIST);
	if (err && err != -EEXIST) {
		count(p->ifindex, CNT_HOLD_TABLE_FULL);
		return ACTION_PASS;
	}
	f->flags |= FLOW_HELD;
	if (err) {
		/* Held already: FLOW_HELD was lost to the other direction's
		 * concurrent update of the flow's flags. Join that hold. */
		struct hold *held = bpf_map_lookup_elem(&holds, &p->key);
		int stale = 0;

		return held && held->from_hi == p->dir ? held_rst(p, held, cfg, now, slot, &stale) : ACTION_PASS;
	}
	count(p->ifindex, CNT_HOLD_STARTED);
	return ACTION_HOLD;
no_socket:
	count(p->ifindex, CNT_HOLD_NO_SOCKET);
	return ACTION_PASS;
}

/* Does the segment report the probe's byte as a duplicate: a first SACK
 * block of exactly [probe_seq, probe_seq + 1)? That is a D-SACK block (RFC
 * 2883 section 4: the first block reports the duplicate received), which a
 * SACK stack sends in its answer to old data (Linux tcp_send_dupack()). Only
 * a stack that received the probe can report its byte, which is two below
 * the sender's highest ACK, so no keepalive's byte (snd.una - 1) and no
 * retransmitted segment's range is reported the same way: the answer proves
 * itself, whenever it comes. */
static __always_inline int reports_probe_byte(struct xdp_md *ctx, const struct packet *p, __u32 probe_seq)
{
	__u32 w[3]; /* NOP, NOP, SACK, length; the first block's left and right edges */
	__u32 at = p->l4_off + sizeof(struct tcphdr);

	/* Where Linux (tcp_options_write()) and the BSDs (tcp_addoptions())
	 * put SACK blocks: first, or after NOP, NOP, TS. An answer with another
	 * layout waits out the timing rule, as every answer did before. */
	if (p->tcp_hdr_len < sizeof(struct tcphdr) + sizeof(w) || bpf_xdp_load_bytes(ctx, at, w, sizeof(w)))
		return 0;
	if (w[0] == bpf_htonl(TCPOPT_NOP_NOP_TS) &&
	    (p->tcp_hdr_len < sizeof(struct tcphdr) + 2 * sizeof(w) || bpf_xdp_load_bytes(ctx, at + sizeof(w), w, sizeof(w))))
		return 0;
	return (bpf_ntohl(w[0]) & ~0xffU) == TCPOPT_NOP_NOP_SACK && (bpf_ntohl(w[0]) & 0xff) >= TCPOLEN_SACK_BLOCK1 &&
	       bpf_ntohl(w[1]) == probe_seq && bpf_ntohl(w[2]) == probe_seq + 1;
}

/* The claimed sender's answer to the daemon's probe: a pure ACK of all the
 * other side sent (ack = peer_next) at the sender's next sequence.
 * Sooner than half its leg RTT after the hold began, an ACK may have been
 * sent before the probe could reach it, and is no answer, unless it reports
 * the probe's byte (reports_probe_byte()): the timing rule alone would turn
 * away a real answer whenever the leg's only RTT sample was slow (a
 * handshake across a stall), and let the forgery loose. The RTT is taken at
 * its floor (rtt_floor()): a leg measured a tick long on the coarse clock
 * must not turn the real answer away either. Its seq may be ahead of
 * what this box saw of the sender: segments lost before the box (the
 * incident's device swallowed the request) still advanced it, by at most a
 * window (HOLD_ANSWER_SEQ_SLACK). It goes to the daemon, which decides on
 * it and sends it on to the endpoint it is addressed to. A decided hold asks
 * nothing more: the sender's ACKs pass (a window update looks the same). */
static __always_inline __u8 hold_answer(struct xdp_md *ctx, const struct packet *p, struct flow_value *f, __u32 *slot)
{
	struct hold *h = bpf_map_lookup_elem(&holds, &p->key);
	__u32 *s;

	if (!h) {
		f->flags &= ~FLOW_HELD;
		return ACTION_PASS;
	}
	if (h->evidence == HOLD_EVIDENCE_PROVEN || !daemon_parses(p) || h->from_hi != p->dir || p->payload_len ||
	    (p->tcp_flags & (TH_SYN | TH_FIN | TH_ACK)) != TH_ACK ||
	    p->seq - h->probe_ack > HOLD_ANSWER_SEQ_SLACK || p->ack != h->peer_next)
		return ACTION_PASS;
	if (now_ns() - h->held_ns < ns_of(rtt_floor(h->rtt_ns >> TIME32_SHIFT)) / 2 &&
	    !reports_probe_byte(ctx, p, h->probe_seq))
		return ACTION_PASS;
	s = xsk_slot(p->ifindex, p->queue);
	if (!s)
		return ACTION_PASS;
	count(p->ifindex, CNT_HOLD_ANSWER);
	*slot = *s;
	return ACTION_HOLD;
}
