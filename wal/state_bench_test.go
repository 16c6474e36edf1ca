package wal

import (
	"fmt"
	"testing"

	"github.com/orbit/orbit/engine"
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
	var orgs []string
	ch := &engine.Changes{}
	var create []engine.Command
	for i := 0; i < orgCount; i++ {
		create = append(create, engine.Command{Kind: engine.CmdCreateOrg, Name: "o"})
	}
	for _, r := range e.Apply(&engine.Batch{TimeMs: 1_700_000_000_000, Index: 1, Commands: create}, ch) {
		orgs = append(orgs, r.ID)
	}
	var fund []engine.Command
	for _, o := range orgs {
		fund = append(fund, engine.Command{Kind: engine.CmdAdjustment, OrgID: o, Reference: "f", AmountMicros: engine.MaxAmountMicros, BodyHash: "h"})
	}
	e.Apply(&engine.Batch{TimeMs: 1_700_000_000_000, Index: 2, Commands: fund}, ch)
	if err := st.Write(ch, 0); err != nil {
		b.Fatal(err)
	}
	e.Persisted()
	cmds := make([]engine.Command, per)
	walBefore := db.Metrics().WAL.BytesIn
	b.ReportAllocs()
	b.ResetTimer()
	index := uint64(2)
	ch = &engine.Changes{}
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
