package wal

import (
	"fmt"
	"testing"

	"github.com/orbit/orbit/engine"
)

// BenchmarkStateWrite measures persisting what the engine decided: the
// FSM's per-charge storage cost. charges=1024 is a full batch over 100 orgs
// (/charges/batch under load); charges=8 is a small one over 1,000 orgs,
// the shape of one-charge requests from 64 connections.
func BenchmarkStateWrite(b *testing.B) {
	b.Run("charges=1024", func(b *testing.B) { benchStateWrite(b, 1024, 100) })
	b.Run("charges=8", func(b *testing.B) { benchStateWrite(b, 8, 1000) })
}

func benchStateWrite(b *testing.B, per, orgCount int) {
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
	b.ReportAllocs()
	b.ResetTimer()
	index := uint64(2)
	for n := 0; n < b.N; n += per {
		for i := range cmds {
			cmds[i] = engine.Command{Kind: engine.CmdCharge, OrgID: orgs[(n+i)%orgCount], Reference: fmt.Sprint("c", n+i), Channel: "sms", AmountMicros: 4200, BodyHash: "h"}
		}
		index++
		ch := &engine.Changes{}
		e.Apply(&engine.Batch{TimeMs: 1_700_000_000_000 + int64(index), Index: index, Commands: cmds}, ch)
		if err := st.Write(ch, 0); err != nil {
			b.Fatal(err)
		}
		e.Persisted()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "charges/s")
}
