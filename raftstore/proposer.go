package raftstore

import (
	"errors"
	"time"

	"github.com/hashicorp/raft"

	"github.com/orbit/orbit/engine"
)

// request is one caller's commands, proposed together in one log entry and
// answered together.
type request struct {
	cmds    []engine.Command
	results []engine.Result
	err     error
	done    chan struct{}
}

// proposer is the single writer: one goroutine turns whatever requests are
// waiting into one batch and proposes it, while up to proposalsInFlightMax
// earlier batches are replicating. There is no timer: an idle system proposes
// a lone request at once, and a busy one fills the next batch while the
// current is in flight (group commit).
type proposer struct {
	raft     *raft.Raft
	queue    chan *request
	inflight chan *inflightBatch
	answers  *answers // shared with the FSM, which answers early (answers.go)
	stop     chan struct{}
	stopped  chan struct{}

	lastTimeMs int64
	onBatch    func(commands int, bytes int) // metrics hook; may be nil
	onCommit   func(time.Duration)
}

func newProposer(r *raft.Raft, a *answers) *proposer {
	return &proposer{
		raft:     r,
		answers:  a,
		queue:    make(chan *request, queueGroupsMax),
		inflight: make(chan *inflightBatch, proposalsInFlightMax),
		stop:     make(chan struct{}),
		stopped:  make(chan struct{}),
	}
}

func (p *proposer) start() {
	done := make(chan struct{})
	go func() { p.collect(); close(done) }()
	go func() { p.complete(); <-done; close(p.stopped) }()
}

// submit enqueues r without blocking.
func (p *proposer) submit(r *request) error {
	select {
	case <-p.stop:
		return ErrClosed
	default:
	}
	select {
	case p.queue <- r:
		return nil
	default:
		return ErrOverloaded
	}
}

// collect is the proposer goroutine.
func (p *proposer) collect() {
	defer close(p.inflight)
	var reqs []*request
	var cmds []engine.Command
	for {
		var first *request
		select {
		case first = <-p.queue:
		case <-p.stop:
			p.drainQueue(ErrClosed)
			return
		}
		reqs = append(reqs[:0], first)
		cmds = append(cmds[:0], first.cmds...)
	fill:
		for len(cmds) < batchCommandsMax {
			select {
			case r := <-p.queue:
				if len(cmds)+len(r.cmds) > batchCommandsMax {
					// Keep it for the next batch: put it back in front by
					// proposing what we have first.
					p.propose(reqs, cmds)
					reqs = append(reqs[:0], r)
					cmds = append(cmds[:0], r.cmds...)
					continue
				}
				reqs = append(reqs, r)
				cmds = append(cmds, r.cmds...)
			default:
				break fill
			}
		}
		p.propose(reqs, cmds)
	}
}

// propose encodes and proposes one batch, then hands it to complete. It
// blocks while proposalsInFlightMax batches are in flight: that is when the
// queue fills into the next batch.
func (p *proposer) propose(reqs []*request, cmds []engine.Command) {
	now := time.Now().UnixMilli()
	if now < p.lastTimeMs {
		now = p.lastTimeMs
	}
	p.lastTimeMs = now
	data, err := engine.AppendBatch(nil, &engine.Batch{TimeMs: now, Commands: cmds})
	owned := append([]*request(nil), reqs...)
	if err != nil {
		failAll(owned, err)
		return
	}
	if len(data) > batchBytesMax && len(owned) > 1 {
		// Split: each half is still in request order.
		half := len(owned) / 2
		var c1, c2 []engine.Command
		for _, r := range owned[:half] {
			c1 = append(c1, r.cmds...)
		}
		for _, r := range owned[half:] {
			c2 = append(c2, r.cmds...)
		}
		p.propose(owned[:half], c1)
		p.propose(owned[half:], c2)
		return
	}
	if p.onBatch != nil {
		p.onBatch(len(cmds), len(data))
	}
	b := &inflightBatch{reqs: owned}
	ext := p.answers.register(b)
	b.future = p.raft.ApplyLog(raft.Log{Data: data, Extensions: ext}, applyTimeout)
	p.inflight <- b
}

// complete waits for each batch's future in order and answers the
// requests the FSM has not answered already (answers.go).
func (p *proposer) complete() {
	for b := range p.inflight {
		start := time.Now()
		err := b.future.Error()
		if p.onCommit != nil {
			p.onCommit(time.Since(start))
		}
		p.answers.forget(b)
		if b.answered.Load() {
			continue
		}
		if err != nil {
			b.answer(nil, translateRaftError(err))
			continue
		}
		results, ok := b.future.Response().([]engine.Result)
		if !ok {
			b.answer(nil, errors.New("raftstore: batch produced no results"))
			continue
		}
		b.answer(results, nil)
	}
}

func (p *proposer) drainQueue(err error) {
	for {
		select {
		case r := <-p.queue:
			r.err = err
			close(r.done)
		default:
			return
		}
	}
}

func (p *proposer) close() {
	close(p.stop)
	<-p.stopped
}

func failAll(reqs []*request, err error) {
	for _, r := range reqs {
		r.err = err
		close(r.done)
	}
}

func translateRaftError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return ErrNotLeader
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrClosed
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return ErrTimeout
	}
	return err
}
