package wal

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

func TestWriteStallsAreLoggedWithReasonAndLength(t *testing.T) {
	var buf bytes.Buffer
	l := eventListener(slog.New(slog.NewTextHandler(&buf, nil)))
	l.WriteStallEnd() // an end without a begin logs nothing
	if buf.Len() != 0 {
		t.Fatalf("an unmatched end logged %q", buf.String())
	}
	l.WriteStallBegin(pebble.WriteStallBeginInfo{Reason: "memtable count limit reached"})
	time.Sleep(5 * time.Millisecond)
	l.WriteStallEnd()
	out := buf.String()
	if !strings.Contains(out, `msg="storage write stall began" reason="memtable count limit reached"`) {
		t.Fatalf("no begin line with its reason in %q", out)
	}
	i := strings.Index(out, "stalled=")
	if i < 0 {
		t.Fatalf("no end line with its length in %q", out)
	}
	d, err := time.ParseDuration(strings.Fields(out[i+len("stalled="):])[0])
	if err != nil || d < 5*time.Millisecond {
		t.Fatalf("stall length %v (%v), want at least 5ms", d, err)
	}
}
