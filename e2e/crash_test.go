package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orbit/orbit/internal/testserver"
)

// TestKill9KeepsEveryAcknowledgedCharge charges through HTTP from many
// clients, kills orbitd with SIGKILL mid-load, restarts it on the same data
// directory, and requires every 2xx charge exactly once, nothing charged
// twice, and every balance equal to its ledger.
func TestKill9KeepsEveryAcknowledgedCharge(t *testing.T) {
	for round := 1; round <= 3; round++ {
		t.Run(fmt.Sprint("round", round), func(t *testing.T) { kill9Round(t, false) })
	}
	// The raft log writes into WAL files written with zeros beforehand
	// (wal/zeroedwal.go) once it has written enough: a kill while it
	// writes into one must lose nothing either.
	t.Run("zeroed_wal", func(t *testing.T) { kill9Round(t, true) })
}

// zeroedWALInUse reports whether the raft log's newest WAL is one written
// with zeros beforehand: 18 MiB from its creation on, where a plain WAL
// grows with what is written.
func zeroedWALInUse(t *testing.T, dataDir string) bool {
	t.Helper()
	logs, err := filepath.Glob(filepath.Join(dataDir, "raft-log", "*.log"))
	if err != nil || len(logs) == 0 {
		return false
	}
	slices.Sort(logs) // zero-padded numbers: the newest sorts last
	st, err := os.Stat(logs[len(logs)-1])
	return err == nil && st.Size() == 18<<20
}

func kill9Round(t *testing.T, inZeroedWAL bool) {
	const fund = 1_000_000_000
	s := testserver.Start(t)
	org := s.MustOrg(t, "Crash", fund)
	c := s.Key(org.Key)

	var mu sync.Mutex
	acked := map[string]string{} // reference -> transaction id
	var count atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 12; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			// Bounded: enough for the zeroed-WAL round, which needs the
			// raft log to pass a few WAL rotations (about 3 MB).
			for i := 0; i < 4000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ref := fmt.Sprintf("w%d-%d", w, i)
				r, err := c.TryDo("POST", "/api/v1/billing/charges", chargeBody(ref, 1000+int64(w)))
				if err != nil {
					return // the server died under us
				}
				if r.Status == 201 || r.Status == 200 {
					mu.Lock()
					acked[ref] = r.Data()["transaction"].(map[string]any)["id"].(string)
					mu.Unlock()
					count.Add(1)
				}
			}
		}(w)
	}
	testserver.WaitFor(t, 30*time.Second, "300 acknowledged charges", func() bool { return count.Load() >= 300 })
	if inZeroedWAL {
		testserver.WaitFor(t, 60*time.Second, "the raft log writing into a zeroed WAL", func() bool { return zeroedWALInUse(t, s.DataDir) })
		n := count.Load()
		testserver.WaitFor(t, 30*time.Second, "300 more acknowledged charges", func() bool { return count.Load() >= n+300 })
	}
	s.Kill()
	close(stop)
	wg.Wait()

	s.Start()
	c = s.Key(org.Key)
	spends := readSpends(t, c)
	refs, spent := spends.refs, spends.spent
	for ref, n := range refs {
		if n != 1 {
			t.Fatalf("%s charged %d times", ref, n)
		}
	}
	for ref, id := range acked {
		if refs["charge:"+ref] != 1 {
			t.Fatalf("acknowledged charge %s lost", ref)
		}
		// A client retrying after the crash gets the original, not a new charge.
		r := c.Do("POST", "/api/v1/billing/charges", chargeBody(ref, 1000+int64(refWorker(ref)))).Expect(t, 200)
		if r.Data()["transaction"].(map[string]any)["id"] != id {
			t.Fatalf("retry of %s answered another transaction", ref)
		}
	}
	bal := c.Do("GET", "/api/v1/billing/balance", nil).Expect(t, 200).Data()
	if num(t, bal, "balance_micros") != fund-spent {
		t.Fatalf("balance %d != funding - ledger spends %d", num(t, bal, "balance_micros"), fund-spent)
	}
	audit := s.Admin().Do("GET", "/admin/v1/audit", nil).Expect(t, 200).Data()
	if len(audit["mismatches"].([]any)) != 0 {
		t.Fatalf("audit after kill -9: %v", audit)
	}
	t.Logf("%d acknowledged charges, %d in the ledger after kill -9", len(acked), len(refs))
}

func refWorker(ref string) int {
	var w, i int
	fmt.Sscanf(ref, "w%d-%d", &w, &i)
	return w
}

// spendLedger is what an org's spend entries say, read page by page.
type spendLedger struct {
	refs  map[string]int  // reference -> entries carrying it
	ids   map[string]bool // entry ids
	spent int64           // micros spent
}

// readSpends pages through every spend entry of the key's org.
func readSpends(t *testing.T, c *testserver.Client) spendLedger {
	t.Helper()
	l := spendLedger{refs: map[string]int{}, ids: map[string]bool{}}
	path := "/api/v1/billing/transactions?limit=100&type=spend"
	for {
		d := c.Do("GET", path, nil).Expect(t, 200).Data()
		for _, x := range d["transactions"].([]any) {
			e := x.(map[string]any)
			l.refs[e["reference"].(string)]++
			l.ids[e["id"].(string)] = true
			l.spent -= num(t, e, "amount_micros")
		}
		if d["has_more"] != true {
			return l
		}
		cur := obj(t, d, "next_cursor")
		path = fmt.Sprintf("/api/v1/billing/transactions?limit=100&type=spend&cursor_ts=%s&cursor_id=%s", cur["cursor_ts"], cur["cursor_id"])
	}
}
