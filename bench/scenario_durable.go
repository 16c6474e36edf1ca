package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/orbit/orbit/engine"
	"github.com/orbit/orbit/raftstore"
)

// runDurable drives the whole write path in this process: admission, the
// proposer's group commit, single-node raft with its fsynced Pebble log,
// the FSM and the engine, with many concurrent submitters and no HTTP.
func runDurable(ctx context.Context, cfg *Config) (res *Result, err error) {
	r := newResult(cfg)
	r.Target = "in-process"
	r.Notes = "in-process: submitters call raftstore.Node.Submit; CPU and RSS are this process's"
	setupStart := time.Now()

	dir, err := os.MkdirTemp("", "orbit-bench-durable-")
	if err != nil {
		return nil, err
	}
	if !cfg.KeepData {
		defer os.RemoveAll(dir)
	}
	raftAddr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if cfg.Log == io.Discard {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	node, err := raftstore.Open(raftstore.Config{NodeID: "bench", RaftAddr: raftAddr, DataDir: dir, Bootstrap: true, Logger: logger})
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := node.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close node: %w", cerr)
		}
	}()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = node.WaitLeader(wctx)
	cancel()
	if err != nil {
		return nil, err
	}

	// Orgs and funding, in chunks of one Submit each.
	orgs := make([]string, 0, cfg.Orgs)
	const chunk = 1000
	for lo := 0; lo < cfg.Orgs; lo += chunk {
		n := min(chunk, cfg.Orgs-lo)
		create := make([]engine.Command, n)
		for i := range create {
			create[i] = engine.Command{Kind: engine.CmdCreateOrg, Name: "bench-" + strconv.Itoa(lo+i)}
		}
		results, err := submitSetup(ctx, node, create)
		if err != nil {
			return nil, err
		}
		fund := make([]engine.Command, n)
		for i, res := range results {
			if res.Code != engine.CodeOK {
				return nil, fmt.Errorf("create org: %v %s", res.Code, res.Message)
			}
			orgs = append(orgs, res.ID)
			fund[i] = engine.Command{Kind: engine.CmdAdjustment, OrgID: res.ID, Reference: "bench-funding",
				AmountMicros: fundingMicros, BodyHash: "funding", Reason: "orbit-bench funding"}
		}
		results, err = submitSetup(ctx, node, fund)
		if err != nil {
			return nil, err
		}
		for _, res := range results {
			if res.Code != engine.CodeOK {
				return nil, fmt.Errorf("fund org: %v %s", res.Code, res.Message)
			}
		}
	}
	r.SetupSeconds = time.Since(setupStart).Seconds()

	// The load: Connections submitters, each Submit carrying Batch charges
	// (1: one charge per request, as POST /charges).
	type submitter struct {
		hist     Histogram
		requests uint64
		charges  uint64
		acked    uint64
		charged  []int64
		errs     map[string]uint64
		inDoubt  [][]engine.Command
	}
	subs := make([]*submitter, cfg.Connections)
	quota := max(1, (cfg.MaxRequests+int64(cfg.Connections)-1)/int64(cfg.Connections))
	orgIndex := make(map[string]int, len(orgs))
	for i, o := range orgs {
		orgIndex[o] = i
	}
	credit := func(s *submitter, cmds []engine.Command, results []engine.Result, measured bool) {
		for i, res := range results {
			switch {
			case res.Code == engine.CodeOK || (res.Code == engine.CodeReplayed && !measured):
				s.charged[orgIndex[cmds[i].OrgID]] += cmds[i].AmountMicros
				s.acked++
				if measured {
					s.charges++
				}
			case measured:
				s.errs[res.Code.String()]++
			}
		}
	}
	var intervalNs float64
	if cfg.Rate > 0 {
		intervalNs = 1e9 / cfg.Rate
	}
	cpu := startCPU(0)
	start := time.Now()
	end := start.Add(cfg.Duration)
	var wg sync.WaitGroup
	for id := range subs {
		s := &submitter{charged: make([]int64, len(orgs)), errs: map[string]uint64{}}
		subs[id] = s
		wg.Add(1)
		go func() {
			defer wg.Done()
			prefix := "d" + strconv.Itoa(id) + "-"
			for k := int64(0); k < quota && ctx.Err() == nil; k++ {
				var t0 time.Time
				if intervalNs > 0 {
					t0 = start.Add(time.Duration(float64(k*int64(len(subs))+int64(id)) * intervalNs))
					if !t0.Before(end) {
						break
					}
					if d := time.Until(t0); d > 0 {
						time.Sleep(d)
					}
				} else if t0 = time.Now(); !t0.Before(end) {
					break
				}
				cmds := make([]engine.Command, cfg.Batch)
				for i := range cmds {
					seq := k*int64(cfg.Batch) + int64(i)
					cmds[i] = engine.Command{Kind: engine.CmdCharge, OrgID: orgs[(int64(id)+seq*int64(len(subs)))%int64(len(orgs))],
						Reference: prefix + strconv.FormatInt(seq, 10), Channel: "sms", AmountMicros: amountMicros, BodyHash: "h"}
				}
				results, err := node.Submit(ctx, cmds)
				s.hist.Record(time.Since(t0))
				s.requests++
				if err != nil {
					s.errs[submitErrName(err)]++
					s.inDoubt = append(s.inDoubt, cmds)
					continue
				}
				credit(s, cmds, results, true)
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	r.Server = cpu.usage()

	// Resolve what failed with an error: the same references again.
	var unresolved uint64
	resolveBy := time.Now().Add(2 * time.Minute)
	for _, s := range subs {
		for _, cmds := range s.inDoubt {
			ok := false
			for attempt := 0; attempt < resolveAttempts && !ok && time.Now().Before(resolveBy) && ctx.Err() == nil; attempt++ {
				if attempt > 0 {
					time.Sleep(100 * time.Millisecond << min(attempt, 4))
				}
				results, err := node.Submit(ctx, cmds)
				if err == nil {
					credit(s, cmds, results, false)
					ok = true
				}
			}
			if !ok {
				unresolved++
			}
		}
	}

	h := &Histogram{}
	charged := make([]int64, len(orgs))
	for _, s := range subs {
		h.Merge(&s.hist)
		r.Requests += s.requests
		r.Charges += s.charges
		r.Verification.AckedCharges += s.acked
		r.InDoubt += uint64(len(s.inDoubt))
		for k, c := range s.errs {
			r.Errors[k] += c
		}
		for i, c := range s.charged {
			charged[i] += c
		}
	}
	r.finish(wall, h)
	if err := ctx.Err(); err != nil {
		return r, err
	}

	// Verification: the node's audit (the durable ledger against the
	// stored and in-memory wallets), and every wallet against funding less
	// what Submit acknowledged.
	v := &r.Verification
	v.Unresolved = unresolved
	a := AuditOutcome{Source: "raftstore " + dir}
	checked, mismatches, err := node.Audit()
	if err != nil {
		a.Err = err.Error()
	}
	a.OrgsChecked = checked
	for _, m := range mismatches {
		a.Mismatches = append(a.Mismatches, fmt.Sprintf("org %s %s: balance %d ledger sum %d", m.OrgID, m.Problem, m.BalanceMicros, m.LedgerSumMicros))
	}
	v.AddAudit(a, len(orgs))
	wallets := make([]WalletState, len(orgs))
	fundings := make([]int64, len(orgs))
	for i, org := range orgs {
		fundings[i] = fundingMicros
		v.AckedMicros += charged[i]
		w, ok := node.Wallet(org)
		if !ok {
			wallets[i].Err = errors.New("org missing")
			continue
		}
		wallets[i] = WalletState{BalanceMicros: w.BalanceMicros, ReservedMicros: w.ReservedMicros}
	}
	v.AddBalances("raftstore", orgs, fundings, charged, wallets)
	v.Finish(len(orgs))
	return r, nil
}

// submitSetup submits setup commands, retrying while the new leader gets
// ready.
func submitSetup(ctx context.Context, node *raftstore.Node, cmds []engine.Command) ([]engine.Result, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := node.Submit(ctx, cmds)
		if err == nil {
			return res, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("setup submit: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func submitErrName(err error) string {
	switch {
	case errors.Is(err, raftstore.ErrTimeout):
		return "timeout"
	case errors.Is(err, raftstore.ErrOverloaded):
		return "overloaded"
	case errors.Is(err, raftstore.ErrNotLeader):
		return "not_leader"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "submit_error"
}
