package e2e

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/orbit/orbit/internal/linearize"
	"github.com/orbit/orbit/internal/testserver"
)

// Linearizability through the real HTTP API: concurrent clients charge,
// refund (full and partial, with Idempotency-Keys), hold (some expiring),
// extend, commit, release and read one wallet (its balance and its holds),
// and porcupine checks the history against the wallet model of
// internal/linearize (exact to SPEC.md). A violation fails the test and
// saves the history (HTML visualization and JSON) under $ORBIT_HISTORY_DIR
// or the temporary directory.
//
// Partitions are tested in-process (raftstore/linearizability_test.go),
// where links between nodes can be cut without root; here the fault is the
// one a process can suffer: the leader killed with SIGKILL.

const linFundMicros = 60_000

// TestLinearizableWallet is one node under concurrent clients. The pace
// spreads the run over a few seconds, so holds with a TTL of 1-2 s expire
// during it.
func TestLinearizableWallet(t *testing.T) {
	s := testserver.Start(t)
	org := s.MustOrg(t, "Linearizable", linFundMicros)
	rec := linearize.NewRecorder()
	w := linearize.NewWorkload(40, 12)
	d := linearize.Driver{Clients: 8, OpsPerClient: 40, Seed: 7, Pace: 40 * time.Millisecond, Attempts: 300, Backoff: 20 * time.Millisecond,
		Until: time.Now().Add(60 * time.Second)}
	client := s.Key(org.Key)
	d.Run(w, rec, func(_, _ int, in linearize.Input) (linearize.Output, string, bool) {
		return tryHTTP(client, w, in)
	})
	t.Log(rec.Summary())
	linearize.Check(t, "e2e-single-node", linFundMicros, rec)
}

// TestLinearizableAcrossLeaderKill runs the workload through every node of
// a 3-node cluster while the leader is killed with SIGKILL. With
// ORBIT_CHAOS=1 (make chaos) it runs ORBIT_CHAOS_SEEDS clusters (default 4,
// at most 6), each through five rounds of killing the leader (restarted
// after every round but the last), and prints a CHAOS summary line.
func TestLinearizableAcrossLeaderKill(t *testing.T) {
	seeds, rounds, clients, chaos := 1, 1, 8, os.Getenv("ORBIT_CHAOS") != ""
	if chaos {
		seeds, rounds, clients = 4, 5, 12
		if n, err := strconv.Atoi(os.Getenv("ORBIT_CHAOS_SEEDS")); err == nil && n > 0 {
			seeds = min(n, 6)
		}
	}
	histories, faults, violations := 0, 0, 0
	for seed := 1; seed <= seeds; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			n, ok := runLeaderKillHistory(t, uint64(seed), rounds, clients)
			histories++
			faults += n
			if !ok {
				violations++
			}
		})
	}
	if chaos {
		fmt.Println(linearize.ChaosLine("e2e-leader-kills", histories, seeds, faults, violations))
	}
}

// runLeaderKillHistory records one history on a fresh cluster through
// rounds of killing the leader (and, but for the last round, restarting
// it), checks it, and returns the kills and whether it was linearizable.
func runLeaderKillHistory(t *testing.T, seed uint64, rounds, clients int) (int, bool) {
	c := startCluster(t, 3)
	org := c.nodes[0].MustOrg(t, "LinearizableCluster", linFundMicros)
	rec := linearize.NewRecorder()
	w := linearize.NewWorkload(40*rounds, 12*rounds)
	stop := make(chan struct{})
	kills := 0
	var lastKillAt int64
	go func() {
		defer close(stop)
		rng := rand.New(rand.NewPCG(seed, 5))
		for r := 0; r < rounds; r++ {
			time.Sleep(time.Duration(300+rng.IntN(700)) * time.Millisecond)
			leader := c.leader()
			start := rec.Now()
			c.dead[leader].Store(true)
			c.nodes[leader].Kill()
			lastKillAt = rec.Now()
			kills++
			time.Sleep(time.Duration(1500+rng.IntN(1500)) * time.Millisecond)
			if r < rounds-1 {
				c.nodes[leader].Start() // same directory: it catches up
				c.dead[leader].Store(false)
			}
			rec.Fault(start, rec.Now(), fmt.Sprintf("kill -9 leader node%d", leader+1))
		}
		time.Sleep(500 * time.Millisecond)
	}()
	d := linearize.Driver{Clients: clients, OpsPerClient: 100_000, Seed: seed, Pace: 40 * time.Millisecond,
		Attempts: 300, Backoff: 20 * time.Millisecond, GiveUpPercent: 10,
		Stop: stop, Until: time.Now().Add(time.Duration(rounds)*20*time.Second + 10*time.Second)}
	d.Run(w, rec, func(cl, attempt int, in linearize.Input) (linearize.Output, string, bool) {
		for i := 0; i < len(c.nodes); i++ {
			if n := (cl + attempt + i) % len(c.nodes); !c.isDead(n) {
				return tryHTTP(c.nodes[n].Key(org.Key), w, in)
			}
		}
		return linearize.Output{Outcome: linearize.NotSent}, "", true
	})
	<-stop
	ops, unknown, retries, _ := rec.Stats()
	t.Logf("seed %d: %d operations, %d with unknown outcome, %d attempts without answer, %d leader kills\n%s",
		seed, ops, unknown, retries, kills, rec.Summary())
	// The kills happened while clients ran: operations returned after the
	// last one.
	var lastReturn int64
	for _, op := range rec.Operations() {
		if op.Output.(linearize.Output).Outcome != linearize.Unknown {
			lastReturn = max(lastReturn, op.Return)
		}
	}
	if kills != rounds || lastKillAt >= lastReturn {
		t.Fatalf("%d of %d leader kills; the last at %d ns, the last answer at %d ns", kills, rounds, lastKillAt, lastReturn)
	}
	return kills, linearize.Check(t, fmt.Sprintf("e2e-leader-kill-seed%d", seed), linFundMicros, rec)
}

// tryHTTP sends one attempt of in through the org API. A 503 or a transport
// error is an unknown outcome (the request may have been applied); a
// refused connection was never sent.
func tryHTTP(c *testserver.Client, w *linearize.Workload, in linearize.Input) (linearize.Output, string, bool) {
	var r *testserver.Response
	var err error
	switch in.Kind {
	case linearize.Read:
		r, err = c.TryDo("GET", "/api/v1/billing/balance", nil)
	case linearize.HoldRead:
		r, err = c.TryDo("GET", "/api/v1/billing/reservations/"+w.ID(in.Target), nil)
	case linearize.Charge:
		r, err = c.TryDo("POST", "/api/v1/billing/charges", chargeBody(in.Ref, in.Amount))
	case linearize.Refund:
		body := map[string]any{"transaction_id": w.ID(in.Target)}
		if in.Amount > 0 {
			body["amount_micros"] = in.Amount
		}
		r, err = c.With("Idempotency-Key", in.Ref).TryDo("POST", "/api/v1/billing/refunds", body)
	case linearize.HoldCreate:
		body := map[string]any{"reference": in.Ref, "channel": "sms", "amount_micros": in.Amount}
		if in.TTLSeconds > 0 {
			body["ttl_seconds"] = in.TTLSeconds
		}
		r, err = c.TryDo("POST", "/api/v1/billing/reservations", body)
	case linearize.HoldCommit:
		r, err = c.TryDo("POST", "/api/v1/billing/reservations/"+w.ID(in.Target)+"/commit", map[string]any{"amount_micros": in.Amount})
	case linearize.HoldRelease:
		r, err = c.TryDo("POST", "/api/v1/billing/reservations/"+w.ID(in.Target)+"/release", nil)
	case linearize.HoldExtend:
		r, err = c.With("Idempotency-Key", in.Ref).TryDo("POST", "/api/v1/billing/reservations/"+w.ID(in.Target)+"/extend",
			map[string]any{"amount_micros": in.Amount})
	}
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return linearize.Output{Outcome: linearize.NotSent}, "", true
		}
		return linearize.Output{}, "", false
	}
	if r.Status == 503 {
		return linearize.Output{}, "", false
	}
	out := linearize.Output{Status: r.Status}
	switch {
	case r.Status == 201:
		out.Outcome = linearize.Applied
	case r.Status == 200 && r.Header.Get("Idempotent-Replayed") == "true":
		out.Outcome = linearize.Replayed
	case r.Status == 200:
		out.Outcome = linearize.Applied
	case r.Status == 402 && r.ErrorCode() == "insufficient_funds":
		out.Outcome = linearize.Refused
	case r.Status == 400 && r.ErrorCode() == "invalid_request":
		out.Outcome = linearize.Invalid
	case r.Status == 409 && r.ErrorCode() == "reservation_closed":
		out.Outcome = linearize.Closed
	default:
		out.Outcome = linearize.Other
		return out, "", true
	}
	data := r.Data()
	if in.Kind == linearize.HoldRead {
		out.HoldStatus, _ = data["status"].(string)
		return out, "", true
	}
	wallet := data
	if in.Kind != linearize.Read {
		wallet, _ = data["balance"].(map[string]any)
	}
	out.BalanceMicros, out.ReservedMicros = jsonInt(wallet, "balance_micros"), jsonInt(wallet, "reserved_micros")
	var id string
	if tx, ok := data["transaction"].(map[string]any); ok && in.Kind == linearize.Charge {
		id, _ = tx["id"].(string)
	}
	if h, ok := data["reservation"].(map[string]any); ok {
		if in.Kind == linearize.HoldCreate {
			id, _ = h["id"].(string)
		}
		out.CapturedMicros = jsonInt(h, "captured_micros")
	}
	return out, id, true
}

// jsonInt reads a JSON number field as int64 (0 when absent).
func jsonInt(m map[string]any, key string) int64 {
	f, _ := m[key].(float64)
	return int64(f)
}
