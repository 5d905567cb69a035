/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* rstguard.c, by concern: The maps, the per-CPU scratch, the BTF anchor and the globals.
 * Included once, in order, by rstguard.c: one translation unit, so that
 * bpf2go and the verifier see one program. */

/* The flow table: one entry per connection, both directions, for
 * connections whose handshake this box saw complete (or, picked up
 * mid-stream, whose two sides each acknowledged the other's data). Size set
 * at load time. Only such connections compete for its room: a flood of
 * half-open flows cannot evict them. */
FLOW_TABLE(flows, DEFAULT_FLOW_TABLE_SIZE);

/* Flows that have not yet shown a completed handshake or a two-way
 * exchange: SYN-opened and mid-stream entries, promoted to flows when they
 * do. A flood of SYNs, or of packets of made-up flows, evicts only these.
 * Size set at load time. */
FLOW_TABLE(embryonic, 1 << 18);

/* Per-CPU counters indexed by interface slot * CNT_MAX + enum counter;
 * readers sum over CPUs (and slots, for totals). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CNT_MAX * IFACE_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* Run-time policy, one entry; read only on the RST path. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} policy SEC(".maps");

/* Prefixes whose RSTs are never dropped, only reported: the operator's own
 * firewalls and load balancers reset on the servers' behalf (--allow). */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct allow_key);
	__type(value, __u8);
} allow SEC(".maps");

/* Judged RSTs and after-the-fact confirmations, struct event each. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

struct scratch {
	__u8 buf[CSUM_MAX + 4];
};

/* Event budgets per CPU: [0] for RSTs of no tracked flow, [1] for all events. */
enum { BUDGET_NO_FLOW = 0, BUDGET_GLOBAL = 1 };
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct event_budget);
} cpu_budgets SEC(".maps");

/* Room to copy a RST's TCP segment for checksum verification. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} csum_scratch SEC(".maps");

/* Room to build a hold record: on the stack it would take the RST path's
 * three frames past the verifier's 512 bytes. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hold);
} hold_scratch SEC(".maps");

/* The daemon's AF_XDP sockets (hold mode), by slot. A socket leaves the map
 * when it closes, so a dead daemon's slots redirect nothing. */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, MAX_XSK);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

/* Which slot serves which (interface, RX queue): a redirect to a socket bound
 * to another queue fails and the frame vanishes, so only a frame whose own
 * interface and queue have a socket is redirected. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_XSK);
	__type(key, struct xsk_key);
	__type(value, struct xsk_slot);
} xsk_slots SEC(".maps");

/* Held flows (hold mode), one entry per flow while its RSTs wait in the
 * daemon. A plain hash: a hold is never evicted, and a full table makes new
 * RSTs pass. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_HOLDS);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* held flows are few: allocate as they come */
	__type(key, struct flow_key);
	__type(value, struct hold);
} holds SEC(".maps");

/* Zones, set by the daemon (--zone, VRF masters); consulted only while
 * zones_in_use, so that a gateway without overlapping address spaces pays
 * no lookup on the common path. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct zone_key);
	__type(value, __u16);
} zones SEC(".maps");

volatile __u32 zones_in_use;

/* Wire mode (--wire A:B): what each port is (wire_ports, by its ifindex)
 * and the devmap its frames leave by (wire_peers, by the ingress ifindex:
 * bpf_redirect_map() queues frames in bulk and needs no FIB or neighbour).
 * Set by the daemon; consulted only while wire_in_use, so that a router
 * pays no lookup. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_WIRE_PORTS);
	__type(key, __u32);
	__type(value, struct wire_port);
} wire_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, MAX_WIRE_PORTS);
	__type(key, __u32);
	__type(value, __u32);
} wire_peers SEC(".maps");

volatile __u32 wire_in_use;

/* The kernel's ID of wire_peers, set by the daemon: a failed redirect's
 * tracepoint names the map it went through by ID. */
volatile __u32 wire_peers_id;

/* Puts the shared types in BTF so that bpf2go generates their Go twins:
 * Go then never restates a layout or an enum value by hand. */
struct btf_anchor {
	struct event event;
	struct allow_key allow_key;
	struct xsk_key xsk_key;
	struct xsk_slot xsk_slot;
	struct zone_key zone_key;
	struct wire_port wire_port;
	struct hold hold;
	enum hold_outcome hold_outcome;
	enum hold_evidence hold_evidence;
	enum hold_limits hold_limits;
	enum parse_limits parse_limits;
	enum policy_default policy_default;
	enum time_unit time_unit;
	enum signal_weight signal_weight;
	enum benign_cause benign_cause;
	enum signal_causes signal_causes;
	enum tcp_flag tcp_flag;
	enum event_budgets event_budgets;
	enum signal signal;
	enum verdict verdict;
	enum action action;
	enum counter counter;
	enum iface_slots iface_slots;
	enum event_kind event_kind;
	enum context_limits context_limits;
	enum flow_state flow_state;
	enum ipid_model ipid_model;
	enum mode mode;
	enum abi abi;
	enum dir_flag dir_flag;
	enum flow_flag flow_flag;
};
const struct btf_anchor *unused_btf_anchor __attribute__((unused));

/* Set by `rstguard analyze` so that a capture's own timestamps drive every
 * timing signal; 0 on a live interface. */
volatile __u64 clock_override_ns;

/* The coarse clock's tick: how far bpf_ktime_get_coarse_ns() lags the
 * precise clock at most. The tick updates it, and a CPU leaving idle updates
 * it on its first interrupt (tick_nohz_irq_enter()), so an RTT sample read on
 * it is off by less than a tick either way (rtt_floor()). Set at load to
 * clock_getres(CLOCK_MONOTONIC_COARSE); under clock_override_ns the coarse
 * clock is the override rounded down to it, and 0 makes both one exact clock
 * (a capture's timestamps). */
volatile __u64 coarse_tick_ns;
