package wal

import (
	"flag"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/orbit/orbit/engine"
)

var reopenEntries = flag.Int("reopen-entries", 200_000, "ledger entries BenchmarkReopen writes before timing reopens")

// BenchmarkReopen measures what a restart pays before serving, on a state
// holding -reopen-entries charges over 1,000 orgs: opening Pebble, starting
// the reference filter, and recovering the engine's memory (orgs, keys,
// open holds, settings). Replaying the raft log after the applied index
// comes on top and is bounded by the log tail. The reference filter
// finishes loading in the background (State.startRefFilter), so it counts
// only up to refFilterSyncBudget.
//
//	go test -run '^$' -bench Reopen -benchtime 3x ./wal/ -args -reopen-entries=10000000
func BenchmarkReopen(b *testing.B) {
	reopenOnce.Do(func() { reopenDir, reopenErr = writeReopenState(*reopenEntries) })
	if reopenErr != nil {
		b.Fatal(reopenErr)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		db, err := Open(reopenDir, nil)
		if err != nil {
			b.Fatal(err)
		}
		st := NewState(db)
		r, err := st.Recover(0)
		if err != nil {
			b.Fatal(err)
		}
		if len(r.Orgs) != reopenOrgs {
			b.Fatalf("recovered %d orgs, want %d", len(r.Orgs), reopenOrgs)
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

// The state is written once per process: the testing package runs a
// benchmark function more than once, and writing ten million entries takes
// minutes. TestMain-free cleanup: the directory is under the OS temp dir.
var (
	reopenOnce sync.Once
	reopenDir  string
	reopenErr  error
)

const reopenOrgs = 1000

func writeReopenState(entries int) (string, error) {
	dir, err := os.MkdirTemp("", "orbit-reopen-")
	if err != nil {
		return "", err
	}
	db, err := Open(dir, nil)
	if err != nil {
		return "", err
	}
	st := NewState(db)
	e := engine.New(0, st)
	ids, err := fundedOrgs(e, st, reopenOrgs)
	if err != nil {
		return "", err
	}
	const per = 1024
	cmds := make([]engine.Command, per)
	index := uint64(2)
	for n := 0; n < entries; n += per {
		for i := range cmds {
			cmds[i] = engine.Command{Kind: engine.CmdCharge, OrgID: ids[(n+i)%reopenOrgs], Reference: fmt.Sprint("msg-", n+i), Channel: "sms", AmountMicros: 4200, BodyHash: "h"}
		}
		index++
		ch := &engine.Changes{}
		e.Apply(&engine.Batch{TimeMs: 1_700_000_000_000 + int64(index), Index: index, Commands: cmds}, ch)
		if err := st.Write(ch, 0); err != nil {
			return "", err
		}
		e.Persisted()
	}
	return dir, st.Close()
}
