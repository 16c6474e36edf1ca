package bench

import (
	"os"
	"runtime/debug"
	"testing"

	"github.com/orbit/orbit/internal/gctune"
)

// The in-process scenarios run under orbitd's collector settings and give
// the harness its own back afterwards.
func TestAsOrbitdGCRestoresTheHarnessSettings(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	os.Unsetenv("GOGC")
	os.Unsetenv("GOMEMLIMIT")
	before := debug.SetGCPercent(77)
	limitBefore := debug.SetMemoryLimit(1 << 40)
	defer func() {
		debug.SetGCPercent(before)
		debug.SetMemoryLimit(limitBefore)
	}()
	restore := asOrbitdGC()
	if p, _ := gctune.Current(); p == 77 {
		t.Fatal("the in-process run kept the harness's GOGC")
	}
	restore()
	if p, l := gctune.Current(); p != 77 || l != 1<<40 {
		t.Fatalf("after the run: GOGC %d, limit %d; want 77 and %d", p, l, int64(1<<40))
	}
}
