package raftstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/orbit/orbit/engine"
)

// Network partitions without root: the nodes of a cluster run in this
// process, each with a raft StreamLayer (Config.StreamLayer) over real TCP
// on loopback that the test can cut per direction.
//
// Why in-process rather than a TCP proxy in front of each orbitd: raft
// advertises the address it listens on, so a proxy would need a second
// (advertised) address per node, a new daemon flag; and in-process the test
// sees raftstore's own answers (results and errors) without HTTP in
// between, which is where a partitioned leader would go wrong.
//
// How a cut behaves: like a dropped link, not a refused one. Bytes written
// into a cut direction are silently discarded (the writer thinks they were
// sent), so the peer's reads simply wait: a partitioned leader notices only
// when its lease runs out, as it would on a real network. A connection that
// lost bytes is desynchronized, so healing closes it and raft redials.
// Dialing across a cut fails after a short delay (a SYN that got no answer,
// shortened so tests stay fast).

// faultNet is the network of one in-process cluster.
type faultNet struct {
	mu    sync.Mutex
	addrs map[raft.ServerAddress]int
	cut   map[[2]int]bool // {from, to}: bytes from -> to are dropped
	conns map[*faultConn]struct{}
}

func newFaultNet() *faultNet {
	return &faultNet{addrs: map[raft.ServerAddress]int{}, cut: map[[2]int]bool{}, conns: map[*faultConn]struct{}{}}
}

// listen opens node self's stream layer on a free loopback port.
func (f *faultNet) listen(self int) (*faultLayer, error) { return f.listenOn(self, "127.0.0.1:0") }

// listenOn opens node self's stream layer on addr (after a restart: the
// address its cluster configuration names).
//
// Reopening a node on its old address can find the port briefly taken: an
// outgoing connection anywhere on the machine may have been given it as its
// source port after the old listener closed (it is in the ephemeral range),
// or a peer's dial to the closed port connected to itself. Such holds end
// when the connection does, so the bind is retried for a while.
func (f *faultNet) listenOn(self int, addr string) (*faultLayer, error) {
	ln, err := net.Listen("tcp", addr)
	for deadline := time.Now().Add(15 * time.Second); errors.Is(err, syscall.EADDRINUSE) && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		ln, err = net.Listen("tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.addrs[raft.ServerAddress(ln.Addr().String())] = self
	f.mu.Unlock()
	return &faultLayer{net: f, self: self, ln: ln}, nil
}

func (f *faultNet) isCut(from, to int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cut[[2]int{from, to}]
}

// Cut drops everything from -> to until Heal.
func (f *faultNet) Cut(from, to int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cut[[2]int{from, to}] = true
}

// Isolate cuts node i from every other node, both ways.
func (f *faultNet) Isolate(i, nodes int) {
	for j := 0; j < nodes; j++ {
		if j != i {
			f.Cut(i, j)
			f.Cut(j, i)
		}
	}
}

// Heal restores every link and closes the connections that lost bytes.
func (f *faultNet) Heal() {
	f.mu.Lock()
	f.cut = map[[2]int]bool{}
	var broken []*faultConn
	for c := range f.conns {
		if c.dropped {
			broken = append(broken, c)
		}
	}
	f.mu.Unlock()
	for _, c := range broken {
		c.Close()
	}
}

// faultLayer is one node's raft.StreamLayer.
type faultLayer struct {
	net  *faultNet
	self int
	ln   net.Listener
}

var errLinkCut = errors.New("faultnet: link cut")

// Accept reads the one-byte header in which the dialer names itself, so
// both ends of a connection know the link it belongs to.
func (l *faultLayer) Accept() (net.Conn, error) {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return nil, err
		}
		var hdr [1]byte
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(hdr[:]); err != nil {
			c.Close()
			continue
		}
		_ = c.SetReadDeadline(time.Time{})
		return l.net.wrap(c, l.self, int(hdr[0])), nil
	}
}

func (l *faultLayer) Close() error   { return l.ln.Close() }
func (l *faultLayer) Addr() net.Addr { return l.ln.Addr() }

func (l *faultLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	l.net.mu.Lock()
	peer, ok := l.net.addrs[address]
	l.net.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("faultnet: unknown address %s", address)
	}
	if l.net.isCut(l.self, peer) || l.net.isCut(peer, l.self) {
		time.Sleep(min(timeout, 100*time.Millisecond))
		return nil, errLinkCut
	}
	c, err := net.DialTimeout("tcp", string(address), timeout)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write([]byte{byte(l.self)}); err != nil {
		c.Close()
		return nil, err
	}
	return l.net.wrap(c, l.self, peer), nil
}

// faultConn is one end of a connection between two nodes.
type faultConn struct {
	net.Conn
	net         *faultNet
	local, peer int
	dropped     bool // guarded by net.mu
}

func (f *faultNet) wrap(c net.Conn, local, peer int) *faultConn {
	fc := &faultConn{Conn: c, net: f, local: local, peer: peer}
	f.mu.Lock()
	f.conns[fc] = struct{}{}
	f.mu.Unlock()
	return fc
}

func (c *faultConn) Write(b []byte) (int, error) {
	c.net.mu.Lock()
	cut := c.net.cut[[2]int{c.local, c.peer}]
	if cut {
		c.dropped = true
	}
	c.net.mu.Unlock()
	if cut {
		return len(b), nil // lost on the wire
	}
	return c.Conn.Write(b)
}

func (c *faultConn) Close() error {
	c.net.mu.Lock()
	delete(c.net.conns, c)
	c.net.mu.Unlock()
	return c.Conn.Close()
}

// testCluster is n in-process nodes on a faultNet.
type testCluster struct {
	t     testing.TB
	net   *faultNet
	nodes []*Node
}

// startTestCluster opens n nodes, bootstraps the first and joins the
// others, and waits until every node knows the leader.
func startTestCluster(t testing.TB, n int) *testCluster {
	t.Helper()
	c := &testCluster{t: t, net: newFaultNet()}
	for i := 0; i < n; i++ {
		layer, err := c.net.listen(i)
		if err != nil {
			t.Fatal(err)
		}
		node, err := Open(Config{
			NodeID: fmt.Sprint("n", i+1), RaftAddr: layer.Addr().String(), HTTPAddr: fmt.Sprintf("n%d.invalid:80", i+1),
			DataDir: t.TempDir(), Bootstrap: i == 0, StreamLayer: layer,
		})
		if err != nil {
			layer.Close()
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, node)
	}
	t.Cleanup(c.close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.nodes[0].WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the first node to lead", c.nodes[0].IsLeader)
	for i, node := range c.nodes[1:] {
		if err := c.nodes[0].Join(node.NodeID(), node.cfg.RaftAddr, node.cfg.HTTPAddr); err != nil {
			t.Fatalf("join n%d: %v", i+2, err)
		}
	}
	c.waitLeader()
	return c
}

// waitLeader returns the index of the node every node names as leader.
func (c *testCluster) waitLeader() int {
	c.t.Helper()
	idx := -1
	waitFor(c.t, 30*time.Second, "an agreed leader", func() bool {
		_, id := c.nodes[0].Leader()
		for _, n := range c.nodes[1:] {
			if _, other := n.Leader(); other != id {
				return false
			}
		}
		idx = -1
		for i, n := range c.nodes {
			if n.NodeID() == id && n.IsLeader() {
				idx = i
			}
		}
		return idx >= 0
	})
	return idx
}

// waitConverged waits until every node applied the same state.
func (c *testCluster) waitConverged() {
	c.t.Helper()
	waitFor(c.t, 30*time.Second, "replicas with identical state", func() bool {
		first := c.nodes[0].Stats()
		for _, n := range c.nodes[1:] {
			s := n.Stats()
			if s.Digest == "" || s.Digest != first.Digest || s.AppliedIndex != first.AppliedIndex {
				return false
			}
		}
		return first.Digest != ""
	})
}

func (c *testCluster) close() {
	for _, n := range c.nodes {
		if err := n.Close(); err != nil {
			c.t.Logf("close %s: %v", n.NodeID(), err)
		}
	}
}

// A cut link carries nothing, a healed one everything: the isolated leader
// loses its leadership to the majority, which goes on committing, and after
// healing it catches up to the same state.
func TestFaultNetIsolatesTheLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("runs in the full pass of make test; the -race -short pass keeps TestLinearizableUnderPartitions")
	}
	c := startTestCluster(t, 3)
	old := c.waitLeader()
	org := mustFundedOrg(t, c.nodes[old], 100_000)
	c.net.Isolate(old, 3)
	var leader int
	waitFor(t, 20*time.Second, "a new leader in the majority", func() bool {
		for i, n := range c.nodes {
			if i != old && n.IsLeader() {
				leader = i
				return true
			}
		}
		return false
	})
	waitFor(t, 10*time.Second, "the isolated node to step down", func() bool { return !c.nodes[old].IsLeader() })
	if _, err := c.nodes[old].Submit(context.Background(), []engine.Command{charge(org, "during", 1000)}); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a write on the isolated node: %v, want ErrNotLeader", err)
	}
	if r := mustSubmit(t, c.nodes[leader], charge(org, "majority", 1000))[0]; r.Code != engine.CodeOK {
		t.Fatalf("majority charge: %v", r.Code)
	}
	c.net.Heal()
	c.waitConverged()
	if w, _ := c.nodes[old].Wallet(org); w.BalanceMicros != 99_000 {
		t.Fatalf("healed node's balance %d, want 99000", w.BalanceMicros)
	}
}
