package linearize

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// Recorder collects the operations of concurrent clients and the faults
// injected while they ran. Times are monotonic nanoseconds since the
// recorder was made.
type Recorder struct {
	start time.Time

	mu      sync.Mutex
	ops     []porcupine.Operation
	unknown []int // indexes in ops of operations with no definite answer
	faults  []porcupine.Annotation
	retries int
	// settled is when each request (see settleKey) was first seen to have
	// taken effect: a definite applied or replayed answer returned.
	settled map[string]int64
}

// settleKey names what a request does, so that its repeats share it: a
// charge, refund or hold by its reference or key, a commit or release by
// its hold (every commit of a hold has the same body).
func settleKey(in Input) string {
	switch in.Kind {
	case HoldCommit, HoldRelease:
		return in.Kind.String() + ":" + in.Target
	}
	return in.Kind.String() + ":" + in.Ref
}

// SettledBefore reports whether in was seen to have taken effect by an
// answer that returned before t. A possibly-applied attempt of in made
// after that cannot change anything (it can only replay or be a no-op), so
// the driver need not record it: fewer open operations keep the check
// fast.
func (r *Recorder) SettledBefore(in Input, t int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.settled[settleKey(in)]
	return ok && at < t
}

// NewRecorder starts a history.
func NewRecorder() *Recorder { return &Recorder{start: time.Now()} }

// Now is the recorder's clock.
func (r *Recorder) Now() int64 { return int64(time.Since(r.start)) }

// Add records an operation called at call that returned out now.
func (r *Recorder) Add(client int, in Input, call int64, out Output) {
	ret := r.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if in.Kind != Read && (out.Outcome == Applied || out.Outcome == Replayed) {
		if r.settled == nil {
			r.settled = map[string]int64{}
		}
		if at, ok := r.settled[settleKey(in)]; !ok || ret < at {
			r.settled[settleKey(in)] = ret
		}
	}
	r.ops = append(r.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
}

// AddUnknown records an operation called at call whose outcome is unknown:
// it may take effect at any time after call, or never. Its return is set
// after the end of the history when the history is checked.
func (r *Recorder) AddUnknown(client int, in Input, call int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unknown = append(r.unknown, len(r.ops))
	r.ops = append(r.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: Output{Outcome: Unknown}})
}

// Attempted counts an attempt with no definite answer.
func (r *Recorder) Attempted() {
	r.mu.Lock()
	r.retries++
	r.mu.Unlock()
}

// Fault records a fault injected from start to end (recorder times); it
// shows in the visualization.
func (r *Recorder) Fault(start, end int64, what string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faults = append(r.faults, porcupine.Annotation{Tag: "faults", Start: start, End: end, Description: what, BackgroundColor: "#fbb"})
}

// Stats counts the history's operations, those with unknown outcomes, the
// attempts that got no definite answer, and the faults.
func (r *Recorder) Stats() (ops, unknown, retries, faults int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ops), len(r.unknown), r.retries, len(r.faults)
}

// Operations returns the history as porcupine checks it.
//
// An operation with unknown outcome may take effect at any time after its
// call, or never; with nothing else known its return is after the end of
// the history. But once a later definite answer shows the same request
// took effect (settleKey), whatever the unknown attempt did was done by
// then, so it returns at that answer. Likewise a hold's expiry (HoldExpire,
// added here for every hold with a TTL) is decided by the first answer
// showing the hold closed (committed, released or expired). Open-ended
// operations make the search exponential; these bounds are exact and keep
// long histories checkable in well under a second.
func (r *Recorder) Operations() []porcupine.Operation {
	r.mu.Lock()
	defer r.mu.Unlock()
	ops := append([]porcupine.Operation(nil), r.ops...)
	var end int64
	system := 0
	// A hold with a TTL cannot expire before the request that created it
	// was sent plus its TTL (the leader stamps the hold's creation time
	// after that call, and expiry is the first batch at or after creation
	// + TTL), less a margin for millisecond truncation.
	earliestExpiry := map[string]int64{}
	closedBy := map[string]int64{} // hold reference -> first answer showing it closed
	for _, op := range ops {
		end = max(end, op.Return, op.Call)
		system = max(system, op.ClientId+1)
		in, out := op.Input.(Input), op.Output.(Output)
		// The hold was created by an applied create or by a create with
		// unknown outcome (a replayed one only found it; a refused one
		// did nothing): its expiry is no earlier than the earliest call
		// of those plus the TTL.
		if in.Kind == HoldCreate && in.TTLSeconds > 0 && (out.Outcome == Applied || out.Outcome == Unknown) {
			at := op.Call + in.TTLSeconds*int64(time.Second) - int64(expirySlack)
			if prev, ok := earliestExpiry[in.Ref]; !ok || at < prev {
				earliestExpiry[in.Ref] = at
			}
		}
		if closes(in, out) {
			if prev, ok := closedBy[in.Target]; !ok || op.Return < prev {
				closedBy[in.Target] = op.Return
			}
		}
	}
	for _, i := range r.unknown {
		ops[i].Return = end + 1
		if at, ok := r.settled[settleKey(ops[i].Input.(Input))]; ok {
			ops[i].Return = max(at, ops[i].Call)
		}
	}
	refs := make([]string, 0, len(earliestExpiry))
	for ref := range earliestExpiry {
		refs = append(refs, ref)
	}
	sort.Strings(refs)
	for _, ref := range refs {
		call := earliestExpiry[ref]
		// Without an answer showing the hold closed there is no upper
		// bound: with no leader no batch runs, so an expiry may come
		// arbitrarily late.
		ret := max(end, call) + 1
		if at, ok := closedBy[ref]; ok {
			if at < call {
				continue // closed before it could expire
			}
			ret = at
		}
		ops = append(ops, porcupine.Operation{ClientId: system, Input: Input{Kind: HoldExpire, Target: ref},
			Call: call, Output: Output{Outcome: Unknown}, Return: ret})
	}
	return ops
}

// closes reports whether an answer shows a hold closed when it returned.
func closes(in Input, out Output) bool {
	switch in.Kind {
	case HoldCommit:
		return out.Outcome == Applied || out.Outcome == Replayed || out.Outcome == Closed
	case HoldRelease:
		return out.Outcome == Applied || out.Outcome == Closed
	case HoldExtend:
		return out.Outcome == Closed
	case HoldRead:
		return out.Outcome == Applied && out.HoldStatus != holdOpen
	}
	return false
}

// expirySlack covers millisecond truncation of batch times.
const expirySlack = 50 * time.Millisecond

// CheckTimeout bounds one porcupine check.
const CheckTimeout = 60 * time.Second

// Check checks the history of a wallet funded with fundMicros. A history
// that is not linearizable (or that the checker could not decide in time)
// fails the test, and is saved as porcupine's HTML visualization and as raw
// JSON, whose paths the test logs. It also proves the check is not vacuous:
// the same history must be illegal for a wallet that started with one micro
// more. It returns false on a violation.
func Check(t testing.TB, name string, fundMicros int64, rec *Recorder) bool {
	t.Helper()
	ops := rec.Operations()
	start := time.Now()
	res, info := porcupine.CheckOperationsVerbose(Model(fundMicros), ops, CheckTimeout)
	n, unknown, _, _ := rec.Stats()
	switch res {
	case porcupine.Ok:
		t.Logf("%s: %d operations (%d with unknown outcome): linearizable (checked in %s)", name, n, unknown, time.Since(start).Round(time.Millisecond))
		if os.Getenv("ORBIT_HISTORY_KEEP") != "" {
			html, raw := Save(name, fundMicros, rec, info)
			t.Logf("%s: history kept (ORBIT_HISTORY_KEEP) in %s and %s", name, html, raw)
		}
		if porcupine.CheckOperationsTimeout(Model(fundMicros+1), ops, CheckTimeout) != porcupine.Illegal {
			t.Errorf("%s: the checker accepted the history against a wrong starting balance", name)
			return false
		}
		return true
	case porcupine.Unknown:
		html, raw := Save(name, fundMicros, rec, info)
		t.Errorf("%s: the checker timed out on %d operations; history saved to %s and %s", name, n, html, raw)
	default:
		html, raw := Save(name, fundMicros, rec, info)
		t.Errorf("%s: history of %d operations is NOT linearizable; visualization saved to %s, raw history to %s", name, n, html, raw)
	}
	return false
}

// record is one operation in the saved JSON.
type record struct {
	Client   int    `json:"client"`
	Kind     string `json:"kind"`
	Ref      string `json:"ref,omitempty"`
	Target   string `json:"target,omitempty"`
	Amount   int64  `json:"amount_micros"`
	CallNs   int64  `json:"call_ns"`
	ReturnNs int64  `json:"return_ns"`
	Outcome  string `json:"outcome"`
	Status   int    `json:"status,omitempty"`
	Balance  int64  `json:"balance_micros"`
	Reserved int64  `json:"reserved_micros"`
	Captured int64  `json:"captured_micros,omitempty"`
	Hold     string `json:"hold_status,omitempty"`
}

type fault struct {
	StartNs int64  `json:"start_ns"`
	EndNs   int64  `json:"end_ns"`
	What    string `json:"what"`
}

// Dir is where histories are saved: $ORBIT_HISTORY_DIR, else the system's
// temporary directory. Failing histories are always saved; with
// ORBIT_HISTORY_KEEP set, linearizable ones too.
func Dir() string {
	if d := os.Getenv("ORBIT_HISTORY_DIR"); d != "" {
		return d
	}
	return os.TempDir()
}

// Save writes the history as porcupine's visualization (HTML) and as JSON
// (operations, faults, funding) and returns both paths.
func Save(name string, fundMicros int64, rec *Recorder, info porcupine.LinearizationInfo) (htmlPath, jsonPath string) {
	dir := Dir()
	_ = os.MkdirAll(dir, 0o755)
	base := filepath.Join(dir, fmt.Sprintf("orbit-history-%s-%d", strings.ReplaceAll(name, "/", "_"), time.Now().UnixNano()))
	htmlPath, jsonPath = base+".html", base+".json"
	rec.mu.Lock()
	info.AddAnnotations(rec.faults)
	var faults []fault
	for _, f := range rec.faults {
		faults = append(faults, fault{f.Start, f.End, f.Description})
	}
	rec.mu.Unlock()
	if err := porcupine.VisualizePath(Model(fundMicros), info, htmlPath); err != nil {
		htmlPath = "(visualization failed: " + err.Error() + ")"
	}
	var ops []record
	for _, op := range rec.Operations() {
		in, out := op.Input.(Input), op.Output.(Output)
		ops = append(ops, record{
			Client: op.ClientId, Kind: in.Kind.String(), Ref: in.Ref, Target: in.Target, Amount: in.Amount,
			CallNs: op.Call, ReturnNs: op.Return, Outcome: out.Outcome.String(), Status: out.Status,
			Balance: out.BalanceMicros, Reserved: out.ReservedMicros, Captured: out.CapturedMicros, Hold: out.HoldStatus,
		})
	}
	raw, _ := json.MarshalIndent(map[string]any{"fund_micros": fundMicros, "operations": ops, "faults": faults}, "", " ")
	if err := os.WriteFile(jsonPath, raw, 0o644); err != nil {
		jsonPath = "(not written: " + err.Error() + ")"
	}
	return htmlPath, jsonPath
}

// ChaosLine prints the summary line `make chaos` collects
// (scripts/chaos-summary.sh).
func ChaosLine(name string, histories, seeds, faults, violations int) string {
	return fmt.Sprintf("CHAOS name=%s histories=%d seeds=%d faults=%d violations=%d", name, histories, seeds, faults, violations)
}

// Summary counts the history's operations by kind and outcome, e.g.
// "charge applied=12 refused=40; refund invalid=3 ...", so a test log shows
// what a run exercised.
func (r *Recorder) Summary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	counts := map[Kind]map[Outcome]int{}
	for _, op := range r.ops {
		in, out := op.Input.(Input), op.Output.(Output)
		if counts[in.Kind] == nil {
			counts[in.Kind] = map[Outcome]int{}
		}
		counts[in.Kind][out.Outcome]++
	}
	var b strings.Builder
	for k := Read; k <= HoldRead; k++ {
		if len(counts[k]) == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(k.String())
		for o := Applied; o <= NotSent; o++ {
			if n := counts[k][o]; n > 0 {
				fmt.Fprintf(&b, " %s=%d", o, n)
			}
		}
	}
	return b.String()
}

// Verdict checks the history without failing anything: for tests that
// prove a broken system is caught.
func Verdict(fundMicros int64, rec *Recorder) porcupine.CheckResult {
	return porcupine.CheckOperationsTimeout(Model(fundMicros), rec.Operations(), CheckTimeout)
}
