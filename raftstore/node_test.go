package raftstore

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/orbit/orbit/engine"
)

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// mustOpen opens a single-voter node on dir and waits for it to lead.
func mustOpen(t testing.TB, dir, raftAddr string) *Node {
	t.Helper()
	n, err := Open(Config{NodeID: "n1", RaftAddr: raftAddr, DataDir: dir, Bootstrap: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.WaitLeader(ctx); err != nil {
		n.Close()
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "leadership", n.IsLeader)
	return n
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustSubmit(t testing.TB, n *Node, cmds ...engine.Command) []engine.Result {
	t.Helper()
	res, err := n.Submit(context.Background(), cmds)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// mustFundedOrg creates an org funded with fundMicros.
func mustFundedOrg(t testing.TB, n *Node, fundMicros int64) string {
	t.Helper()
	org := mustSubmit(t, n, engine.Command{Kind: engine.CmdCreateOrg, Name: "o"})[0].ID
	r := mustSubmit(t, n, engine.Command{Kind: engine.CmdAdjustment, OrgID: org, Reference: "fund", AmountMicros: fundMicros, BodyHash: "f"})[0]
	if r.Code != engine.CodeOK {
		t.Fatalf("funding: %v %s", r.Code, r.Message)
	}
	return org
}

func charge(org, ref string, amount int64) engine.Command {
	return engine.Command{Kind: engine.CmdCharge, OrgID: org, Reference: ref, Channel: "sms", AmountMicros: amount, BodyHash: fmt.Sprint(amount)}
}

// mustAuditClean fails unless every balance equals its ledger sum.
func mustAuditClean(t testing.TB, n *Node) int {
	t.Helper()
	checked, mismatches, err := n.Audit()
	if err != nil {
		t.Fatal(err)
	}
	if len(mismatches) > 0 {
		t.Fatalf("audit mismatches: %+v", mismatches)
	}
	return checked
}

func TestRestartRecoversExactState(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	n := mustOpen(t, dir, addr)
	org := mustFundedOrg(t, n, 1_000_000)
	for i := 0; i < 50; i++ {
		if r := mustSubmit(t, n, charge(org, fmt.Sprint("c", i), 1000))[0]; r.Code != engine.CodeOK {
			t.Fatalf("charge %d: %v", i, r.Code)
		}
	}
	// The leader records its own address once it leads; wait for it, so the
	// state captured here is the whole state.
	waitFor(t, 10*time.Second, "the leader's address recorded", func() bool { return len(n.Engine().Nodes()) == 1 })
	digest, applied := n.Engine().Digest(), n.Engine().AppliedIndex()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	n = mustOpen(t, dir, addr)
	defer n.Close()
	if n.Engine().AppliedIndex() != applied {
		t.Fatalf("applied index %d after restart, %d before", n.Engine().AppliedIndex(), applied)
	}
	// Raft's own no-op and configuration entries move its index, not the
	// state: the engine is byte-identical to the one before the restart.
	if got := n.Engine().Digest(); got != digest {
		t.Fatalf("engine digest after restart %s, before %s", got, digest)
	}
	w, _ := n.Wallet(org)
	if w.BalanceMicros != 1_000_000-50*1000 {
		t.Fatalf("balance after restart %d", w.BalanceMicros)
	}
	mustAuditClean(t, n)
	// A replay after restart answers with the original transaction.
	r := mustSubmit(t, n, charge(org, "c7", 1000))[0]
	if r.Code != engine.CodeReplayed || r.TxID == "" {
		t.Fatalf("replay after restart: %v", r.Code)
	}
	if w2, _ := n.Wallet(org); w2.BalanceMicros != w.BalanceMicros {
		t.Fatal("replay moved money")
	}
}

func TestAdmissionRefusesOverdraftWithoutLog(t *testing.T) {
	n := mustOpen(t, t.TempDir(), freeAddr(t))
	defer n.Close()
	org := mustFundedOrg(t, n, 10_000)
	before := n.Engine().AppliedIndex()
	r := mustSubmit(t, n, charge(org, "big", 10_001))[0]
	if r.Code != engine.CodeInsufficientFunds {
		t.Fatalf("got %v", r.Code)
	}
	if n.Engine().AppliedIndex() != before {
		t.Fatal("a refused admission reached the log")
	}
	// Exactly the available amount fits.
	if r := mustSubmit(t, n, charge(org, "exact", 10_000))[0]; r.Code != engine.CodeOK {
		t.Fatalf("got %v", r.Code)
	}
	// Its retry, now that the wallet is empty, still replays.
	if r := mustSubmit(t, n, charge(org, "exact", 10_000))[0]; r.Code != engine.CodeReplayed {
		t.Fatalf("retry of a successful charge on an empty wallet: %v", r.Code)
	}
}

func TestConcurrentChargesNeverOverdraw(t *testing.T) {
	n := mustOpen(t, t.TempDir(), freeAddr(t))
	defer n.Close()
	const fund, amount, workers, each = 1_000_000, 7_000, 8, 40
	org := mustFundedOrg(t, n, fund)
	var mu sync.Mutex
	ok := 0
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				res, err := n.Submit(context.Background(), []engine.Command{charge(org, fmt.Sprintf("w%d-%d", w, i), amount)})
				if err != nil {
					t.Error(err)
					return
				}
				if res[0].Code == engine.CodeOK {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			}
		}(w)
	}
	wg.Wait()
	w, _ := n.Wallet(org)
	if want := int64(fund - ok*amount); w.BalanceMicros != want || w.BalanceMicros < 0 {
		t.Fatalf("balance %d, want %d", w.BalanceMicros, want)
	}
	if ok != fund/amount {
		t.Fatalf("%d charges succeeded, want exactly %d (all that fit)", ok, fund/amount)
	}
	mustAuditClean(t, n)
}

func TestSnapshotRestoreReplacesState(t *testing.T) {
	src := mustOpen(t, t.TempDir(), freeAddr(t))
	defer src.Close()
	org := mustFundedOrg(t, src, 500_000)
	mustSubmit(t, src, charge(org, "a", 1234), charge(org, "b", 4321))
	snap, err := src.fsm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}

	dst := mustOpen(t, t.TempDir(), freeAddr(t))
	defer dst.Close()
	other := mustFundedOrg(t, dst, 99) // state the restore must drop
	if err := dst.fsm.Restore(sink.reader()); err != nil {
		t.Fatal(err)
	}
	if _, ok := dst.Wallet(other); ok {
		t.Fatal("restore kept state that was not in the snapshot")
	}
	w, ok := dst.Wallet(org)
	if !ok || w.BalanceMicros != 500_000-1234-4321 {
		t.Fatalf("restored wallet %+v", w)
	}
	if src.Engine().Digest() != dst.Engine().Digest() {
		t.Fatal("restored engine differs from the source")
	}
	mustAuditClean(t, dst)
}

// A second Close returns the first's result instead of panicking: a test
// cluster's cleanup closes every node, including one a failed restart had
// already closed.
func TestCloseTwice(t *testing.T) {
	n := mustOpen(t, t.TempDir(), freeAddr(t))
	if err := n.Close(); err != nil {
		t.Fatalf("first close: %v", err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := n.Submit(context.Background(), []engine.Command{{Kind: engine.CmdCreateOrg, Name: "o"}}); err == nil {
		t.Fatal("a closed node accepted a write")
	}
}
