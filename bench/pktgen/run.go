package pktgen

import (
	"context"
	"math"
	"time"
)

// Config is one run.
type Config struct {
	Flows    uint32        // 1 .. MaxFlows
	Rate     float64       // packets per second; 0: as fast as the engine goes
	Count    uint64        // packets of the mix to send; 0: no limit
	Duration time.Duration // how long the mix runs; 0: no limit
	// HandshakeBurst is how many flows open at once: the handshake phase
	// sends this many SYNs, then their SYN/ACKs, then their ACKs, and on to
	// the next flows, so that half-open flows stay within what a box under
	// test keeps of them (rstguard: a quarter of its flow table). 0:
	// DefaultHandshakeBurst.
	HandshakeBurst uint32
	// Progress, when set, is called about once a second and at the end.
	Progress func(Stats)
}

// DefaultHandshakeBurst fits the half-open table of rstguard's default flow
// table (1 M flows, 256 k half-open), with room.
const DefaultHandshakeBurst = 65536

// Stats is what a run sent.
type Stats struct {
	Handshake uint64            `json:"handshake_packets"` // the handshake phase's packets
	Sent      uint64            `json:"packets"`           // the mix's packets
	ByKind    map[string]uint64 `json:"by_kind"`
	Elapsed   time.Duration     `json:"-"`
	Seconds   float64           `json:"seconds"` // of the mix
	PPS       float64           `json:"pps"`     // of the mix, over Seconds
	Flows     uint32            `json:"flows"`
}

// cycle is the smallest round of the mix: each template gets its share of
// a round, at least one packet.
const cycle = 4096

// Run sends traffic with the engine: first each flow's handshake (once,
// whatever the count, as fast as the engine goes), then the mix until the
// count or duration is reached or ctx ends. Pacing is per round of the mix:
// at a rate, a round is one second's packets and leaves together, then the
// generator waits; as fast as possible, a round is the engine's Round.
func Run(ctx context.Context, e Engine, t *Traffic, cfg Config) (Stats, error) {
	st := Stats{ByKind: map[string]uint64{}, Flows: cfg.Flows}
	burst := uint64(cfg.HandshakeBurst)
	if burst == 0 {
		burst = DefaultHandshakeBurst
	}
	for first := uint64(0); first < uint64(cfg.Flows) && len(t.Handshake) > 0; first += burst {
		n := int(min(burst, uint64(cfg.Flows)-first))
		for _, tmpl := range t.Handshake {
			if ctx.Err() != nil {
				return st, nil
			}
			if err := e.Send(tmpl, uint32(first), n); err != nil {
				return st, err
			}
			st.Handshake += uint64(n)
			st.ByKind[tmpl.Kind] += uint64(n)
		}
	}

	round := uint64(max(e.Round(), cycle))
	if len(t.Mix) == 0 {
		return st, nil
	}
	counts := make([]int, len(t.Mix))
	next := make([]uint32, len(t.Mix)) // each template's next flow
	if cfg.Rate > 0 {
		round = uint64(max(cfg.Rate, cycle))
	}
	if cfg.Count > 0 {
		round = min(round, max(cfg.Count, cycle)) // so that a short run still has the whole mix
	}
	setRound := func(n float64) {
		for i, share := range t.Shares {
			counts[i] = max(1, int(math.Round(share*n)))
		}
	}
	setRound(float64(round))
	start := time.Now()
	lastReport := start
	report := func(now time.Time) {
		st.Elapsed = now.Sub(start)
		st.Seconds = st.Elapsed.Seconds()
		if st.Seconds > 0 {
			st.PPS = float64(st.Sent) / st.Seconds
		}
		if cfg.Progress != nil {
			cfg.Progress(st)
		}
	}
	for ctx.Err() == nil {
		for i, tmpl := range t.Mix {
			n := counts[i]
			if cfg.Count > 0 {
				n = int(min(uint64(n), cfg.Count-st.Sent))
			}
			if n == 0 {
				break
			}
			if err := e.Send(tmpl, next[i], n); err != nil {
				report(time.Now())
				return st, err
			}
			next[i] = uint32((uint64(next[i]) + uint64(n)) % uint64(cfg.Flows))
			st.Sent += uint64(n)
			st.ByKind[tmpl.Kind] += uint64(n)
		}
		now := time.Now()
		if (cfg.Count > 0 && st.Sent >= cfg.Count) || (cfg.Duration > 0 && now.Sub(start) >= cfg.Duration) {
			break
		}
		if cfg.Rate > 0 {
			due := start.Add(time.Duration(float64(st.Sent) / cfg.Rate * float64(time.Second)))
			if wait := due.Sub(now); wait > 0 {
				select {
				case <-ctx.Done():
				case <-time.After(wait):
				}
				now = time.Now()
			}
		}
		if now.Sub(lastReport) >= time.Second {
			lastReport = now
			report(now)
		}
		// A round at full speed lasts seconds: the last one before the
		// duration's end only fills the time left, at the rate so far.
		if elapsed := now.Sub(start); cfg.Duration > 0 && cfg.Rate == 0 {
			left := (cfg.Duration - elapsed).Seconds()
			setRound(min(float64(round), left*float64(st.Sent)/elapsed.Seconds()))
		}
	}
	report(time.Now())
	return st, nil
}
