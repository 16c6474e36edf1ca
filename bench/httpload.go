package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// requestKind is what one measured request does.
type requestKind uint8

const (
	kindCharge requestKind = iota // POST /charges
	kindBatch                     // POST /charges/batch
	kindHold                      // POST /reservations, then its commit
	kindCommit                    // POST /reservations/{id}/commit
)

const (
	chargesPath = "/api/v1/billing/charges"
	batchPath   = "/api/v1/billing/charges/batch"
	holdsPath   = "/api/v1/billing/reservations"
)

// doer is fasthttp.HostClient or fasthttp.PipelineClient.
type doer interface {
	Do(req *fasthttp.Request, resp *fasthttp.Response) error
}

// loadPlan is what every worker of one run shares (read-only during load).
type loadPlan struct {
	kind    requestKind
	batch   int
	orgs    []benchOrg
	targets []doer
	bases   []string // the base URL of each target
	workers int
	// quota bounds each worker's iterations; start and end its time.
	quota      int64
	start, end time.Time
	// intervalNs is the open-loop spacing of iterations over all workers
	// (0: closed loop).
	intervalNs float64
	// resolveBy bounds the resolution of in-doubt requests after the load.
	resolveBy time.Time
	runID     string
}

// pending is a request whose outcome the harness did not learn (transport
// error, timeout, 5xx). It is repeated after the load with the same
// reference, which the server answers exactly once.
type pending struct {
	kind   requestKind
	org    int
	seq    uint64
	holdID string // kindCommit
}

// worker drives one connection (or one pipelined slot) with its own
// request, response, body and tallies: nothing is shared while loading.
type worker struct {
	id     int
	plan   *loadPlan
	target doer
	base   string

	req       *fasthttp.Request
	res       *fasthttp.Response
	commitReq *fasthttp.Request
	tmpl      *template
	keyOrg    int // the org whose key req carries (-1: none yet)
	uri       []byte

	hist       Histogram
	errStatus  [600]uint64 // failed requests by HTTP status
	itemStatus [600]uint64 // refused charges inside batches by status
	transport  uint64
	timeouts   uint64
	badAnswers uint64
	requests   uint64
	charges    uint64  // acknowledged during the measured phase
	acked      uint64  // acknowledged in all, in-doubt ones resolved included
	charged    []int64 // micros acknowledged per org
	inDoubt    []pending
	unresolved uint64
}

func newWorker(id int, plan *loadPlan) *worker {
	w := &worker{id: id, plan: plan, target: plan.targets[id%len(plan.targets)], base: plan.bases[id%len(plan.bases)],
		charged: make([]int64, len(plan.orgs)), keyOrg: -1, res: &fasthttp.Response{}}
	switch plan.kind {
	case kindCharge:
		w.tmpl = chargeTemplate(plan.runID, id)
	case kindBatch:
		w.tmpl = batchTemplate(plan.runID, id, plan.batch)
	case kindHold:
		w.tmpl = holdTemplate(plan.runID, id)
	}
	w.renew()
	return w
}

// renew gives the worker a fresh request and body. After a request failed,
// its objects may still be referenced by the client (a pipelined request
// still queued): they are abandoned, never written again.
func (w *worker) renew() {
	w.tmpl = w.tmpl.clone()
	path := chargesPath
	switch w.plan.kind {
	case kindBatch:
		path = batchPath
	case kindHold:
		path = holdsPath
	}
	w.req = newPost(w.base+path, w.tmpl.body)
	w.commitReq = newPost(w.base+holdsPath+"/x/commit", commitBody)
	w.keyOrg = -1
}

func newPost(uri string, body []byte) *fasthttp.Request {
	r := &fasthttp.Request{}
	r.Header.SetMethod(fasthttp.MethodPost)
	r.SetRequestURI(uri)
	r.Header.SetContentType("application/json")
	r.SetBodyRaw(body)
	return r
}

func (w *worker) setOrg(org int) {
	if w.keyOrg != org {
		w.req.Header.Set("X-API-Key", w.plan.orgs[org].Key)
		w.commitReq.Header.Set("X-API-Key", w.plan.orgs[org].Key)
		w.keyOrg = org
	}
}

// run is the measured loop, bounded by the worker's quota, the end time
// and ctx; then the worker resolves what it left in doubt.
func (w *worker) run(ctx context.Context) {
	p := w.plan
	for k := int64(0); k < p.quota && ctx.Err() == nil; k++ {
		var t0 time.Time
		if p.intervalNs > 0 {
			// Open loop: iteration k of worker id has a fixed slot on the
			// timeline; latency counts from it, so a slow answer that
			// delays the next send is charged to the server, not hidden.
			t0 = p.start.Add(time.Duration(float64(k*int64(p.workers)+int64(w.id)) * p.intervalNs))
			if !t0.Before(p.end) {
				break
			}
			if d := time.Until(t0); d > 0 {
				time.Sleep(d)
			}
		} else {
			t0 = time.Now()
			if !t0.Before(p.end) {
				break
			}
		}
		org := int((int64(w.id) + k*int64(p.workers)) % int64(len(p.orgs)))
		w.iterate(org, uint64(k), t0)
	}
}

// iterate sends one iteration's request(s), measured.
func (w *worker) iterate(org int, seq uint64, t0 time.Time) {
	w.setOrg(org)
	w.tmpl.setSeq(seq)
	err := w.target.Do(w.req, w.res)
	w.hist.Record(time.Since(t0))
	w.requests++
	switch w.plan.kind {
	case kindCharge:
		w.chargeAnswer(err, org, seq, true)
	case kindBatch:
		w.batchAnswer(err, org, seq, true)
	case kindHold:
		id, _ := w.holdAnswer(err, org, seq, true)
		if id == "" {
			return
		}
		t1 := time.Now()
		err = w.commit(id)
		w.hist.Record(time.Since(t1))
		w.requests++
		w.commitAnswer(err, org, seq, id, true)
	}
}

// refused counts a definite refusal (4xx) of a measured request.
func (w *worker) refused(measured bool) {
	if sc := w.res.StatusCode(); measured && sc >= 0 && sc < len(w.errStatus) {
		w.errStatus[sc]++
	}
}

// unknown handles a request whose outcome is unknown (transport error,
// timeout, 5xx, an answer the harness cannot read): it may have been
// applied. A measured one is kept to be resolved after the load.
func (w *worker) unknown(err error, measured bool, p pending) {
	if measured {
		switch {
		case errors.Is(err, fasthttp.ErrTimeout):
			w.timeouts++
		case err != nil:
			w.transport++
		default:
			if sc := w.res.StatusCode(); sc >= 0 && sc < len(w.errStatus) {
				w.errStatus[sc]++
			}
		}
		w.inDoubt = append(w.inDoubt, p)
	}
	if err != nil {
		w.renew()
	}
}

// credit records charges acknowledged for org; only those answered during
// the measured phase count towards the throughput.
func (w *worker) credit(org int, charges uint64, measured bool) {
	if measured {
		w.charges += charges
	}
	w.acked += charges
	w.charged[org] += int64(charges) * amountMicros
}

// chargeAnswer handles a single charge's answer and reports whether it was
// definite: 201 charged (on a repeat, 200 too); 4xx refused.
func (w *worker) chargeAnswer(err error, org int, seq uint64, measured bool) (definite bool) {
	if err == nil {
		switch sc := w.res.StatusCode(); {
		case sc == 201 || (sc == 200 && !measured):
			w.credit(org, 1, measured)
			return true
		case sc == 200:
			// A replay of a reference this run never sent: not counted,
			// so the verification will show where that money went.
			w.badAnswers++
			return true
		case sc < 500:
			w.refused(measured)
			return true
		}
	}
	w.unknown(err, measured, pending{kind: kindCharge, org: org, seq: seq})
	return false
}

// batchAnswer counts the charges of a batch answer that were applied (201;
// on a repeat, 200 too); a malformed answer leaves the batch in doubt.
func (w *worker) batchAnswer(err error, org int, seq uint64, measured bool) (definite bool) {
	if err == nil {
		switch sc := w.res.StatusCode(); {
		case sc == 200:
			var counts [600]uint64
			if n := batchStatuses(w.res.Body(), &counts); n != w.plan.batch || counts[0] != 0 {
				w.badAnswers++
				break
			}
			applied := counts[201]
			counts[201] = 0
			if !measured {
				applied += counts[200]
				counts[200] = 0
			}
			w.credit(org, applied, measured)
			if measured {
				for sc, c := range counts {
					w.itemStatus[sc] += c
				}
			}
			return true
		case sc < 500:
			w.refused(measured)
			return true
		}
	}
	w.unknown(err, measured, pending{kind: kindBatch, org: org, seq: seq})
	return false
}

// holdAnswer returns the id of the hold made (201; on a repeat, 200 too),
// and whether the answer was definite.
func (w *worker) holdAnswer(err error, org int, seq uint64, measured bool) (id string, definite bool) {
	if err == nil {
		switch sc := w.res.StatusCode(); {
		case sc == 201 || (sc == 200 && !measured):
			if b := reservationID(w.res.Body()); b != nil {
				return string(b), true
			}
			w.badAnswers++
		case sc < 500:
			w.refused(measured)
			return "", true
		}
	}
	w.unknown(err, measured, pending{kind: kindHold, org: org, seq: seq})
	return "", false
}

func (w *worker) commit(holdID string) error {
	w.uri = append(w.uri[:0], w.base...)
	w.uri = append(w.uri, holdsPath+"/"...)
	w.uri = append(w.uri, holdID...)
	w.uri = append(w.uri, "/commit"...)
	w.commitReq.SetRequestURIBytes(w.uri)
	return w.target.Do(w.commitReq, w.res)
}

var cappedTrue = []byte(`"capped":true`)

// commitAnswer credits a commit of amountMicros (201; on a repeat, 200).
func (w *worker) commitAnswer(err error, org int, seq uint64, holdID string, measured bool) (definite bool) {
	if err == nil {
		switch sc := w.res.StatusCode(); {
		case sc == 201 || (sc == 200 && !measured):
			if bytes.Contains(w.res.Body(), cappedTrue) {
				w.badAnswers++ // a commit below its hold is never capped
				return true
			}
			w.credit(org, 1, measured)
			return true
		case sc < 500:
			w.refused(measured)
			return true
		}
	}
	w.unknown(err, measured, pending{kind: kindCommit, org: org, seq: seq, holdID: holdID})
	return false
}

// resolve repeats every in-doubt request with its original reference until
// the server gives a definite answer, a bounded number of times and no
// later than the plan's resolveBy. What stays unknown is counted; the
// verification then fails, since the expected balances are not known.
func (w *worker) resolve(ctx context.Context) {
	for _, p := range w.inDoubt {
		if !w.resolveOne(ctx, p) {
			w.unresolved++
		}
	}
}

func (w *worker) resolveOne(ctx context.Context, p pending) bool {
	backoff := 100 * time.Millisecond
	for attempt := 0; attempt < resolveAttempts; attempt++ {
		if attempt > 0 {
			if time.Now().Add(backoff).After(w.plan.resolveBy) || ctx.Err() != nil {
				return false
			}
			time.Sleep(backoff)
			backoff = min(backoff*2, 2*time.Second)
		}
		w.setOrg(p.org)
		switch p.kind {
		case kindCharge:
			w.tmpl.setSeq(p.seq)
			if w.chargeAnswer(w.target.Do(w.req, w.res), p.org, p.seq, false) {
				return true
			}
		case kindBatch:
			w.tmpl.setSeq(p.seq)
			if w.batchAnswer(w.target.Do(w.req, w.res), p.org, p.seq, false) {
				return true
			}
		case kindHold:
			w.tmpl.setSeq(p.seq)
			id, definite := w.holdAnswer(w.target.Do(w.req, w.res), p.org, p.seq, false)
			if id != "" {
				p = pending{kind: kindCommit, org: p.org, seq: p.seq, holdID: id}
				attempt, backoff = -1, 100*time.Millisecond
				continue
			}
			if definite {
				return true // refused: nothing held, nothing to commit
			}
		case kindCommit:
			if w.commitAnswer(w.commit(p.holdID), p.org, p.seq, p.holdID, false) {
				return true
			}
		}
	}
	return false
}

// newRunID is a short random prefix that makes this run's references
// unique on a server that has seen other runs.
func newRunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "b" + hex.EncodeToString(b[:])
}

// checkLoopback refuses a URL whose host is not a loopback address.
func checkLoopback(raw string) (hostPort string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	host := u.Hostname()
	if host != "127.0.0.1" && host != "localhost" && host != "::1" {
		return "", fmt.Errorf("%s: the harness only loads loopback servers (127.0.0.1)", raw)
	}
	if u.Port() == "" {
		return "", fmt.Errorf("%s: give the port", raw)
	}
	return u.Host, nil
}

// newTarget builds the fasthttp client for one server: a HostClient with
// one connection per worker, or a PipelineClient with pipeline requests in
// flight per connection.
func newTarget(hostPort string, conns, pipeline int) doer {
	if pipeline > 1 {
		return &fasthttp.PipelineClient{
			Addr: hostPort, Name: "orbit-bench", MaxConns: conns, MaxPendingRequests: pipeline * 2,
			ReadTimeout: requestTimeout, WriteTimeout: requestTimeout, MaxIdleConnDuration: time.Minute,
			ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10,
		}
	}
	return &fasthttp.HostClient{
		Addr: hostPort, Name: "orbit-bench", MaxConns: conns, MaxConnWaitTimeout: requestTimeout,
		ReadTimeout: requestTimeout, WriteTimeout: requestTimeout, MaxIdleConnDuration: time.Minute,
		ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10, MaxResponseBodySize: 64 << 20,
	}
}

// mergeWorkers folds the workers' tallies into r and returns the latency
// histogram and the micros charged per org.
func mergeWorkers(r *Result, ws []*worker, orgs int) (*Histogram, []int64) {
	h := &Histogram{}
	charged := make([]int64, orgs)
	for _, w := range ws {
		h.Merge(&w.hist)
		r.Requests += w.requests
		r.Charges += w.charges
		r.Verification.AckedCharges += w.acked
		r.InDoubt += uint64(len(w.inDoubt))
		r.Verification.Unresolved += w.unresolved
		for i, c := range w.charged {
			charged[i] += c
		}
		for sc, c := range w.errStatus {
			if c > 0 {
				r.Errors[strconv.Itoa(sc)] += c
			}
		}
		for sc, c := range w.itemStatus {
			if c > 0 {
				r.Errors["item_"+strconv.Itoa(sc)] += c
			}
		}
		if w.transport > 0 {
			r.Errors["transport"] += w.transport
		}
		if w.timeouts > 0 {
			r.Errors["timeout"] += w.timeouts
		}
		if w.badAnswers > 0 {
			r.Errors["bad_answer"] += w.badAnswers
		}
	}
	return h, charged
}

func joinURLs(urls []string) string { return strings.Join(urls, ",") }
