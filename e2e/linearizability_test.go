package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/orbit/orbit/internal/testserver"
)

// A wallet model for porcupine: charges with references (idempotent) and
// balance reads. A history of concurrent clients is linearizable when some
// order of the operations, each taking effect between its call and its
// return, explains every answer.

type walletInput struct {
	read   bool
	ref    string
	amount int64
}

type walletOutput struct {
	status  int   // charges: 201, 200 or 402
	balance int64 // reads
}

type walletState struct {
	balance int64
	applied string // sorted, comma-separated references (immutable value)
}

func (s walletState) has(ref string) bool {
	return strings.Contains(","+s.applied+",", ","+ref+",")
}

func (s walletState) with(ref string) string {
	refs := []string{ref}
	if s.applied != "" {
		refs = append(refs, strings.Split(s.applied, ",")...)
	}
	sort.Strings(refs)
	return strings.Join(refs, ",")
}

func walletModel(initial int64) porcupine.Model {
	return porcupine.Model{
		Init: func() any { return walletState{balance: initial} },
		Step: func(state, input, output any) (bool, any) {
			s, in, out := state.(walletState), input.(walletInput), output.(walletOutput)
			if in.read {
				return out.balance == s.balance, s
			}
			switch {
			case s.has(in.ref):
				return out.status == 200, s // a repeat replays
			case out.status == 201 || out.status == 200:
				// 200 for a reference not applied before: a retry whose
				// first attempt (answered 503) took effect.
				if s.balance <= 0 || s.balance < in.amount {
					return false, s
				}
				return true, walletState{balance: s.balance - in.amount, applied: s.with(in.ref)}
			case out.status == 402:
				return s.balance <= 0 || s.balance < in.amount, s
			}
			return false, s
		},
		DescribeOperation: func(input, output any) string {
			in, out := input.(walletInput), output.(walletOutput)
			if in.read {
				return fmt.Sprintf("balance -> %d", out.balance)
			}
			return fmt.Sprintf("charge %s %d -> %d", in.ref, in.amount, out.status)
		},
	}
}

// TestLinearizableChargesAndReads records concurrent charges (fresh and
// repeated references, more than the wallet can pay) and balance reads on a
// single node, and checks the history with porcupine. A violation fails the
// test and saves the history as an HTML visualization.
func TestLinearizableChargesAndReads(t *testing.T) {
	s := testserver.Start(t)
	org := s.MustOrg(t, "Linearizable", 60_000)
	checkLinearizable(t, 60_000, func(client, attempt int) *testserver.Client { return s.Key(org.Key) }, nil)
}

// TestLinearizableAcrossLeaderKill runs the same workload through every node
// of a 3-node cluster while the leader is killed with SIGKILL.
func TestLinearizableAcrossLeaderKill(t *testing.T) {
	c := startCluster(t, 3)
	org := c.nodes[0].MustOrg(t, "LinearizableCluster", 60_000)
	pick := func(client, attempt int) *testserver.Client {
		for i := 0; i < len(c.nodes); i++ {
			n := (client + attempt + i) % len(c.nodes)
			if !c.isDead(n) {
				return c.nodes[n].Key(org.Key)
			}
		}
		return c.nodes[0].Key(org.Key)
	}
	var killedAt time.Time
	kill := func() {
		time.Sleep(300 * time.Millisecond)
		leader := c.leader()
		c.dead[leader].Store(true)
		c.nodes[leader].Kill()
		killedAt = time.Now()
	}
	last := checkLinearizable(t, 60_000, pick, kill)
	if !killedAt.Before(last) {
		t.Fatalf("the leader was killed at %s, after the last operation returned at %s", killedAt, last)
	}
}

// checkLinearizable runs 8 clients of charges and reads through client()
// (which may change node between attempts), runs disrupt (if any) while they
// do, and checks the history with porcupine.
// It returns when the last operation returned.
func checkLinearizable(t *testing.T, fund int64, client func(client, attempt int) *testserver.Client, disrupt func()) time.Time {
	amounts := []int64{1000, 3000, 7000}
	var mu sync.Mutex
	var history []porcupine.Operation
	var wg sync.WaitGroup
	if disrupt != nil {
		wg.Add(1)
		go func() { defer wg.Done(); disrupt() }()
	}
	for cl := 0; cl < 8; cl++ {
		wg.Add(1)
		go func(cl int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(cl), 7))
			for i := 0; i < 30; i++ {
				if disrupt != nil {
					time.Sleep(40 * time.Millisecond) // spread the workload across the disruption
				}
				var in walletInput
				if rng.IntN(3) == 0 {
					in.read = true
				} else {
					// A small pool of references shared by all clients, so
					// repeats race with first attempts; each reference has
					// one amount, so a repeat is the same request.
					n := rng.IntN(40)
					in.ref = fmt.Sprint("lin-", n)
					in.amount = amounts[n%len(amounts)]
				}
				call := time.Now().UnixNano()
				var out walletOutput
				for attempt := 0; ; attempt++ {
					c := client(cl, attempt)
					var r *testserver.Response
					var err error
					if in.read {
						r, err = c.TryDo("GET", "/api/v1/billing/balance", nil)
					} else {
						r, err = c.TryDo("POST", "/api/v1/billing/charges", chargeBody(in.ref, in.amount))
					}
					if err == nil && r.Status != 503 {
						out.status = r.Status
						if in.read && r.Status == 200 {
							out.balance = int64(r.Data()["balance_micros"].(float64))
						}
						break
					}
					if attempt > 300 {
						t.Errorf("no definite answer for %+v", in)
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
				ret := time.Now().UnixNano()
				mu.Lock()
				history = append(history, porcupine.Operation{ClientId: cl, Input: in, Call: call, Output: out, Return: ret})
				mu.Unlock()
			}
		}(cl)
	}
	wg.Wait()
	var last time.Time
	for _, op := range history {
		if r := time.Unix(0, op.Return); r.After(last) {
			last = r
		}
	}
	res, info := porcupine.CheckOperationsVerbose(walletModel(fund), history, 30*time.Second)
	switch res {
	case porcupine.Ok:
		t.Logf("%d operations: linearizable", len(history))
		// The check is not vacuous: the same history against a wallet that
		// started with one micro more is not linearizable.
		if porcupine.CheckOperationsTimeout(walletModel(fund+1), history, 30*time.Second) != porcupine.Illegal {
			t.Fatal("the checker accepted the history against the wrong starting balance")
		}
	case porcupine.Unknown:
		t.Fatalf("the checker timed out on %d operations", len(history))
	default:
		path := filepath.Join(os.TempDir(), fmt.Sprintf("orbit-history-%d.html", time.Now().UnixNano()))
		if f, err := os.Create(path); err == nil {
			_ = porcupine.Visualize(walletModel(fund), info, f)
			f.Close()
		}
		t.Fatalf("history of %d operations is not linearizable; visualization saved to %s", len(history), path)
	}
	return last
}
