package main

import (
	"os"
	"runtime"
	"testing"
)

// TestOversubscribeProcs: one P more than Go's default, unless the
// environment sets GOMAXPROCS.
func TestOversubscribeProcs(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(before)

	t.Setenv("GOMAXPROCS", "") // restored after the test
	os.Unsetenv("GOMAXPROCS")
	if got := oversubscribeProcs(); got != before+1 || runtime.GOMAXPROCS(0) != before+1 {
		t.Fatalf("without GOMAXPROCS: returned %d, runtime has %d, want %d", got, runtime.GOMAXPROCS(0), before+1)
	}

	runtime.GOMAXPROCS(before)
	t.Setenv("GOMAXPROCS", "1")
	if got := oversubscribeProcs(); got != before || runtime.GOMAXPROCS(0) != before {
		t.Fatalf("with GOMAXPROCS set: returned %d, runtime has %d, want it left at %d", got, runtime.GOMAXPROCS(0), before)
	}
}
