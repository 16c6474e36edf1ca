package raftstore

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/orbit/orbit/engine"
)

// The leader answers a write as soon as its batch is applied, before the
// state write; a read of stored state that starts after the answer still
// sees the write, and a retry of a debit that admission would refuse on
// the wallet alone still replays. The state write is held by a hook, so
// the order is forced, not raced.
func TestAnsweredBeforeTheStateWriteAndStillReadable(t *testing.T) {
	n := mustOpen(t, t.TempDir(), freeAddr(t))
	defer n.Close()
	org := mustFundedOrg(t, n, 5000)

	release := make(chan struct{})
	var once sync.Once
	held := make(chan struct{})
	hook := func() {
		once.Do(func() {
			close(held)
			<-release
		})
	}
	persistHook.Store(&hook)
	defer persistHook.Store(nil)

	type submitted struct {
		res []engine.Result
		err error
	}
	submit := func(cmds ...engine.Command) chan submitted {
		ch := make(chan submitted, 1)
		go func() {
			res, err := n.Submit(context.Background(), cmds)
			ch <- submitted{res, err}
		}()
		return ch
	}

	// The whole balance: a retry can only replay, admission alone would
	// refuse it.
	first := submit(charge(org, "c1", 5000))
	var tx string
	select {
	case s := <-first:
		if s.err != nil || s.res[0].Code != engine.CodeOK {
			t.Fatalf("charge: %v %+v", s.err, s.res)
		}
		tx = s.res[0].TxID
	case <-time.After(10 * time.Second):
		t.Fatal("the charge was not answered while its state write was held")
	}
	select {
	case <-held:
	default:
		t.Fatal("the charge was answered without its state write starting")
	}

	type listed struct {
		ids []string
		err error
	}
	read := make(chan listed, 1)
	go func() {
		entries, _, err := n.Transactions(org, engine.TxQuery{Limit: 10})
		var ids []string
		for _, e := range entries {
			ids = append(ids, e.ID)
		}
		read <- listed{ids, err}
	}()
	retry := submit(charge(org, "c1", 5000))
	time.Sleep(50 * time.Millisecond) // time for a read or a refusal that does not wait
	close(release)

	select {
	case l := <-read:
		if l.err != nil {
			t.Fatal(l.err)
		}
		found := false
		for _, id := range l.ids {
			found = found || id == tx
		}
		if !found {
			t.Fatalf("a read begun after the charge was answered lists %v, without %s", l.ids, tx)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the read did not return after the state write")
	}
	select {
	case s := <-retry:
		if s.err != nil || s.res[0].Code != engine.CodeReplayed || s.res[0].TxID != tx {
			t.Fatalf("retry of the charge: %v %+v; want a replay of %s", s.err, s.res, tx)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the retry was not answered")
	}
	mustAuditClean(t, n)
}
