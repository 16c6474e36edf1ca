package raftstore

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/hashicorp/raft"

	"github.com/orbit/orbit/engine"
	"github.com/orbit/orbit/wal"
)

// The simulation drives the write pipeline below raft, one step at a time,
// with a seeded random scheduler: clients send charges and retry them (same
// reference and body, or same reference and another body), the "leader"
// appends batches to the raft log (wal.RaftStore), the FSM (the real fsm:
// engine.Apply, then the persist into wal.State) applies them, and the
// answers reach the clients. Between any two steps the scheduler may crash
// the process (a CrashClone of Pebble's crashable in-memory file system that
// keeps a random share of the unsynced writes: lost or torn tails), fail the
// raft log's next WAL write or fsync, fail the state's next WAL write, or
// crash inside the FSM between engine.Apply and the state write. After a
// crash or fault the node restarts as Node does: the state at its durable
// applied index, then every entry of the durable log after it (a single
// voter commits what it has durably stored).
//
// After every step the invariants of SPEC section 7 are checked against an
// independent model of what the clients were told: every acknowledged charge
// is in the ledger exactly once with its transaction id and amount; no
// reference is charged twice; every ledger charge is one a client sent, with
// one of the bodies sent for it; replays name the original transaction and
// conflicts come only from another body; balance == sum of the ledger >= 0,
// in the store and in the engine.
//
// ORBIT_SIM_SEEDS sets how many seeds run (default simSeedsShort);
// ORBIT_SIM_SEED=<seed> replays one seed verbosely.

const (
	simSeedsShort  = 500
	simSeedsRace   = 30 // under -short (the race run)
	simSteps       = 80
	simFundMicros  = 100_000
	simOrgsMax     = 3
	simMaxInBatch  = 6
	simUnsyncedPct = 50 // mean share of unsynced data a crash keeps
)

func TestSimulation(t *testing.T) {
	if s := os.Getenv("ORBIT_SIM_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("ORBIT_SIM_SEED: %v", err)
		}
		r := runSim(seed, t.Logf)
		t.Logf("seed %d: %d steps, %d faults, %d crashes, %d acks", seed, r.steps, r.faults, r.crashes, r.acks)
		for _, v := range r.violations {
			t.Error(v)
		}
		return
	}
	seeds := uint64(simSeedsShort)
	long := false
	if s := os.Getenv("ORBIT_SIM_SEEDS"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			t.Fatalf("ORBIT_SIM_SEEDS=%q: want a positive count", s)
		}
		seeds, long = n, true
	} else if testing.Short() {
		seeds = simSeedsRace
	}
	// A different base each run explores new histories; every seed is
	// printed on failure, so any run can be replayed.
	base := uint64(time.Now().UnixNano())
	start := time.Now()
	var faults, crashes, acks, violations, failedSeeds int
	var fired [simFaultKinds]int
	for i := uint64(0); i < seeds; i++ {
		seed := base + i
		r := runSim(seed, nil)
		faults += r.faults
		crashes += r.crashes
		acks += r.acks
		for k, n := range r.fired {
			fired[k] += n
		}
		if len(r.violations) > 0 {
			violations += len(r.violations)
			failedSeeds++
			if failedSeeds <= 5 {
				t.Errorf("seed %d: %d violations, first: %s\n  replay: ORBIT_SIM_SEED=%d go test -count=1 -v -run 'TestSimulation$' ./raftstore/",
					seed, len(r.violations), r.violations[0], seed)
			}
		}
	}
	t.Logf("simulation: %d seeds from %d in %v: %d faults armed (fired: log write %d, log fsync %d, state write %d, crash before state write %d), %d crashes, %d answers, %d violations",
		seeds, base, time.Since(start).Round(time.Millisecond), faults, fired[faultLogWrite], fired[faultLogSync], fired[faultStateWrite], fired[faultApplyCrash], crashes, acks, violations)
	if long {
		// faults: the injected errors that took effect plus the crashes
		// (each a kill that loses unsynced data).
		took := crashes
		for _, n := range fired {
			took += n
		}
		t.Logf("CHAOS name=simulation histories=0 seeds=%d faults=%d violations=%d", seeds, took, violations)
	}
}

// simResult is what one seed did.
type simResult struct {
	steps, faults, crashes, acks int
	// fired counts the faults that took effect, by kind.
	fired      [simFaultKinds]int
	violations []string
}

// simFault is a fault armed to fire at the next matching operation.
type simFault uint8

const (
	faultNone       simFault = iota
	faultLogWrite            // the raft log's next WAL write fails (ENOSPC)
	faultLogSync             // the raft log's next WAL fsync fails (EIO)
	faultStateWrite          // the state's next WAL write or sync fails
	faultApplyCrash          // crash inside the FSM after engine.Apply, before the state write
	simFaultKinds
)

// simInjector fails one armed operation of one database's WAL. It runs on
// Pebble's goroutines (the WAL flusher), hence the atomics.
type simInjector struct {
	dir   string // "raft-log" or "state"
	armed *atomic.Uint32
	fired *atomic.Bool
	kind  *atomic.Uint32
}

func (in simInjector) String() string { return "sim:" + in.dir }

func (in simInjector) MaybeError(op errorfs.Op) error {
	armed := simFault(in.armed.Load())
	if armed == faultNone || !strings.HasSuffix(op.Path, ".log") || !strings.Contains(op.Path, in.dir) {
		return nil
	}
	write := op.Kind == errorfs.OpFileWrite || op.Kind == errorfs.OpFileWriteAt
	sync := op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData || op.Kind == errorfs.OpFileSyncTo
	var err error
	switch {
	case in.dir == "raft-log" && armed == faultLogWrite && write:
		err = syscall.ENOSPC
	case in.dir == "raft-log" && armed == faultLogSync && sync:
		err = syscall.EIO
	case in.dir == "state" && armed == faultStateWrite && (write || sync):
		err = syscall.EIO
	default:
		return nil
	}
	if !in.armed.CompareAndSwap(uint32(armed), uint32(faultNone)) {
		return nil
	}
	in.fired.Store(true)
	in.kind.Store(uint32(armed))
	return fmt.Errorf("sim injected: %w", err)
}

// simRequest is one client request in flight: one charge.
type simRequest struct {
	org, ref string
	amount   int64
}

// simBatch is a log entry appended and not yet answered.
type simBatch struct {
	index   uint64
	reqs    []simRequest
	applied bool
	results []engine.Result
}

type sim struct {
	seed uint64
	rng  *rand.Rand
	logf func(string, ...any)

	mem      *vfs.MemFS
	armed    atomic.Uint32 // a simFault
	logFired atomic.Bool   // the raft log's armed fault fired
	anyFired atomic.Bool   // the state's
	// firedKind is the kind of the fault that fired (0: none).
	firedKind atomic.Uint32

	logDB, stateDB *pebble.DB
	logs           *wal.RaftStore
	state          *wal.State
	eng            *engine.Engine
	fsm            *fsm
	// fault is set by OnFatal (possibly on a Pebble goroutine) or a failed
	// state write: the node must restart.
	fault      atomic.Pointer[error]
	applyCrash bool // the next FSM call crashes before its state write
	fsmCalls   int  // fault-hook calls within the current FSM call
	// dirty: the store or the acknowledgements may have changed since the
	// last check (sends, appends and armed faults change neither).
	dirty bool

	term, lastIndex uint64
	timeMs          int64
	orgs            []string
	pending         []simRequest // sent, not yet in the log
	inflight        []*simBatch  // in the log, not yet answered
	refs            map[string]*simRef
	refOrder        []string
	nextRef         int

	res simResult
}

func (s *sim) violate(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.res.violations = append(s.res.violations, fmt.Sprintf("step %d: %s", s.res.steps, msg))
	if s.logf != nil {
		s.logf("VIOLATION %s", msg)
	}
}

func (s *sim) trace(format string, args ...any) {
	if s.logf != nil {
		s.logf("step %d: "+format, append([]any{s.res.steps}, args...)...)
	}
}

// runSim runs one seed. logf, when set, traces every step.
func runSim(seed uint64, logf func(string, ...any)) (res simResult) {
	s := &sim{seed: seed, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), logf: logf,
		mem: vfs.NewCrashableMem(), refs: map[string]*simRef{}, timeMs: 1_700_000_000_000}
	defer func() {
		if r := recover(); r != nil {
			s.violate("panic: %v", r)
		}
		s.close()
		res = s.res
	}()
	s.open()
	s.setup()
	for s.res.steps = 1; s.res.steps <= simSteps && len(s.res.violations) == 0; s.res.steps++ {
		s.step()
		if err := s.faulted(); err != nil {
			s.trace("fault: %v; restarting", err)
			s.crash()
		}
		s.check()
	}
	// Finally everything in the log is applied and checked once more.
	s.crash()
	s.check()
	return
}

// open opens both databases on the current file system and recovers as
// Node.Open does: load the state, then apply the durable log after it.
func (s *sim) open() {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	var err error
	logFS := errorfs.Wrap(s.mem, simInjector{dir: "raft-log", armed: &s.armed, fired: &s.logFired, kind: &s.firedKind})
	if s.logDB, err = wal.OpenWith("/raft-log", wal.Options{Logger: logger, FS: logFS, OnFatal: s.stop}); err != nil {
		panic(fmt.Sprintf("open raft log: %v", err))
	}
	stateFS := errorfs.Wrap(s.mem, simInjector{dir: "state", armed: &s.armed, fired: &s.anyFired, kind: &s.firedKind})
	if s.stateDB, err = wal.OpenWith("/state", wal.Options{Logger: logger, FS: stateFS, OnFatal: s.stop}); err != nil {
		panic(fmt.Sprintf("open state: %v", err))
	}
	s.logs = wal.NewRaftStore(s.logDB, uint16(group))
	s.state = wal.NewState(s.stateDB)
	s.eng = engine.New(group, s.state)
	if err := loadEngine(s.eng, s.state, group); err != nil {
		panic(fmt.Sprintf("load engine: %v", err))
	}
	s.fsm = &fsm{group: group, engine: s.eng, state: s.state,
		fault: func() error {
			// The second call of one ApplyBatch is its check between
			// engine.Apply and the state write.
			s.fsmCalls++
			if s.applyCrash && s.fsmCalls == 2 {
				s.firedKind.Store(uint32(faultApplyCrash))
				s.stop(fmt.Errorf("sim: crash between engine.Apply and the state write"))
			}
			return s.faulted()
		},
		stop: s.stop,
	}
	s.lastIndex, err = s.logs.LastIndex()
	if err != nil {
		panic(err)
	}
	s.term++
	// Recovery: a single voter has committed every entry it stored durably.
	first, _ := s.logs.FirstIndex()
	if first > 0 {
		var logs []*raft.Log
		for i := first; i <= s.lastIndex; i++ {
			l := new(raft.Log)
			if err := s.logs.GetLog(i, l); err != nil {
				panic(fmt.Sprintf("log %d: %v", i, err))
			}
			logs = append(logs, l)
		}
		s.callFSM(logs)
	}
}

// stop records the first storage fault (wal's OnFatal, the FSM's stop).
func (s *sim) stop(err error) { s.fault.CompareAndSwap(nil, &err) }

func (s *sim) faulted() error {
	if p := s.fault.Load(); p != nil {
		return *p
	}
	return nil
}

// close releases both databases (after a crash, the old file system's).
func (s *sim) close() {
	if s.logDB != nil {
		_ = s.logDB.Close()
	}
	if s.stateDB != nil {
		_ = s.stateDB.Close()
	}
	s.logDB, s.stateDB = nil, nil
}

// crash kills the process now: a clone of the file system keeps what was
// synced and a random share of what was not, then the node restarts on it.
// Every request without an answer stays unanswered (its client may retry).
func (s *sim) crash() {
	s.res.crashes++
	if k := s.firedKind.Swap(0); k != 0 {
		s.res.fired[k]++
	}
	pct := 0
	switch s.rng.IntN(4) {
	case 0: // only what was synced
	case 1:
		pct = 100
	default:
		pct = s.rng.IntN(2 * simUnsyncedPct)
	}
	clone := s.mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rand.New(rand.NewPCG(s.rng.Uint64(), 1))})
	s.close()
	s.mem = clone
	s.armed.Store(uint32(faultNone))
	s.logFired.Store(false)
	s.anyFired.Store(false)
	s.fault.Store(nil)
	s.applyCrash = false
	s.pending, s.inflight = nil, nil
	s.trace("crash (keeping %d%% of unsynced data)", pct)
	s.open()
	s.dirty = true
}

// callFSM applies logs through the real FSM; a fault in it leaves the
// results unanswered.
func (s *sim) callFSM(logs []*raft.Log) []any {
	s.fsmCalls = 0
	resp := s.fsm.ApplyBatch(logs)
	if len(resp) != len(logs) {
		s.violate("ApplyBatch returned %d responses for %d logs", len(resp), len(logs))
	}
	return resp
}

// setup creates the orgs and funds them (acknowledged before any charge).
func (s *sim) setup() {
	n := 1 + s.rng.IntN(simOrgsMax)
	var cmds []engine.Command
	for range n {
		cmds = append(cmds, engine.Command{Kind: engine.CmdCreateOrg, Name: "o"})
	}
	res := s.appendAndApply(cmds)
	for _, r := range res {
		s.orgs = append(s.orgs, r.ID)
	}
	cmds = cmds[:0]
	for _, org := range s.orgs {
		cmds = append(cmds, engine.Command{Kind: engine.CmdAdjustment, OrgID: org, Reference: "fund", AmountMicros: simFundMicros, BodyHash: "fund"})
	}
	for _, r := range s.appendAndApply(cmds) {
		if r.Code != engine.CodeOK {
			panic(fmt.Sprintf("funding: %v", r.Code))
		}
	}
}

// appendAndApply is the fault-free path used by setup.
func (s *sim) appendAndApply(cmds []engine.Command) []engine.Result {
	l := s.encode(cmds)
	if err := s.logs.StoreLogs([]*raft.Log{l}); err != nil {
		panic(err)
	}
	s.lastIndex = l.Index
	resp := s.callFSM([]*raft.Log{l})
	res, ok := resp[0].([]engine.Result)
	if !ok {
		panic(fmt.Sprintf("setup batch: %v", resp[0]))
	}
	return res
}

func (s *sim) encode(cmds []engine.Command) *raft.Log {
	s.timeMs += int64(s.rng.IntN(2000))
	data, err := json.Marshal(&engine.Batch{TimeMs: s.timeMs, Commands: cmds})
	if err != nil {
		panic(err)
	}
	return &raft.Log{Index: s.lastIndex + 1, Term: s.term, Type: raft.LogCommand, Data: data}
}

// step runs one randomly chosen action.
func (s *sim) step() {
	// Out of 200: mostly traffic, 2% crashes, 3% armed faults.
	switch p := s.rng.IntN(200); {
	case p < 56:
		s.sendNew()
	case p < 80:
		s.resend(false)
	case p < 90:
		s.resend(true)
	case p < 128:
		s.propose()
	case p < 158:
		s.apply()
		s.dirty = true
	case p < 188:
		s.answer()
		s.dirty = true
	case p < 192:
		s.crash()
	case p < 194:
		s.syncState()
		s.dirty = true
	default:
		s.arm(simFault(1 + s.rng.IntN(int(simFaultKinds)-1)))
	}
}

func (s *sim) arm(f simFault) {
	s.res.faults++
	s.trace("arm fault %d", f)
	if f == faultApplyCrash {
		s.applyCrash = true
		return
	}
	s.armed.Store(uint32(f))
}

func (s *sim) sendNew() {
	s.nextRef++
	org := s.orgs[s.rng.IntN(len(s.orgs))]
	req := simRequest{org: org, ref: fmt.Sprintf("r%d", s.nextRef), amount: 1 + s.rng.Int64N(simFundMicros/6)}
	s.send(req)
}

// resend retries an earlier reference, with its first body or another one.
func (s *sim) resend(otherBody bool) {
	if len(s.refOrder) == 0 {
		return
	}
	m := s.refs[s.refOrder[s.rng.IntN(len(s.refOrder))]]
	req := simRequest{org: m.org, ref: m.ref, amount: m.bodies[s.rng.IntN(len(m.bodies))]}
	if otherBody {
		req.amount = 1 + s.rng.Int64N(simFundMicros/6)
	}
	s.send(req)
}

func (s *sim) send(req simRequest) {
	key := req.org + "/" + req.ref
	m := s.refs[key]
	if m == nil {
		m = &simRef{org: req.org, ref: req.ref}
		s.refs[key] = m
		s.refOrder = append(s.refOrder, key)
	}
	if !containsAmount(m.bodies, req.amount) {
		m.bodies = append(m.bodies, req.amount)
	}
	s.pending = append(s.pending, req)
	s.trace("send %s %d", key, req.amount)
}

// propose appends a random, shuffled selection of the waiting requests as
// one log entry, or as two entries in one StoreLogs call (as raft's leader
// stores what accumulated while it was busy).
func (s *sim) propose() {
	if len(s.pending) == 0 {
		return
	}
	s.rng.Shuffle(len(s.pending), func(i, j int) { s.pending[i], s.pending[j] = s.pending[j], s.pending[i] })
	n := 1 + s.rng.IntN(min(len(s.pending), simMaxInBatch))
	reqs := append([]simRequest(nil), s.pending[:n]...)
	s.pending = s.pending[n:]
	groups := [][]simRequest{reqs}
	if n > 1 && s.rng.IntN(4) == 0 {
		cut := 1 + s.rng.IntN(n-1)
		groups = [][]simRequest{reqs[:cut], reqs[cut:]}
	}
	var logs []*raft.Log
	for _, g := range groups {
		cmds := make([]engine.Command, len(g))
		for i, r := range g {
			cmds[i] = engine.Command{Kind: engine.CmdCharge, OrgID: r.org, Reference: r.ref, Channel: "sms",
				AmountMicros: r.amount, BodyHash: strconv.FormatInt(r.amount, 10)}
		}
		l := s.encode(cmds)
		s.lastIndex = l.Index // provisional: encode numbers the next entry after it
		logs = append(logs, l)
	}
	s.lastIndex = logs[0].Index - 1
	if err := s.logs.StoreLogs(logs); err != nil {
		// Not stored: its clients get an error (no ack), and the node stops.
		s.trace("append %d.. failed: %v", logs[0].Index, err)
		if s.faulted() == nil {
			s.violate("StoreLogs failed without a storage fault: %v", err)
		}
		return
	}
	if s.logFired.Load() {
		s.violate("StoreLogs succeeded although its WAL write or sync failed")
	}
	for i, l := range logs {
		s.lastIndex = l.Index
		s.inflight = append(s.inflight, &simBatch{index: l.Index, reqs: groups[i]})
	}
	s.trace("append %d..%d (%d charges)", logs[0].Index, s.lastIndex, len(reqs))
}

// apply hands the appended, unapplied entries (a random prefix of them) to
// the FSM in one call, as raft's batching FSM gets them.
func (s *sim) apply() {
	var todo []*simBatch
	for _, b := range s.inflight {
		if !b.applied {
			todo = append(todo, b)
		}
	}
	if len(todo) == 0 {
		return
	}
	todo = todo[:1+s.rng.IntN(len(todo))]
	logs := make([]*raft.Log, len(todo))
	for i, b := range todo {
		logs[i] = new(raft.Log)
		if err := s.logs.GetLog(b.index, logs[i]); err != nil {
			s.violate("appended log %d unreadable: %v", b.index, err)
			return
		}
	}
	resp := s.callFSM(logs)
	for i, b := range todo {
		res, ok := resp[i].([]engine.Result)
		if !ok {
			// An error answer: the node stops; the clients get no ack.
			if s.faulted() == nil {
				s.violate("FSM answered log %d with %v without a fault", b.index, resp[i])
			}
			continue
		}
		if len(res) != len(b.reqs) {
			s.violate("log %d: %d results for %d commands", b.index, len(res), len(b.reqs))
			continue
		}
		b.applied, b.results = true, res
	}
	s.trace("applied %d entries", len(todo))
}

// answer delivers the results of one applied entry to its clients: from
// here on they count as acknowledged.
func (s *sim) answer() {
	for i, b := range s.inflight {
		if !b.applied {
			continue
		}
		s.inflight = append(s.inflight[:i], s.inflight[i+1:]...)
		for j, r := range b.results {
			s.acknowledge(b.reqs[j], r)
		}
		return
	}
}

// syncState is what a snapshot does first: make the state durable.
func (s *sim) syncState() {
	err := func() (err error) {
		defer wal.CatchFatal(&err)
		return s.state.Sync()
	}()
	if err != nil && s.faulted() == nil {
		s.violate("state sync failed without a storage fault: %v", err)
	}
	s.trace("sync state: %v", err)
}
