package raftstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/orbit/orbit/engine"
	"github.com/orbit/orbit/internal/linearize"
)

// Linearizability of raftstore's own answers (Submit's results and
// ReadBarrier + Wallet reads) while the network between three in-process
// nodes is cut in the ways a real network fails: the leader isolated, the
// leader deaf (it sends, hears nothing), the leader mute (it hears, its
// sends are lost), a leader cut from one follower only, a follower isolated.
// Clients keep sending to every node, the partitioned old leader included:
// a leader that lost its quorum must not acknowledge a write nor answer a
// read the majority has moved past. The history is checked with the wallet
// model of internal/linearize.
//
// `go test` runs a short version (one seed, two faults); ORBIT_CHAOS=1 (set
// by `make chaos`) runs ORBIT_CHAOS_SEEDS seeds (default 10) of more clients
// and more faults, and prints a CHAOS summary line.

type partitionConfig struct {
	seeds, clients, faults int
	chargeRefs, holdRefs   int
}

func partitionChaosConfig() (partitionConfig, bool) {
	if os.Getenv("ORBIT_CHAOS") == "" {
		return partitionConfig{seeds: 1, clients: 6, faults: 2, chargeRefs: 40, holdRefs: 12}, false
	}
	seeds := 10
	if s, err := strconv.Atoi(os.Getenv("ORBIT_CHAOS_SEEDS")); err == nil && s > 0 {
		seeds = s
	}
	return partitionConfig{seeds: seeds, clients: 10, faults: 8, chargeRefs: 160, holdRefs: 50}, true
}

const partitionFundMicros = 60_000

func TestLinearizableUnderPartitions(t *testing.T) {
	cfg, chaos := partitionChaosConfig()
	histories, faults, violations := 0, 0, 0
	for seed := 1; seed <= cfg.seeds; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			n, ok := runPartitionHistory(t, uint64(seed), cfg)
			histories++
			faults += n
			if !ok {
				violations++
			}
		})
	}
	if chaos {
		fmt.Println(linearize.ChaosLine("raftstore-partitions", histories, cfg.seeds, faults, violations))
	}
}

// runPartitionHistory records one history on a fresh cluster while
// injecting cfg.faults faults chosen by seed, checks it, and returns the
// faults injected and whether the history was linearizable.
func runPartitionHistory(t *testing.T, seed uint64, cfg partitionConfig) (int, bool) {
	c := startTestCluster(t, 3)
	org := mustFundedOrg(t, c.nodes[c.waitLeader()], partitionFundMicros)
	c.waitConverged()

	rec := linearize.NewRecorder()
	w := linearize.NewWorkload(cfg.chargeRefs, cfg.holdRefs)
	done := make(chan struct{})
	injected := 0
	go func() {
		defer close(done)
		injected = c.injectFaults(rand.New(rand.NewPCG(seed, 99)), cfg.faults, rec)
	}()
	d := linearize.Driver{
		Clients: cfg.clients, OpsPerClient: 100_000, Seed: seed,
		Pace: 30 * time.Millisecond, Attempts: 200, Backoff: 20 * time.Millisecond, GiveUpPercent: 10,
		// A hard bound; clients normally stop a second after the last
		// fault heals, so the history shows the recovered cluster too.
		Until: time.Now().Add(time.Duration(cfg.faults)*30*time.Second + 10*time.Second),
	}
	stop := make(chan struct{})
	go func() {
		<-done
		time.Sleep(time.Second)
		close(stop)
	}()
	d.Stop = stop
	d.Run(w, rec, func(cl, attempt int, in linearize.Input) (linearize.Output, string, bool) {
		// Like a client that follows the leader: send to a node that
		// believes it leads (a partitioned old leader included), trying
		// them in turn. A node that knows it is not the leader would refuse
		// before proposing, which tells nothing.
		for i := range c.nodes {
			if n := c.nodes[(cl+attempt+i)%len(c.nodes)]; n.IsLeader() {
				return tryOn(n, org, w, in)
			}
		}
		return linearize.Output{Outcome: linearize.NotSent}, "", true
	})
	<-done

	// After the faults: one agreed leader, every replica identical, every
	// balance equal to its ledger, and a final read in the history.
	c.net.Heal()
	leader := c.waitLeader()
	c.waitConverged()
	for _, n := range c.nodes {
		mustAuditClean(t, n)
	}
	call := rec.Now()
	if out, _, ok := tryOn(c.nodes[leader], org, w, linearize.Input{Kind: linearize.Read}); ok {
		rec.Add(0, linearize.Input{Kind: linearize.Read}, call, out)
	}
	ops, unknown, retries, _ := rec.Stats()
	t.Logf("seed %d: %d operations, %d with unknown outcome, %d attempts without answer, %d faults\n%s", seed, ops, unknown, retries, injected, rec.Summary())
	return injected, linearize.Check(t, fmt.Sprintf("raftstore-partitions-seed%d", seed), partitionFundMicros, rec)
}

// injectFaults injects n faults one after another, each held for 1.5-3 s
// and healed, waiting for an agreed leader between them. It records each in
// the history and returns how many it injected.
func (c *testCluster) injectFaults(rng *rand.Rand, n int, rec *linearize.Recorder) int {
	kinds := []string{"isolate-leader", "leader-deaf", "leader-mute", "leader-cut-from-one", "isolate-follower"}
	injected := 0
	for i := 0; i < n; i++ {
		time.Sleep(time.Duration(500+rng.IntN(1000)) * time.Millisecond)
		leader := c.leaderIndex()
		if leader < 0 {
			continue
		}
		f1, f2 := (leader+1)%3, (leader+2)%3
		kind := kinds[rng.IntN(len(kinds))]
		if i == 0 {
			kind = "isolate-leader" // the short run always has the classic one
		} else if i == 1 && n == 2 {
			kind = "leader-deaf"
		}
		start := rec.Now()
		switch kind {
		case "isolate-leader":
			c.net.Isolate(leader, 3)
		case "leader-deaf":
			c.net.Cut(f1, leader)
			c.net.Cut(f2, leader)
		case "leader-mute":
			c.net.Cut(leader, f1)
			c.net.Cut(leader, f2)
		case "leader-cut-from-one":
			c.net.Cut(leader, f1)
			c.net.Cut(f1, leader)
		case "isolate-follower":
			c.net.Isolate(f2, 3)
		}
		time.Sleep(time.Duration(1500+rng.IntN(1500)) * time.Millisecond)
		c.net.Heal()
		rec.Fault(start, rec.Now(), fmt.Sprintf("%s (leader n%d)", kind, leader+1))
		injected++
		// Wait (bounded) for the cluster to settle before the next fault.
		deadline := time.Now().Add(20 * time.Second)
		for c.leaderIndex() < 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	return injected
}

// leaderIndex is the node that believes it leads, -1 when none or several.
func (c *testCluster) leaderIndex() int {
	idx := -1
	for i, n := range c.nodes {
		if n.IsLeader() {
			if idx >= 0 {
				return -1
			}
			idx = i
		}
	}
	return idx
}

// tryOn sends one attempt of in to node n: a definite answer, or
// definite=false when the outcome is unknown (any error of Submit or of
// the read barrier).
func tryOn(n *Node, org string, w *linearize.Workload, in linearize.Input) (linearize.Output, string, bool) {
	if in.Kind == linearize.HoldRead {
		if err := n.ReadBarrier(); err != nil {
			return linearize.Output{}, "", false
		}
		h, ok, err := n.Hold(org, w.ID(in.Target))
		if err != nil || !ok {
			return linearize.Output{Outcome: linearize.Other}, "", true
		}
		return linearize.Output{Outcome: linearize.Applied, HoldStatus: h.Status}, "", true
	}
	if in.Kind == linearize.Read {
		if err := n.ReadBarrier(); err != nil {
			return linearize.Output{}, "", false
		}
		wv, ok := n.Wallet(org)
		if !ok {
			return linearize.Output{Outcome: linearize.Other}, "", true
		}
		return linearize.Output{Outcome: linearize.Applied, BalanceMicros: wv.BalanceMicros, ReservedMicros: wv.ReservedMicros}, "", true
	}
	cmd := engine.Command{OrgID: org, Channel: "sms", AmountMicros: in.Amount}
	switch in.Kind {
	case linearize.Charge:
		cmd.Kind, cmd.Reference, cmd.BodyHash = engine.CmdCharge, in.Ref, fmt.Sprint("charge ", in.Amount)
	case linearize.Refund:
		cmd.Kind, cmd.Reference, cmd.TxID = engine.CmdRefund, in.Ref, w.ID(in.Target)
		cmd.BodyHash = fmt.Sprint("refund ", cmd.TxID, " ", in.Amount)
	case linearize.HoldCreate:
		cmd.Kind, cmd.Reference, cmd.TTLSeconds = engine.CmdHoldCreate, in.Ref, in.TTLSeconds
		cmd.BodyHash = fmt.Sprint("hold ", in.Amount, " ", in.TTLSeconds)
	case linearize.HoldCommit:
		cmd.Kind, cmd.TxID, cmd.BodyHash = engine.CmdHoldCommit, w.ID(in.Target), fmt.Sprint("commit ", in.Amount)
	case linearize.HoldRelease:
		cmd.Kind, cmd.TxID, cmd.AmountMicros = engine.CmdHoldRelease, w.ID(in.Target), 0
	case linearize.HoldExtend:
		cmd.Kind, cmd.TxID, cmd.Reference = engine.CmdHoldExtend, w.ID(in.Target), in.Ref
		cmd.BodyHash = fmt.Sprint("extend ", cmd.TxID, " ", in.Amount)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := n.Submit(ctx, []engine.Command{cmd})
	if err != nil {
		return linearize.Output{}, "", false
	}
	r := res[0]
	out := linearize.Output{BalanceMicros: r.Wallet.BalanceMicros, ReservedMicros: r.Wallet.ReservedMicros}
	switch r.Code {
	case engine.CodeOK:
		out.Outcome = linearize.Applied
	case engine.CodeReplayed:
		out.Outcome = linearize.Replayed
	case engine.CodeInsufficientFunds:
		out.Outcome = linearize.Refused
	case engine.CodeInvalid:
		out.Outcome = linearize.Invalid
	case engine.CodeReservationClosed:
		out.Outcome = linearize.Closed
	default:
		out.Outcome = linearize.Other
	}
	id := r.TxID
	if r.Hold != nil {
		id, out.CapturedMicros = r.Hold.ID, r.Hold.CapturedMicros
	}
	return out, id, true
}

// The harness is not vacuous: reads served from a partitioned follower's
// local state (no read barrier, as a broken read path would) while the
// majority goes on charging must be caught as not linearizable.
func TestPartitionCheckerCatchesStaleReads(t *testing.T) {
	if testing.Short() {
		t.Skip("runs in the full pass of make test; the -race -short pass keeps TestLinearizableUnderPartitions")
	}
	c := startTestCluster(t, 3)
	leader := c.waitLeader()
	org := mustFundedOrg(t, c.nodes[leader], partitionFundMicros)
	c.waitConverged()
	stale := (leader + 1) % 3
	c.net.Isolate(stale, 3)
	rec := linearize.NewRecorder()
	w := linearize.NewWorkload(40, 12)
	d := linearize.Driver{Clients: 4, OpsPerClient: 40, Seed: 1, Pace: 10 * time.Millisecond, Attempts: 50, Backoff: 20 * time.Millisecond,
		Until: time.Now().Add(20 * time.Second)}
	d.Run(w, rec, func(cl, attempt int, in linearize.Input) (linearize.Output, string, bool) {
		if in.Kind == linearize.Read && cl%2 == 0 {
			wv, _ := c.nodes[stale].Wallet(org) // the broken read: local state, no barrier
			return linearize.Output{Outcome: linearize.Applied, BalanceMicros: wv.BalanceMicros, ReservedMicros: wv.ReservedMicros}, "", true
		}
		return tryOn(c.nodes[leader], org, w, in)
	})
	c.net.Heal()
	if res := linearize.Verdict(partitionFundMicros, rec); res != porcupine.Illegal {
		t.Fatalf("stale follower reads: the checker said %s, want illegal\n%s", res, rec.Summary())
	}
}
