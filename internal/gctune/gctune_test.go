//go:build linux

package gctune

import (
	"math"
	"os"
	"runtime/debug"
	"testing"
)

// TestTuneGC: orbitd's GOGC and a memory limit of half the available
// memory, unless the environment sets them (then the runtime's values,
// which Go read from it at start, stay).
func TestApply(t *testing.T) {
	percentBefore := debug.SetGCPercent(100)
	limitBefore := debug.SetMemoryLimit(math.MaxInt64)
	defer func() {
		debug.SetGCPercent(percentBefore)
		debug.SetMemoryLimit(limitBefore)
	}()

	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	os.Unsetenv("GOGC")
	os.Unsetenv("GOMEMLIMIT")
	avail := availableMemory()
	if avail <= 0 {
		t.Fatal("no available memory found")
	}
	percent, limit := Apply()
	if percent != gcPercent || debug.SetGCPercent(gcPercent) != gcPercent {
		t.Fatalf("without GOGC: returned %d, want %d in force", percent, gcPercent)
	}
	if want := int64(float64(avail) * memLimitShare); limit != want || debug.SetMemoryLimit(-1) != want {
		t.Fatalf("without GOMEMLIMIT: limit %d, want %d (half of %d)", limit, want, avail)
	}

	debug.SetGCPercent(77)
	debug.SetMemoryLimit(123 << 20)
	t.Setenv("GOGC", "77")
	t.Setenv("GOMEMLIMIT", "123MiB")
	if percent, limit := Apply(); percent != 77 || limit != 123<<20 {
		t.Fatalf("with GOGC and GOMEMLIMIT set: %d and %d, want them left at 77 and %d", percent, limit, 123<<20)
	}
}

func TestParseCgroupLimit(t *testing.T) {
	for in, want := range map[string]int64{
		"536870912\n":           536870912,
		"max\n":                 0,
		"":                      0,
		"0":                     0,
		"-1":                    0,
		"9223372036854771712\n": 9223372036854771712, // v1's "none": larger than any RAM, discarded by the caller
	} {
		if got := parseCgroupLimit(in); got != want {
			t.Errorf("parseCgroupLimit(%q) = %d, want %d", in, got, want)
		}
	}
}
