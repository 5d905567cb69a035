// Package tokenbucket is the one token bucket rstguard's rate limits share:
// the event log's cap (--events-rate) and hold mode's probe budgets.
package tokenbucket

import "time"

// Bucket holds tokens that refill continuously. The zero Bucket is full at
// its first Take. A Bucket is a value: copy it to try a take and keep the
// copy only if every budget it belongs to allows it.
type Bucket struct {
	tokens float64
	at     time.Time
}

// Take refills the bucket at rate tokens a second, up to burst, and takes one
// token at now if there is one.
func (b *Bucket) Take(now time.Time, rate, burst float64) bool {
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

// Idle says whether the bucket has gone unused since before now-d.
func (b *Bucket) Idle(now time.Time, d time.Duration) bool { return now.Sub(b.at) > d }
