package wal

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/sstable"

	"github.com/orbit/orbit/engine"
	"github.com/orbit/orbit/internal/cputime"
)

// BenchmarkStateWrite measures persisting what the engine decided: the
// FSM's per-charge storage cost. charges=1024 is a full batch over 100 orgs
// (/charges/batch under load); charges=8 is a small one over 1,000 orgs,
// the shape of one-charge requests from 64 connections; charges=2 over
// 1,000 orgs is that shape at half the peak rate.
//
// The writes=1/N variants measure a design not built: writing state behind
// the log, one Pebble batch per N applied batches. Usage rows (summed per
// write), org records and the applied index then land once per write for
// each key (sortedWrites drops superseded copies) instead of once per
// batch; entries and references are new keys either way.
func BenchmarkStateWrite(b *testing.B) {
	b.Run("charges=1024", func(b *testing.B) { benchStateWrite(b, 1024, 100, 1) })
	b.Run("charges=8", func(b *testing.B) { benchStateWrite(b, 8, 1000, 1) })
	b.Run("charges=2", func(b *testing.B) { benchStateWrite(b, 2, 1000, 1) })
	b.Run("charges=2/writes=1/16", func(b *testing.B) { benchStateWrite(b, 2, 1000, 16) })
	b.Run("charges=8/writes=1/16", func(b *testing.B) { benchStateWrite(b, 8, 1000, 16) })
	// One org (hot-org): every batch of a write restages its record.
	b.Run("charges=8/orgs=1/writes=1/16", func(b *testing.B) { benchStateWrite(b, 8, 1, 16) })
}

// benchStateWrite applies batches of per charges spread over orgCount
// orgs and writes the state after every applies batches.
func benchStateWrite(b *testing.B, per, orgCount, applies int) {
	db, err := Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	st := NewState(db)
	e := engine.New(0, st)
	orgs, err := fundedOrgs(e, st, orgCount)
	if err != nil {
		b.Fatal(err)
	}
	cmds := make([]engine.Command, per)
	walBefore := db.Metrics().WAL.BytesIn
	b.ReportAllocs()
	b.ResetTimer()
	index := uint64(2)
	ch := &engine.Changes{}
	for n := 0; n < b.N; n += per {
		for i := range cmds {
			cmds[i] = engine.Command{Kind: engine.CmdCharge, OrgID: orgs[(n+i)%orgCount], Reference: fmt.Sprint("c", n+i), Channel: "sms", AmountMicros: 4200, BodyHash: "h"}
		}
		index++
		e.Apply(&engine.Batch{TimeMs: 1_700_000_000_000 + int64(index), Index: index, Commands: cmds}, ch)
		if index%uint64(applies) == 0 || n+per >= b.N {
			if err := st.Write(ch, 0); err != nil {
				b.Fatal(err)
			}
			e.Persisted()
			ch = &engine.Changes{}
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "charges/s")
	// Bytes written per charge (keys and values, as the WAL takes them):
	// what the memtable holds and flushes, obsolete versions included.
	b.ReportMetric(float64(db.Metrics().WAL.BytesIn-walBefore)/float64(b.N), "B-written/charge")
}

// BenchmarkFlushAndCompact measures what the ledger costs Pebble after the
// write: flushing the memtables of 200,000 charges (over 1,000 orgs, in
// batches of 8) and compacting them into one level, per charge, with
// Pebble's default table blocks (4 KiB, Snappy) and with ours. Only the
// flush and the compaction are timed; cpu-ns/charge is this process's CPU
// over that time.
func BenchmarkFlushAndCompact(b *testing.B) {
	for _, tc := range []struct {
		name      string
		blockSize int
		codec     *sstable.CompressionProfile
	}{
		{"blocks=pebble-default", 4 << 10, sstable.SnappyCompression},
		{"blocks=orbit", tableBlockSize, tableCompression},
	} {
		b.Run(tc.name, func(b *testing.B) {
			defer func(size int, codec *sstable.CompressionProfile) {
				tableBlockSize, tableCompression = size, codec
			}(tableBlockSize, tableCompression)
			tableBlockSize, tableCompression = tc.blockSize, tc.codec
			const charges, per, orgCount = 200_000, 8, 1000
			var cpu time.Duration
			for b.Loop() {
				b.StopTimer()
				db, err := Open(b.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
				if err != nil {
					b.Fatal(err)
				}
				st := NewState(db)
				writeCharges(b, st, charges, per, orgCount)
				b.StartTimer()
				cpu0 := cputime.Self()
				if err := db.Flush(); err != nil {
					b.Fatal(err)
				}
				if err := db.Compact(context.Background(), []byte{0}, []byte{0xff}, false); err != nil {
					b.Fatal(err)
				}
				cpu += cputime.Self() - cpu0
				b.StopTimer()
				db.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*charges), "ns/charge")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*charges), "cpu-ns/charge")
		})
	}
}

// writeCharges applies and writes n charges over orgCount funded orgs,
// per charges per batch.
func writeCharges(b *testing.B, st *State, n, per, orgCount int) {
	e := engine.New(0, st)
	orgs, err := fundedOrgs(e, st, orgCount)
	if err != nil {
		b.Fatal(err)
	}
	cmds := make([]engine.Command, per)
	index := uint64(2)
	for n0 := 0; n0 < n; n0 += per {
		for i := range cmds {
			cmds[i] = engine.Command{Kind: engine.CmdCharge, OrgID: orgs[(n0+i)%orgCount], Reference: fmt.Sprint("c", n0+i),
				Channel: "sms", AmountMicros: 4200, BodyHash: "h", Metadata: engine.Metadata{{Key: "campaign", Value: `"spring"`}}}
		}
		index++
		ch := &engine.Changes{}
		e.Apply(&engine.Batch{TimeMs: 1_700_000_000_000 + int64(index), Index: index, Commands: cmds}, ch)
		if err := st.Write(ch, 0); err != nil {
			b.Fatal(err)
		}
		e.Persisted()
	}
}

// fundedOrgs creates n orgs in log entry 1, funds each with the largest
// amount in entry 2, writes both to st, and returns the orgs' ids.
func fundedOrgs(e *engine.Engine, st *State, n int) ([]string, error) {
	ch := &engine.Changes{}
	create := make([]engine.Command, n)
	for i := range create {
		create[i] = engine.Command{Kind: engine.CmdCreateOrg, Name: "o"}
	}
	var orgs []string
	for _, r := range e.Apply(&engine.Batch{TimeMs: 1_700_000_000_000, Index: 1, Commands: create}, ch) {
		orgs = append(orgs, r.ID)
	}
	fund := make([]engine.Command, n)
	for i, o := range orgs {
		fund[i] = engine.Command{Kind: engine.CmdAdjustment, OrgID: o, Reference: "f", AmountMicros: engine.MaxAmountMicros, BodyHash: "h"}
	}
	e.Apply(&engine.Batch{TimeMs: 1_700_000_000_000, Index: 2, Commands: fund}, ch)
	if err := st.Write(ch, 0); err != nil {
		return nil, err
	}
	e.Persisted()
	return orgs, nil
}
