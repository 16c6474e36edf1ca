package raftstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/orbit/orbit/engine"
	"github.com/orbit/orbit/internal/memtrim"
	"github.com/orbit/orbit/wal"
)

// Config configures a node.
type Config struct {
	NodeID   string
	RaftAddr string // host:port to listen on and advertise for Raft traffic
	HTTPAddr string // this node's HTTP address, recorded so others can forward to it
	DataDir  string
	// SnapshotThreshold and TrailingLogs override raft's snapshot pacing
	// (tests use small values to exercise snapshot installs); 0 = default.
	SnapshotThreshold uint64
	TrailingLogs      uint64
	// Bootstrap makes a node with no state the single voter of a new cluster.
	Bootstrap bool
	// StreamLayer, when set, carries this node's Raft traffic instead of a
	// TCP listener on RaftAddr; it must listen on RaftAddr. Tests use it to
	// cut links between in-process nodes (raftstore/partition_test.go).
	// Nil, the production default, is plain TCP.
	StreamLayer raft.StreamLayer
	Logger      *slog.Logger
	// Metrics hooks; each may be nil.
	OnBatch  func(commands, bytes int)
	OnCommit func(time.Duration)
	OnApply  func(batches, commands int)
	// LogFS and StateFS are the file systems of the raft-log and the state
	// databases; nil is the operating system's. Tests inject faults here.
	LogFS, StateFS vfs.FS
}

// Node is one member of the (single) Raft group: storage, raft, engine and
// the write pipeline.
type Node struct {
	cfg Config
	// Two Pebble databases: the raft log, written with fsync, and the state,
	// written without. One shared database would make every state write wait
	// behind the log's fsyncs (Pebble publishes commits in order), turning
	// the pipeline serial.
	logDB *pebble.DB
	db    *pebble.DB
	state *wal.State
	// stateCache is db's block cache, kept to empty it after start-up
	// (releaseReplayMemory).
	stateCache *pebble.Cache
	engine     *engine.Engine
	fsm        *fsm
	raft       *raft.Raft
	transport  *raft.NetworkTransport
	proposer   *proposer
	logger     *slog.Logger
	// answers and persisted let the FSM answer before it writes the state,
	// and reads of the state wait for it (answers.go).
	answers   *answers
	persisted persistWatch

	stopTicker, tickerDone chan struct{}
	memoryReleased         chan struct{} // closed when releaseReplayMemory returns

	closeOnce sync.Once
	closeErr  error

	// dbsClosed is set by Close before it closes the databases, under
	// dbsMu, so StorageStats never reads a closed one.
	dbsMu     sync.RWMutex
	dbsClosed bool

	// startLastIndex is the last raft log index when the node started;
	// recovered is set once raft has applied up to it (see Ready).
	startLastIndex uint64
	recovered      atomic.Bool
	hadState       bool

	lead leadership

	// fault is the first storage fault; faulted is closed when it is set.
	// See failStop.
	faultOnce sync.Once
	fault     atomic.Pointer[error]
	faulted   chan struct{}
	started   chan struct{} // closed once startRaft has returned
}

// group is the Raft group of this node's orgs. One group holds every org
// until orgs are partitioned across groups.
const group uint8 = 0

// Open opens the node's storage, loads the engine from its applied state and
// starts raft (bootstrapping a single-voter cluster if asked and new).
func Open(cfg Config) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, logger: cfg.Logger, faulted: make(chan struct{}), started: make(chan struct{})}
	defer func() {
		// On an early return too, so that a failStop during Open ends.
		select {
		case <-n.started:
		default:
			close(n.started)
		}
	}()
	logDB, err := wal.OpenWith(filepath.Join(cfg.DataDir, "raft-log"), wal.Options{Logger: cfg.Logger, FS: cfg.LogFS, OnFatal: n.failStop, CacheSize: wal.LogCacheSize, ZeroedWALs: true})
	if err != nil {
		return nil, err
	}
	n.stateCache = wal.NewCache()
	db, err := wal.OpenWith(filepath.Join(cfg.DataDir, "state"), wal.Options{Logger: cfg.Logger, FS: cfg.StateFS, OnFatal: n.failStop, Cache: n.stateCache, UnsyncedCommits: true})
	if err != nil {
		logDB.Close()
		n.stateCache.Unref()
		return nil, err
	}
	n.logDB, n.db, n.state = logDB, db, wal.NewState(db)
	n.engine = engine.New(group, n.state)
	if err := loadEngine(n.engine, n.state, group); err != nil {
		n.state.Close()
		n.stateCache.Unref()
		logDB.Close()
		return nil, fmt.Errorf("raftstore: load state: %w", err)
	}
	// Loading decodes every org record and key, and leaves garbage behind
	// that an idle node would otherwise keep resident until traffic starts
	// a collection. Measured once each on a store of 100,000 orgs with keys:
	// 369 MB RSS when ready without this, 338 MB with it.
	runtime.GC()
	debug.FreeOSMemory()
	n.persisted.advance(n.engine.AppliedIndex())
	n.answers = newAnswers()
	n.fsm = &fsm{group: group, engine: n.engine, state: n.state, onApply: cfg.OnApply, fault: n.Fault, stop: n.failStop,
		answers: n.answers, persisted: &n.persisted}
	err = n.startRaft()
	close(n.started) // n.raft is set (or nil on error): failStop may use it
	if err != nil {
		n.state.Close()
		n.stateCache.Unref()
		logDB.Close()
		return nil, err
	}
	n.proposer = newProposer(n.raft, n.answers)
	n.proposer.onBatch = cfg.OnBatch
	n.proposer.onCommit = cfg.OnCommit
	n.proposer.start()
	n.stopTicker = make(chan struct{})
	n.tickerDone = make(chan struct{})
	n.memoryReleased = make(chan struct{})
	go n.tickDeadlines()
	go n.releaseReplayMemory()
	return n, nil
}

// releaseReplayMemory returns start-up garbage to the OS a second time, once
// raft has re-applied the log entries the node held when it started (the
// point where Ready turns true, see replayedStartLog): replay reads and decodes every entry after
// the last snapshot, and the heap it grows would otherwise stay resident on
// an idle node, below the next collection's goal, until traffic came.
func (n *Node) releaseReplayMemory() {
	defer close(n.memoryReleased)
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for !n.replayedStartLog() {
		select {
		case <-n.stopTicker:
			return
		case <-t.C:
		}
	}
	wal.EmptyCache(n.stateCache)
	debug.FreeOSMemory()
	memtrim.Trim() // the cache's blocks were C memory (see package memtrim)
}

// StorageStats returns the figures of the node's two databases, by name
// (raft-log, state); nil once the node is closed.
func (n *Node) StorageStats() map[string]wal.DBStats {
	n.dbsMu.RLock()
	defer n.dbsMu.RUnlock()
	if n.dbsClosed {
		return nil
	}
	return map[string]wal.DBStats{"raft-log": wal.Stats(n.logDB), "state": wal.Stats(n.db)}
}

// tickDeadlines proposes an empty batch once a hold or grant is due, so
// expiries apply within deadlineTick even when no traffic arrives. Only the
// leader proposes; the batch's time makes every replica expire the same.
func (n *Node) tickDeadlines() {
	defer close(n.tickerDone)
	t := time.NewTicker(deadlineTick)
	defer t.Stop()
	for {
		select {
		case <-n.stopTicker:
			return
		case <-t.C:
		}
		d := n.engine.NextDeadlineMs()
		if d == 0 || d > time.Now().UnixMilli() || !n.IsLeader() {
			continue
		}
		r := &request{done: make(chan struct{})}
		if n.proposer.submit(r) == nil {
			select {
			case <-r.done:
			case <-n.stopTicker:
				return
			}
		}
	}
}

func (n *Node) startRaft() error {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.cfg.NodeID)
	rc.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: os.Stderr})
	// The state lives in Pebble: never restore a snapshot over newer state at
	// start; the FSM skips log entries at or below its applied index.
	rc.NoSnapshotRestoreOnStart = true
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 256
	rc.CommitTimeout = 5 * time.Millisecond
	rc.HeartbeatTimeout = 1000 * time.Millisecond
	rc.ElectionTimeout = 1000 * time.Millisecond
	rc.LeaderLeaseTimeout = 500 * time.Millisecond
	// A snapshot carries the whole ledger: take one rarely.
	rc.SnapshotThreshold = 16384
	rc.TrailingLogs = 10240
	rc.SnapshotInterval = 5 * time.Minute
	if n.cfg.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = n.cfg.SnapshotThreshold
		rc.SnapshotInterval = time.Second
	}
	if n.cfg.TrailingLogs > 0 {
		rc.TrailingLogs = n.cfg.TrailingLogs
	}

	logs := guardedLogs{RaftStore: wal.NewRaftStore(n.logDB, uint16(group)), n: n}
	snaps, err := raft.NewFileSnapshotStore(filepath.Join(n.cfg.DataDir, "raft-snapshots"), 2, io.Discard)
	if err != nil {
		return err
	}
	addr, err := net.ResolveTCPAddr("tcp", n.cfg.RaftAddr)
	if err != nil {
		return fmt.Errorf("raftstore: raft address %q: %w", n.cfg.RaftAddr, err)
	}
	if n.cfg.StreamLayer != nil {
		n.transport = raft.NewNetworkTransport(n.cfg.StreamLayer, 3, 10*time.Second, io.Discard)
	} else if n.transport, err = raft.NewTCPTransport(n.cfg.RaftAddr, addr, 3, 10*time.Second, io.Discard); err != nil {
		return fmt.Errorf("raftstore: raft transport on %s: %w", n.cfg.RaftAddr, err)
	}
	if n.cfg.Bootstrap {
		has, err := raft.HasExistingState(logs, logs, snaps)
		if err != nil {
			return err
		}
		if !has {
			err := raft.BootstrapCluster(rc, logs, logs, snaps, n.transport, raft.Configuration{Servers: []raft.Server{
				{Suffrage: raft.Voter, ID: rc.LocalID, Address: n.transport.LocalAddr()},
			}})
			if err != nil {
				return fmt.Errorf("raftstore: bootstrap: %w", err)
			}
		}
	}
	if n.startLastIndex, err = logs.LastIndex(); err != nil {
		return err
	}
	if n.hadState, err = raft.HasExistingState(logs, logs, snaps); err != nil {
		return err
	}
	n.raft, err = raft.NewRaft(rc, n.fsm, logs, logs, snaps, n.transport)
	if err != nil {
		n.transport.Close()
		return fmt.Errorf("raftstore: start raft: %w", err)
	}
	return nil
}

// HasState reports whether the node started with raft state of its own
// (it was a member before), as opposed to empty and waiting to join.
func (n *Node) HasState() bool { return n.hadState }

// Engine returns the node's engine (for reads and admission).
func (n *Node) Engine() *engine.Engine { return n.engine }

// IsLeader reports whether this node is the leader.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the leader's raft address and id, empty when unknown.
func (n *Node) Leader() (addr, id string) {
	a, i := n.raft.LeaderWithID()
	return string(a), string(i)
}

// WaitLeader waits until the cluster has a leader, or ctx ends.
func (n *Node) WaitLeader(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if a, _ := n.raft.LeaderWithID(); a != "" {
			// The leader serves reads only once it has applied what it
			// committed before it was elected.
			if n.IsLeader() {
				return n.raft.Barrier(applyTimeout).Error()
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Stats is the node's raft state.
type Stats struct {
	NodeID       string
	State        string
	Leader       string
	Term         uint64
	CommitIndex  uint64
	AppliedIndex uint64
	Digest       string
	// SnapshotIndex is the log index of this node's last snapshot (taken or
	// installed): the log before it may be compacted away.
	SnapshotIndex uint64
	Servers       []raft.Server
}

// Stats returns the node's raft state and a digest of its whole state (the
// engine's memory and every stored key), equal on replicas that applied the
// same log.
func (n *Node) Stats() Stats {
	s := Stats{NodeID: n.cfg.NodeID, State: n.raft.State().String()}
	// The stored state mirrors the engine's at every applied index (audit
	// checks the two agree), so one Pebble snapshot gives a consistent
	// digest and the applied index it covers.
	if n.awaitPersisted() == nil {
		if digest, applied, err := n.state.Digest(group); err == nil {
			s.Digest, s.AppliedIndex = digest, applied
		}
	}
	_, id := n.raft.LeaderWithID()
	s.Leader = string(id)
	st := n.raft.Stats()
	fmt.Sscan(st["term"], &s.Term)
	fmt.Sscan(st["commit_index"], &s.CommitIndex)
	fmt.Sscan(st["last_snapshot_index"], &s.SnapshotIndex)
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		s.Servers = f.Configuration().Servers
	}
	return s
}

// Submit proposes commands as one unit and waits for their results. Debits
// pass admission first: one that cannot fit, or whose org is paused, is
// refused here without touching the log, unless its reference may already
// exist (then the engine answers it as a replay).
func (n *Node) Submit(ctx context.Context, cmds []engine.Command) ([]engine.Result, error) {
	if err := n.Fault(); err != nil {
		return nil, err
	}
	if err := n.ensureLeaderReady(); err != nil {
		return nil, err
	}
	results := make([]engine.Result, len(cmds))
	proposed := make([]engine.Command, 0, len(cmds))
	slots := make([]int, 0, len(cmds))
	var admitted []admission
	for i := range cmds {
		c := &cmds[i]
		if ns, debit := debitNamespace(c.Kind); debit {
			if res, refused := n.admit(c, ns, &admitted); refused {
				results[i] = res
				continue
			}
		}
		proposed = append(proposed, *c)
		slots = append(slots, i)
	}
	defer func() {
		for _, a := range admitted {
			n.engine.Unadmit(a.org, a.amount)
		}
	}()
	if len(proposed) == 0 {
		return results, nil
	}
	r := &request{cmds: proposed, done: make(chan struct{})}
	if err := n.proposer.submit(r); err != nil {
		return nil, err
	}
	timer := time.NewTimer(submitTimeout)
	defer timer.Stop()
	select {
	case <-r.done:
	case <-timer.C:
		// The batch may still apply later: admission must stay reserved
		// until it does, so hand the release to the request's completion.
		go func(adm []admission) {
			<-r.done
			for _, a := range adm {
				n.engine.Unadmit(a.org, a.amount)
			}
		}(admitted)
		admitted = nil
		return nil, ErrTimeout
	case <-ctx.Done():
		go func(adm []admission) {
			<-r.done
			for _, a := range adm {
				n.engine.Unadmit(a.org, a.amount)
			}
		}(admitted)
		admitted = nil
		return nil, ctx.Err()
	}
	if r.err != nil {
		return nil, r.err
	}
	for j, res := range r.results {
		results[slots[j]] = res
	}
	return results, nil
}

type admission struct {
	org    string
	amount int64
}

// debitNamespace tells whether a command kind is a new debit that passes
// admission, and the namespace of its reference.
func debitNamespace(k engine.CommandKind) (byte, bool) {
	switch k {
	case engine.CmdCharge:
		return engine.NSCharge, true
	case engine.CmdHoldCreate:
		return engine.NSReservation, true
	case engine.CmdHoldExtend:
		return engine.NSExtend, true
	}
	return 0, false
}

// admit runs a debit through admission. It returns refused=true with the
// refusal as a result when the debit cannot succeed now.
func (n *Node) admit(c *engine.Command, ns byte, admitted *[]admission) (engine.Result, bool) {
	// A retry of a debit that succeeded must replay, not be refused: the
	// engine defers to Apply when the reference is stored.
	known := func() bool {
		if n.awaitPersisted() != nil {
			return true // the node stopped: defer to Apply, which refuses
		}
		_, exists := n.state.Ref(c.OrgID, ns, c.Reference)
		return exists
	}
	var code engine.Code
	switch n.engine.AdmitDebit(c.OrgID, c.AmountMicros, known) {
	case engine.Admitted:
		*admitted = append(*admitted, admission{c.OrgID, c.AmountMicros})
		return engine.Result{}, false
	case engine.AdmitDeferred:
		*admitted = append(*admitted, admission{c.OrgID, 0})
		return engine.Result{}, false
	case engine.AdmitNoOrg:
		return engine.Result{}, false // the engine answers not_found
	case engine.AdmitPaused:
		code = engine.CodeOutboundPaused
	default:
		code = engine.CodeInsufficientFunds
	}
	w, _ := n.engine.Wallet(c.OrgID)
	msg := "insufficient funds"
	if code == engine.CodeOutboundPaused {
		msg = "outbound traffic is paused for this org"
	}
	return engine.Result{Code: code, Wallet: w, Message: msg}, true
}

// Close stops accepting writes, lets in-flight batches finish, and closes
// raft and storage. Later calls return the first call's result.
func (n *Node) Close() error {
	n.closeOnce.Do(func() { n.closeErr = n.close() })
	return n.closeErr
}

func (n *Node) close() error {
	n.handOverLeadership()
	close(n.stopTicker)
	<-n.tickerDone
	<-n.memoryReleased // it uses the state's cache
	n.proposer.close()
	var errs []error
	if err := n.raft.Shutdown().Error(); err != nil {
		errs = append(errs, err)
	}
	if err := n.transport.Close(); err != nil {
		errs = append(errs, err)
	}
	if err := n.syncState(); err != nil {
		errs = append(errs, err)
	}
	n.dbsMu.Lock()
	n.dbsClosed = true
	n.dbsMu.Unlock()
	if err := n.state.Close(); err != nil {
		errs = append(errs, err)
	}
	n.stateCache.Unref()
	if err := n.logDB.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// leadershipHandOverMax bounds how long a stopping leader waits for its
// leadership to move (raft gives up after an election timeout itself).
const leadershipHandOverMax = 3 * time.Second

// handOverLeadership makes a leader that is stopping (SIGTERM, a rolling
// restart) hand its leadership to the most up-to-date voter first, so that
// writes pause for one election round trip instead of the followers'
// heartbeat timeout (1 s) and then an election. A node alone, a follower,
// or a node stopped on a storage fault just stops.
func (n *Node) handOverLeadership() {
	if n.Fault() != nil || n.raft.State() != raft.Leader {
		return
	}
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return
	}
	others := 0
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter && string(s.ID) != n.cfg.NodeID {
			others++
		}
	}
	if others == 0 {
		return
	}
	done := make(chan error, 1)
	go func() { done <- n.raft.LeadershipTransfer().Error() }()
	select {
	case err := <-done:
		if err != nil {
			n.logger.Warn("leadership hand-over before stopping failed; the followers will elect a leader", "err", err)
			return
		}
		_, id := n.raft.LeaderWithID()
		n.logger.Info("handed leadership over before stopping", "to", string(id))
	case <-time.After(leadershipHandOverMax):
		n.logger.Warn("leadership hand-over before stopping timed out; the followers will elect a leader")
	}
}
