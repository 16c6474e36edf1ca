package engine

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

var propSeed = flag.Uint64("prop.seed", 0, "run the property tests with only this seed")

// propSeeds returns the seeds to run: the one given with -prop.seed, else n
// seeds from a base that changes every run (printed on failure).
func propSeeds(n int) []uint64 {
	if *propSeed != 0 {
		return []uint64{*propSeed}
	}
	base := uint64(time.Now().UnixNano())
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = base + uint64(i)*0x9E3779B97F4A7C15
	}
	return seeds
}

// TestPropertyRandomBatches applies random command sequences to three
// engines and checks the invariants of SPEC.md section 7 after every batch,
// every result against an independent model, and that the engines agree:
//   - e1 persists after every batch;
//   - e2 persists after random runs of batches (pending state spans batches);
//   - e3 is rebuilt mid-way with Load from e1's records and a copy of e1's
//     store, as restart recovery does, and then continues.
func TestPropertyRandomBatches(t *testing.T) {
	seeds, batches := 200, 300
	if testing.Short() {
		seeds, batches = 30, 120
	}
	for _, seed := range propSeeds(seeds) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			runProperty(t, seed, batches)
		})
	}
}

// lazyHarness persists only when flush is called, so several batches'
// changes are pending at once.
type lazyHarness struct {
	e   *Engine
	st  *MemStore
	ch  *Changes
	idx uint64
}

func (h *lazyHarness) apply(b Batch) []Result {
	res := h.e.Apply(&b, h.ch)
	h.idx = b.Index
	return res
}

func (h *lazyHarness) flush() {
	h.st.Write(h.ch)
	h.e.Persisted()
	h.ch = &Changes{}
}

func runProperty(t *testing.T, seed uint64, batches int) {
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d (rerun: go test ./engine -run 'TestPropertyRandomBatches' -prop.seed=%d): %s", seed, seed, fmt.Sprintf(format, args...))
	}
	r := rand.New(rand.NewPCG(seed, seed^0xDEADBEEF))
	g := newPropGen(r)
	m := newModel()
	chk := newInvariantChecker()

	h1 := newHarness()
	h2 := &lazyHarness{st: NewMemStore(), ch: &Changes{}}
	h2.e = New(1, h2.st)
	var h3 *harness
	rebuildAt := 1 + r.IntN(batches-1)

	for bi := 0; bi < batches; bi++ {
		b := g.batch()
		res := h1.apply(t, b.TimeMs, b.Commands...)
		b.Index = h1.idx

		// Every result as the model predicts it.
		for i := range b.Commands {
			if err := m.step(&b.Commands[i], res[i]); err != nil {
				fail("batch %d command %d (%s %+v): %v", bi, i, b.Commands[i].Kind, b.Commands[i], err)
			}
		}
		g.learn(b.Commands, res)

		// e2 decides identically while its changes are still pending.
		res2 := h2.apply(b)
		if !reflect.DeepEqual(res, res2) {
			fail("batch %d: e2 results differ:\n%+v\n%+v", bi, res, res2)
		}
		if r.IntN(3) == 0 || bi == batches-1 {
			h2.flush()
		}

		if h3 != nil {
			res3 := h3.apply(t, b.TimeMs, b.Commands...)
			if !reflect.DeepEqual(res, res3) {
				fail("batch %d: rebuilt engine results differ:\n%+v\n%+v", bi, res, res3)
			}
		}
		if bi == rebuildAt {
			var err error
			if h3, err = rebuild(h1); err != nil {
				fail("batch %d: %v", bi, err)
			}
			if h3.e.Digest() != h1.e.Digest() || h3.st.Digest() != h1.st.Digest() {
				fail("batch %d: digests differ right after rebuild", bi)
			}
		}

		if err := chk.check(h1, m); err != nil {
			fail("after batch %d: %v", bi, err)
		}
	}
	if h1.e.Digest() != h2.e.Digest() || h1.st.Digest() != h2.st.Digest() {
		fail("e1 and e2 digests differ")
	}
	if h1.e.Digest() != h3.e.Digest() || h1.st.Digest() != h3.st.Digest() {
		fail("e1 and rebuilt e3 digests differ")
	}
	// Digest is sensitive: one more batch on e1 alone changes it.
	d := h1.e.Digest()
	h1.apply(t, 0)
	if h1.e.Digest() == d {
		fail("engine digest ignores the applied index")
	}
	if m.ok == 0 {
		fail("no command succeeded")
	}
}

// rebuild makes a fresh engine from h's persisted state, as a restart does,
// after checking that what was persisted is what the engine holds.
func rebuild(h *harness) (*harness, error) {
	st := NewMemStore()
	st.Entries = append([]Entry(nil), h.st.Entries...)
	for k, v := range h.st.Refs {
		st.Refs[k] = v
	}
	for k, v := range h.st.Txns {
		st.Txns[k] = v
	}
	for k, v := range h.st.Usage {
		st.Usage[k] = v
	}
	for k, v := range h.st.Topups {
		st.Topups[k] = v
	}
	st.Invoices = append([]InvoiceRecord(nil), h.st.Invoices...)
	orgs := h.e.Orgs()
	var keys []APIKey
	for _, o := range orgs {
		keys = append(keys, h.e.Keys(o.ID)...)
	}
	var pOrgs []OrgRecord
	for _, o := range h.orgs {
		pOrgs = append(pOrgs, o)
	}
	sortOrgRecords(pOrgs)
	if !reflect.DeepEqual(pOrgs, orgs) {
		return nil, fmt.Errorf("persisted org records differ from the engine's:\n%+v\n%+v", pOrgs, orgs)
	}
	var pKeys []APIKey
	for _, k := range h.keys {
		pKeys = append(pKeys, k)
	}
	sortKeys(pKeys)
	sortKeys(keys)
	if len(pKeys) != len(keys) || (len(keys) > 0 && !reflect.DeepEqual(pKeys, keys)) {
		return nil, fmt.Errorf("persisted keys differ from the engine's:\n%+v\n%+v", pKeys, keys)
	}
	e := New(1, st)
	e.Load(pOrgs, pKeys, h.e.AppliedIndex(), h.e.LastTimeMs())
	h3 := &harness{e: e, st: st, idx: h.idx, orgs: map[string]OrgRecord{}, keys: map[string]APIKey{}}
	for k, v := range h.orgs {
		h3.orgs[k] = v
	}
	for k, v := range h.keys {
		h3.keys[k] = v
	}
	return h3, nil
}

// propGen makes random batches, steering toward interesting cases: reused
// references, refunds of earlier spends, deliveries, pauses and thresholds.
type propGen struct {
	r      *rand.Rand
	timeMs int64
	n      int
	orgs   []string
	// per org: charge references used so far (refused ones included) and the
	// body (amount) first sent with each.
	chargeRefs map[string][]string
	adjRefs    map[string][]string
	refundKeys []string
	// sent holds the first command sent with each reference or key, so a
	// retry can send the same body again.
	sent   map[string]Command
	spends []propTx // spends written
	others []propTx // adjustments, refunds and top-up credits written
	topups []propTx // top-ups created: tx = top-up id
	keyIDs []propTx // keys: tx = key id
}

type propTx struct {
	org, id string
	amount  int64
}

func newPropGen(r *rand.Rand) *propGen {
	return &propGen{r: r, timeMs: 1_700_000_000_000 + r.Int64N(1e9),
		chargeRefs: map[string][]string{}, adjRefs: map[string][]string{}, sent: map[string]Command{}}
}

// retry returns the command first sent under key, most of the time, so that
// retries replay; otherwise (or when key is new) it remembers c and returns it.
func (g *propGen) retry(key string, c Command) Command {
	if prev, ok := g.sent[key]; ok {
		if g.r.IntN(4) != 0 {
			return prev
		}
		return c
	}
	g.sent[key] = c
	return c
}

func (g *propGen) pick(s []string) string { return s[g.r.IntN(len(s))] }

func (g *propGen) org() string {
	if g.r.IntN(100) == 0 {
		return "org_unknown"
	}
	return g.pick(g.orgs)
}

func (g *propGen) amount() int64 {
	switch g.r.IntN(10) {
	case 0:
		return 0
	case 1:
		return g.r.Int64N(5_000_000)
	default:
		return g.r.Int64N(200_000)
	}
}

func (g *propGen) batch() Batch {
	// Time mostly advances, sometimes runs backwards (a new leader).
	if g.r.IntN(10) == 0 {
		g.timeMs -= g.r.Int64N(100_000)
	} else {
		g.timeMs += g.r.Int64N(40_000_000)
	}
	if len(g.orgs) == 0 {
		cmds := make([]Command, 5)
		for i := range cmds {
			cmds[i] = Command{Kind: CmdCreateOrg, Name: "org" + strconv.Itoa(i)}
		}
		return Batch{TimeMs: g.timeMs, Commands: cmds}
	}
	size := 1 + g.r.IntN(12)
	if g.r.IntN(8) == 0 {
		size = g.r.IntN(80) // 0 included: an empty batch
	}
	cmds := make([]Command, size)
	for i := range cmds {
		cmds[i] = g.command()
	}
	return Batch{TimeMs: g.timeMs, Commands: cmds}
}

func (g *propGen) command() Command {
	g.n++
	org := g.org()
	switch w := g.r.IntN(100); {
	case w < 45:
		return g.charge(org)
	case w < 60:
		amt := g.r.Int64N(1_000_000)
		if g.r.IntN(3) == 0 {
			amt = -amt
		}
		if g.r.IntN(50) == 0 {
			amt = []int64{0, MaxAmountMicros + 1, -MaxAmountMicros - 1}[g.r.IntN(3)]
		}
		ref := "adj" + strconv.Itoa(g.n)
		if refs := g.adjRefs[org]; len(refs) > 0 && g.r.IntN(6) == 0 {
			ref = g.pick(refs)
		} else {
			g.adjRefs[org] = append(g.adjRefs[org], ref)
		}
		return g.retry("a"+org+"\x00"+ref, Command{Kind: CmdAdjustment, OrgID: org, Reference: ref, AmountMicros: amt, BodyHash: "b" + strconv.FormatInt(amt, 10), Reason: "r"})
	case w < 75:
		return g.refund(org)
	case w < 83:
		c := Command{Kind: CmdDelivery, OrgID: org, Status: Delivery(1 + g.r.IntN(2)), TxID: "ct_nope"}
		if len(g.spends) > 0 {
			s := g.spends[g.r.IntN(len(g.spends))]
			c.TxID = s.id
			if g.r.IntN(10) != 0 {
				c.OrgID = s.org
			}
		}
		if len(g.others) > 0 && g.r.IntN(15) == 0 {
			c.TxID = g.others[g.r.IntN(len(g.others))].id
		}
		return c
	case w < 85:
		return Command{Kind: CmdPause, OrgID: org, Reason: "hold " + strconv.Itoa(g.n)}
	case w < 92:
		return Command{Kind: CmdUnpause, OrgID: org}
	case w < 95:
		th := g.r.Int64N(300_000)
		if g.r.IntN(3) == 0 {
			th = 0
		}
		if g.r.IntN(20) == 0 {
			th = -1
		}
		return Command{Kind: CmdUpdateOrg, OrgID: org, SetThreshold: true, ThresholdMicros: th, SetName: g.r.IntN(2) == 0, Name: "n" + strconv.Itoa(g.n)}
	case w < 97:
		return g.topup(org)
	case w < 98:
		return Command{Kind: CmdCreateKey, OrgID: org, Role: RoleCharge, KeyHash: "kh" + strconv.Itoa(g.r.IntN(30)), KeyPrefix: "p"}
	default:
		c := Command{Kind: CmdRevokeKey, OrgID: org, KeyID: "key_nope"}
		if len(g.keyIDs) > 0 {
			k := g.keyIDs[g.r.IntN(len(g.keyIDs))]
			c.KeyID = k.id
			if g.r.IntN(3) != 0 {
				c.OrgID = k.org
			}
		}
		return c
	}
}

func (g *propGen) charge(org string) Command {
	ref := "msg" + strconv.Itoa(g.n)
	amt := g.amount()
	if g.r.IntN(50) == 0 {
		amt = []int64{-1, MaxAmountMicros + 1}[g.r.IntN(2)]
	}
	if refs := g.chargeRefs[org]; len(refs) > 0 && g.r.IntN(4) == 0 {
		ref = g.pick(refs)
	} else if g.r.IntN(20) == 0 && len(g.orgs) > 1 {
		// Another org's reference: separate namespace.
		if refs := g.chargeRefs[g.pick(g.orgs)]; len(refs) > 0 {
			ref = g.pick(refs)
		}
	}
	if _, seen := g.sent["c"+org+"\x00"+ref]; !seen {
		g.chargeRefs[org] = append(g.chargeRefs[org], ref)
	}
	ch := []string{"sms", "voice", "llm"}[g.r.IntN(3)]
	var md Metadata
	switch g.r.IntN(3) {
	case 0:
		md = Metadata{{"country", `"` + []string{"US", "GB", "1"}[g.r.IntN(3)] + `"`}}
	case 1:
		md = Metadata{{"model", `"m` + strconv.Itoa(g.r.IntN(2)) + `"`}}
	}
	return g.retry("c"+org+"\x00"+ref, Command{Kind: CmdCharge, OrgID: org, Reference: ref, Channel: ch, AmountMicros: amt,
		BodyHash: "b" + strconv.FormatInt(amt, 10) + ch, Metadata: md})
}

func (g *propGen) refund(org string) Command {
	key := "rk" + strconv.Itoa(g.n)
	if len(g.refundKeys) > 0 && g.r.IntN(6) == 0 {
		key = g.pick(g.refundKeys)
	} else {
		g.refundKeys = append(g.refundKeys, key)
	}
	c := Command{Kind: CmdRefund, OrgID: org, Reference: key, TxID: "ct_nope"}
	switch {
	case len(g.others) > 0 && g.r.IntN(12) == 0:
		o := g.others[g.r.IntN(len(g.others))]
		c.TxID, c.OrgID = o.id, o.org
	case len(g.spends) > 0:
		// Recent spends more often, so partial refunds pile up.
		i := len(g.spends) - 1 - g.r.IntN(min(len(g.spends), 40))
		if g.r.IntN(3) == 0 {
			i = g.r.IntN(len(g.spends))
		}
		s := g.spends[i]
		c.TxID = s.id
		if g.r.IntN(12) != 0 {
			c.OrgID = s.org
		}
		switch g.r.IntN(4) {
		case 0: // the rest
		case 1:
			c.AmountMicros = 1 + g.r.Int64N(max(s.amount, 1))
		default:
			c.AmountMicros = g.r.Int64N(max(s.amount/2, 1)) - 1 // -1 sometimes
		}
	}
	c.BodyHash = "b" + c.TxID + strconv.FormatInt(c.AmountMicros, 10)
	return g.retry("r"+key, c)
}

func (g *propGen) topup(org string) Command {
	if len(g.topups) > 0 && g.r.IntN(2) == 0 {
		t := g.topups[g.r.IntN(len(g.topups))]
		c := Command{Kind: CmdTopupComplete, OrgID: t.org, TopupID: t.id, PaymentIntent: "pi"}
		if g.r.IntN(4) == 0 {
			c.Kind = CmdTopupExpire
		}
		if g.r.IntN(10) == 0 {
			c.OrgID = org
		}
		return c
	}
	cents := 500 + g.r.Int64N(20_000)
	if g.r.IntN(15) == 0 {
		cents = []int64{0, 499, 1_000_000, 1_000_001}[g.r.IntN(4)]
	}
	c := Command{Kind: CmdTopupCreate, OrgID: org, Reference: "tk" + strconv.Itoa(g.n), AmountMinor: cents, Currency: "usd", Provider: "dev"}
	if g.r.IntN(20) == 0 {
		c.Currency = "eur"
	}
	c.BodyHash = "b" + strconv.FormatInt(cents, 10) + c.Currency
	if g.r.IntN(8) == 0 && len(g.topups) > 0 {
		c.Reference = "tk-retry" // reused key: replays or conflicts
	}
	return g.retry("t"+org+"\x00"+c.Reference, c)
}

// learn records ids the batch created so later commands can name them.
func (g *propGen) learn(cmds []Command, res []Result) {
	for i, c := range cmds {
		r := res[i]
		if r.Code != CodeOK {
			continue
		}
		switch c.Kind {
		case CmdCreateOrg:
			g.orgs = append(g.orgs, r.ID)
		case CmdCreateKey:
			g.keyIDs = append(g.keyIDs, propTx{org: c.OrgID, id: r.ID})
		case CmdCharge:
			g.spends = append(g.spends, propTx{org: c.OrgID, id: r.TxID, amount: c.AmountMicros})
		case CmdAdjustment, CmdRefund, CmdTopupComplete:
			g.others = append(g.others, propTx{org: c.OrgID, id: r.TxID})
		case CmdTopupCreate:
			g.topups = append(g.topups, propTx{org: c.OrgID, id: r.ID})
		}
	}
}

// model is an independent, straightforward statement of the rules that
// Apply implements; step checks one result against it and advances it.
type model struct {
	orgs   map[string]*modelOrg
	refs   map[refKey]RefRecord
	txns   map[string]*modelTxn
	keys   map[string]*modelKey // by id
	hashes map[string]bool
	topups map[string]*modelTopup
	ok     int
}

type modelOrg struct {
	balance, threshold int64
	hold               bool
	details            string
}

type modelTxn struct {
	org       string
	typ       EntryType
	amount    int64
	refunded  int64
	delivery  Delivery
	refundsOf string // for a refund: the spend it refunds
}

type modelTopup struct {
	org    string
	credit int64
	status string
	entry  string
}

type modelKey struct {
	org     string
	revoked bool
}

func newModel() *model {
	return &model{orgs: map[string]*modelOrg{}, refs: map[refKey]RefRecord{}, txns: map[string]*modelTxn{},
		keys: map[string]*modelKey{}, hashes: map[string]bool{}, topups: map[string]*modelTopup{}}
}

func (m *model) step(c *Command, r Result) error {
	want, replayOf := m.expect(c)
	if r.Code != want {
		return fmt.Errorf("code %v (%s), model expects %v", r.Code, r.Message, want)
	}
	if replayOf != "" && r.TxID != replayOf {
		return fmt.Errorf("%v names %s, want %s", r.Code, r.TxID, replayOf)
	}
	if (r.Entry != nil) != (want == CodeOK && (c.Kind == CmdCharge || c.Kind == CmdAdjustment || c.Kind == CmdRefund || c.Kind == CmdTopupComplete)) {
		return fmt.Errorf("entry %+v on %v", r.Entry, r.Code)
	}
	if want == CodeOK {
		m.ok++
		if err := m.advance(c, r); err != nil {
			return err
		}
	}
	if o := m.orgs[c.OrgID]; o != nil && c.Kind != CmdCreateOrg {
		if r.Wallet.BalanceMicros != o.balance || r.Wallet.ThresholdMicros != o.threshold || r.Wallet.OperatorHold != o.hold ||
			r.Wallet.HoldDetails != o.details || r.Wallet.OrgID != c.OrgID {
			return fmt.Errorf("wallet %+v, model %+v", r.Wallet, *o)
		}
	}
	return nil
}

// expect returns the code the model predicts and, for a replay or conflict,
// the transaction the result must name.
func (m *model) expect(c *Command) (Code, string) {
	if c.Kind == CmdCreateOrg {
		return CodeOK, ""
	}
	if c.Kind < CmdCreateOrg || c.Kind > CmdTopupExpire {
		return CodeInvalid, ""
	}
	o := m.orgs[c.OrgID]
	if o == nil {
		return CodeNotFound, ""
	}
	replay := func(ns byte) (Code, string, bool) {
		rec, ok := m.refs[refKey{c.OrgID, ns, c.Reference}]
		if !ok {
			return 0, "", false
		}
		if rec.BodyHash == c.BodyHash {
			return CodeReplayed, rec.TxID, true
		}
		return CodeConflict, rec.TxID, true
	}
	switch c.Kind {
	case CmdUpdateOrg:
		if c.SetThreshold && (c.ThresholdMicros < 0 || c.ThresholdMicros > MaxAmountMicros) {
			return CodeInvalid, ""
		}
	case CmdCreateKey:
		if m.hashes[c.KeyHash] {
			return CodeConflict, ""
		}
	case CmdRevokeKey:
		if k := m.keys[c.KeyID]; k == nil || k.org != c.OrgID {
			return CodeNotFound, ""
		}
	case CmdCharge:
		if code, tx, ok := replay(NSCharge); ok {
			return code, tx
		}
		switch {
		case c.AmountMicros < 0 || c.AmountMicros > MaxAmountMicros:
			return CodeInvalid, ""
		case o.hold:
			return CodeOutboundPaused, ""
		case o.balance <= o.threshold || o.balance-o.threshold < c.AmountMicros:
			return CodeInsufficientFunds, ""
		}
	case CmdAdjustment:
		if code, tx, ok := replay(NSAdjustment); ok {
			return code, tx
		}
		switch {
		case c.AmountMicros == 0 || c.AmountMicros > MaxAmountMicros || c.AmountMicros < -MaxAmountMicros:
			return CodeInvalid, ""
		case c.AmountMicros < 0 && -c.AmountMicros > o.balance:
			return CodeInsufficientFunds, ""
		}
	case CmdRefund:
		if code, tx, ok := replay(NSRefund); ok {
			return code, tx
		}
		t := m.txns[c.TxID]
		switch {
		case t == nil || t.org != c.OrgID:
			return CodeNotFound, ""
		case t.typ != EntrySpend && t.typ != EntryTopup:
			return CodeNotRefundable, ""
		}
		left := t.amount - t.refunded
		amt := c.AmountMicros
		if amt == 0 {
			amt = left
		}
		if amt < 0 || left == 0 || amt > left {
			return CodeInvalid, ""
		}
		if t.typ == EntryTopup && amt > o.balance {
			return CodeInsufficientFunds, "" // a top-up refund goes back to the card
		}
	case CmdDelivery:
		t := m.txns[c.TxID]
		switch {
		case t == nil || t.org != c.OrgID:
			return CodeNotFound, ""
		case t.typ != EntrySpend:
			return CodeInvalid, c.TxID
		case t.delivery != DeliveryNone && t.delivery != c.Status:
			return CodeConflict, c.TxID
		}
		return CodeOK, c.TxID
	case CmdTopupCreate:
		if code, tx, ok := replay(NSTopup); ok {
			return code, tx
		}
		if c.Currency != "usd" || c.AmountMinor < TopupCentsMin || c.AmountMinor > TopupCentsMax {
			return CodeInvalid, ""
		}
	case CmdTopupComplete, CmdTopupExpire:
		tu := m.topups[c.TopupID]
		switch {
		case tu == nil || tu.org != c.OrgID:
			return CodeNotFound, ""
		case c.Kind == CmdTopupComplete && tu.status == TopupPaid:
			return CodeReplayed, tu.entry
		}
	}
	return CodeOK, ""
}

func (m *model) advance(c *Command, r Result) error {
	o := m.orgs[c.OrgID]
	switch c.Kind {
	case CmdCreateOrg:
		if !strings.HasPrefix(r.ID, PrefixOrg) || m.orgs[r.ID] != nil {
			return fmt.Errorf("new org id %q", r.ID)
		}
		m.orgs[r.ID] = &modelOrg{}
	case CmdUpdateOrg:
		if c.SetThreshold {
			o.threshold = c.ThresholdMicros
		}
	case CmdCreateKey:
		if m.keys[r.ID] != nil || !strings.HasPrefix(r.ID, PrefixKey) {
			return fmt.Errorf("new key id %q", r.ID)
		}
		m.keys[r.ID] = &modelKey{org: c.OrgID}
		m.hashes[c.KeyHash] = true
	case CmdRevokeKey:
		m.keys[c.KeyID].revoked = true
	case CmdCharge:
		o.balance -= c.AmountMicros
		m.refs[refKey{c.OrgID, NSCharge, c.Reference}] = RefRecord{TxID: r.TxID, BodyHash: c.BodyHash}
		m.txns[r.TxID] = &modelTxn{org: c.OrgID, typ: EntrySpend, amount: c.AmountMicros}
	case CmdAdjustment:
		o.balance += c.AmountMicros
		m.refs[refKey{c.OrgID, NSAdjustment, c.Reference}] = RefRecord{TxID: r.TxID, BodyHash: c.BodyHash}
		m.txns[r.TxID] = &modelTxn{org: c.OrgID, typ: EntryAdjustment}
	case CmdRefund:
		t := m.txns[c.TxID]
		amt := c.AmountMicros
		if amt == 0 {
			amt = t.amount - t.refunded
		}
		if want := map[bool]int64{true: -amt, false: amt}[t.typ == EntryTopup]; r.Entry.AmountMicros != want {
			return fmt.Errorf("refund of %d, model expects %d", r.Entry.AmountMicros, want)
		}
		t.refunded += amt
		m.refs[refKey{c.OrgID, NSRefund, c.Reference}] = RefRecord{TxID: r.TxID, BodyHash: c.BodyHash}
		if t.typ == EntryTopup {
			if r.Entry.Type != EntryTopupRefund {
				return fmt.Errorf("top-up refund wrote a %v", r.Entry.Type)
			}
			o.balance -= amt
			m.txns[r.TxID] = &modelTxn{org: c.OrgID, typ: EntryTopupRefund}
			break
		}
		o.balance += amt
		m.txns[r.TxID] = &modelTxn{org: c.OrgID, typ: EntryRefund, refundsOf: c.TxID}
	case CmdDelivery:
		m.txns[c.TxID].delivery = c.Status
	case CmdTopupCreate:
		if m.topups[r.ID] != nil || !strings.HasPrefix(r.ID, PrefixTopup) {
			return fmt.Errorf("new top-up id %q", r.ID)
		}
		m.topups[r.ID] = &modelTopup{org: c.OrgID, credit: c.AmountMinor * MicrosPerCent, status: TopupPending}
		m.refs[refKey{c.OrgID, NSTopup, c.Reference}] = RefRecord{TxID: r.ID, BodyHash: c.BodyHash}
	case CmdTopupComplete:
		tu := m.topups[c.TopupID]
		if r.Entry.AmountMicros != tu.credit || r.Entry.Type != EntryTopup {
			return fmt.Errorf("top-up credit %+v, model expects %d", *r.Entry, tu.credit)
		}
		o.balance += tu.credit
		tu.status, tu.entry = TopupPaid, r.TxID
		m.txns[r.TxID] = &modelTxn{org: c.OrgID, typ: EntryTopup, amount: tu.credit}
	case CmdTopupExpire:
		if tu := m.topups[c.TopupID]; tu.status == TopupPending {
			tu.status = TopupExpired
		}
	case CmdPause:
		o.hold, o.details = true, c.Reason
	case CmdUnpause:
		o.hold, o.details = false, ""
	}
	if r.Entry != nil {
		if r.Entry.ID != r.TxID || r.Entry.BalanceAfterMicros != o.balance || r.Entry.OrgID != c.OrgID {
			return fmt.Errorf("entry %+v (tx %s), model balance %d", *r.Entry, r.TxID, o.balance)
		}
	}
	return nil
}

// invariantChecker checks the persisted state after every batch, reading
// only the entries written since the last check for the ordering checks.
type invariantChecker struct {
	seen       int
	lastBal    map[string]int64
	lastTime   int64
	lastID     string
	chargeRefs map[string]string // org + reference -> entry id
	refunded   map[string]int64  // spend id -> sum of refund entries
	refundedAt map[string]int64  // spend id -> time of its last refund entry
}

func newInvariantChecker() *invariantChecker {
	return &invariantChecker{lastBal: map[string]int64{}, chargeRefs: map[string]string{}, refunded: map[string]int64{}, refundedAt: map[string]int64{}}
}

func (c *invariantChecker) check(h *harness, m *model) error {
	for _, e := range h.st.Entries[c.seen:] {
		// Ids strictly increase in (created_at, id) order of writing, and
		// each id encodes its entry's time.
		if e.CreatedAtMs < c.lastTime || (e.CreatedAtMs == c.lastTime && e.ID <= c.lastID) || e.ID <= c.lastID {
			return fmt.Errorf("entry %s@%d written after %s@%d", e.ID, e.CreatedAtMs, c.lastID, c.lastTime)
		}
		c.lastTime, c.lastID = e.CreatedAtMs, e.ID
		if ms, ok := IDTimeMs(e.ID, PrefixTransaction); !ok || ms != e.CreatedAtMs {
			return fmt.Errorf("entry %s: id time %d, created %d", e.ID, ms, e.CreatedAtMs)
		}
		// balance_after chains per org.
		if c.lastBal[e.OrgID]+e.AmountMicros != e.BalanceAfterMicros || e.BalanceAfterMicros < 0 {
			return fmt.Errorf("entry %s: %d + %d != balance after %d", e.ID, c.lastBal[e.OrgID], e.AmountMicros, e.BalanceAfterMicros)
		}
		c.lastBal[e.OrgID] = e.BalanceAfterMicros
		switch e.Type {
		case EntrySpend:
			if e.AmountMicros > 0 {
				return fmt.Errorf("positive spend %+v", e)
			}
			// A charge reference appears in at most one entry.
			k := e.OrgID + "\x00" + e.Reference
			if prev, dup := c.chargeRefs[k]; dup {
				return fmt.Errorf("reference %q charged twice: %s and %s", e.Reference, prev, e.ID)
			}
			c.chargeRefs[k] = e.ID
		case EntryRefund:
			v, _ := e.Metadata.Get("refunded_transaction_id")
			spendID := strings.Trim(v, `"`)
			if e.Reference != "refund:"+spendID || e.AmountMicros <= 0 {
				return fmt.Errorf("refund entry %+v", e)
			}
			c.refunded[spendID] += e.AmountMicros
			c.refundedAt[spendID] = e.CreatedAtMs
			spend, ok := h.st.Txn(e.OrgID, spendID)
			if !ok || spend.Type != EntrySpend {
				return fmt.Errorf("refund %s of %s: no spend of that org", e.ID, spendID)
			}
			// The refunds of a spend never exceed it.
			if c.refunded[spendID] > spend.AmountMicros {
				return fmt.Errorf("spend %s of %d: refund entries sum %d, record %d", spendID, spend.AmountMicros, c.refunded[spendID], spend.RefundedMicros)
			}
		}
	}
	c.seen = len(h.st.Entries)
	for spendID, sum := range c.refunded {
		// The side record agrees with the ledger; refunded_at is set exactly
		// when nothing is left.
		t := h.st.Txns[spendID]
		at := int64(0)
		if sum == t.AmountMicros {
			at = c.refundedAt[spendID]
		}
		if t.RefundedMicros != sum || t.RefundedAtMs != at {
			return fmt.Errorf("spend %s: refunded %d of %d, refunded_at %d", spendID, sum, t.AmountMicros, t.RefundedAtMs)
		}
	}
	for _, rec := range h.e.Orgs() {
		w, _ := h.e.Wallet(rec.ID)
		if sum := h.st.LedgerSum(rec.ID); w.BalanceMicros != sum || sum != c.lastBal[rec.ID] {
			return fmt.Errorf("org %s: balance %d, ledger sum %d, last balance_after %d", rec.ID, w.BalanceMicros, sum, c.lastBal[rec.ID])
		}
		if w.BalanceMicros < 0 || w.AvailableMicros() < 0 {
			return fmt.Errorf("org %s: balance %d available %d", rec.ID, w.BalanceMicros, w.AvailableMicros())
		}
		if mo := m.orgs[rec.ID]; mo == nil || mo.balance != w.BalanceMicros {
			return fmt.Errorf("org %s: balance %d, model %+v", rec.ID, w.BalanceMicros, mo)
		}
		// The org record persisted last equals the engine's.
		if rec.Index != 0 && rec.Index > h.e.AppliedIndex() {
			return fmt.Errorf("org %s: index %d beyond applied %d", rec.ID, rec.Index, h.e.AppliedIndex())
		}
		// Admission mirrors the applied wallet when nothing is in flight.
		if !w.OperatorHold && !w.Disputed {
			fit := w.AvailableMicros() - w.ThresholdMicros
			if fit > 0 {
				if st := h.e.Admit(rec.ID, fit+1); st != AdmitInsufficient {
					return fmt.Errorf("org %s: Admit(%d) with %d to spare = %v", rec.ID, fit+1, fit, st)
				}
				if st := h.e.Admit(rec.ID, fit); st != Admitted {
					return fmt.Errorf("org %s: Admit(%d) = %v", rec.ID, fit, st)
				}
				h.e.Unadmit(rec.ID, fit)
			} else if st := h.e.Admit(rec.ID, 0); st != AdmitInsufficient {
				return fmt.Errorf("org %s: Admit(0) at %d available, threshold %d = %v", rec.ID, w.AvailableMicros(), w.ThresholdMicros, st)
			}
		} else if st := h.e.Admit(rec.ID, 0); st != AdmitPaused {
			return fmt.Errorf("org %s: Admit while paused = %v", rec.ID, st)
		}
	}
	return nil
}
