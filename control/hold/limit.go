package hold

import (
	"net/netip"
	"time"
)

// bucket is a token bucket: rate tokens a second, up to burst.
type bucket struct {
	tokens float64
	at     time.Time
}

func (b *bucket) take(now time.Time, rate, burst float64) bool {
	if b.at.IsZero() {
		b.tokens = burst
	} else {
		b.tokens = min(burst, b.tokens+now.Sub(b.at).Seconds()*rate)
	}
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// PerDestinationRate is how many probes one address may be sent a second,
// and in one burst: a flood of forged RSTs in one victim's name must not
// take the whole probe budget, nor turn the gateway into a reflector
// against it. A probe answers a RST sent in the victim's name on one of its
// live connections, one for one (no amplification), so the bound is about
// share, not harm: a tenth of the default --probe-rate, enough for a NAT
// address whose thousand connections are all reset at once. Beyond it, RSTs
// are released at once (probe_rate_limited).
const PerDestinationRate = 1000

// limiter bounds probes in total and per destination.
type limiter struct {
	total  bucket
	byDest map[netip.Addr]*bucket
	swept  time.Time
}

func newLimiter() *limiter { return &limiter{byDest: map[netip.Addr]*bucket{}} }

// allow takes one probe to dst from both budgets, or from neither.
func (l *limiter) allow(dst netip.Addr, now time.Time, totalRate float64) bool {
	if now.Sub(l.swept) > 10*time.Second {
		for a, b := range l.byDest {
			if now.Sub(b.at) > time.Second { // full again: forget it
				delete(l.byDest, a)
			}
		}
		l.swept = now
	}
	d := l.byDest[dst]
	if d == nil {
		d = &bucket{}
		l.byDest[dst] = d
	}
	probe := *d
	if !probe.take(now, PerDestinationRate, PerDestinationRate) {
		return false
	}
	if !l.total.take(now, totalRate, max(totalRate, 1)) {
		return false
	}
	*d = probe
	return true
}
