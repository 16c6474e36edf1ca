package engine

import (
	"strconv"
	"sync/atomic"
	"testing"
)

// benchOrgs creates n orgs in one batch and funds each with 10^15 micros.
func benchOrgs(b *testing.B, e *Engine, st *MemStore, n int) []string {
	b.Helper()
	create := make([]Command, n)
	for i := range create {
		create[i] = Command{Kind: CmdCreateOrg, Name: "org" + strconv.Itoa(i)}
	}
	ch := &Changes{}
	res := e.Apply(&Batch{TimeMs: 1_700_000_000_000, Index: 1, Commands: create}, ch)
	orgs := make([]string, n)
	fund := make([]Command, n)
	for i, r := range res {
		orgs[i] = r.ID
		fund[i] = Command{Kind: CmdAdjustment, OrgID: r.ID, Reference: "fund", AmountMicros: MaxAmountMicros}
	}
	e.Apply(&Batch{TimeMs: 1_700_000_000_000, Index: 2, Commands: fund}, ch)
	st.Write(ch)
	e.Persisted()
	return orgs
}

// BenchmarkApplyCharges measures the FSM's charging path: batches of 1,024
// pre-rated charges with unique references over 1,000 funded orgs, each batch
// written to a MemStore (the cold store Apply reads references from) before
// the next. The store is emptied, timer stopped, every 512 batches to bound
// memory; its maps stay large, so lookups still search a big store.
func BenchmarkApplyCharges(b *testing.B) {
	const nOrgs, batchSize, flushEvery = 1000, 1024, 512
	st := NewMemStore()
	e := New(1, st)
	orgs := benchOrgs(b, e, st, nOrgs)
	refs := make([]string, batchSize*flushEvery)
	for i := range refs {
		refs[i] = "sms_msg_" + strconv.Itoa(i)
	}
	cmds := make([]Command, batchSize)
	ch := &Changes{}
	index := uint64(2)
	timeMs := int64(1_700_000_000_000)
	b.ReportAllocs()
	b.ResetTimer()
	for n, batches := 0, 0; n < b.N; batches++ {
		if batches%flushEvery == 0 && batches > 0 {
			b.StopTimer()
			// A new epoch of references: the old ones are forgotten with
			// the store, so reusing the names stays unique.
			clear(st.Refs)
			clear(st.Txns)
			b.StartTimer()
		}
		k := min(batchSize, b.N-n)
		for i := 0; i < k; i++ {
			cmds[i] = Command{Kind: CmdCharge, OrgID: orgs[(n+i)%nOrgs], Reference: refs[(n+i)%len(refs)],
				Channel: "sms", AmountMicros: 7_500, BodyHash: "h"}
		}
		index++
		timeMs++
		ch.Reset()
		res := e.Apply(&Batch{TimeMs: timeMs, Index: index, Commands: cmds[:k]}, ch)
		if res[k-1].Code != CodeOK {
			b.Fatalf("charge refused: %v %s", res[k-1].Code, res[k-1].Message)
		}
		st.Write(ch)
		// Charges never look entries up by id, and a store that kept them
		// all would measure its own slice growth: keep one batch.
		st.Entries = st.Entries[:0]
		e.Persisted()
		n += k
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "charges/s")
}

// BenchmarkAdmit measures lock-free admission from parallel goroutines, on
// one hot wallet and spread over 1,000 wallets.
func BenchmarkAdmit(b *testing.B) {
	for _, bc := range []struct {
		name  string
		nOrgs int
	}{{"one_org", 1}, {"1000_orgs", 1000}} {
		b.Run(bc.name, func(b *testing.B) {
			st := NewMemStore()
			e := New(1, st)
			orgs := benchOrgs(b, e, st, bc.nOrgs)
			var next atomic.Uint64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := int(next.Add(7919))
				for pb.Next() {
					org := orgs[i%len(orgs)]
					i++
					if e.Admit(org, 7_500) != Admitted {
						b.Error("admission refused")
						return
					}
					e.Unadmit(org, 7_500)
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "admits/s")
		})
	}
}
