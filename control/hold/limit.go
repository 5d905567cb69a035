package hold

import (
	"net/netip"
	"time"

	"github.com/rstguard/rstguard/internal/tokenbucket"
)

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
	total  tokenbucket.Bucket
	byDest map[netip.Addr]*tokenbucket.Bucket
	swept  time.Time
}

func newLimiter() *limiter { return &limiter{byDest: map[netip.Addr]*tokenbucket.Bucket{}} }

// allow takes one probe to dst from both budgets, or from neither.
func (l *limiter) allow(dst netip.Addr, now time.Time, totalRate float64) bool {
	if now.Sub(l.swept) > 10*time.Second {
		for a, b := range l.byDest {
			if b.Idle(now, time.Second) { // full again: forget it
				delete(l.byDest, a)
			}
		}
		l.swept = now
	}
	d := l.byDest[dst]
	if d == nil {
		d = &tokenbucket.Bucket{}
		l.byDest[dst] = d
	}
	probe := *d
	if !probe.Take(now, PerDestinationRate, PerDestinationRate) {
		return false
	}
	if !l.total.Take(now, totalRate, max(totalRate, 1)) {
		return false
	}
	*d = probe
	return true
}
