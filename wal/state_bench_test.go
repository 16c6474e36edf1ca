package wal

import (
	"fmt"
	"testing"

	"github.com/orbit/orbit/engine"
)

// BenchmarkStateWrite measures persisting what the engine decided for
// batches of 1,024 charges over 100 orgs: the FSM's per-charge storage cost.
func BenchmarkStateWrite(b *testing.B) {
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
	for i := 0; i < 100; i++ {
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
	const per = 1024
	cmds := make([]engine.Command, per)
	b.ReportAllocs()
	b.ResetTimer()
	index := uint64(2)
	for n := 0; n < b.N; n += per {
		for i := range cmds {
			cmds[i] = engine.Command{Kind: engine.CmdCharge, OrgID: orgs[i%100], Reference: fmt.Sprint("c", n+i), Channel: "sms", AmountMicros: 4200, BodyHash: "h"}
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
