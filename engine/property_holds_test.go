package engine

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestPropertyHolds applies random batches of holds (create, extend, commit,
// release, with TTLs that pass), grants with random expiries, rate cards and
// rated charges to three engines, and checks after every batch:
//   - every result, every ledger entry written (expiries included), every
//     hold and every grant's remainder against an independent model;
//   - SPEC.md section 7 on the persisted state alone: balance == ledger sum
//     >= 0, available == balance - open holds >= 0, reserved == the open
//     holds' amounts, a grant's expiry entries never exceed it, no charge,
//     commit or grant reference written twice;
//   - determinism: e2 (persisting lazily) and e3 (rebuilt mid-way with Load,
//     LoadSettings and LoadHolds from the persisted state) decide the same
//     results and end with the same Digest and MemStore.Digest as e1.
func TestPropertyHolds(t *testing.T) {
	seeds, batches := 60, 300
	if testing.Short() {
		seeds, batches = 15, 120
	}
	if *propSeed == 0 {
		t.Cleanup(func() { phCoverage.check(t) })
	}
	for _, seed := range propSeeds(seeds) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			runHoldsProperty(t, seed, batches)
		})
	}
}

func runHoldsProperty(t *testing.T, seed uint64, batches int) {
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d (rerun: go test ./engine -run 'TestPropertyHolds' -prop.seed=%d): %s", seed, seed, fmt.Sprintf(format, args...))
	}
	r := rand.New(rand.NewPCG(seed, seed^0x5EED))
	g := newPHGen(r)
	m := newPHModel()
	chk := newPHChecker()

	h1 := newHarness()
	h2 := &lazyHarness{st: NewMemStore(), ch: &Changes{}}
	h2.e = New(1, h2.st)
	var h3 *harness
	rebuildAt := 1 + r.IntN(batches-1)

	for bi := 0; bi < batches; bi++ {
		b := g.batch()
		m.begin(b.TimeMs)
		res := h1.apply(t, b.TimeMs, b.Commands...)
		b.Index = h1.idx
		for i := range b.Commands {
			if err := m.step(&b.Commands[i], res[i]); err != nil {
				fail("batch %d (t=%d) command %d (%s %+v): %v", bi, m.now, i, b.Commands[i].Kind, b.Commands[i], err)
			}
		}
		if err := m.end(h1.last.Entries); err != nil {
			fail("batch %d (t=%d): %v", bi, m.now, err)
		}
		g.learn(b.Commands, res)

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
			if h3, err = phRebuild(h1); err != nil {
				fail("batch %d: %v", bi, err)
			}
			if h3.e.Digest() != h1.e.Digest() || h3.st.Digest() != h1.st.Digest() {
				fail("batch %d: digests differ right after rebuild", bi)
			}
			// The rebuilt engine passes the same checks from scratch (its
			// deadlines included).
			if err := newPHChecker().check(h3); err != nil {
				fail("batch %d: rebuilt engine: %v", bi, err)
			}
		}
		if err := chk.check(h1); err != nil {
			fail("after batch %d: %v", bi, err)
		}
		if err := m.compare(h1); err != nil {
			fail("after batch %d: %v", bi, err)
		}
	}
	if h1.e.Digest() != h2.e.Digest() || h1.st.Digest() != h2.st.Digest() {
		fail("e1 and e2 digests differ")
	}
	if h1.e.Digest() != h3.e.Digest() || h1.st.Digest() != h3.st.Digest() {
		fail("e1 and rebuilt e3 digests differ")
	}
	phCoverage.add(m.seen)
}

// phCoverage sums what happened across seeds, so a generator that stops
// reaching a case fails the test.
var phCoverage = &phCounts{m: map[string]int{}}

type phCounts struct {
	mu sync.Mutex
	m  map[string]int
}

func (c *phCounts) add(seen map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range seen {
		c.m[k] += v
	}
}

func (c *phCounts) check(t *testing.T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range []string{"create", "extend", "commit", "commit-capped", "commit-late", "release", "grant", "expiry", "hold-expired", "rated", "replay", "closed"} {
		if c.m[k] == 0 {
			t.Errorf("no %s happened across the seeds: %v", k, c.m)
		}
	}
	t.Logf("coverage: %v", c.m)
}

// phJSON round-trips v through JSON, as the durable store keeps it.
func phJSON[T any](v T) T {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

// phRebuild makes a fresh engine from h's persisted state as recovery does:
// Load, LoadSettings, LoadHolds(st.OpenHolds()), over a deep copy of the
// store, with org records, settings and open holds read back from JSON.
func phRebuild(h *harness) (*harness, error) {
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
	for k, v := range h.st.Holds {
		st.Holds[k] = *v.copyOf()
	}
	st.Invoices = append([]InvoiceRecord(nil), h.st.Invoices...)
	st.Settings = h.st.Settings
	var orgs []OrgRecord
	for _, o := range h.orgs {
		orgs = append(orgs, o.clone())
	}
	sortOrgRecords(orgs)
	if mem := h.e.Orgs(); !reflect.DeepEqual(orgs, mem) {
		return nil, fmt.Errorf("persisted org records differ from the engine's:\n%+v\n%+v", orgs, mem)
	}
	if !reflect.DeepEqual(st.Settings, h.e.Settings()) {
		return nil, fmt.Errorf("persisted settings %+v, engine %+v", st.Settings, h.e.Settings())
	}
	var keys []APIKey
	for _, k := range h.keys {
		keys = append(keys, k)
	}
	e := New(1, st)
	e.Load(phJSON(orgs), keys, h.e.AppliedIndex(), h.e.LastTimeMs())
	e.LoadSettings(phJSON(st.Settings))
	e.LoadHolds(phJSON(st.OpenHolds()))
	h3 := &harness{e: e, st: st, idx: h.idx, orgs: map[string]OrgRecord{}, keys: map[string]APIKey{}}
	for k, v := range h.orgs {
		h3.orgs[k] = v
	}
	for k, v := range h.keys {
		h3.keys[k] = v
	}
	return h3, nil
}

// phGen makes random batches.
type phGen struct {
	r        *rand.Rand
	timeMs   int64
	eff      int64   // the engine's batch time: timeMs never runs backwards
	due      []int64 // expiries sent (holds, grants): batches land on them exactly
	n        int
	orgs     []string
	sent     map[string]Command  // first command sent under a reference or key
	refs     map[string][]string // kind + org -> references used
	holdRefs map[string][]string
	extKeys  map[string][]string
	holds    []propTx // holds created
	spends   []propTx
	others   []propTx // grants and adjustments: not refundable
}

func newPHGen(r *rand.Rand) *phGen {
	return &phGen{r: r, timeMs: 1_700_000_000_000 + r.Int64N(1e9), sent: map[string]Command{}, refs: map[string][]string{},
		holdRefs: map[string][]string{}, extKeys: map[string][]string{}}
}

// retry returns the command first sent under key most of the time, so that
// retries replay; otherwise (or when key is new) c.
func (g *phGen) retry(key string, c Command) Command {
	if prev, ok := g.sent[key]; ok {
		if g.r.IntN(4) != 0 {
			return prev
		}
		return c
	}
	g.sent[key] = c
	return c
}

func (g *phGen) pick(s []string) string { return s[g.r.IntN(len(s))] }

// ref returns a new reference, or sometimes one used before by org for kind.
func (g *phGen) ref(kind, org string) string {
	k := kind + org
	if refs := g.refs[k]; len(refs) > 0 && g.r.IntN(6) == 0 {
		return g.pick(refs)
	}
	ref := kind + strconv.Itoa(g.n)
	g.refs[k] = append(g.refs[k], ref)
	return ref
}

func (g *phGen) org() string {
	if g.r.IntN(150) == 0 {
		return "org_unknown"
	}
	return g.pick(g.orgs)
}

func (g *phGen) batch() Batch {
	defer func() { g.eff = max(g.eff, g.timeMs) }()
	// Often land exactly on an expiry sent earlier: the edge where a batch
	// at expires_at must see it expired.
	sort.Slice(g.due, func(i, j int) bool { return g.due[i] < g.due[j] })
	for len(g.due) > 0 && g.due[0] <= g.eff {
		g.due = g.due[1:]
	}
	if len(g.due) > 0 && g.r.IntN(4) == 0 {
		g.timeMs = g.due[0] - int64(g.r.IntN(2)) // at it, or one ms before
		return g.fill()
	}
	switch w := g.r.IntN(20); {
	case w == 0:
		g.timeMs -= g.r.Int64N(30_000) // a new leader's clock
	case w < 3:
		g.timeMs += 60_000 + g.r.Int64N(300_000) // long enough for expiries
	default:
		g.timeMs += g.r.Int64N(6_000)
	}
	return g.fill()
}

func (g *phGen) fill() Batch {
	if len(g.orgs) == 0 {
		cmds := make([]Command, 4)
		for i := range cmds {
			cmds[i] = Command{Kind: CmdCreateOrg, Name: "org" + strconv.Itoa(i)}
		}
		return Batch{TimeMs: g.timeMs, Commands: cmds}
	}
	size := 1 + g.r.IntN(10)
	if g.r.IntN(10) == 0 {
		size = g.r.IntN(40) // 0 included: an empty batch
	}
	cmds := make([]Command, size)
	for i := range cmds {
		cmds[i] = g.command()
	}
	return Batch{TimeMs: g.timeMs, Commands: cmds}
}

var phChannels = []string{"sms", "voice", "llm", "fax"}

func (g *phGen) usage() *Usage {
	dests := []string{"14155550100", "+44 20 7946 0000", "33612345678", "1", "141", "tel:x", ""}
	u := &Usage{Destination: g.pick(dests)}
	if g.r.IntN(4) != 0 {
		u.Units, u.HasUnits = g.r.Int64N(6), true
	}
	if g.r.IntN(8) != 0 {
		u.Seconds, u.HasSeconds = g.r.Int64N(900), true
	}
	if g.r.IntN(8) != 0 {
		u.Model = "m" + strconv.Itoa(g.r.IntN(3))
	}
	u.InputTokens, u.OutputTokens = g.r.Int64N(50_000), g.r.Int64N(20_000)
	if g.r.IntN(40) == 0 {
		u.InputTokens = 1_000_000_000_000 // out of range with most prices
	}
	return u
}

func (g *phGen) card() *RateCard {
	c := &RateCard{Channels: map[string]ChannelRate{}}
	prices := func(max int64) map[string]int64 {
		p := map[string]int64{}
		for _, k := range []string{"1", "14", "141", "44", "*"} {
			if g.r.IntN(2) == 0 {
				p[k] = g.r.Int64N(max)
			}
		}
		if len(p) == 0 {
			p["1"] = g.r.Int64N(max)
		}
		return p
	}
	if g.r.IntN(3) != 0 {
		c.Channels["sms"] = ChannelRate{Per: PerUnit, Prices: prices(40_000)}
	}
	if g.r.IntN(3) != 0 {
		incs := [][]int64{nil, {60, 6}, {1, 1}, {30, 10}}
		c.Channels["voice"] = ChannelRate{Per: PerMinute, Increment: incs[g.r.IntN(len(incs))], Prices: prices(60_000)}
	}
	if g.r.IntN(3) != 0 {
		ms := map[string]ModelRate{}
		for i := range 1 + g.r.IntN(2) {
			ms["m"+strconv.Itoa(i)] = ModelRate{InputPerMillion: g.r.Int64N(3_000_000), OutputPerMillion: g.r.Int64N(6_000_000)}
		}
		c.Channels["llm"] = ChannelRate{Per: PerToken, Models: ms}
	}
	if g.r.IntN(15) == 0 {
		c.Channels["bad"] = ChannelRate{Per: "day"}
	}
	return c
}

// holdTarget picks a known hold (any org's, mostly its own org), or an
// unknown id.
func (g *phGen) holdTarget() (org, id string) {
	if len(g.holds) == 0 || g.r.IntN(40) == 0 {
		return g.org(), "rsv_nope"
	}
	// Recent holds more often: they are the open ones.
	i := len(g.holds) - 1 - g.r.IntN(min(len(g.holds), 6))
	if g.r.IntN(6) == 0 {
		i = g.r.IntN(len(g.holds))
	}
	hd := g.holds[i]
	if g.r.IntN(25) == 0 {
		return g.org(), hd.id
	}
	return hd.org, hd.id
}

func (g *phGen) holdAmount() int64 {
	switch g.r.IntN(8) {
	case 0:
		return 0
	case 1:
		return g.r.Int64N(3_000_000)
	default:
		return g.r.Int64N(400_000)
	}
}

func (g *phGen) command() Command {
	g.n++
	org := g.org()
	switch w := g.r.IntN(100); {
	case w < 8: // a credit
		amt := 1 + g.r.Int64N(2_000_000)
		ref := g.ref("fund", org)
		return g.retry("a"+org+ref, Command{Kind: CmdAdjustment, OrgID: org, Reference: ref, AmountMicros: amt, BodyHash: "b" + strconv.FormatInt(amt, 10)})
	case w < 11: // a debit
		amt := -g.r.Int64N(600_000)
		if amt == 0 && g.r.IntN(2) == 0 {
			amt = 0 // invalid
		}
		ref := "debit" + strconv.Itoa(g.n)
		return Command{Kind: CmdAdjustment, OrgID: org, Reference: ref, AmountMicros: amt, BodyHash: "b" + strconv.FormatInt(amt, 10)}
	case w < 19:
		return g.grant(org)
	case w < 27:
		return g.charge(org)
	case w < 30:
		return g.refund(org)
	case w < 46:
		return g.create(org)
	case w < 60:
		return g.extend()
	case w < 73:
		return g.commit()
	case w < 80:
		o, id := g.holdTarget()
		return Command{Kind: CmdHoldRelease, OrgID: o, TxID: id}
	case w < 84:
		target := ""
		if g.r.IntN(2) == 0 {
			target = org
		}
		return Command{Kind: CmdSetRates, OrgID: target, Card: g.card()}
	case w < 87:
		return Command{Kind: CmdPause, OrgID: org, Reason: "p" + strconv.Itoa(g.n)}
	case w < 92:
		return Command{Kind: CmdUnpause, OrgID: org}
	case w < 95:
		th := int64(0)
		if g.r.IntN(2) == 0 {
			th = g.r.Int64N(300_000)
		}
		return Command{Kind: CmdUpdateOrg, OrgID: org, SetThreshold: true, ThresholdMicros: th}
	default:
		return g.charge(org)
	}
}

func (g *phGen) grant(org string) Command {
	amt := 1 + g.r.Int64N(1_500_000)
	exp := g.timeMs + 1 + g.r.Int64N(200_000)
	switch g.r.IntN(20) {
	case 0:
		exp = g.timeMs - g.r.Int64N(5_000) // in the past (or now)
	case 1:
		amt = 0
	case 2:
		exp = g.timeMs + 1 // expires almost at once
	}
	ref := g.ref("grant", org)
	g.due = append(g.due, exp)
	return g.retry("g"+org+ref, Command{Kind: CmdGrant, OrgID: org, Reference: ref, AmountMicros: amt, ExpiresAtMs: exp,
		BodyHash: fmt.Sprintf("b%d-%d", amt, exp), Reason: "promo"})
}

func (g *phGen) charge(org string) Command {
	ref := g.ref("msg", org)
	c := Command{Kind: CmdCharge, OrgID: org, Reference: ref, Channel: g.pick(phChannels)}
	if g.r.IntN(2) == 0 {
		c.Usage = g.usage()
		c.BodyHash = fmt.Sprintf("u%s%+v", c.Channel, *c.Usage)
	} else {
		c.AmountMicros = g.r.Int64N(300_000)
		if g.r.IntN(40) == 0 {
			c.AmountMicros = -1
		}
		c.BodyHash = fmt.Sprintf("a%s%d", c.Channel, c.AmountMicros)
	}
	return g.retry("c"+org+ref, c)
}

func (g *phGen) refund(org string) Command {
	key := "rk" + strconv.Itoa(g.n)
	c := Command{Kind: CmdRefund, OrgID: org, Reference: key, TxID: "ct_nope"}
	switch {
	case len(g.others) > 0 && g.r.IntN(6) == 0:
		o := g.others[g.r.IntN(len(g.others))]
		c.TxID, c.OrgID = o.id, o.org
	case len(g.spends) > 0:
		s := g.spends[g.r.IntN(len(g.spends))]
		c.TxID, c.OrgID = s.id, s.org
		if g.r.IntN(2) == 0 {
			c.AmountMicros = 1 + g.r.Int64N(max(s.amount, 1))
		}
	}
	c.BodyHash = "b" + c.TxID + strconv.FormatInt(c.AmountMicros, 10)
	return c
}

func (g *phGen) create(org string) Command {
	ref := "call" + strconv.Itoa(g.n)
	if refs := g.holdRefs[org]; len(refs) > 0 && g.r.IntN(6) == 0 {
		ref = g.pick(refs)
	} else {
		g.holdRefs[org] = append(g.holdRefs[org], ref)
	}
	c := Command{Kind: CmdHoldCreate, OrgID: org, Reference: ref, Channel: g.pick(phChannels), TTLSeconds: 1 + g.r.Int64N(120)}
	switch g.r.IntN(25) {
	case 0:
		c.TTLSeconds = 0 // default 300 s
	case 1:
		c.TTLSeconds = []int64{-1, HoldTTLSecondsMax + 1}[g.r.IntN(2)]
	}
	if c.TTLSeconds > 0 {
		g.due = append(g.due, max(g.eff, g.timeMs)+c.TTLSeconds*1000)
	}
	if g.r.IntN(3) == 0 {
		c.Usage = g.usage()
		c.BodyHash = fmt.Sprintf("u%s%d%+v", c.Channel, c.TTLSeconds, *c.Usage)
	} else {
		c.AmountMicros = g.holdAmount()
		if g.r.IntN(40) == 0 {
			c.AmountMicros = []int64{-1, MaxAmountMicros + 1}[g.r.IntN(2)]
		}
		c.BodyHash = fmt.Sprintf("a%s%d-%d", c.Channel, c.TTLSeconds, c.AmountMicros)
	}
	if g.r.IntN(5) == 0 {
		c.Metadata = Metadata{{"call", `"` + ref + `"`}}
	}
	return g.retry("r"+org+ref, c)
}

func (g *phGen) extend() Command {
	org, id := g.holdTarget()
	key := "ek" + strconv.Itoa(g.n)
	if keys := g.extKeys[org]; len(keys) > 0 && g.r.IntN(5) == 0 {
		key = g.pick(keys)
	} else {
		g.extKeys[org] = append(g.extKeys[org], key)
	}
	amt := 1 + g.holdAmount()
	if g.r.IntN(40) == 0 {
		amt = []int64{0, MaxAmountMicros + 1}[g.r.IntN(2)]
	}
	ttl := int64(0)
	if g.r.IntN(2) == 0 {
		ttl = 1 + g.r.Int64N(90)
	}
	if g.r.IntN(40) == 0 {
		ttl = HoldTTLSecondsMax + 1
	}
	if ttl > 0 {
		g.due = append(g.due, max(g.eff, g.timeMs)+ttl*1000)
	}
	c := Command{Kind: CmdHoldExtend, OrgID: org, TxID: id, Reference: key, AmountMicros: amt, TTLSeconds: ttl,
		BodyHash: fmt.Sprintf("%s-%d-%d", id, amt, ttl)}
	return g.retry("e"+org+key, c)
}

func (g *phGen) commit() Command {
	org, id := g.holdTarget()
	c := Command{Kind: CmdHoldCommit, OrgID: org, TxID: id}
	if g.r.IntN(3) == 0 {
		c.Usage = g.usage()
		c.BodyHash = fmt.Sprintf("u%+v", *c.Usage)
	} else {
		c.AmountMicros = g.holdAmount()
		if g.r.IntN(3) == 0 {
			c.AmountMicros += g.r.Int64N(1_000_000) // above most holds
		}
		if g.r.IntN(50) == 0 {
			c.AmountMicros = []int64{-1, MaxAmountMicros + 1, MaxAmountMicros}[g.r.IntN(3)]
		}
		c.BodyHash = "a" + strconv.FormatInt(c.AmountMicros, 10)
	}
	return g.retry("m"+org+id, c)
}

func (g *phGen) learn(cmds []Command, res []Result) {
	for i, c := range cmds {
		r := res[i]
		if r.Code != CodeOK {
			continue
		}
		switch c.Kind {
		case CmdCreateOrg:
			g.orgs = append(g.orgs, r.ID)
		case CmdHoldCreate:
			g.holds = append(g.holds, propTx{org: c.OrgID, id: r.ID})
		case CmdCharge, CmdHoldCommit:
			g.spends = append(g.spends, propTx{org: c.OrgID, id: r.TxID, amount: -r.Entry.AmountMicros})
		case CmdGrant, CmdAdjustment:
			g.others = append(g.others, propTx{org: c.OrgID, id: r.TxID})
		}
	}
}

// phModel states the rules of holds, grants and rating independently of the
// engine: it predicts every result and every ledger entry.
type phModel struct {
	now    int64
	orgs   map[string]*phOrg
	refs   map[refKey]RefRecord
	holds  map[string]*phHold
	txns   map[string]*phTxn
	def    *RateCard
	defVer int64
	seq    int64
	want   []phEntry // the entries this batch must write, in order
	seen   map[string]int
}

type phOrg struct {
	id                 string
	balance, threshold int64
	reserved           int64
	paused             bool
	lots               []*phLot // by (expiry, id)
	open               map[string]*phHold
	over               *RateCard
	overVer            int64
}

type phLot struct {
	id             string
	exp, rem, held int64
}

type phHold struct {
	id, org, ref, channel, hash string
	status                      string
	amount, expires, closedAt   int64
	draws                       map[string]int64 // lot id ("" never expires) -> held
	rate                        *ChannelRate
	ver                         int64
	commitHash, commitTx        string
	captured, uncollected       int64
	capped, late                bool
}

type phTxn struct {
	org              string
	typ              EntryType
	amount, refunded int64
}

type phEntry struct {
	org    string
	typ    EntryType
	amount int64
	ref    string
	ver    int64 // rate_version expected in the metadata (0: none)
	group  string
}

func newPHModel() *phModel {
	return &phModel{orgs: map[string]*phOrg{}, refs: map[refKey]RefRecord{}, holds: map[string]*phHold{}, txns: map[string]*phTxn{}, seen: map[string]int{}}
}

// begin starts a batch: time never runs backwards, and holds and grants due
// expire first, org by org in id order.
func (m *phModel) begin(timeMs int64) {
	m.now = max(m.now, timeMs)
	m.want = m.want[:0]
	ids := make([]string, 0, len(m.orgs))
	for id := range m.orgs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		o := m.orgs[id]
		hids := make([]string, 0, len(o.open))
		for hid, h := range o.open {
			if h.expires <= m.now {
				hids = append(hids, hid)
			}
		}
		sort.Strings(hids)
		for _, hid := range hids {
			m.close(o, o.open[hid], HoldExpired)
			m.seen["hold-expired"]++
		}
		m.expireLots(o)
	}
}

// end checks the batch's entries against the model's.
func (m *phModel) end(entries []Entry) error {
	if len(entries) != len(m.want) {
		return fmt.Errorf("batch wrote %d entries, model expects %d:\n%+v\n%+v", len(entries), len(m.want), entries, m.want)
	}
	for i, e := range entries {
		w := m.want[i]
		if e.OrgID != w.org || e.Type != w.typ || e.AmountMicros != w.amount || e.Reference != w.ref {
			return fmt.Errorf("entry %d: %+v, model expects %+v", i, e, w)
		}
		v, has := e.Metadata.Get("rate_version")
		if w.ver != 0 && v != strconv.FormatInt(w.ver, 10) || w.ver == 0 && has {
			return fmt.Errorf("entry %d: rate_version %q, model expects %d (%v)", i, v, w.ver, e.Metadata)
		}
		if w.group != "" {
			key := "country"
			if strings.HasPrefix(w.group, "m") {
				key = "model"
			}
			if v, _ := e.Metadata.Get(key); v != `"`+w.group+`"` {
				return fmt.Errorf("entry %d: %s %s, model expects %q", i, key, v, w.group)
			}
		}
	}
	return nil
}

func (m *phModel) lot(o *phOrg, id string) *phLot {
	for _, l := range o.lots {
		if l.id == id {
			return l
		}
	}
	return nil
}

func (m *phModel) dropEmpty(o *phOrg) {
	lots := o.lots[:0]
	for _, l := range o.lots {
		if l.rem > 0 {
			lots = append(lots, l)
		}
	}
	o.lots = lots
}

// draw holds amount for h: grants' unheld remainders earliest-expiring
// first, then money that never expires.
func (m *phModel) draw(o *phOrg, h *phHold, amount int64) {
	left := amount
	for _, l := range o.lots {
		t := min(left, l.rem-l.held)
		if t > 0 {
			l.held += t
			h.draws[l.id] += t
			left -= t
		}
	}
	h.draws[""] += left
	h.amount += amount
	o.reserved += amount
}

func (m *phModel) undraw(o *phOrg, h *phHold) {
	for id, a := range h.draws {
		if id != "" {
			m.lot(o, id).held -= a
		}
	}
	o.reserved -= h.amount
}

// spend debits amount (which fits in available) from grants' unheld
// remainders earliest-expiring first, then money that never expires.
func (m *phModel) spend(o *phOrg, amount int64) {
	for _, l := range o.lots {
		t := min(amount, l.rem-l.held)
		if t > 0 {
			l.rem -= t
			amount -= t
		}
	}
	m.dropEmpty(o)
}

func (m *phModel) expireLots(o *phOrg) {
	for _, l := range o.lots {
		if l.exp > m.now {
			break
		}
		if amt := min(l.rem-l.held, o.balance-o.reserved); amt > 0 {
			l.rem -= amt
			o.balance -= amt
			m.want = append(m.want, phEntry{org: o.id, typ: EntryExpiry, amount: -amt, ref: "expiry:" + l.id})
			m.seen["expiry"]++
		}
	}
	m.dropEmpty(o)
}

func (m *phModel) close(o *phOrg, h *phHold, status string) {
	m.undraw(o, h)
	h.status, h.closedAt = status, m.now
	delete(o.open, h.id)
}

func (m *phModel) checkDebit(o *phOrg, amount int64) Code {
	avail := o.balance - o.reserved
	switch {
	case o.paused:
		return CodeOutboundPaused
	case avail <= o.threshold || avail-o.threshold < amount:
		return CodeInsufficientFunds
	}
	return CodeOK
}

// rate is the channel's price for o in force now: the override's when it
// names the channel, else the default's.
func (m *phModel) rate(o *phOrg, channel string) (*ChannelRate, int64) {
	if o.over != nil {
		if ch, ok := o.over.Channels[channel]; ok {
			return &ch, o.overVer
		}
	}
	if m.def != nil {
		if ch, ok := m.def.Channels[channel]; ok {
			return &ch, m.defVer
		}
	}
	return nil, 0
}

// phPrice rates usage with the reference rating of rating_test.go.
func phPrice(rate *ChannelRate, u *Usage) (int64, string, bool) {
	if rate == nil {
		return 0, "", false
	}
	cost, group, ok := rtRefCost(*rate, *u)
	if !ok || !cost.IsInt64() || cost.Int64() > MaxAmountMicros {
		return 0, "", false
	}
	return cost.Int64(), group, true
}

func (m *phModel) replay(c *Command, ns byte) (Code, string, bool) {
	rec, ok := m.refs[refKey{c.OrgID, ns, c.Reference}]
	if !ok {
		return 0, "", false
	}
	if rec.BodyHash == c.BodyHash {
		return CodeReplayed, rec.TxID, true
	}
	return CodeConflict, rec.TxID, true
}

func (m *phModel) step(c *Command, r Result) error {
	code, tx, err := m.decide(c, r)
	if err != nil {
		return err
	}
	if r.Code != code {
		return fmt.Errorf("code %v (%s), model expects %v", r.Code, r.Message, code)
	}
	switch code {
	case CodeReplayed:
		m.seen["replay"]++
	case CodeReservationClosed:
		m.seen["closed"]++
	}
	if (code == CodeReplayed || code == CodeConflict) && r.TxID != tx {
		return fmt.Errorf("%v names %s, model %s", r.Code, r.TxID, tx)
	}
	if o := m.orgs[c.OrgID]; o != nil && c.Kind != CmdSetRates {
		w := r.Wallet
		if w.BalanceMicros != o.balance || w.ReservedMicros != o.reserved || w.ThresholdMicros != o.threshold || w.OperatorHold != o.paused {
			return fmt.Errorf("wallet %+v, model balance %d reserved %d threshold %d paused %v", w, o.balance, o.reserved, o.threshold, o.paused)
		}
	}
	return nil
}

// decide predicts c's code and, on success, applies it to the model and
// checks the result's details. r is read only for the ids the engine made.
func (m *phModel) decide(c *Command, r Result) (Code, string, error) {
	if c.Kind == CmdCreateOrg {
		m.orgs[r.ID] = &phOrg{id: r.ID, open: map[string]*phHold{}}
		return CodeOK, "", nil
	}
	if c.Kind == CmdSetRates {
		var o *phOrg
		if c.OrgID != "" {
			if o = m.orgs[c.OrgID]; o == nil {
				return CodeNotFound, "", nil
			}
		}
		if c.Card.Validate() != "" {
			return CodeInvalid, "", nil
		}
		m.seq++
		if o != nil {
			o.over, o.overVer = c.Card, m.seq
		} else {
			m.def, m.defVer = c.Card, m.seq
		}
		if r.ID != strconv.FormatInt(m.seq, 10) {
			return 0, "", fmt.Errorf("card version %s, model %d", r.ID, m.seq)
		}
		return CodeOK, "", nil
	}
	o := m.orgs[c.OrgID]
	if o == nil {
		return CodeNotFound, "", nil
	}
	switch c.Kind {
	case CmdPause:
		o.paused = true
	case CmdUnpause:
		o.paused = false
	case CmdUpdateOrg:
		o.threshold = c.ThresholdMicros
	case CmdAdjustment:
		if code, tx, ok := m.replay(c, NSAdjustment); ok {
			return code, tx, nil
		}
		amt := c.AmountMicros
		switch {
		case amt == 0 || amt > MaxAmountMicros || amt < -MaxAmountMicros:
			return CodeInvalid, "", nil
		case amt < 0 && -amt > o.balance-o.reserved:
			return CodeInsufficientFunds, "", nil
		}
		if amt < 0 {
			m.spend(o, -amt)
		}
		o.balance += amt
		m.refs[refKey{c.OrgID, NSAdjustment, c.Reference}] = RefRecord{TxID: r.TxID, BodyHash: c.BodyHash}
		m.txns[r.TxID] = &phTxn{org: o.id, typ: EntryAdjustment}
		m.want = append(m.want, phEntry{org: o.id, typ: EntryAdjustment, amount: amt, ref: "adjustment:" + c.Reference})
	case CmdGrant:
		if code, tx, ok := m.replay(c, NSGrant); ok {
			return code, tx, nil
		}
		if c.AmountMicros < 1 || c.AmountMicros > MaxAmountMicros || c.ExpiresAtMs <= m.now {
			return CodeInvalid, "", nil
		}
		o.balance += c.AmountMicros
		o.lots = append(o.lots, &phLot{id: r.TxID, exp: c.ExpiresAtMs, rem: c.AmountMicros})
		sort.Slice(o.lots, func(i, j int) bool {
			a, b := o.lots[i], o.lots[j]
			return a.exp < b.exp || a.exp == b.exp && a.id < b.id
		})
		m.refs[refKey{c.OrgID, NSGrant, c.Reference}] = RefRecord{TxID: r.TxID, BodyHash: c.BodyHash}
		m.txns[r.TxID] = &phTxn{org: o.id, typ: EntryGrant, amount: c.AmountMicros}
		m.want = append(m.want, phEntry{org: o.id, typ: EntryGrant, amount: c.AmountMicros, ref: "grant:" + c.Reference})
		m.seen["grant"]++
	case CmdCharge:
		if code, tx, ok := m.replay(c, NSCharge); ok {
			return code, tx, nil
		}
		amt, group, ver := c.AmountMicros, "", int64(0)
		if c.Usage != nil {
			rate, v := m.rate(o, c.Channel)
			cost, grp, ok := phPrice(rate, c.Usage)
			if !ok {
				return CodeNoRate, "", nil
			}
			amt, group, ver = cost, grp, v
			m.seen["rated"]++
		}
		if amt < 0 || amt > MaxAmountMicros {
			return CodeInvalid, "", nil
		}
		if code := m.checkDebit(o, amt); code != CodeOK {
			return code, "", nil
		}
		m.spend(o, amt)
		o.balance -= amt
		m.refs[refKey{c.OrgID, NSCharge, c.Reference}] = RefRecord{TxID: r.TxID, BodyHash: c.BodyHash}
		m.txns[r.TxID] = &phTxn{org: o.id, typ: EntrySpend, amount: amt}
		m.want = append(m.want, phEntry{org: o.id, typ: EntrySpend, amount: -amt, ref: "charge:" + c.Reference, ver: ver, group: group})
	case CmdRefund:
		t := m.txns[c.TxID]
		switch {
		case t == nil || t.org != o.id:
			return CodeNotFound, "", nil
		case t.typ != EntrySpend:
			return CodeNotRefundable, "", nil
		}
		left := t.amount - t.refunded
		amt := c.AmountMicros
		if amt == 0 {
			amt = left
		}
		if amt < 0 || left == 0 || amt > left {
			return CodeInvalid, "", nil
		}
		t.refunded += amt
		o.balance += amt
		m.txns[r.TxID] = &phTxn{org: o.id, typ: EntryRefund}
		m.want = append(m.want, phEntry{org: o.id, typ: EntryRefund, amount: amt, ref: "refund:" + c.TxID})
	case CmdHoldCreate:
		return m.create(o, c, r)
	case CmdHoldExtend:
		return m.extend(o, c, r)
	case CmdHoldCommit:
		return m.commit(o, c, r)
	case CmdHoldRelease:
		h := m.holds[c.TxID]
		if h == nil || h.org != o.id {
			return CodeNotFound, "", nil
		}
		switch h.status {
		case HoldCommitted:
			return CodeReservationClosed, "", nil
		case HoldOpen:
			m.close(o, h, HoldReleased)
			m.expireLots(o)
			m.seen["release"]++
		}
		if r.Hold == nil || r.Hold.Status != h.status || r.Hold.ClosedAtMs != h.closedAt {
			return 0, "", fmt.Errorf("release result hold %+v, model %+v", r.Hold, *h)
		}
	default:
		return 0, "", fmt.Errorf("model has no rule for %v", c.Kind)
	}
	return CodeOK, "", nil
}

func (m *phModel) create(o *phOrg, c *Command, r Result) (Code, string, error) {
	if code, tx, ok := m.replay(c, NSReservation); ok {
		if r.Hold == nil || r.Hold.ID != tx {
			return 0, "", fmt.Errorf("create replay without its hold: %+v", r.Hold)
		}
		return code, tx, nil
	}
	rate, ver := m.rate(o, c.Channel)
	amt := c.AmountMicros
	if c.Usage != nil {
		cost, _, ok := phPrice(rate, c.Usage)
		if !ok {
			return CodeNoRate, "", nil
		}
		amt = cost
	} else if amt < 0 || amt > MaxAmountMicros {
		return CodeInvalid, "", nil
	}
	if code := m.checkDebit(o, amt); code != CodeOK {
		return code, "", nil
	}
	ttl := c.TTLSeconds
	if ttl == 0 {
		ttl = HoldTTLSecondsDefault
	}
	if ttl < 1 || ttl > HoldTTLSecondsMax {
		return CodeInvalid, "", nil
	}
	h := &phHold{id: r.ID, org: o.id, ref: c.Reference, channel: c.Channel, hash: c.BodyHash, status: HoldOpen,
		expires: m.now + ttl*1000, draws: map[string]int64{}, rate: rate, ver: ver}
	if m.holds[h.id] != nil || !strings.HasPrefix(h.id, PrefixReservation) {
		return 0, "", fmt.Errorf("new hold id %q", h.id)
	}
	m.draw(o, h, amt)
	m.holds[h.id] = h
	o.open[h.id] = h
	m.refs[refKey{c.OrgID, NSReservation, c.Reference}] = RefRecord{TxID: h.id, BodyHash: c.BodyHash}
	m.seen["create"]++
	if r.Hold == nil || r.Hold.AmountMicros != amt || r.Hold.ExpiresAtMs != h.expires || r.Hold.RateVersion != ver || r.Hold.Status != HoldOpen {
		return 0, "", fmt.Errorf("created hold %+v, model amount %d expires %d version %d", r.Hold, amt, h.expires, ver)
	}
	return CodeOK, "", nil
}

func (m *phModel) extend(o *phOrg, c *Command, r Result) (Code, string, error) {
	if code, tx, ok := m.replay(c, NSExtend); ok {
		return code, tx, nil
	}
	h := m.holds[c.TxID]
	switch {
	case h == nil || h.org != o.id:
		return CodeNotFound, "", nil
	case h.status != HoldOpen:
		return CodeReservationClosed, "", nil
	case c.AmountMicros < 1 || c.AmountMicros > MaxAmountMicros || c.TTLSeconds < 0 || c.TTLSeconds > HoldTTLSecondsMax:
		return CodeInvalid, "", nil
	}
	if code := m.checkDebit(o, c.AmountMicros); code != CodeOK {
		return code, "", nil
	}
	m.draw(o, h, c.AmountMicros)
	if c.TTLSeconds > 0 {
		h.expires = m.now + c.TTLSeconds*1000
	}
	m.refs[refKey{c.OrgID, NSExtend, c.Reference}] = RefRecord{TxID: h.id, BodyHash: c.BodyHash}
	m.seen["extend"]++
	if r.Hold == nil || r.Hold.AmountMicros != h.amount || r.Hold.ExpiresAtMs != h.expires {
		return 0, "", fmt.Errorf("extended hold %+v, model %+v", r.Hold, *h)
	}
	return CodeOK, "", nil
}

func (m *phModel) commit(o *phOrg, c *Command, r Result) (Code, string, error) {
	h := m.holds[c.TxID]
	if h == nil || h.org != o.id {
		return CodeNotFound, "", nil
	}
	switch h.status {
	case HoldCommitted:
		if c.BodyHash != h.commitHash {
			return CodeReservationClosed, "", nil
		}
		if r.Capped != h.capped || r.UncollectedMicros != h.uncollected || r.Expired != h.late || r.Entry != nil {
			return 0, "", fmt.Errorf("commit replay %+v, model %+v", r, *h)
		}
		return CodeReplayed, h.commitTx, nil
	case HoldReleased:
		return CodeReservationClosed, "", nil
	}
	actual, group := c.AmountMicros, ""
	ver := int64(0)
	if c.Usage != nil {
		cost, grp, ok := phPrice(h.rate, c.Usage)
		if !ok {
			return CodeNoRate, "", nil
		}
		actual, group, ver = cost, grp, h.ver
		m.seen["rated"]++
	} else if actual < 0 || actual > MaxAmountMicros {
		return CodeInvalid, "", nil
	}
	late := h.status == HoldExpired
	covered := int64(0)
	if !late {
		m.undraw(o, h)
		covered = min(actual, h.amount)
		// The hold's own draws, earliest-expiring first; the money that
		// never expires last.
		left := covered
		for _, l := range o.lots {
			t := min(left, h.draws[l.id])
			l.rem -= t
			left -= t
		}
		delete(o.open, h.id)
	}
	excess := min(actual-covered, max(o.balance-covered-o.reserved, 0))
	m.spend(o, excess)
	total := covered + excess
	o.balance -= total
	m.dropEmpty(o)
	h.status, h.closedAt = HoldCommitted, m.now
	h.commitHash, h.commitTx = c.BodyHash, r.TxID
	h.captured, h.uncollected, h.capped, h.late = total, actual-total, total < actual, late
	m.txns[r.TxID] = &phTxn{org: o.id, typ: EntrySpend, amount: total}
	m.want = append(m.want, phEntry{org: o.id, typ: EntrySpend, amount: -total, ref: "reservation:" + h.ref, ver: ver, group: group})
	m.expireLots(o)
	m.seen["commit"]++
	if h.capped {
		m.seen["commit-capped"]++
	}
	if late {
		m.seen["commit-late"]++
	}
	if r.Capped != h.capped || r.UncollectedMicros != h.uncollected || r.Expired != late || r.Entry == nil || r.Entry.ID != r.TxID {
		return 0, "", fmt.Errorf("commit result capped %v uncollected %d expired %v entry %+v, model %+v", r.Capped, r.UncollectedMicros, r.Expired, r.Entry, *h)
	}
	return CodeOK, "", nil
}

// compare checks the engine's wallets, lots and holds against the model.
func (m *phModel) compare(h *harness) error {
	for id, o := range m.orgs {
		rec, ok := h.e.OrgRecord(id)
		if !ok {
			return fmt.Errorf("org %s missing", id)
		}
		if rec.BalanceMicros != o.balance || rec.ReservedMicros != o.reserved {
			return fmt.Errorf("org %s: balance %d reserved %d, model %d %d", id, rec.BalanceMicros, rec.ReservedMicros, o.balance, o.reserved)
		}
		var sum int64
		for _, hd := range o.open {
			sum += hd.amount
		}
		if sum != o.reserved {
			return fmt.Errorf("model: org %s reserved %d, open holds %d", id, o.reserved, sum)
		}
		var want []Lot
		for _, l := range o.lots {
			want = append(want, Lot{EntryID: l.id, ExpiresAtMs: l.exp, Remaining: l.rem, Held: l.held})
		}
		if !reflect.DeepEqual(rec.Lots, want) {
			return fmt.Errorf("org %s: lots %+v, model %+v", id, rec.Lots, want)
		}
	}
	for id, mh := range m.holds {
		sh, ok := h.st.Holds[id]
		if !ok {
			return fmt.Errorf("hold %s not stored", id)
		}
		if sh.Status != mh.status || sh.AmountMicros != mh.amount || sh.ExpiresAtMs != mh.expires || sh.ClosedAtMs != mh.closedAt ||
			sh.CommitTxID != mh.commitTx || sh.CapturedMicros != mh.captured || sh.UncollectedMicros != mh.uncollected ||
			sh.Capped != mh.capped || sh.LateCommit != mh.late || sh.RateVersion != mh.ver || sh.Reference != mh.ref || sh.OrgID != mh.org {
			return fmt.Errorf("hold %s: stored %+v, model %+v", id, sh, *mh)
		}
		mem, open := h.e.HoldByID(mh.org, id)
		if open != (mh.status == HoldOpen) || open && !reflect.DeepEqual(mem, sh) {
			return fmt.Errorf("hold %s: in memory %+v (%v), stored %+v", id, mem, open, sh)
		}
	}
	if len(h.st.Holds) != len(m.holds) {
		return fmt.Errorf("%d holds stored, model %d", len(h.st.Holds), len(m.holds))
	}
	return nil
}

// phChecker checks SPEC.md section 7 on the persisted state alone, reading
// only the entries written since the last check.
type phChecker struct {
	seen     int
	sums     map[string]int64
	refs     map[string]string // org + reference of a spend, grant or adjustment -> entry id
	grants   map[string]Entry  // grant entry id -> entry
	expired  map[string]int64  // grant entry id -> expiry entries' sum
	refunded map[string]int64  // spend id -> refunds' sum
}

func newPHChecker() *phChecker {
	return &phChecker{sums: map[string]int64{}, refs: map[string]string{}, grants: map[string]Entry{}, expired: map[string]int64{}, refunded: map[string]int64{}}
}

func (c *phChecker) check(h *harness) error {
	for _, e := range h.st.Entries[c.seen:] {
		c.sums[e.OrgID] += e.AmountMicros
		if c.sums[e.OrgID] != e.BalanceAfterMicros || e.BalanceAfterMicros < 0 {
			return fmt.Errorf("entry %+v: ledger sum %d", e, c.sums[e.OrgID])
		}
		switch e.Type {
		case EntrySpend, EntryGrant, EntryAdjustment:
			if e.Type == EntrySpend && e.AmountMicros > 0 || e.Type == EntryGrant && e.AmountMicros <= 0 {
				return fmt.Errorf("entry %+v: wrong sign", e)
			}
			k := e.OrgID + "\x00" + e.Reference
			if prev, dup := c.refs[k]; dup {
				return fmt.Errorf("reference %q applied twice: %s and %s", e.Reference, prev, e.ID)
			}
			c.refs[k] = e.ID
			if e.Type == EntryGrant {
				c.grants[e.ID] = e
			}
		case EntryExpiry:
			id := strings.TrimPrefix(e.Reference, "expiry:")
			g, ok := c.grants[id]
			if !ok || g.OrgID != e.OrgID || e.AmountMicros >= 0 {
				return fmt.Errorf("expiry %+v of no grant of its org", e)
			}
			if e.CreatedAtMs < g.ExpiresAtMs {
				return fmt.Errorf("expiry %+v before the grant's expires_at %d", e, g.ExpiresAtMs)
			}
			c.expired[id] -= e.AmountMicros
			if c.expired[id] > g.AmountMicros {
				return fmt.Errorf("grant %s of %d: expiry entries sum %d", id, g.AmountMicros, c.expired[id])
			}
		case EntryRefund:
			v, _ := e.Metadata.Get("refunded_transaction_id")
			id := strings.Trim(v, `"`)
			c.refunded[id] += e.AmountMicros
			if t, ok := h.st.Txn(e.OrgID, id); !ok || c.refunded[id] > t.AmountMicros {
				return fmt.Errorf("refunds of %s sum %d, spend %+v", id, c.refunded[id], t)
			}
		}
	}
	c.seen = len(h.st.Entries)
	reserved := map[string]int64{}
	for _, hd := range h.st.OpenHolds() {
		reserved[hd.OrgID] += hd.AmountMicros
		if hd.ExpiresAtMs <= h.e.LastTimeMs() {
			return fmt.Errorf("hold %s open past its expiry %d (now %d)", hd.ID, hd.ExpiresAtMs, h.e.LastTimeMs())
		}
	}
	for _, rec := range h.e.Orgs() {
		w, _ := h.e.Wallet(rec.ID)
		if w.BalanceMicros != c.sums[rec.ID] || w.BalanceMicros < 0 {
			return fmt.Errorf("org %s: balance %d, ledger sum %d", rec.ID, w.BalanceMicros, c.sums[rec.ID])
		}
		if w.ReservedMicros != reserved[rec.ID] || w.AvailableMicros() != w.BalanceMicros-reserved[rec.ID] || w.AvailableMicros() < 0 {
			return fmt.Errorf("org %s: reserved %d available %d, open holds %d", rec.ID, w.ReservedMicros, w.AvailableMicros(), reserved[rec.ID])
		}
		var rem, held int64
		for _, l := range rec.Lots {
			if l.Remaining <= 0 || l.Held < 0 || l.Held > l.Remaining {
				return fmt.Errorf("org %s: lot %+v", rec.ID, l)
			}
			// Past its expiry, a grant keeps only what holds draw on.
			if l.ExpiresAtMs <= h.e.LastTimeMs() && l.Held != l.Remaining {
				return fmt.Errorf("org %s: lot %+v not expired at %d", rec.ID, l, h.e.LastTimeMs())
			}
			g, ok := c.grants[l.EntryID]
			if !ok || l.Remaining+c.expired[l.EntryID] > g.AmountMicros {
				return fmt.Errorf("org %s: lot %+v of grant %+v, expired %d", rec.ID, l, g, c.expired[l.EntryID])
			}
			rem += l.Remaining
			held += l.Held
		}
		if rem > w.BalanceMicros || held > w.ReservedMicros {
			return fmt.Errorf("org %s: lots %d (held %d), balance %d reserved %d", rec.ID, rem, held, w.BalanceMicros, w.ReservedMicros)
		}
		// Admission mirrors available funds when nothing is in flight.
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
		}
	}
	// The next deadline is never later than an open hold's expiry.
	next := h.e.NextDeadlineMs()
	for _, hd := range h.st.OpenHolds() {
		if next == 0 || next > hd.ExpiresAtMs {
			return fmt.Errorf("next deadline %d after hold %s's expiry %d", next, hd.ID, hd.ExpiresAtMs)
		}
	}
	return nil
}
