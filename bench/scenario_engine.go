package bench

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/orbit/orbit/engine"
)

// engineEpochBatches is how many batches the engine scenario applies before
// it forgets the references and transactions its store holds (as
// engine.BenchmarkApplyCharges does): memory stays bounded however long the
// run, and the store's maps stay large, so lookups still search a big store.
// References are reused after an epoch; within one they are unique.
const engineEpochBatches = 512

// runEngine applies batches of pre-rated charges to the pure state machine
// in this process: no log, no disk, no network. It is the ceiling of
// everything else.
func runEngine(ctx context.Context, cfg *Config) (*Result, error) {
	r := newResult(cfg)
	r.Target = "in-process"
	r.Connections = 1
	r.Notes = "in-process: one goroutine applies batches; latency is per batch; CPU and RSS are this process's"
	setupStart := time.Now()

	st := engine.NewMemStore()
	e := engine.New(1, st)
	timeMs := time.Now().UnixMilli()
	index := uint64(0)
	apply := func(cmds []engine.Command, ch *engine.Changes) []engine.Result {
		index++
		ch.Reset()
		res := e.Apply(&engine.Batch{TimeMs: timeMs, Index: index, Commands: cmds}, ch)
		st.Write(ch)
		e.Persisted()
		return res
	}

	// Orgs and funding, as an operator would make them.
	ch := &engine.Changes{}
	create := make([]engine.Command, cfg.Orgs)
	for i := range create {
		create[i] = engine.Command{Kind: engine.CmdCreateOrg, Name: "bench-" + strconv.Itoa(i)}
	}
	orgs := make([]string, cfg.Orgs)
	orgIndex := make(map[string]int, cfg.Orgs)
	fund := make([]engine.Command, cfg.Orgs)
	for i, res := range apply(create, ch) {
		if res.Code != engine.CodeOK {
			return nil, fmt.Errorf("create org %d: %v %s", i, res.Code, res.Message)
		}
		orgs[i], orgIndex[res.ID] = res.ID, i
		fund[i] = engine.Command{Kind: engine.CmdAdjustment, OrgID: res.ID, Reference: "bench-funding",
			AmountMicros: engine.MaxAmountMicros, BodyHash: "funding", Reason: "orbit-bench funding"}
	}
	for i, res := range apply(fund, ch) {
		if res.Code != engine.CodeOK {
			return nil, fmt.Errorf("fund org %d: %v %s", i, res.Code, res.Message)
		}
	}
	// The ledger as the durable store would hold it: every entry summed by
	// org, independently of the engine's wallets.
	ledger := make([]int64, cfg.Orgs)
	addEntries := func() error {
		for _, en := range st.Entries {
			i, ok := orgIndex[en.OrgID]
			if !ok {
				return fmt.Errorf("ledger entry %s of unknown org %s", en.ID, en.OrgID)
			}
			ledger[i] += en.AmountMicros
		}
		st.Entries = st.Entries[:0]
		return nil
	}
	if err := addEntries(); err != nil {
		return nil, err
	}

	batch := cfg.Batch
	refs := make([]string, batch*engineEpochBatches)
	for i := range refs {
		refs[i] = "sms_msg_" + strconv.Itoa(i)
	}
	cmds := make([]engine.Command, batch)
	charged := make([]int64, cfg.Orgs)
	r.SetupSeconds = time.Since(setupStart).Seconds()

	h := &Histogram{}
	cpu := startCPU(0)
	start := time.Now()
	end := start.Add(cfg.Duration)
	var n int // charges sent
	for b := int64(0); b < cfg.MaxRequests && ctx.Err() == nil; b++ {
		t0 := time.Now()
		if !t0.Before(end) {
			break
		}
		if b%engineEpochBatches == 0 && b > 0 {
			clear(st.Refs)
			clear(st.Txns)
		}
		for i := range cmds {
			k := n + i
			cmds[i] = engine.Command{Kind: engine.CmdCharge, OrgID: orgs[k%len(orgs)], Reference: refs[k%len(refs)],
				Channel: "sms", AmountMicros: amountMicros, BodyHash: "h"}
		}
		timeMs = max(timeMs, t0.UnixMilli())
		results := apply(cmds, ch)
		if err := addEntries(); err != nil {
			return nil, err
		}
		h.Record(time.Since(t0))
		r.Requests++
		for i, res := range results {
			if res.Code == engine.CodeOK {
				charged[(n+i)%len(orgs)] += amountMicros
				r.Charges++
			} else {
				r.Errors[res.Code.String()]++
			}
		}
		n += batch
	}
	wall := time.Since(start)
	r.Server = cpu.usage()
	r.finish(wall, h)
	if err := ctx.Err(); err != nil {
		return r, err
	}

	// Verification: the engine's wallets against the ledger (the audit),
	// and against funding less what Apply acknowledged.
	v := &r.Verification
	v.AckedCharges = r.Charges
	a := AuditOutcome{Source: "engine ledger", OrgsChecked: len(orgs)}
	wallets := make([]WalletState, len(orgs))
	fundings := make([]int64, len(orgs))
	for i, org := range orgs {
		fundings[i] = engine.MaxAmountMicros
		v.AckedMicros += charged[i]
		w, ok := e.Wallet(org)
		if !ok {
			wallets[i].Err = fmt.Errorf("org missing from the engine")
			continue
		}
		wallets[i] = WalletState{BalanceMicros: w.BalanceMicros, ReservedMicros: w.ReservedMicros}
		if w.BalanceMicros != ledger[i] {
			a.Mismatches = append(a.Mismatches, fmt.Sprintf("org %s balance %d ledger sum %d", org, w.BalanceMicros, ledger[i]))
		}
	}
	v.AddAudit(a, len(orgs))
	v.AddBalances("engine", orgs, fundings, charged, wallets)
	v.Finish(len(orgs))
	return r, nil
}
