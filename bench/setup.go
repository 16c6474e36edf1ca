package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orbit/orbit/client"
)

// benchOrg is an org the harness created: its id, a charge-role key, and
// the funding it received.
type benchOrg struct {
	ID            string
	Key           string
	FundingMicros int64
}

// adminClient is a Go SDK client for setup and verification (never for the
// measured load), with enough idle connections for parallel calls.
func adminClient(url, token string, parallel int) *client.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = parallel * 2
	tr.MaxIdleConnsPerHost = parallel * 2
	return client.New(url, client.WithAdminToken(token), client.WithHTTPClient(&http.Client{Transport: tr}),
		client.WithTimeout(30*time.Second))
}

// resolveToken returns the admin token for a server the harness did not
// start: the flag, else ORBIT_ADMIN_TOKEN, else ./data/admin-token (where
// `make run` puts it).
func resolveToken(flagToken string) (string, error) {
	if flagToken != "" {
		return flagToken, nil
	}
	if t := os.Getenv("ORBIT_ADMIN_TOKEN"); t != "" {
		return t, nil
	}
	if b, err := os.ReadFile("data/admin-token"); err == nil {
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, nil
		}
	}
	return "", errors.New("no admin token: give --admin-token, set ORBIT_ADMIN_TOKEN, or run from the directory whose data/admin-token it is")
}

// createOrgs creates n orgs through the admin API, parallel calls at a
// time: each org, one charge key, and its funding as one adjustment.
func createOrgs(ctx context.Context, cfg *Config, c *client.Client, n int, funding int64, runID string) ([]benchOrg, error) {
	orgs := make([]benchOrg, n)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next, done atomic.Int64
	var firstErr error
	var errOnce sync.Once
	fail := func(err error) { errOnce.Do(func() { firstErr = err; cancel() }) }
	start := time.Now()
	lastReport := atomic.Int64{}
	var wg sync.WaitGroup
	for range min(cfg.SetupParallel, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				o, err := createOrg(ctx, c, fmt.Sprintf("bench-%s-%d", runID, i), funding)
				if err != nil {
					fail(fmt.Errorf("setup of org %d: %w", i, err))
					return
				}
				orgs[i] = o
				if d := done.Add(1); n >= 10_000 && d*10/int64(n) > lastReport.Load() {
					lastReport.Store(d * 10 / int64(n))
					cfg.logf("setup: %d/%d orgs (%.0f orgs/s)", d, n, float64(d)/time.Since(start).Seconds())
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return orgs, nil
}

func createOrg(ctx context.Context, c *client.Client, name string, funding int64) (benchOrg, error) {
	o, err := c.CreateOrg(ctx, name)
	if err != nil {
		return benchOrg{}, err
	}
	k, err := c.CreateKey(ctx, o.ID, client.RoleCharge)
	if err != nil {
		return benchOrg{}, err
	}
	if _, err := c.Adjust(ctx, o.ID, client.AdjustmentRequest{AmountMicros: funding, Reason: "orbit-bench funding", Reference: "bench-funding"}); err != nil {
		return benchOrg{}, err
	}
	return benchOrg{ID: o.ID, Key: k.Key, FundingMicros: funding}, nil
}

// readWallets reads every org's wallet through the admin API, parallel
// calls at a time.
func readWallets(ctx context.Context, c *client.Client, orgs []benchOrg, parallel int) []WalletState {
	out := make([]WalletState, len(orgs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(parallel, len(orgs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(orgs) {
					return
				}
				o, err := c.GetOrg(ctx, orgs[i].ID)
				if err != nil {
					out[i].Err = err
					continue
				}
				out[i] = WalletState{BalanceMicros: o.Wallet.BalanceMicros, ReservedMicros: o.Wallet.ReservedMicros}
			}
		}()
	}
	wg.Wait()
	return out
}

// entrySuffix names an audit mismatch's entry, if it has one.
func entrySuffix(id string) string {
	if id == "" {
		return ""
	}
	return " (entry " + id + ")"
}

// audit runs GET /admin/v1/audit on one server.
func audit(ctx context.Context, c *client.Client) AuditOutcome {
	a := AuditOutcome{Source: c.BaseURL()}
	r, err := c.Audit(ctx)
	if err != nil {
		a.Err = err.Error()
		return a
	}
	a.OrgsChecked = r.OrgsChecked
	for _, m := range r.Mismatches {
		a.Mismatches = append(a.Mismatches, fmt.Sprintf("org %s %s%s: balance %d ledger sum %d", m.OrgID, m.Problem, entrySuffix(m.EntryID), m.BalanceMicros, m.LedgerSumMicros))
	}
	return a
}
