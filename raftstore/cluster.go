package raftstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/orbit/orbit/engine"
)

// Cluster membership, leader readiness and linearizable reads.
//
// hashicorp/raft has VerifyLeader and Barrier but no ReadIndex. A read that
// must reflect every write acknowledged before it began runs on the leader
// once (1) the leader has applied everything committed before its term
// (a Barrier, once per term), (2) a leadership check that started after the
// read began succeeded, and (3) the applied index reached the commit index
// seen when the read began. Concurrent reads share leadership checks.

// verifyCall is one VerifyLeader shared by every read that began before it
// started.
type verifyCall struct {
	started time.Time
	done    chan struct{}
	err     error
}

type leadership struct {
	barrierMu sync.Mutex
	// readyTerm is the term in which this leader applied all earlier
	// entries; written under barrierMu, read lock-free.
	readyTerm atomic.Uint64

	verifyMu sync.Mutex
	verify   *verifyCall
}

// ensureLeaderReady returns nil once this node leads and has applied every
// entry committed before its term, so its state and admission counters are
// complete. It runs one Barrier per term.
func (n *Node) ensureLeaderReady() error {
	if !n.IsLeader() {
		return ErrNotLeader
	}
	term := n.raft.CurrentTerm()
	if n.lead.readyTerm.Load() == term {
		return nil
	}
	n.lead.barrierMu.Lock()
	defer n.lead.barrierMu.Unlock()
	if n.lead.readyTerm.Load() == term {
		return nil
	}
	if err := n.raft.Barrier(applyTimeout).Error(); err != nil {
		return translateRaftError(err)
	}
	n.lead.readyTerm.Store(term)
	go n.registerSelf()
	return nil
}

// verifyLeader confirms leadership with a check that started at or after
// since, sharing checks between concurrent callers.
func (n *Node) verifyLeader(since time.Time) error {
	for {
		n.lead.verifyMu.Lock()
		c := n.lead.verify
		if c != nil && !c.started.Before(since) {
			n.lead.verifyMu.Unlock()
			<-c.done
			return c.err
		}
		if c != nil {
			n.lead.verifyMu.Unlock()
			<-c.done // too old for us: wait, then start or join a newer one
			continue
		}
		c = &verifyCall{started: time.Now(), done: make(chan struct{})}
		n.lead.verify = c
		n.lead.verifyMu.Unlock()
		c.err = translateRaftError(n.raft.VerifyLeader().Error())
		n.lead.verifyMu.Lock()
		n.lead.verify = nil
		n.lead.verifyMu.Unlock()
		close(c.done)
		return c.err
	}
}

// ReadBarrier makes a read that begins now reflect every write acknowledged
// before it: it returns once this node is the leader and has applied
// everything committed when the read began. Followers get ErrNotLeader (the
// server forwards the read to the leader).
func (n *Node) ReadBarrier() error {
	start := time.Now()
	if err := n.ensureLeaderReady(); err != nil {
		return err
	}
	commit := n.raft.CommitIndex()
	if err := n.verifyLeader(start); err != nil {
		return err
	}
	deadline := time.Now().Add(applyTimeout)
	for n.raft.AppliedIndex() < commit {
		if time.Now().After(deadline) {
			return ErrTimeout
		}
		time.Sleep(200 * time.Microsecond)
	}
	return nil
}

// LeaderHTTPAddr is the leader's HTTP address as the cluster recorded it,
// "" when unknown.
func (n *Node) LeaderHTTPAddr() string {
	_, id := n.raft.LeaderWithID()
	if id == "" {
		return ""
	}
	for _, info := range n.engine.Nodes() {
		if info.ID == string(id) {
			return info.HTTPAddr
		}
	}
	return ""
}

// NodeID is this node's id.
func (n *Node) NodeID() string { return n.cfg.NodeID }

// registerSelf records this leader's addresses in the replicated settings
// when they are missing or changed, so followers can forward to it.
func (n *Node) registerSelf() {
	for _, info := range n.engine.Nodes() {
		if info.ID == n.cfg.NodeID && info.RaftAddr == n.cfg.RaftAddr && info.HTTPAddr == n.cfg.HTTPAddr {
			return
		}
	}
	_, _ = n.Submit(context.Background(), []engine.Command{{
		Kind: engine.CmdSetNodeAddr, NodeID: n.cfg.NodeID, RaftAddr: n.cfg.RaftAddr, HTTPAddr: n.cfg.HTTPAddr,
	}})
}

// ErrBadMember is a join or removal the cluster refuses.
var ErrBadMember = errors.New("raftstore: bad membership change")

// Join adds a node as a voter and records its addresses. It runs on the
// leader; joining a node that is already a member with the same address is
// a no-op, so a retried join is safe.
func (n *Node) Join(id, raftAddr, httpAddr string) error {
	if id == "" || raftAddr == "" || httpAddr == "" {
		return fmt.Errorf("%w: node_id, raft_addr and http_addr are required", ErrBadMember)
	}
	if err := n.ensureLeaderReady(); err != nil {
		return err
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return translateRaftError(err)
	}
	member := false
	for _, s := range f.Configuration().Servers {
		switch {
		case s.ID == raft.ServerID(id) && s.Address == raft.ServerAddress(raftAddr):
			member = true
		case s.ID == raft.ServerID(id) || s.Address == raft.ServerAddress(raftAddr):
			// Same id at another address, or another id at this address:
			// remove the stale entry first.
			if err := n.raft.RemoveServer(s.ID, 0, applyTimeout).Error(); err != nil {
				return translateRaftError(err)
			}
		}
	}
	if !member {
		if err := n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, applyTimeout).Error(); err != nil {
			return translateRaftError(err)
		}
	}
	_, err := n.Submit(context.Background(), []engine.Command{{Kind: engine.CmdSetNodeAddr, NodeID: id, RaftAddr: raftAddr, HTTPAddr: httpAddr}})
	return err
}

// Remove takes a node out of the cluster.
func (n *Node) Remove(id string) error {
	if id == "" {
		return fmt.Errorf("%w: node id required", ErrBadMember)
	}
	if err := n.ensureLeaderReady(); err != nil {
		return err
	}
	if id == n.cfg.NodeID {
		return fmt.Errorf("%w: the leader cannot remove itself; stop it and remove it from the new leader", ErrBadMember)
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return translateRaftError(err)
	}
	found := false
	for _, s := range f.Configuration().Servers {
		if s.ID == raft.ServerID(id) {
			found = true
		}
	}
	if !found {
		return fmt.Errorf("%w: no node %q", ErrNotMember, id)
	}
	if err := n.raft.RemoveServer(raft.ServerID(id), 0, applyTimeout).Error(); err != nil {
		return translateRaftError(err)
	}
	_, err := n.Submit(context.Background(), []engine.Command{{Kind: engine.CmdSetNodeAddr, NodeID: id}})
	return err
}

// ErrNotMember is a removal of a node that is not in the cluster.
var ErrNotMember = errors.New("raftstore: not a member")
