package tokenbucket

import (
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	start := time.Unix(1000, 0)
	var b Bucket
	took := 0
	for b.Take(start, 10, 3) {
		took++
	}
	if took != 3 {
		t.Fatalf("a full bucket of 3 gave %d", took)
	}
	if b.Take(start.Add(50*time.Millisecond), 10, 3) {
		t.Error("half a token after 50 ms at 10/s, and took one")
	}
	if !b.Take(start.Add(150*time.Millisecond), 10, 3) {
		t.Error("a token after 150 ms at 10/s, and none taken")
	}
	// Refilling stops at the burst.
	took = 0
	for b.Take(start.Add(time.Hour), 10, 3) {
		took++
	}
	if took != 3 {
		t.Errorf("after an hour, %d tokens, want the burst of 3", took)
	}
	if b.Idle(start.Add(time.Hour), time.Second) || !b.Idle(start.Add(time.Hour+2*time.Second), time.Second) {
		t.Error("Idle")
	}
}
