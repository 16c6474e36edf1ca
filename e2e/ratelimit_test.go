package e2e

import (
	"strconv"
	"testing"
	"time"

	"github.com/orbit/orbit/internal/testserver"
)

// TestRateLimitPerKey: with --rate-limit 5 a key gets its burst of 5, then
// 429 rate_limited with Retry-After; another key is not affected, and a
// refused request changes nothing.
func TestRateLimitPerKey(t *testing.T) {
	s := testserver.New(t)
	s.ExtraArgs = []string{"--rate-limit", "5"}
	s.Start()
	a := s.MustOrg(t, "Limited", 1_000_000)
	b := s.MustOrg(t, "Other", 1_000_000)
	ca := s.Key(a.Key)
	ok, limited := 0, 0
	for i := 0; i < 12; i++ {
		r := ca.Do("POST", "/api/v1/billing/charges", chargeBody("rl-"+strconv.Itoa(i), 100))
		switch r.Status {
		case 201:
			ok++
		case 429:
			limited++
			if r.ErrorCode() != "rate_limited" || r.Header.Get("Retry-After") == "" {
				t.Fatalf("429 without the envelope or Retry-After: %v %s", r.Header, r.Body)
			}
		default:
			t.Fatalf("status %d: %s", r.Status, r.Body)
		}
	}
	if ok < 5 || limited == 0 {
		t.Fatalf("%d accepted, %d limited: want the burst of 5 accepted and the rest limited", ok, limited)
	}
	s.Key(b.Key).Do("GET", "/api/v1/billing/balance", nil).Expect(t, 200) // another key: its own bucket
	// Only accepted charges moved money.
	if audit := s.Admin().Do("GET", "/admin/v1/audit", nil).Expect(t, 200).Data(); len(audit["mismatches"].([]any)) != 0 {
		t.Fatalf("audit: %v", audit)
	}
	txs := 0
	testserver.WaitFor(t, 5*time.Second, "the limit to refill", func() bool {
		r := ca.Do("GET", "/api/v1/billing/transactions?limit=100&type=spend", nil)
		if r.Status != 200 {
			return false
		}
		txs = len(r.Data()["transactions"].([]any))
		return true
	})
	if txs != ok {
		t.Fatalf("%d spends in the ledger, %d charges accepted", txs, ok)
	}
}
