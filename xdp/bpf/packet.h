/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* rstguard.c, by concern: the helpers every path uses: counting, clocks, sequence arithmetic.
 * Included once, in order, by rstguard.c: one translation unit, so that
 * bpf2go and the verifier see one program. */

static __always_inline __u8 iface_slot(__u32 ifindex)
{
	return ifindex & (IFACE_SLOTS - 1);
}

static __always_inline void count_n_in_slot(__u32 slot, __u32 idx, __u64 n)
{
	__u32 key = slot * CNT_MAX + idx;
	__u64 *v = bpf_map_lookup_elem(&counters, &key);

	if (v)
		*v += n;
}

static __always_inline void count_in_slot(__u32 slot, __u32 idx)
{
	count_n_in_slot(slot, idx, 1);
}

/* Counts one idx for the interface a frame arrived on. */
static __always_inline void count(__u32 ifindex, __u32 idx)
{
	count_in_slot(iface_slot(ifindex), idx);
}

static __always_inline __u64 now_ns(void)
{
	__u64 t = clock_override_ns;

	return t ? t : bpf_ktime_get_ns();
}

/* The coarse clock costs half as much; used on the data path, where it can only
 * make elapsed times look longer and so only make TOO_SOON rarer. */
static __always_inline __u64 now_coarse_ns(void)
{
	__u64 t = clock_override_ns;
	__u64 tick;

	if (!t)
		return bpf_ktime_get_coarse_ns();
	tick = coarse_tick_ns; /* read only under the override: a live clock needs none */
	return tick ? t - t % tick : t;
}

/* A time32 duration in nanoseconds, saturating at 4.29 s instead of wrapping. */
static __always_inline __u32 ns_of(__u32 t32)
{
	return t32 > (0xffffffffU >> TIME32_SHIFT) ? 0xffffffffU : t32 << TIME32_SHIFT;
}

static __always_inline __u32 time32(__u64 ns)
{
	return (__u32)(ns >> TIME32_SHIFT) | 1; /* never 0: 0 means "not recorded" */
}

/* The least a leg's RTT can be, in time32, given its smallest sample rtt
 * (0: unknown). A sample between two readings of the coarse clock is off by
 * less than a tick either way (coarse_tick_ns), and one between a precise
 * stamp and a coarse reading is short by less than a tick: take a tick off,
 * and no real answer is ever faster than the floor says. The rules that would
 * call an answer too early use it: too_soon(), hold_answer(). */
static __always_inline __u32 rtt_floor(__u32 rtt)
{
	__u32 tick = coarse_tick_ns >> TIME32_SHIFT;

	return rtt > tick ? rtt - tick : 0;
}

/* The data path's clock, read at most once per packet and only when asked;
 * *cached is 0 until then. */
static __always_inline __u32 clock32(__u32 *cached)
{
	if (!*cached)
		*cached = time32(now_coarse_ns());
	return *cached;
}

/* Does the flow remember a RST sent by the side dir (0: addr_lo's)? */
static __always_inline int rst_pending(const struct flow_value *f, __u8 dir)
{
	return (f->flags & FLOW_RST_PENDING) && !!(f->flags & FLOW_RST_FROM_HI) == dir;
}

/* Sequence-space comparisons, wrap-aware (RFC 9293 3.4). */
static __always_inline int seq_before(__u32 a, __u32 b)
{
	return (__s32)(a - b) < 0;
}

static __always_inline int seq_after(__u32 a, __u32 b)
{
	return (__s32)(b - a) < 0;
}
