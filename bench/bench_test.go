package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orbit/orbit/client"
)

var (
	buildOnce sync.Once
	orbitdBin string
	buildErr  error
)

// mustOrbitd builds orbitd from this checkout into a temp directory, once
// per test process.
func mustOrbitd(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "orbit-bench-test-bin-")
		if err != nil {
			buildErr = err
			return
		}
		_, file, _, _ := runtime.Caller(0)
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "orbitd"), "./cmd/orbitd")
		cmd.Dir = filepath.Join(filepath.Dir(file), "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/orbitd: %v\n%s", err, out)
			return
		}
		orbitdBin = filepath.Join(dir, "orbitd")
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return orbitdBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if orbitdBin != "" {
		os.RemoveAll(filepath.Dir(orbitdBin))
	}
	os.Exit(code)
}

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	const n = 100_000
	for i := 1; i <= n; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		want := time.Duration(q*n) * time.Microsecond
		got := h.Quantile(q)
		if got < want || float64(got-want) > float64(want)/histSubBuckets {
			t.Errorf("q%.3f = %v, want %v within 1/%d above", q, got, want, histSubBuckets)
		}
	}
	if h.Max() != n*time.Microsecond || h.Min() != time.Microsecond || h.Count() != n {
		t.Errorf("max %v min %v count %d", h.Max(), h.Min(), h.Count())
	}
	var a, b Histogram
	a.Record(time.Millisecond)
	b.Record(3 * time.Millisecond)
	a.Merge(&b)
	if a.Count() != 2 || a.Max() != 3*time.Millisecond || a.Mean() != 2*time.Millisecond {
		t.Errorf("merge: count %d max %v mean %v", a.Count(), a.Max(), a.Mean())
	}
	// Every bucket's upper bound maps back to the bucket.
	for i := 0; i < histBuckets; i++ {
		if got := histIndex(histUpper(i)); got != i {
			t.Fatalf("bucket %d: upper %d maps to %d", i, histUpper(i), got)
		}
	}
}

func TestTemplatesAreValidAndUnique(t *testing.T) {
	tm := batchTemplate("brun", 7, 3)
	seen := map[string]bool{}
	for _, seq := range []uint64{0, 1, 999_999_999_999} {
		tm.setSeq(seq)
		var body struct {
			Charges []struct {
				Reference    string `json:"reference"`
				AmountMicros int64  `json:"amount_micros"`
			} `json:"charges"`
		}
		if err := json.Unmarshal(tm.body, &body); err != nil {
			t.Fatalf("batch body %s: %v", tm.body, err)
		}
		for _, c := range body.Charges {
			if seen[c.Reference] || c.AmountMicros != amountMicros {
				t.Fatalf("reference %q repeated or amount %d", c.Reference, c.AmountMicros)
			}
			seen[c.Reference] = true
		}
	}
	for _, tm := range []*template{chargeTemplate("brun", 1), holdTemplate("brun", 1)} {
		tm.setSeq(42)
		if !json.Valid(tm.body) || !strings.Contains(string(tm.body), "brun-1-000000000042") {
			t.Fatalf("body %s", tm.body)
		}
	}
	var counts [600]uint64
	answer := `{"data":{"results":[{"index":0,"status":201,"transaction":{"delivery_status":null}},{"index":1,"status":402,"error":{}}],"balance":{}}}`
	if n := batchStatuses([]byte(answer), &counts); n != 2 || counts[201] != 1 || counts[402] != 1 {
		t.Fatalf("batchStatuses: %d items, counts 201=%d 402=%d", n, counts[201], counts[402])
	}
	if id := reservationID([]byte(`{"data":{"reservation":{"id":"rsv_01","status":"open"}}}`)); string(id) != "rsv_01" {
		t.Fatalf("reservationID: %q", id)
	}
}

// mustRun runs a scenario and checks the basics every run must meet.
func mustRun(t *testing.T, cfg Config) *Result {
	t.Helper()
	if testing.Verbose() {
		cfg.Log = os.Stderr
	}
	r, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("%s: %v", cfg.Scenario, err)
	}
	if r.Charges == 0 || r.Requests == 0 {
		t.Errorf("%s: %d charges in %d requests", cfg.Scenario, r.Charges, r.Requests)
	}
	if len(r.Errors) != 0 || r.InDoubt != 0 {
		t.Errorf("%s: errors %v, in doubt %d", cfg.Scenario, r.Errors, r.InDoubt)
	}
	if !r.Verification.OK {
		t.Errorf("%s: %s", cfg.Scenario, r.Verification.Summary())
	}
	if r.Latency.Count == 0 || r.Latency.P50Us <= 0 || r.Latency.MaxUs < r.Latency.P99Us {
		t.Errorf("%s: latency %+v", cfg.Scenario, r.Latency)
	}
	// CPU is read in clock ticks for a server process: a very short run
	// may show none.
	if r.Server == nil || r.Server.RSSBytes <= 0 || (r.Requests > 1000 && r.Server.CPUSeconds <= 0) {
		t.Errorf("%s: server usage %+v", cfg.Scenario, r.Server)
	}
	return r
}

func TestEngineScenario(t *testing.T) {
	r := mustRun(t, Config{Scenario: "engine", Duration: 300 * time.Millisecond, Orgs: 100})
	if r.Charges != r.Requests*1024 {
		t.Errorf("%d charges in %d batches of 1024", r.Charges, r.Requests)
	}
}

func TestDurableScenario(t *testing.T) {
	mustRun(t, Config{Scenario: "durable", Duration: 500 * time.Millisecond, Connections: 16, Orgs: 10})
}

func TestHTTPScenarios(t *testing.T) {
	bin := mustOrbitd(t)
	for _, cfg := range []Config{
		{Scenario: "http", Connections: 8, Orgs: 20},
		{Scenario: "http-batch", Connections: 4, Orgs: 5, Batch: 50},
		{Scenario: "reservations", Connections: 4, Orgs: 5},
		{Scenario: "hot-org", Connections: 8, Rate: 500}, // open loop
	} {
		t.Run(cfg.Scenario, func(t *testing.T) {
			cfg.OrbitdBin, cfg.Duration = bin, 700*time.Millisecond
			r := mustRun(t, cfg)
			if r.Harness == nil {
				t.Errorf("no harness usage")
			}
			if cfg.Scenario == "hot-org" && (r.RequestsPerSec > 600 || r.Orgs != 1) {
				t.Errorf("open loop at 500/s sent %.0f/s over %d orgs", r.RequestsPerSec, r.Orgs)
			}
		})
	}
}

func TestMaxRequestsBoundsTheLoad(t *testing.T) {
	r := mustRun(t, Config{Scenario: "http", OrbitdBin: mustOrbitd(t), Duration: time.Minute, Connections: 4, Orgs: 4, MaxRequests: 40})
	if r.Requests != 40 || r.DurationSeconds > 30 {
		t.Errorf("max-requests 40: %d requests in %.1fs", r.Requests, r.DurationSeconds)
	}
}

// TestVerificationFailsOnMismatch feeds the verification a fabricated
// mismatch, against a real server, and checks that it fails: a harness
// whose check cannot fail proves nothing.
func TestVerificationFailsOnMismatch(t *testing.T) {
	ctx := context.Background()
	s, err := StartOrbitd(ctx, mustOrbitd(t), OrbitdOptions{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	cfg := &Config{SetupParallel: 4, Log: io.Discard}
	admin := adminClient(s.URL, s.Token, 4)
	orgs, err := createOrgs(ctx, cfg, admin, 3, 1_000_000, "vtest")
	if err != nil {
		t.Fatal(err)
	}
	// One real charge of 4,200 on org 1, through the SDK.
	c := client.New(s.URL, client.WithAPIKey(orgs[1].Key))
	if _, err := c.Charge(ctx, client.ChargeRequest{Reference: "v1", Channel: "sms", AmountMicros: amountMicros}); err != nil {
		t.Fatal(err)
	}
	verify := func(charged []int64, unresolved uint64) *Result {
		r := &Result{Scenario: "verify-test", Errors: map[string]uint64{}}
		r.Verification.Unresolved = unresolved
		verifyHTTP(ctx, cfg, r, s.Token, []string{s.URL}, orgs, charged)
		return r
	}
	if r := verify([]int64{0, amountMicros, 0}, 0); !r.Verification.OK {
		t.Fatalf("true tally refused: %s", r.Verification.Summary())
	}
	for name, tc := range map[string]struct {
		charged    []int64
		unresolved uint64
	}{
		"charge the harness never saw":     {[]int64{0, 0, 0}, 0},
		"charge counted twice":             {[]int64{0, 2 * amountMicros, 0}, 0},
		"charge acknowledged on wrong org": {[]int64{amountMicros, 0, 0}, 0},
		"request left in doubt":            {[]int64{0, amountMicros, 0}, 1},
	} {
		r := verify(tc.charged, tc.unresolved)
		if r.Verification.OK || Check(r) == nil {
			t.Errorf("%s: verification passed: %s", name, r.Verification.Summary())
		}
	}

	// An audit that reports a mismatch fails the run whatever the balances.
	var v Verification
	v.AddAudit(AuditOutcome{Source: "fabricated", OrgsChecked: 3, Mismatches: []string{"org o1 balance 5 ledger sum 4"}}, 1)
	v.AddBalances("fabricated", []string{"o1"}, []int64{10}, []int64{5}, []WalletState{{BalanceMicros: 5}})
	v.Finish(1)
	if v.OK || !strings.Contains(v.Summary(), "VERIFICATION FAILED") {
		t.Errorf("fabricated audit mismatch passed: %s", v.Summary())
	}
	// So does a clean audit of fewer stored wallets than the run used: the
	// server answered from memory what its durable state does not hold.
	v = Verification{}
	v.AddAudit(AuditOutcome{Source: "fabricated", OrgsChecked: 0}, 1)
	v.AddBalances("fabricated", []string{"o1"}, []int64{10}, []int64{5}, []WalletState{{BalanceMicros: 5}})
	v.Finish(1)
	if v.OK || !strings.Contains(v.Summary(), "checked 0 stored wallets") {
		t.Errorf("an audit of no stored wallet passed: %s", v.Summary())
	}
	// No audit at all is a failure too.
	v = Verification{}
	v.AddBalances("fabricated", []string{"o1"}, []int64{10}, []int64{5}, []WalletState{{BalanceMicros: 5}})
	v.Finish(1)
	if v.OK {
		t.Errorf("a run without an audit passed")
	}
}
