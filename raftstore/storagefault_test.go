package raftstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/orbit/orbit/engine"
	"github.com/orbit/orbit/wal"
)

// The storage-fault tests run a real single-voter node on a temp dir whose
// raft-log or state database sits on an errorfs that fails WAL writes (a
// full disk) or WAL syncs (a failing disk) while switched on. They require:
// no charge is acknowledged while its log cannot be persisted, the node
// stops (not ready, writes refused), and after the fault clears and the node
// restarts every acknowledged charge is in the ledger exactly once, every
// unacknowledged one at most once (a retry replays it), and every balance
// equals its ledger.

// diskFault fails the WAL files of one database while on.
type diskFault struct {
	on       atomic.Bool
	syncOnly bool // fail syncs (EIO) instead of writes (ENOSPC)
	create   bool // fail the creation of new WAL files (EROFS) instead
	hits     atomic.Int64
}

func (d *diskFault) String() string { return "diskFault" }

func (d *diskFault) MaybeError(op errorfs.Op) error {
	if !d.on.Load() || !strings.HasSuffix(op.Path, ".log") {
		return nil
	}
	if d.create {
		if op.Kind == errorfs.OpCreate || op.Kind == errorfs.OpReuseForWrite {
			d.hits.Add(1)
			return fmt.Errorf("injected: %w", syscall.EROFS)
		}
		return nil
	}
	switch op.Kind {
	case errorfs.OpFileWrite, errorfs.OpFileWriteAt:
		if !d.syncOnly {
			d.hits.Add(1)
			return fmt.Errorf("injected: %w", syscall.ENOSPC)
		}
	case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
		if d.syncOnly {
			d.hits.Add(1)
			return fmt.Errorf("injected: %w", syscall.EIO)
		}
	}
	return nil
}

func TestStorageFault(t *testing.T) {
	cases := []struct {
		name             string
		logDB            bool // fault the raft-log DB, else the state DB
		syncOnly, create bool // see diskFault
	}{
		{"raft log disk full", true, false, false},
		{"raft log fsync fails", true, true, false},
		{"state disk full", false, false, false},
		// A read-only file system: files already open stay writable, and the
		// fault shows when a memtable flush rotates the WAL.
		{"raft log WAL cannot be created", true, false, true},
		{"state WAL cannot be created", false, false, true},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			storageFaultRound(t, c.logDB, &diskFault{syncOnly: c.syncOnly, create: c.create})
		})
	}
}

func storageFaultRound(t *testing.T, logDB bool, fault *diskFault) {
	fs := errorfs.Wrap(vfs.Default, fault)
	cfg := Config{NodeID: "n1", RaftAddr: freeAddr(t), DataDir: t.TempDir(), Bootstrap: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if logDB {
		cfg.LogFS = fs
	} else {
		cfg.StateFS = fs
	}
	const fund = int64(1_000_000_000_000)
	n := mustOpenCfg(t, cfg)
	org := mustFundedOrg(t, n, fund)
	acked := map[string]string{} // reference -> transaction id
	for i := range 20 {
		ref := fmt.Sprint("pre", i)
		r := mustSubmit(t, n, charge(org, ref, 1000))[0]
		if r.Code != engine.CodeOK {
			t.Fatalf("charge %s before the fault: %v", ref, r.Code)
		}
		acked[ref] = r.TxID
	}

	// The fault: four clients send charges in groups of 10 until the node
	// stops, so that requests are queued and in flight when it does. A full
	// state disk is noticed only when Pebble's WAL block fills (its writes
	// are not synced; the raft log holds them), so that case takes a few
	// hundred charges.
	fault.on.Store(true)
	if fault.create {
		db := n.db
		if logDB {
			db = n.logDB
		}
		go func() { _ = db.Flush() }() // rotates the WAL
	}
	var (
		mu           sync.Mutex
		unacked      []string
		ackedInFault int
	)
	deadline := time.Now().Add(30 * time.Second)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000 && n.Fault() == nil && time.Now().Before(deadline); i++ {
				cmds := make([]engine.Command, 10)
				for j := range cmds {
					cmds[j] = charge(org, fmt.Sprintf("f%d-%d-%d", w, i, j), 1000)
				}
				res, err := n.Submit(context.Background(), cmds)
				mu.Lock()
				if err != nil {
					for _, c := range cmds {
						unacked = append(unacked, c.Reference)
					}
				} else {
					for j, r := range res {
						if r.Code != engine.CodeOK {
							t.Errorf("charge %s: %v %s", cmds[j].Reference, r.Code, r.Message)
						}
						acked[cmds[j].Reference] = r.TxID
						ackedInFault++
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if logDB && ackedInFault > 0 {
		t.Fatalf("%d charges acknowledged while the raft log could not be written (%d injected errors)", ackedInFault, fault.hits.Load())
	}
	if n.Fault() == nil {
		t.Fatalf("the node never noticed the fault (%d injected errors)", fault.hits.Load())
	}
	if !errors.Is(n.Fault(), wal.ErrStorageFault) {
		t.Fatalf("fault %v does not wrap wal.ErrStorageFault", n.Fault())
	}
	if logDB && len(unacked) == 0 {
		t.Fatal("no charge failed during the fault")
	}
	select {
	case <-n.Faulted():
	default:
		t.Fatal("Faulted not closed after a fault")
	}
	if n.Ready() {
		t.Fatal("node ready after a storage fault")
	}
	if _, err := n.Submit(context.Background(), []engine.Command{charge(org, "after-fault", 1000)}); !errors.Is(err, ErrStorageFault) {
		t.Fatalf("a stopped node answered a charge with %v, want ErrStorageFault", err)
	}
	unacked = append(unacked, "after-fault")
	t.Logf("fault noticed after %d acknowledged charges, %d unacknowledged, %d injected errors",
		ackedInFault, len(unacked), fault.hits.Load())

	// The disk heals; the node is restarted on the same file system.
	fault.on.Store(false)
	mustCloseWithin(t, n, 20*time.Second)
	n = mustOpenCfg(t, cfg)
	for ref, tx := range acked {
		r := mustSubmit(t, n, charge(org, ref, 1000))[0]
		if r.Code != engine.CodeReplayed || r.TxID != tx {
			t.Fatalf("retry of acknowledged %s: %v %s, want replayed %s", ref, r.Code, r.TxID, tx)
		}
	}
	// An unacknowledged charge may have reached the log before the fault:
	// its retry then replays it; otherwise the retry charges it now.
	replayed := 0
	for _, ref := range unacked {
		r := mustSubmit(t, n, charge(org, ref, 1000))[0]
		switch r.Code {
		case engine.CodeReplayed:
			replayed++
		case engine.CodeOK:
		default:
			t.Fatalf("retry of unacknowledged %s: %v %s", ref, r.Code, r.Message)
		}
		acked[ref] = r.TxID
	}
	mustCloseWithin(t, n, 20*time.Second)

	n = mustOpenCfg(t, cfg)
	defer n.Close()
	mustAuditClean(t, n)
	seen := ledgerRefs(t, n, org)
	for ref, c := range seen {
		if c != 1 {
			t.Fatalf("reference %s applied %d times", ref, c)
		}
	}
	for ref := range acked {
		if seen["charge:"+ref] != 1 {
			t.Fatalf("acknowledged charge %s missing after recovery", ref)
		}
	}
	if len(seen) != len(acked)+1 { // + the funding adjustment
		t.Fatalf("ledger holds %d entries, want %d charges and the funding", len(seen), len(acked))
	}
	w, _ := n.Wallet(org)
	if want := fund - int64(len(acked))*1000; w.BalanceMicros != want {
		t.Fatalf("balance %d after recovery, want %d", w.BalanceMicros, want)
	}
	t.Logf("after recovery: %d charges exactly once, %d unacknowledged ones had reached the log", len(acked), replayed)
}

// mustOpenCfg opens a node with cfg and waits for it to lead.
func mustOpenCfg(t testing.TB, cfg Config) *Node {
	t.Helper()
	n, err := Open(cfg)
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

// mustCloseWithin closes n; a faulted node may report the fault, but Close
// must return.
func mustCloseWithin(t testing.TB, n *Node, d time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- n.Close() }()
	select {
	case err := <-done:
		if err != nil && n.Fault() == nil {
			t.Fatal(err)
		}
	case <-time.After(d):
		var b strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
		t.Fatalf("Close did not return within %v; goroutines:\n%s", d, b.String())
	}
}

// ledgerRefs counts an org's ledger entries by reference.
func ledgerRefs(t testing.TB, n *Node, org string) map[string]int {
	t.Helper()
	seen := map[string]int{}
	q := engine.TxQuery{Limit: 500}
	for {
		page, more, err := n.Transactions(org, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			seen[e.Reference]++
			q.BeforeID = e.ID
		}
		if !more {
			return seen
		}
	}
}
