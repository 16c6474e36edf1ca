package e2e

import (
	"sync"
	"testing"

	"github.com/orbit/orbit/internal/testserver"
)

// TestConcurrentRepeatsChargeOnce sends the same charge 20 times at once,
// on a wallet that can pay it only once: exactly one 201, every other answer
// a 200 replay of the same transaction, and the wallet charged once.
func TestConcurrentRepeatsChargeOnce(t *testing.T) {
	s := testserver.Start(t)
	org := s.MustOrg(t, "Concurrent", 5_000)
	c := s.Key(org.Key)
	const n = 20
	var wg sync.WaitGroup
	statuses := make([]int, n)
	ids := make([]string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r, err := c.TryDo("POST", "/api/v1/billing/charges", chargeBody("same-ref", 4_200))
			if err != nil {
				t.Error(err)
				return
			}
			statuses[i] = r.Status
			if tx, ok := r.Data()["transaction"].(map[string]any); ok {
				ids[i], _ = tx["id"].(string)
			}
		}(i)
	}
	wg.Wait()
	created := 0
	for i, st := range statuses {
		switch st {
		case 201:
			created++
		case 200:
		default:
			t.Fatalf("request %d answered %d", i, st)
		}
		if ids[i] == "" || ids[i] != ids[0] {
			t.Fatalf("request %d answered transaction %q, request 0 %q", i, ids[i], ids[0])
		}
	}
	if created != 1 {
		t.Fatalf("%d answers were 201, want exactly 1", created)
	}
	if b := c.Do("GET", "/api/v1/billing/balance", nil).Expect(t, 200).Data(); num(t, b, "balance_micros") != 800 {
		t.Fatalf("balance %v, want charged once", b["balance_micros"])
	}
}
