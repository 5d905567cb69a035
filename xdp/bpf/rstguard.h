/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * rstguard: every struct and enum shared between the XDP program and Go (the
 * maps that hold them are in maps.h), and the flow table's declaration.
 * Go reads these layouts through bpf2go's generated types, so a change here is
 * a change of the pinned-map ABI: bump RSTGUARD_ABI when a layout changes.
 */
#ifndef RSTGUARD_H
#define RSTGUARD_H

#include <linux/types.h>

/* Stored in the policy map; the control plane refuses pinned maps of another ABI. */
enum abi {
	RSTGUARD_ABI = 9,
};

/* Policy, changed at run time through the config map (no reload). */
enum mode {
	MODE_MONITOR = 0, /* judge and report, pass everything */
	MODE_DROP = 1,    /* drop RSTs judged spoofed */
	MODE_HOLD = 2,    /* drop spoofed; park every other RST of a synchronised
			   * flow in an AF_XDP socket until its claimed sender
			   * answers a probe (docs/HOLD.md) */
};

enum verdict {
	VERDICT_UNKNOWN = 0, /* no flow, or nothing to judge against */
	VERDICT_VALID = 1,
	VERDICT_SUSPECT = 2,
	VERDICT_SPOOFED = 3,
	VERDICT_COUNT,
};

enum action {
	ACTION_PASS = 0,
	ACTION_DROP = 1,
	ACTION_HOLD = 2, /* redirected to the daemon's AF_XDP socket */
	ACTION_COUNT,
};

/* How much a signal counts (docs/SIGNALS.md, "Verdicts"): informational
 * signals and insertion markers count nothing; weak ones never convict. */
enum weight {
	WEIGHT_INFO = 0,
	WEIGHT_WEAK = 1,
	WEIGHT_MEDIUM = 2,
	WEIGHT_STRONG = 4,
};

/* Benign causes: what real stacks and paths do that raises signals with no
 * injector involved (docs/SIGNALS.md, "Benign causes"). Signals that one
 * cause can raise together are one piece of evidence, not several: a RST is
 * spoofed only when its medium and strong signals still reach WEIGHT_STRONG
 * after the signals of any single cause are set aside. */
enum benign_cause {
	CAUSE_CROSSED = 0,        /* a stack answering segments that crossed its close in flight (RFC 9293 3.10.7.1) */
	CAUSE_CONTROL_SOCKET = 1, /* a stateless reply from the host's control socket (Linux tcp_v4_send_reset) */
	CAUSE_MISSED = 2,         /* segments lost before this box or not captured: its view lags the hosts' */
	CAUSE_SHARED_COUNTER = 3, /* an IP-ID counter shared with the host's other traffic, or reseeded when idle */
	CAUSE_OLD_STACK = 4,      /* a stack that puts its receive window on RSTs */
	CAUSE_SHARED_DEFAULTS = 5,/* two stacks with the same default window or IP-ID */
	CAUSE_ROUTE_CHANGE = 6,   /* ECMP or a route change: a hop or two */
	CAUSE_RAW_SYN = 7,        /* a SYN a raw socket wrote (a port scanner), answered by its host's kernel;
				   * only while that SYN is all its sender has sent (judge_rst()) */
	CAUSE_COUNT,              /* at most 8: one byte lane each in struct judgement's explained */
};

#define CAUSE(c) (1 << CAUSE_##c)

/* Every signal in one list, as the kernel's __BPF_FUNC_MAPPER lists
 * helpers: its bit, its weight (enum weight) and the benign causes known to
 * raise it (none: no documented stack or path does). enum signal, enum
 * signal_weight and enum signal_causes are all made from it; docs/SIGNALS.md's
 * tables show the same, and tests tie the two. The signals' sources are
 * beside judge_rst() in judge.h and in docs/SIGNALS.md. */
#define RSTGUARD_SIGNALS(X)                                                                        \
	X(SEQ_EXACT, 0, INFO, 0)                    /* seq == RCV.NXT */                           \
	X(SEQ_IN_WINDOW, 1, MEDIUM, CAUSE(MISSED))  /* in window, not exact */                     \
	X(SEQ_OUT_OF_WINDOW, 2, MEDIUM, CAUSE(CROSSED) | CAUSE(MISSED))                            \
	X(ACK_MISMATCH, 3, MEDIUM, CAUSE(CROSSED) | CAUSE(MISSED))                                 \
	X(TTL_OFF, 4, STRONG, CAUSE(RAW_SYN))       /* beyond the tolerance */                     \
	X(TTL_DRIFT, 5, WEAK, CAUSE(ROUTE_CHANGE))  /* within the tolerance */                     \
	X(IPID_OFF_MODEL, 6, WEAK,                                                                 \
	  CAUSE(CROSSED) | CAUSE(CONTROL_SOCKET) | CAUSE(MISSED) | CAUSE(SHARED_COUNTER))          \
	X(IPID_MIRRORED, 7, MEDIUM, 0)                                                             \
	X(WINDOW_MIRRORED, 8, WEAK, CAUSE(SHARED_DEFAULTS))                                        \
	X(WINDOW_NONZERO, 9, WEAK, CAUSE(OLD_STACK))                                               \
	X(TS_MISSING, 10, WEAK, CAUSE(CROSSED) | CAUSE(CONTROL_SOCKET))                            \
	X(TS_BACKWARDS, 11, MEDIUM, 0)                                                             \
	X(TOO_SOON, 12, MEDIUM, 0)                                                                 \
	X(RST_BURST, 13, MEDIUM, CAUSE(CROSSED))                                                   \
	X(BAD_CHECKSUM, 14, INFO, 0)                /* insertion attempt: reported, never scored */ \
	X(FLOWLABEL_OFF, 15, WEAK, CAUSE(CROSSED) | CAUSE(CONTROL_SOCKET))                         \
	X(MIDSTREAM, 16, INFO, 0)                   /* flow picked up mid-stream */                \
	X(COLLATERAL, 17, INFO, 0)                  /* answers the real sender after a forged RST */ \
	X(ALLOWED, 18, INFO, 0)                     /* an endpoint is allow-listed: never dropped */ \
	X(AUTH_DECOY, 19, INFO, 0)                  /* TCP-MD5/TCP-AO never negotiated: insertion */ \
	X(ACK_BELOW_SYN, 20, MEDIUM, 0)             /* RST/ACK acking no more than the ISN */      \
	X(REPLY, 21, INFO, 0)                       /* answers one of the receiver's recent segments */ \
	X(HARMLESS, 22, INFO, 0)                    /* the receiver would discard it: passed in every mode */

#define SIGNAL_BIT(name, bit, weight, causes) SIG_##name = bit,
#define SIGNAL_WEIGHT(name, bit, weight, causes) SIGW_##name = WEIGHT_##weight,
#define SIGNAL_CAUSES(name, bit, weight, causes) SIGC_##name = (causes),

/* Signals, one bit each. */
enum signal {
	RSTGUARD_SIGNALS(SIGNAL_BIT)
	SIG_COUNT,
};

/* Every signal's weight, by the signal's name. */
enum signal_weight {
	RSTGUARD_SIGNALS(SIGNAL_WEIGHT)
};

/* Every signal's benign causes, by the signal's name. */
enum signal_causes {
	RSTGUARD_SIGNALS(SIGNAL_CAUSES)
};

/* TCP header flag bits (RFC 9293 section 3.1). */
enum tcp_flag {
	TH_FIN = 0x01,
	TH_SYN = 0x02,
	TH_RST = 0x04,
	TH_PSH = 0x08,
	TH_ACK = 0x10,
	TH_URG = 0x20,
};

enum event_kind {
	EVENT_RST = 0,       /* a judged RST */
	EVENT_DATA_AFTER_RST = 1, /* the claimed sender of an earlier RST kept talking: it was forged */
	EVENT_COLLATERAL_RESET = 2,/* the victim endpoint reset the real sender after a forged RST */
	EVENT_HOLD = 3,      /* written by the daemon: how a held RST was decided */
	EVENT_TINY_FRAGMENT = 4, /* a first fragment too short for the TCP header (RFC 1858) */
	EVENT_POLICY_CHANGE = 5, /* written by the daemon: the policy or allow-list changed at run time */
	EVENT_CONTEXT = 6,   /* a packet of a flow shortly after a suspect or spoofed RST, for the evidence */
};

/* After a suspect or spoofed RST, the flow's next packets go to the evidence
 * as context, as Suricata's tag:session (Suricata rules docs, "tag") keeps a
 * session's packets after an alert: the claimed sender's data after the RST
 * (the proof), its retransmission, the victim's collateral reset. Bounded in
 * packets and time, and by the per-flow and per-CPU event budgets. */
enum context_limits {
	CONTEXT_PACKETS = 8,
	CONTEXT_SECONDS = 5,
};

/* How a hold ended; the daemon decides and reports, the names are here so
 * that every name rstguard prints has one source. */
enum hold_outcome {
	HOLD_PROBE_ANSWERED_ACK = 0, /* the claimed sender is alive: the RST was forged, dropped */
	HOLD_PROBE_ANSWERED_RST = 1, /* the claimed sender has no connection: released */
	HOLD_DATA_DURING_HOLD = 2,   /* the claimed sender sent data in sequence: forged, dropped */
	HOLD_TIMEOUT = 3,            /* no answer within the hold window: released (fail open) */
	HOLD_FULL = 4,               /* too many frames held: released at once */
	HOLD_PROBE_RATE_LIMITED = 5, /* no probe allowed now: released at once */
	HOLD_PROBE_UNSENT = 6,       /* the probe could not be sent: released at once */
	HOLD_OUTCOME_COUNT,
};

/* What the program has seen of a held flow's claimed sender since the hold
 * began (struct hold.evidence). */
enum hold_evidence {
	HOLD_EVIDENCE_NONE = 0,
	HOLD_EVIDENCE_DATA = 1,   /* payload in sequence, its TTL and IP-ID: alive */
	HOLD_EVIDENCE_PROVEN = 2, /* written by the daemon: the hold was decided forged at decided_ns */
};

/* Hold mode's bounds; Go reads these. */
/* How deep the parser walks; the daemon's parser of held frames
 * (dataplane.ParseSegment) walks as deep. */
enum parse_limits {
	MAX_VLAN = 2,     /* 802.1Q / 802.1ad tags walked */
	MAX_IPV6_EXT = 4, /* IPv6 extension headers walked; more: passed, counted */
};

enum hold_limits {
	/* How long a claimed sender proven alive stays proven: later RSTs in
	 * its name on that connection (the rest of a volley) are dropped
	 * without a new probe, convicted by the same answer, at no probe's
	 * cost. It outlasts tcp_invalid_ratelimit (500 ms by default), which
	 * limited the answers to the probes of old, without data; past this
	 * bound (and two of the sender's leg RTTs for the answer's way) the
	 * next RST is held and asked again. */
	PROVEN_ALIVE_MS = 1000,
	/* How far below the claimed sender's next sequence the probe's ACK
	 * field (the nonce) may lie: within what stateful firewalls on the path
	 * accept (Linux conntrack: MAXACKWINCONST, 66,000 below the highest
	 * sequence) and what live stacks answer with an ACK anyway (RFC 5961
	 * 5.2; Linux checks the sequence first): 16 bits that an injector
	 * cannot know before it reads the probe. */
	PROBE_NONCE_SPAN = 0xffff,
};

enum flow_state {
	STATE_NONE = 0,    /* never stored: an entry starts in one of the states below */
	STATE_SYN_SENT = 1,
	STATE_SYN_RCVD = 2,
	STATE_ESTABLISHED = 3,
	STATE_CLOSING = 4, /* a FIN was seen */
	STATE_RESET = 5,   /* a RST was let through */
};

/* IP-ID models of a sender (Linux: per-flow counter with DF, 0 on SYN/ACK and
 * stateless RSTs; Windows and old stacks: one global counter; OpenBSD: random). */
enum ipid_model {
	IPID_UNKNOWN = 0,
	IPID_ZERO = 1,
	IPID_PER_FLOW = 2, /* steps of 1..IPID_PER_FLOW_STEP */
	IPID_GLOBAL = 3,   /* steps of up to IPID_GLOBAL_STEP */
	IPID_RANDOM = 4,
};

#define IPID_PER_FLOW_STEP 64
#define IPID_GLOBAL_STEP 4096

/* Per-CPU counters, one array slot each. Every frame lands in exactly one of
 * the first six, so their sum is the frame count at one increment a frame. */
enum counter {
	CNT_TCP = 0,          /* TCP segments parsed (first fragments too) */
	CNT_NOT_TCP,          /* other ethertype or IP protocol: passed */
	CNT_PARSE_ERROR,      /* truncated or malformed: passed */
	CNT_FRAGMENT,         /* non-first fragment: passed */
	CNT_IPV6_EXT_LIMIT,   /* more IPv6 extension headers than we walk: passed */
	CNT_TINY_FRAGMENT,    /* first fragment without the whole TCP header: dropped outside monitor */
	CNT_FLOW_INSERT,      /* into the embryonic table */
	CNT_FLOW_INSERT_FAIL, /* table update failed: passed, flow untracked */
	CNT_FLOW_PROMOTED,    /* moved from the embryonic table to the flow table */
	CNT_MIDSTREAM,        /* flows picked up without a handshake */
	CNT_RST,
	CNT_RST_NO_FLOW,
	CNT_CSUM_UNCHECKED,   /* RST too long to verify its checksum here */
	CNT_CONFIRMED,
	CNT_COLLATERAL,
	CNT_EVENT_SENT,
	CNT_EVENT_LOST,       /* ring buffer full */
	CNT_EVENT_SUPPRESSED, /* per-flow event budget spent */
	CNT_HOLD_STARTED,     /* RSTs that began a hold */
	CNT_HOLD_JOINED,      /* later RSTs of a held flow, waiting in its count: they share its fate */
	CNT_HOLD_NO_SOCKET,   /* hold mode, but no AF_XDP socket for the queue or egress: passed */
	CNT_HOLD_UNROUTED,    /* hold mode, but the kernel would not forward it: passed */
	CNT_HOLD_TABLE_FULL,  /* hold mode, but the hold table is full: passed */
	CNT_HOLD_ANSWER,      /* probe answers redirected to the daemon */
	CNT_HOLD_DATA,        /* data from a held flow's claimed sender proving it alive */
	CNT_HOLD_PROVEN_DROP, /* RSTs dropped in the kernel: their claimed sender was proven alive moments ago */
	CNT_HOLD_UNRELEASABLE,/* hold mode, but the daemon could not release it (an IPv6 routing, fragment or AH header; an IPv4 first fragment): passed */
	CNT_HOLD_FORGED,      /* held RSTs the daemon proved forged and dropped: counted by the daemon, never by the program */
	CNT_WIRE_FORWARDED,   /* wire mode: frames sent out of the other port of their pair */
	CNT_WIRE_NO_PEER,     /* wire mode: the pair's other port not in the devmap: passed to the stack */
	CNT_WIRE_CLOSED,      /* wire mode, --wire-fail closed: frames dropped while a port of their pair is down */
	CNT_WIRE_REDIRECT_ERRORS, /* wire mode: forwarded frames the kernel failed to send out of the other port (its TX ring full, the port down, a veth peer without XDP): lost (xdp:xdp_devmap_xmit and xdp:xdp_redirect_err, while the daemon runs) */
	CNT_VERDICT_BASE,     /* VERDICT_COUNT slots */
	CNT_ACTION_BASE = CNT_VERDICT_BASE + VERDICT_COUNT,
	CNT_SIGNAL_BASE = CNT_ACTION_BASE + ACTION_COUNT,
	/* confirmed forgeries by the action their RST got: ACTION_COUNT slots */
	CNT_CONFIRMED_ACTION_BASE = CNT_SIGNAL_BASE + SIG_COUNT,
	CNT_MAX = CNT_CONFIRMED_ACTION_BASE + ACTION_COUNT,
};

/* The counters come in IFACE_SLOTS sets, one per interface slot (ifindex
 * modulo IFACE_SLOTS), so that metrics and rstguard top show each
 * interface: the set is picked by the same one array lookup, at no cost.
 * Two attached interfaces whose ifindexes share a slot share a set; the
 * daemon names both on it. */
enum iface_slots {
	IFACE_SLOTS = 64,
};

/* Both directions of a connection share one key: the lower (address, port)
 * pair first. IPv4 addresses are stored IPv4-mapped (::ffff:a.b.c.d). The
 * zone tells apart address spaces that overlap (VRFs, VLANs), as Linux
 * conntrack zones do: 0 unless the daemon maps the interface and VLAN. */
struct flow_key {
	__u8 addr_lo[16];
	__u8 addr_hi[16];
	__u16 port_lo; /* network order */
	__u16 port_hi;
	__u16 zone;
	__u16 pad;
};

/* A port of a wire pair (rstguard run --wire A:B): the port its frames leave
 * by, and whether the pair is closed (--wire-fail closed while a port of it
 * is down: its frames are dropped). */
struct wire_port {
	__u32 peer_ifindex;
	__u32 closed;
};

/* Wire ports at once, at most: 32 pairs. */
#define MAX_WIRE_PORTS 64

/* Which zone an interface, or a VLAN on it, carries (vlan 0: untagged). */
struct zone_key {
	__u32 ifindex;
	__u32 vlan;
};

/* dir_state.flags */
enum dir_flag {
	DIR_SEEN = 1 << 0,   /* at least one non-RST packet from this side */
	DIR_SYN = 1 << 1,    /* its SYN was seen: isn is real */
	DIR_ACKED = 1 << 2,  /* max_ack is real */
	DIR_TS = 1 << 3,     /* it sent the timestamp option in its SYN */
	DIR_WSCALE = 1 << 4, /* it sent the window scale option in its SYN */
	DIR_DF = 1 << 5,     /* its last packet had DF */
	DIR_AUTH = 1 << 6,   /* its SYN carried TCP-MD5 (RFC 2385) or TCP-AO (RFC 5925) */
	DIR_SYN_RETRANS = 1 << 7, /* it retransmitted its SYN: the SYN/ACK times nothing (Karn) */
};

/* What one side of a connection has shown us. Written only by that side's
 * packets (RSS keeps a direction on one queue), so the common path needs no lock. */
struct dir_state {
	__u32 isn;
	__u32 next_seq;    /* highest seq + len (+SYN/FIN) sent */
	__u32 max_ack;     /* highest ack sent */
	__u32 tsval;       /* last TSval */
	__u32 flow_label;  /* IPv6 */
	__u32 last_data_t; /* time32 when it last advanced its sequence */
	__u32 rtt;         /* time32 this side takes to answer: smallest sample, handshake first */
	/* The reply model's memory (judge_rst()): max_ack as it stood at the
	 * last two shifts, at least REPLY_HORIZON apart, so that ack_floor is
	 * an ACK this side sent at least that long ago. Every ACK it sent since
	 * lies in [ack_floor, max_ack]. */
	__u32 ack_floor;
	__u32 ack_stage;
	__u32 floor_t;     /* time32 of the last shift */
	__u16 window;      /* last raw window */
	__u16 ip_id;       /* last IPv4 ID */
	__u8 ttl;          /* TTL or hop limit of its last non-RST packet */
	__u8 wscale;
	__u8 ipid_model;   /* enum ipid_model */
	__u8 flags;        /* DIR_* */
};

/* flow_value.flags */
enum flow_flag {
	FLOW_MIDSTREAM = 1 << 0,   /* picked up without a handshake */
	FLOW_INIT_HI = 1 << 1,     /* the initiator is the addr_hi side */
	FLOW_RST_PENDING = 1 << 2, /* rst_* describe a RST awaiting evidence */
	FLOW_RST_FROM_HI = 1 << 3, /* that RST came from the addr_hi side */
	FLOW_CONFIRMED = 1 << 4,   /* that RST was confirmed forged */
	FLOW_HELD = 1 << 5,        /* a hold entry may exist: look it up */
	FLOW_RST_HELD = 1 << 6,    /* the RST in rst_* was held (hold mode) */
	FLOW_EMBRYONIC = 1 << 7,   /* lives in the embryonic table, not yet in flows */
};

/* Events allowed per one-second window. */
struct event_budget {
	__u32 window_t; /* time32 the current window started */
	__u16 count;    /* events sent in it */
	__u16 context;  /* packets still to send as context (enum context_limits) */
};

/* Times are time32: nanoseconds >> 10 (about microseconds), wrapping every
 * 73 minutes; only differences are used. */
struct flow_value {
	struct dir_state dir[2]; /* [0]: sent by the addr_lo side, [1]: by addr_hi */
	__u32 rst_seq;
	__u32 rst_t;
	struct event_budget budget;
	__u8 rst_ttl;
	__u8 state;              /* enum flow_state */
	__u8 flags;              /* FLOW_* */
	__u8 rst_verdict;
	/* Each side's source MAC and outer VLAN (0: untagged), from its SYN or
	 * SYN/ACK, indexed as dir: where hold mode in the wire sends it a probe,
	 * whatever L2 header a forged RST carries. Read on no other path. */
	__u8 l2_mac[2][6];
	__u16 l2_vlan[2];
};

/* A table of flows, declared by this one macro: rstguard's two (maps.h) and
 * the benchmark baseline's (baseline.c), which is to cost what rstguard's
 * lookup costs, so it is the same map type with the same key and value.
 * The loader sets max_entries; the size given here is only its fallback. */
#define FLOW_TABLE(name, entries)                 \
	struct {                                  \
		__uint(type, BPF_MAP_TYPE_LRU_HASH); \
		__uint(max_entries, entries);     \
		__type(key, struct flow_key);      \
		__type(value, struct flow_value);  \
	} name SEC(".maps")

/* Events per second per CPU, besides each flow's budget (policy): for RSTs
 * that match no flow, so that a blind flood cannot crowd out the events of
 * tracked flows; and for all events, so that a flood spread over many flows
 * cannot grow the event log without bound. Go reads these. */
enum event_budgets {
	NO_FLOW_EVENT_BUDGET = 256,
	GLOBAL_EVENT_BUDGET = 4096,
};

/* Allow-list entry: an IPv4-mapped or IPv6 prefix. */
struct allow_key {
	__u32 prefixlen; /* over the 128-bit address */
	__u8 addr[16];
};

struct config {
	__u32 abi;
	__u32 mode;           /* enum mode */
	__u32 ttl_tolerance;  /* TTL differences up to this are weak */
	__u32 event_budget;   /* events per flow per second */
	/* Hold mode: read by the daemon, kept here so that `rstguard set` and
	 * `rstguard status` reach them like the rest of the policy. */
	__u32 hold_min_us;    /* hold window floor */
	__u32 hold_max_us;    /* hold window cap */
	__u32 hold_frames;    /* frames held at once */
	__u32 probe_rate;     /* probes per second, in total */
};

/* Times in maps are time32: nanoseconds >> TIME32_SHIFT (about
 * microseconds), wrapping every 73 minutes; only differences are used. */
enum time_unit {
	TIME32_SHIFT = 10,
};

/* The policy a new policy map starts with; Go reads these too. */
enum policy_default {
	DEFAULT_FLOW_TABLE_SIZE = 1 << 20, /* flows tracked; set at load time (--flow-table-size) */
	DEFAULT_TTL_TOLERANCE = 2,   /* INTANG's delta; Cloudflare's reset study */
	DEFAULT_EVENT_BUDGET = 16,   /* events per flow per second */
	DEFAULT_HOLD_MIN_US = 50000, /* a hold lasts 3 leg RTTs, at least 50 ms (the daemon's stalls, not the path's RTT)... */
	DEFAULT_HOLD_MAX_US = 250000,/* ...and at most 250 ms: a RST released after 300 ms was seen ignored, its seq gone stale */
	DEFAULT_HOLD_FRAMES = 4096,
	DEFAULT_PROBE_RATE = 10000,  /* probes per second, in total */
};

/* How far a probe answer's seq may be ahead of the sender's next sequence as
 * this box saw it: the largest TCP window (RFC 7323 section 2.3: 2^30). */
#define HOLD_ANSWER_SEQ_SLACK (1U << 30)

/* Flows held at once, at most: the hold table's size. --hold-frames limits
 * the frames the daemon keeps below it. */
#define MAX_HOLDS 65536

/* An AF_XDP socket's place: the XSKMAP slot of each bound (interface, queue). */
struct xsk_key {
	__u32 ifindex;
	__u32 queue;
};

struct xsk_slot {
	__u32 slot;      /* in the XSKMAP */
	__u32 zerocopy;  /* 1: bound in zero-copy mode, 0: copy mode */
};

/* A held flow, keyed by its flow_key: what the daemon needs to ask the
 * claimed sender and to release the RST, written once by the program when the
 * hold begins; evidence is the only field written later. */
struct hold {
	__u64 held_ns;        /* bpf_ktime_get_ns() when the first RST was held */
	__u64 decided_ns;     /* written by the daemon with HOLD_EVIDENCE_PROVEN */
	__u32 probe_seq;      /* the probe's one byte: the claimed sender's highest ACK - 2 (hold_rst()) */
	__u32 peer_next;      /* the other side's next sequence: what a live answer acknowledges */
	__u32 probe_ack;      /* the claimed sender's next sequence */
	__u32 nonce;          /* the probe's ACK field: a dead stack's RST answer echoes it as its seq */
	__u32 rtt_ns;         /* the claimed sender's leg RTT at this box; 0 unknown */
	__u32 ingress_ifindex;
	__u32 egress_ifindex; /* from bpf_fib_lookup() (in the wire: the pair's other port), toward the RST's receiver */
	__u32 probe_ifindex;  /* from bpf_fib_lookup() (in the wire: the RST's port), toward the claimed sender */
	__u8 egress_smac[6];
	__u8 egress_dmac[6];
	__u8 probe_smac[6];
	__u8 probe_dmac[6];
	__u32 joined;         /* later RSTs of the hold, dropped in the kernel with its count here */
	__u16 probe_vlan;     /* in the wire: the claimed sender's outer VLAN (0: untagged) */
	__u8 from_hi;         /* the claimed sender is the addr_hi side */
	__u8 evidence;        /* enum hold_evidence */
	__u8 wire;            /* held on a wire port: released as it came, probed with probe_vlan */
	__u8 pad[7];
};

#define EVENT_PKT_MAX 128

/* One ring-buffer record. Go decodes it at fixed offsets: keep it packed to
 * natural alignment. For CONFIRMED, the packet fields describe the evidence
 * (the real sender's packet) and rst_* the RST it proves forged. */
struct event {
	__u64 time_ns;
	__u8 saddr[16];       /* the claimed sender, IPv4-mapped for IPv4 */
	__u8 daddr[16];
	__u16 sport;          /* host order */
	__u16 dport;
	__u32 seq;
	__u32 ack;
	__u32 signals;        /* 1 << enum signal */
	__u32 exp_seq;        /* what the baseline expected */
	__u32 exp_ack;
	__u32 rtt_ns;         /* the claimed sender's handshake RTT at this box */
	__u32 ifindex;
	__u16 window;
	__u16 ip_id;
	__u16 exp_window;
	__u16 pkt_len;        /* length of the frame */
	__u8 kind;            /* enum event_kind */
	__u8 verdict;
	__u8 action;
	__u8 tcp_flags;
	__u8 ttl;
	__u8 exp_ttl;         /* 0: no baseline */
	__u8 ipid_model;      /* the sender's model */
	__u8 score;
	__u8 rst_ttl;         /* CONFIRMED: TTL of the forged RST */
	__u8 cap_len;         /* bytes of the frame in pkt */
	__u8 rst_verdict;     /* CONFIRMED: the verdict the RST got when it passed */
	__u8 pad;
	__u32 rst_seq;        /* CONFIRMED: sequence number of the forged RST */
	__u16 zone;
	__u16 pad2;
	__u8 pkt[EVENT_PKT_MAX];
};

#endif
