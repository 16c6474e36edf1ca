package wal

import (
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/orbit/orbit/engine"
)

var reopenEntries = flag.Int("reopen-entries", 200_000, "ledger entries BenchmarkReopen writes before timing reopens")

// BenchmarkReopen measures what a restart pays before serving, on a state
// holding -reopen-entries charges over 1,000 orgs: opening Pebble, loading
// the reference filter (every stored reference) and recovering the engine's
// memory (orgs, keys, open holds, settings). Replaying the raft log after
// the applied index comes on top and is bounded by the log tail. The
// reference filter finishes loading in the background (State.startRefFilter),
// so it counts only up to refFilterSyncBudget.
//
//	go test -run '^$' -bench Reopen -benchtime 3x -reopen-entries 10000000 ./wal/
func BenchmarkReopen(b *testing.B) {
	dir := b.TempDir()
	db, err := Open(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	st := NewState(db)
	e := engine.New(0, st)
	const orgs = 1000
	var ids []string
	ch := &engine.Changes{}
	var create []engine.Command
	for i := 0; i < orgs; i++ {
		create = append(create, engine.Command{Kind: engine.CmdCreateOrg, Name: "o"})
	}
	for _, r := range e.Apply(&engine.Batch{TimeMs: 1_700_000_000_000, Index: 1, Commands: create}, ch) {
		ids = append(ids, r.ID)
	}
	var fund []engine.Command
	for _, o := range ids {
		fund = append(fund, engine.Command{Kind: engine.CmdAdjustment, OrgID: o, Reference: "f", AmountMicros: engine.MaxAmountMicros, BodyHash: "h"})
	}
	e.Apply(&engine.Batch{TimeMs: 1_700_000_000_000, Index: 2, Commands: fund}, ch)
	if err := st.Write(ch, 0); err != nil {
		b.Fatal(err)
	}
	e.Persisted()
	start := time.Now()
	const per = 1024
	cmds := make([]engine.Command, per)
	index := uint64(2)
	for n := 0; n < *reopenEntries; n += per {
		for i := range cmds {
			cmds[i] = engine.Command{Kind: engine.CmdCharge, OrgID: ids[(n+i)%orgs], Reference: fmt.Sprint("msg-", n+i), Channel: "sms", AmountMicros: 4200, BodyHash: "h"}
		}
		index++
		ch := &engine.Changes{}
		e.Apply(&engine.Batch{TimeMs: 1_700_000_000_000 + int64(index), Index: index, Commands: cmds}, ch)
		if err := st.Write(ch, 0); err != nil {
			b.Fatal(err)
		}
		e.Persisted()
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	b.Logf("wrote %d entries in %v", *reopenEntries, time.Since(start).Round(time.Millisecond))

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		db, err := Open(dir, nil)
		if err != nil {
			b.Fatal(err)
		}
		st := NewState(db)
		r, err := st.Recover(0)
		if err != nil {
			b.Fatal(err)
		}
		if len(r.Orgs) != orgs {
			b.Fatalf("recovered %d orgs, want %d", len(r.Orgs), orgs)
		}
		// The engine is ready once its wallets are loaded.
		e := engine.New(0, st)
		e.Load(r.Orgs, r.Keys, 0, 0)
		e.LoadSettings(r.Settings)
		e.LoadHolds(r.Holds)
		b.StopTimer()
		if err := st.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/reopen")
}
