package e2e

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/orbit/orbit/internal/testserver"
)

// cluster is a set of real orbitd processes replicating through Raft on
// loopback.
type cluster struct {
	t     *testing.T
	nodes []*testserver.Server
	dead  [8]atomic.Bool // killed or frozen nodes, skipped by clients
}

func startCluster(t *testing.T, n int, extra ...string) *cluster {
	c := &cluster{t: t}
	for i := 0; i < n; i++ {
		s := testserver.New(t)
		s.ExtraArgs = append([]string{"--node-id", fmt.Sprint("node", i+1)}, extra...)
		if i > 0 {
			s.ExtraArgs = append(s.ExtraArgs, "--join", c.nodes[0].HTTPAddr)
		}
		s.Start()
		c.nodes = append(c.nodes, s)
	}
	testserver.WaitFor(t, 30*time.Second, "every node a voter", func() bool {
		info, ok := c.info(0)
		return ok && len(info["nodes"].([]any)) == n
	})
	c.waitConverged()
	return c
}

// info is a node's GET /admin/v1/cluster.
func (c *cluster) info(i int) (map[string]any, bool) {
	r, err := c.nodes[i].Admin().TryDo("GET", "/admin/v1/cluster", nil)
	if err != nil || r.Status != 200 {
		return nil, false
	}
	return r.Data(), true
}

// leader returns the index of the node every live node names as leader.
func (c *cluster) leader() int {
	c.t.Helper()
	idx := -1
	testserver.WaitFor(c.t, 15*time.Second, "an agreed leader", func() bool {
		var names []string
		for i := range c.nodes {
			if c.dead[i].Load() {
				continue
			}
			info, ok := c.info(i)
			if !ok || info["leader"] == nil {
				return false
			}
			names = append(names, info["leader"].(string))
		}
		for _, n := range names[1:] {
			if n != names[0] {
				return false
			}
		}
		fmt.Sscanf(names[0], "node%d", &idx)
		idx--
		return idx >= 0 && !c.dead[idx].Load()
	})
	return idx
}

// waitConverged waits until every live node reports the same applied index
// and state digest, and returns the digest.
func (c *cluster) waitConverged() string {
	c.t.Helper()
	var digest string
	testserver.WaitFor(c.t, 30*time.Second, "replicas with identical state", func() bool {
		digest = ""
		var applied any
		for i := range c.nodes {
			if c.dead[i].Load() {
				continue
			}
			info, ok := c.info(i)
			if !ok || info["digest"] == "" {
				return false
			}
			if digest == "" {
				digest, applied = info["digest"].(string), info["applied_index"]
				continue
			}
			if info["digest"] != digest || info["applied_index"] != applied {
				return false
			}
		}
		return digest != ""
	})
	return digest
}

// charger sends charges through every live node, retrying each reference
// on another node until it gets a definite answer, and records what was
// acknowledged.
type charger struct {
	c       *cluster
	key     string
	mu      sync.Mutex
	acked   map[string]string // reference -> transaction id
	count   atomic.Int64
	lastOK  atomic.Int64 // unix nanos of the last 2xx
	stop    chan struct{}
	wg      sync.WaitGroup
	dupErrs atomic.Int64
}

func (c *cluster) startCharging(key string, workers int) *charger {
	ch := &charger{c: c, key: key, acked: map[string]string{}, stop: make(chan struct{})}
	for w := 0; w < workers; w++ {
		ch.wg.Add(1)
		go ch.run(w)
	}
	return ch
}

func (ch *charger) run(w int) {
	defer ch.wg.Done()
	for i := 0; i < 5000; i++ {
		ref := fmt.Sprintf("w%d-%d", w, i)
		for attempt := 0; attempt < 200; attempt++ {
			select {
			case <-ch.stop:
				return
			default:
			}
			node := (w + i + attempt) % len(ch.c.nodes)
			if ch.c.isDead(node) {
				continue
			}
			r, err := ch.c.nodes[node].Key(ch.key).TryDo("POST", "/api/v1/billing/charges", chargeBody(ref, 1000))
			if err != nil || r.Status == 503 {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			if r.Status == 201 || r.Status == 200 {
				id := r.Data()["transaction"].(map[string]any)["id"].(string)
				ch.mu.Lock()
				if prev, seen := ch.acked[ref]; seen && prev != id {
					ch.dupErrs.Add(1)
				}
				ch.acked[ref] = id
				ch.mu.Unlock()
				ch.count.Add(1)
				ch.lastOK.Store(time.Now().UnixNano())
			}
			break
		}
	}
}

func (ch *charger) finish() {
	close(ch.stop)
	ch.wg.Wait()
}

func (c *cluster) isDead(i int) bool { return c.dead[i].Load() }

// verifyLedger checks through the cluster that every acknowledged charge is
// in the ledger exactly once and the balance is the funding less the spends.
func (c *cluster) verifyLedger(node int, key string, fund int64, acked map[string]string) {
	t := c.t
	t.Helper()
	cl := c.nodes[node].Key(key)
	spends := readSpends(t, cl)
	refs, ids, spent := spends.refs, spends.ids, spends.spent
	for ref, n := range refs {
		if n != 1 {
			t.Fatalf("%s in the ledger %d times", ref, n)
		}
	}
	for ref, id := range acked {
		if refs["charge:"+ref] != 1 || !ids[id] {
			t.Fatalf("acknowledged charge %s (%s) missing from the ledger", ref, id)
		}
	}
	bal := cl.Do("GET", "/api/v1/billing/balance", nil).Expect(t, 200).Data()
	if num(t, bal, "balance_micros") != fund-spent {
		t.Fatalf("balance %d, want funding %d less spends %d", num(t, bal, "balance_micros"), fund, spent)
	}
	audit := c.nodes[node].Admin().Do("GET", "/admin/v1/audit", nil).Expect(t, 200).Data()
	if len(audit["mismatches"].([]any)) != 0 {
		t.Fatalf("audit: %v", audit)
	}
}

// TestClusterFailoverLosesNothing runs charges through every node of a
// 3-node cluster, kills the leader with SIGKILL mid-load three times, and
// checks that writes resume within seconds, every acknowledged charge is in
// the ledger exactly once, the replicas are identical, and a restarted node
// catches up to the same state.
func TestClusterFailoverLosesNothing(t *testing.T) {
	const fund = 1_000_000_000
	c := startCluster(t, 3)
	org := c.nodes[1].MustOrg(t, "Cluster", fund) // through a follower: forwarded
	ch := c.startCharging(org.Key, 6)
	for round := 1; round <= 3; round++ {
		before := ch.count.Load()
		testserver.WaitFor(t, 30*time.Second, "charges flowing", func() bool { return ch.count.Load() >= before+100 })
		leader := c.leader()
		c.nodes[leader].Kill()
		c.dead[leader].Store(true)
		killedAt := time.Now()
		after := ch.count.Load()
		testserver.WaitFor(t, 20*time.Second, "writes after the leader died", func() bool {
			return ch.count.Load() > after+20 && time.Unix(0, ch.lastOK.Load()).After(killedAt)
		})
		t.Logf("round %d: killed leader node%d; writes accepted again within %s", round, leader+1, time.Since(killedAt).Round(10*time.Millisecond))
		c.nodes[leader].Start() // restart on the same directory: it catches up
		c.dead[leader].Store(false)
	}
	ch.finish()
	if ch.dupErrs.Load() > 0 {
		t.Fatalf("%d references answered with two different transactions", ch.dupErrs.Load())
	}
	digest := c.waitConverged()
	t.Logf("%d acknowledged charges; replicas converged on digest %s", len(ch.acked), digest[:16])
	for i := range c.nodes {
		c.verifyLedger(i, org.Key, fund, ch.acked)
	}
}

// TestClusterLeaderPausedWritesGoOn freezes the leader (SIGSTOP) so the
// majority elects another, keeps writing through it, then resumes the old
// leader: nothing acknowledged is lost, a charge sent to the frozen leader
// is applied at most once (a retry with its reference is a replay), and the
// old leader converges on the majority's state.
func TestClusterLeaderPausedWritesGoOn(t *testing.T) {
	const fund = 1_000_000_000
	c := startCluster(t, 3)
	org := c.nodes[0].MustOrg(t, "Partition", fund)
	leader := c.leader()
	old := c.nodes[leader]
	if err := syscall.Kill(old.PID(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	c.dead[leader].Store(true)
	stuck := make(chan struct{})
	go func() {
		defer close(stuck)
		// Unacknowledged: the client gives up on the frozen leader.
		_, _ = old.KeyWithTimeout(org.Key, time.Second).TryDo("POST", "/api/v1/billing/charges", chargeBody("to-frozen-leader", 1000))
	}()
	ch := c.startCharging(org.Key, 4)
	testserver.WaitFor(t, 30*time.Second, "writes through the majority", func() bool { return ch.count.Load() >= 200 })
	<-stuck
	if err := syscall.Kill(old.PID(), syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	c.dead[leader].Store(false)
	testserver.WaitFor(t, 30*time.Second, "more writes after the old leader resumed", func() bool { return ch.count.Load() >= 300 })
	ch.finish()
	// The charge the frozen leader got, retried by its client: one charge at most.
	retry := c.nodes[(leader+1)%3].Key(org.Key).Do("POST", "/api/v1/billing/charges", chargeBody("to-frozen-leader", 1000))
	if retry.Status != 200 && retry.Status != 201 {
		t.Fatalf("retry of the unacknowledged charge: %d %s", retry.Status, retry.Body)
	}
	ch.mu.Lock()
	ch.acked["to-frozen-leader"] = retry.Data()["transaction"].(map[string]any)["id"].(string)
	ch.mu.Unlock()
	c.waitConverged()
	for i := range c.nodes {
		c.verifyLedger(i, org.Key, fund, ch.acked)
	}
}

// TestClusterSnapshotCatchUp stops a follower while the cluster takes many
// batches with a small snapshot threshold, so the leader compacts its log:
// the follower and a brand-new node can only catch up by installing a
// snapshot, and both must end with the same state as the others.
func TestClusterSnapshotCatchUp(t *testing.T) {
	c := startCluster(t, 3, "--raft-snapshot-threshold", "32", "--raft-trailing-logs", "16")
	org := c.nodes[0].MustOrg(t, "Snapshots", 1_000_000_000_000)
	follower := (c.leader() + 1) % 3
	info, _ := c.info(follower)
	appliedAtStop := num(t, info, "applied_index")
	c.nodes[follower].Stop()
	c.dead[follower].Store(true)
	leader := c.nodes[c.leader()].Key(org.Key)
	const batches, perBatch = 150, 100
	for b := 0; b < batches; b++ {
		items := make([]any, perBatch)
		for i := range items {
			items[i] = chargeBody(fmt.Sprintf("s%d-%d", b, i), 100)
		}
		leader.Do("POST", "/api/v1/billing/charges/batch", map[string]any{"charges": items}).Expect(t, 200)
	}
	// With --raft-snapshot-threshold set, raft checks the threshold once
	// every 1 to 2 s, so the batches can be done before it has looked.
	testserver.WaitFor(t, 30*time.Second, "a leader snapshot past the log the stopped follower needs", func() bool {
		li, _ := c.info(c.leader())
		return num(t, li, "snapshot_index")-16 > appliedAtStop
	})
	c.nodes[follower].Start()
	c.dead[follower].Store(false)
	digest := c.waitConverged()
	// A new node joins the same way.
	s := testserver.New(t)
	s.ExtraArgs = []string{"--node-id", "node4", "--join", c.nodes[0].HTTPAddr, "--raft-snapshot-threshold", "32", "--raft-trailing-logs", "16"}
	s.Start()
	c.nodes = append(c.nodes, s)
	if got := c.waitConverged(); got == digest {
		// The join itself is a write (the new node's address), so the digest moves on.
		t.Fatal("digest did not change after a node joined")
	}
	bal := s.Key(org.Key).Do("GET", "/api/v1/billing/balance", nil).Expect(t, 200).Data()
	if num(t, bal, "balance_micros") != 1_000_000_000_000-batches*perBatch*100 {
		t.Fatalf("balance through the new node: %v", bal)
	}
	for _, i := range []int{follower, 3} {
		if info, _ := c.info(i); num(t, info, "snapshot_index") == 0 {
			t.Fatalf("node%d caught up without a snapshot", i+1)
		}
	}
	// Remove the new node again, through a follower (forwarded).
	via := (c.leader() + 1) % 3
	d := c.nodes[via].Admin().Do("DELETE", "/admin/v1/cluster/nodes/node4", nil).Expect(t, 200).Data()
	if len(d["nodes"].([]any)) != 3 {
		t.Fatalf("after removing node4: %v", d["nodes"])
	}
}

// oaExerciseClusterRoutes covers the membership routes' documented answers
// on a single node (TestEveryRoute): re-joining itself is a no-op.
func oaExerciseClusterRoutes(t *testing.T, s *testserver.Server) {
	a := s.Admin()
	self := map[string]any{"node_id": "node1", "raft_addr": s.RaftAddr, "http_addr": s.HTTPAddr}
	if d := a.Do("POST", "/admin/v1/cluster/join", self).Expect(t, 200).Data(); len(d["nodes"].([]any)) != 1 {
		t.Errorf("re-joining itself changed the cluster: %v", d)
	}
	if r := a.Do("POST", "/admin/v1/cluster/join", map[string]any{"node_id": "node9"}); r.Status != 400 || r.ErrorCode() != "invalid_request" {
		t.Errorf("join without addresses: %d %s", r.Status, r.Body)
	}
	if r := a.Do("POST", "/admin/v1/cluster/join", map[string]any{"node_id": "node9", "raft_addr": "nope", "http_addr": "127.0.0.1:1"}); r.Status != 400 {
		t.Errorf("join with a bad address: %d %s", r.Status, r.Body)
	}
	if r := s.Anon().Do("POST", "/admin/v1/cluster/join", self); r.Status != 401 {
		t.Errorf("join without the admin token: %d", r.Status)
	}
	if r := a.With("Content-Type", "text/plain").Do("POST", "/admin/v1/cluster/join", "{}"); r.Status != 415 {
		t.Errorf("join as text/plain: %d", r.Status)
	}
	if r := a.Do("POST", "/admin/v1/cluster/join", strings.Repeat(" ", 1<<20+1)); r.Status != 413 {
		t.Errorf("join with a 1 MiB body: %d", r.Status)
	}
	if r := a.Do("DELETE", "/admin/v1/cluster/nodes/node9", nil); r.Status != 404 || r.ErrorCode() != "not_found" {
		t.Errorf("removing an unknown node: %d %s", r.Status, r.Body)
	}
	if r := a.Do("DELETE", "/admin/v1/cluster/nodes/node1", nil); r.Status != 400 {
		t.Errorf("the leader removing itself: %d %s", r.Status, r.Body)
	}
	if r := s.Anon().Do("DELETE", "/admin/v1/cluster/nodes/node1", nil); r.Status != 401 {
		t.Errorf("remove without the admin token: %d", r.Status)
	}
}
