package cputime

import (
	"testing"
	"time"
)

// Work done on the CPU shows in Self; sleeping does not. The spin is bounded
// by CPU time, not wall time, so a loaded machine only makes it slower.
func TestSelfCountsWorkNotSleep(t *testing.T) {
	before := Self()
	time.Sleep(200 * time.Millisecond)
	if slept := Self() - before; slept > 100*time.Millisecond {
		t.Fatalf("200 ms of sleep counted %v of CPU", slept)
	}
	start, x := Self(), uint64(1)
	for deadline := time.Now().Add(10 * time.Second); Self()-start < 50*time.Millisecond; {
		if time.Now().After(deadline) {
			t.Fatalf("10 s of spinning counted %v of CPU, want 50 ms", Self()-start)
		}
		for i := 0; i < 100_000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	if x == 0 {
		t.Log("keeps the loop from being optimized away")
	}
}
