package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// runHTTP runs the scenarios that load orbitd over HTTP: http, http-batch,
// reservations, hot-org, many-orgs and cluster.
func runHTTP(ctx context.Context, cfg *Config) (res *Result, err error) {
	r := newResult(cfg)
	setupStart := time.Now()

	// The servers: the one at --url, or ones this run starts and stops.
	var urls []string
	var token string
	var serverPIDs []int
	if cfg.URL != "" {
		urls, serverPIDs = []string{cfg.URL}, nil
		if cfg.ServerPID > 0 {
			serverPIDs = []int{cfg.ServerPID}
		}
		if token, err = resolveToken(cfg.AdminToken); err != nil {
			return nil, err
		}
	} else {
		n := 1
		if cfg.Scenario == "cluster" {
			n = 3
			if cfg.Nodes > 0 {
				n = cfg.Nodes
			}
		}
		ss, err := startServers(ctx, cfg, n)
		if err != nil {
			return nil, err
		}
		defer func() {
			if stopErr := ss.stop(); stopErr != nil {
				cfg.logf("stopping servers: %v", stopErr)
				if res != nil {
					res.Notes = joinNote(res.Notes, "server stop: "+stopErr.Error())
				}
			}
		}()
		for _, p := range ss.procs {
			urls = append(urls, p.URL)
		}
		token, serverPIDs = ss.procs[0].Token, ss.pids()
		if cfg.AdminToken != "" && cfg.AdminToken != token {
			cfg.logf("--admin-token ignored: the started server generated its own")
		}
	}
	r.Target = joinURLs(urls)
	hostPorts := make([]string, len(urls))
	for i, u := range urls {
		if hostPorts[i], err = checkLoopback(u); err != nil {
			return nil, err
		}
	}

	// Setup through the Go SDK on the first server.
	admin := adminClient(urls[0], token, cfg.SetupParallel)
	runID := newRunID()
	funding := int64(fundingMicros)
	if cfg.Scenario == "hot-org" {
		funding = hotFundingMicros
	}
	cfg.logf("%s: creating %d orgs with keys and funding on %s", cfg.Scenario, cfg.Orgs, urls[0])
	orgs, err := createOrgs(ctx, cfg, admin, cfg.Orgs, funding, runID)
	if err != nil {
		return nil, err
	}
	if len(urls) > 1 {
		if err := waitReplicated(ctx, token, urls); err != nil {
			return nil, err
		}
	}
	r.SetupSeconds = time.Since(setupStart).Seconds()

	// The plan: workers, targets, bounds.
	plan := &loadPlan{kind: kindCharge, batch: cfg.Batch, orgs: orgs, runID: runID}
	requestsPerIteration := 1
	switch cfg.Scenario {
	case "http-batch":
		plan.kind = kindBatch
	case "reservations":
		plan.kind = kindHold
		requestsPerIteration = 2
	}
	plan.workers = cfg.Connections * cfg.Pipeline
	connsPerTarget := int(math.Ceil(float64(cfg.Connections) / float64(len(urls))))
	for i, hp := range hostPorts {
		plan.targets = append(plan.targets, newTarget(hp, connsPerTarget, cfg.Pipeline))
		plan.bases = append(plan.bases, urls[i])
	}
	iterations := cfg.MaxRequests / int64(requestsPerIteration)
	plan.quota = max(1, (iterations+int64(plan.workers)-1)/int64(plan.workers))
	if cfg.Rate > 0 {
		plan.intervalNs = 1e9 * float64(requestsPerIteration) / cfg.Rate
	}
	workers := make([]*worker, plan.workers)
	for i := range workers {
		workers[i] = newWorker(i, plan)
	}

	cfg.logf("%s: loading %s for %s with %d connections (pipeline %d), %d orgs, batch %d, rate %s",
		cfg.Scenario, r.Target, cfg.Duration, cfg.Connections, cfg.Pipeline, cfg.Orgs, cfg.Batch, rateText(cfg.Rate))
	serverCPU := startCPU(serverPIDs...)
	harnessCPU := startCPU(0)
	plan.start = time.Now()
	plan.end = plan.start.Add(cfg.Duration)
	plan.resolveBy = plan.end.Add(2 * time.Minute)
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() { defer wg.Done(); w.run(ctx) }()
	}
	wg.Wait()
	wall := time.Since(plan.start)
	if len(serverPIDs) > 0 {
		r.Server = serverCPU.usage()
	}
	r.Harness = harnessCPU.usage()

	// Settle what was left in doubt, then verify.
	for _, w := range workers {
		wg.Add(1)
		go func() { defer wg.Done(); w.resolve(ctx) }()
	}
	wg.Wait()
	h, charged := mergeWorkers(r, workers, len(orgs))
	r.finish(wall, h)
	if err := ctx.Err(); err != nil {
		return r, err
	}
	verifyHTTP(ctx, cfg, r, token, urls, orgs, charged)
	return r, nil
}

// verifyHTTP runs the audit on every server and compares every org's
// balance, read through every server, with what the harness saw.
func verifyHTTP(ctx context.Context, cfg *Config, r *Result, token string, urls []string, orgs []benchOrg, charged []int64) {
	cfg.logf("%s: verifying (audit and %d balances on %d server(s))", cfg.Scenario, len(orgs), len(urls))
	ids := make([]string, len(orgs))
	fundings := make([]int64, len(orgs))
	for i, o := range orgs {
		ids[i], fundings[i] = o.ID, o.FundingMicros
	}
	for _, c := range charged {
		r.Verification.AckedMicros += c
	}
	for _, u := range urls {
		c := adminClient(u, token, cfg.SetupParallel)
		r.Verification.AddAudit(audit(ctx, c), len(orgs))
		r.Verification.AddBalances(u, ids, fundings, charged, readWallets(ctx, c, orgs, cfg.SetupParallel))
	}
	r.Verification.Finish(len(orgs) * len(urls))
}

// waitReplicated waits until every node has applied what the cluster has
// committed, so every node knows the orgs and keys just made.
func waitReplicated(ctx context.Context, token string, urls []string) error {
	deadline := time.Now().Add(30 * time.Second)
	var commit uint64
	for _, u := range urls {
		info, err := adminClient(u, token, 1).Cluster(ctx)
		if err != nil {
			return fmt.Errorf("cluster state of %s: %w", u, err)
		}
		commit = max(commit, info.CommitIndex)
	}
	for _, u := range urls {
		c := adminClient(u, token, 1)
		for {
			info, err := c.Cluster(ctx)
			if err == nil && info.AppliedIndex >= commit {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("node %s has not applied index %d within 30s", u, commit)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

func rateText(rate float64) string {
	if rate <= 0 {
		return "closed loop"
	}
	return fmt.Sprintf("%.0f req/s open loop", rate)
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

var errVerification = errors.New("verification failed")

// Check returns an error when a result's verification failed.
func Check(r *Result) error {
	if r.Verification.OK {
		return nil
	}
	return fmt.Errorf("%s: %w: %s", r.Scenario, errVerification, r.Verification.Summary())
}
