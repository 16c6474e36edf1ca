package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orbit/orbit/client"
	"github.com/orbit/orbit/internal/testserver"
)

// scripted is an httptest proxy in front of the real server that handles
// each request by the next action queued with then(): "lose" forwards it
// and drops the connection before any answer (the server applied it, the
// client never hears), "503" answers unavailable without forwarding; an
// empty queue forwards. It records every request's Idempotency-Key and body.
type scripted struct {
	t        *testing.T
	upstream string
	proxy    *httputil.ReverseProxy
	URL      string

	mu      sync.Mutex
	actions []string
	keys    []string
	bodies  []string
}

func newScripted(t *testing.T, upstream string) *scripted {
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	p := &scripted{t: t, upstream: upstream, proxy: httputil.NewSingleHostReverseProxy(u)}
	ts := httptest.NewServer(p)
	t.Cleanup(ts.Close)
	p.URL = ts.URL
	return p
}

// then queues actions for the next requests.
func (p *scripted) then(actions ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.actions = append(p.actions, actions...)
}

// take returns the Idempotency-Keys and bodies seen since the last take.
func (p *scripted) take() (keys, bodies []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	keys, bodies = p.keys, p.bodies
	p.keys, p.bodies = nil, nil
	if len(p.actions) != 0 {
		p.t.Fatalf("unused proxy actions %q", p.actions)
	}
	return keys, bodies
}

func (p *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	p.mu.Lock()
	action := ""
	if len(p.actions) > 0 {
		action, p.actions = p.actions[0], p.actions[1:]
	}
	p.keys = append(p.keys, r.Header.Get("Idempotency-Key"))
	p.bodies = append(p.bodies, string(body))
	p.mu.Unlock()
	switch action {
	case "503":
		unavailable(w, "0")
	case "lose":
		req, _ := http.NewRequest(r.Method, p.upstream+r.URL.RequestURI(), strings.NewReader(string(body)))
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			p.t.Errorf("lose: forward: %v", err)
		} else {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
	default:
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		p.proxy.ServeHTTP(w, r)
	}
}

// sameKeys fails unless every attempt carried one non-empty key.
func sameKeys(t *testing.T, keys []string, attempts int, want string) {
	t.Helper()
	if len(keys) != attempts {
		t.Fatalf("%d attempts, want %d (keys %q)", len(keys), attempts, keys)
	}
	for _, k := range keys {
		if k == "" || k != want {
			t.Fatalf("Idempotency-Keys %q, want %q on every attempt", keys, want)
		}
	}
}

func fastRetries() client.Option {
	return client.WithBackoff(5*time.Millisecond, 20*time.Millisecond)
}

func wantWallet(t *testing.T, b client.Balance, balance, reserved int64) {
	t.Helper()
	if b.BalanceMicros != balance || b.ReservedMicros != reserved || b.AvailableMicros != balance-reserved {
		t.Fatalf("wallet balance %d reserved %d available %d, want %d / %d / %d",
			b.BalanceMicros, b.ReservedMicros, b.AvailableMicros, balance, reserved, balance-reserved)
	}
}

func voiceCard(pricePerMinuteUS int64) client.RateCard {
	return client.RateCard{Channels: map[string]client.ChannelRate{
		"voice": {Per: client.PerMinute, Increment: []int64{60, 6}, Prices: map[string]int64{"1": pricePerMinuteUS, "*": 30000}},
	}}
}

// testVoiceCall is a call billed slice by slice through a proxy that loses
// answers and answers 503: a hold rated from the org's card, two
// extensions whose retries never hold twice, a card change mid-call, and a
// commit of the actual seconds at the card in force when the call began.
func testVoiceCall(t *testing.T, s *testserver.Server, admin *client.Client) {
	ctx := context.Background()
	const funds = 1_000_000
	orgID, c := mustOrg(t, admin, "Voice", funds)

	v1, err := admin.SetOrgRates(ctx, orgID, voiceCard(9000))
	if err != nil {
		t.Fatal(err)
	}
	if v1.Version < 1 || v1.OrgID == nil || *v1.OrgID != orgID || v1.Channels["voice"].Prices["1"] != 9000 ||
		fmt.Sprint(v1.Channels["voice"].Increment) != "[60 6]" || v1.Channels["voice"].Per != client.PerMinute {
		t.Fatalf("SetOrgRates: %+v", v1)
	}
	eff, err := c.Rates(ctx)
	if err != nil || eff.Version < v1.Version || eff.Channels["voice"].Prices["1"] != 9000 || eff.Channels["voice"].Prices["*"] != 30000 {
		t.Fatalf("Rates after SetOrgRates: %+v, %v", eff, err)
	}

	p := newScripted(t, s.URL)
	pc := client.New(p.URL, client.WithAPIKey(mustKey(t, admin, orgID, client.RoleCharge)), fastRetries())

	// The hold: 60 s estimated at 9000 micros a minute. Its answer is lost;
	// the retry replays it.
	p.then("lose")
	hold, err := pc.CreateReservation(ctx, client.ReservationRequest{
		Reference: "call-1", Channel: "voice", TTLSeconds: 120,
		Usage:    &client.Usage{Destination: "14155550100", Seconds: client.Int64(60)},
		Metadata: map[string]any{"call_leg": "a"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, bodies := p.take(); len(bodies) != 2 || bodies[0] != bodies[1] {
		t.Fatalf("create attempts %q", bodies)
	}
	r := hold.Reservation
	if !hold.Replayed || !strings.HasPrefix(r.ID, "rsv_") || r.Reference != "call-1" || r.Channel != "voice" || r.Status != client.ReservationOpen ||
		r.AmountMicros != 9000 || r.RateVersion == nil || *r.RateVersion != v1.Version || r.TransactionID != nil || r.ClosedAt != nil ||
		r.Metadata["call_leg"] != "a" || r.ExpiresAt.Sub(r.CreatedAt) != 120*time.Second {
		t.Fatalf("CreateReservation: replayed %v %+v", hold.Replayed, r)
	}
	wantWallet(t, hold.Balance, funds, 9000)

	// Slice two: the answer is lost, the retry carries the same key and
	// replays: held once.
	p.then("lose")
	ext1, err := pc.ExtendReservation(ctx, r.ID, client.ExtendRequest{AmountMicros: 9000})
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := p.take()
	sameKeys(t, keys, 2, ext1.IdempotencyKey)
	if !ext1.Replayed || ext1.Reservation.AmountMicros != 18000 || !strings.HasPrefix(ext1.IdempotencyKey, "idem_") {
		t.Fatalf("first extend: replayed %v amount %d", ext1.Replayed, ext1.Reservation.AmountMicros)
	}
	wantWallet(t, ext1.Balance, funds, 18000)

	// Slice three: 503 first, then applied by the retry.
	p.then("503")
	ext2, err := pc.ExtendReservation(ctx, r.ID, client.ExtendRequest{AmountMicros: 9000, TTLSeconds: 300})
	if err != nil {
		t.Fatal(err)
	}
	keys, _ = p.take()
	sameKeys(t, keys, 2, ext2.IdempotencyKey)
	if ext2.Replayed || ext2.Reservation.AmountMicros != 27000 || ext2.IdempotencyKey == ext1.IdempotencyKey {
		t.Fatalf("second extend: %+v", ext2)
	}
	wantWallet(t, ext2.Balance, funds, 27000)
	// The caller repeating it with the reported key: a replay.
	again, err := c.ExtendReservation(ctx, r.ID, client.ExtendRequest{AmountMicros: 9000, TTLSeconds: 300, IdempotencyKey: ext2.IdempotencyKey})
	if err != nil || !again.Replayed || again.Reservation.AmountMicros != 27000 {
		t.Fatalf("extend repeated with its key: %+v, %v", again, err)
	}
	_, err = c.ExtendReservation(ctx, r.ID, client.ExtendRequest{AmountMicros: 1, IdempotencyKey: ext2.IdempotencyKey})
	wantCode(t, err, 409, client.CodeIdempotencyConflict)
	_, err = c.ExtendReservation(ctx, r.ID, client.ExtendRequest{AmountMicros: funds})
	if e := wantCode(t, err, 402, client.CodeInsufficientFunds); e.Details["available_micros"] != json.Number(fmt.Sprint(funds-27000)) {
		t.Fatalf("402 details %v", e.Details)
	}
	_, err = c.ExtendReservation(ctx, r.ID, client.ExtendRequest{AmountMicros: 1, IdempotencyKey: "short"})
	wantCode(t, err, 400, client.CodeIdempotencyKeyRequired)
	got, err := c.Reservation(ctx, r.ID)
	if err != nil || got.AmountMicros != 27000 || got.Status != client.ReservationOpen {
		t.Fatalf("Reservation after refused extends: %+v, %v", got, err)
	}

	// The price changes mid-call; the call is still rated with the card in
	// force when it began.
	v2, err := admin.SetOrgRates(ctx, orgID, voiceCard(12000))
	if err != nil || v2.Version <= v1.Version {
		t.Fatalf("second SetOrgRates: %+v, %v", v2, err)
	}

	// 125 s: billable 60 + ceil(65/6)*6 = 126 s at 9000/min = 18900 micros.
	// The commit's answer is lost; the retry replays it.
	p.then("lose")
	commit := client.CommitRequest{Usage: &client.Usage{Destination: "14155550100", Seconds: client.Int64(125)}}
	cr, err := pc.CommitReservation(ctx, r.ID, commit)
	if err != nil {
		t.Fatal(err)
	}
	if _, bodies := p.take(); len(bodies) != 2 {
		t.Fatalf("commit attempts: %d", len(bodies))
	}
	tx := cr.Transaction
	if !cr.Replayed || cr.Capped || cr.UncollectedMicros != 0 || cr.Expired || tx.Type != client.TypeSpend || tx.AmountMicros != -18900 ||
		tx.Reference != "reservation:call-1" || tx.Channel() != "voice" || tx.Metadata["rate_version"] != json.Number(fmt.Sprint(v1.Version)) ||
		tx.Metadata["reservation_id"] != r.ID || tx.Metadata["call_leg"] != "a" || tx.Metadata["seconds"] != json.Number("125") ||
		tx.Metadata["country"] != "1" {
		t.Fatalf("CommitReservation: %+v", cr)
	}
	cres := cr.Reservation
	if cres.Status != client.ReservationCommitted || cres.CapturedMicros != 18900 || cres.TransactionID == nil || *cres.TransactionID != tx.ID || cres.ClosedAt == nil {
		t.Fatalf("committed reservation %+v", cres)
	}
	wantWallet(t, cr.Balance, funds-18900, 0)
	mustBalance(t, c, funds-18900)
	rep, err := c.CommitReservation(ctx, r.ID, commit)
	if err != nil || !rep.Replayed || rep.Transaction.ID != tx.ID {
		t.Fatalf("commit repeated: %+v, %v", rep, err)
	}

	// Closed: another commit, a release, an extend.
	_, err = c.CommitReservation(ctx, r.ID, client.CommitRequest{AmountMicros: 1})
	wantCode(t, err, 409, client.CodeReservationClosed)
	_, err = c.ReleaseReservation(ctx, r.ID)
	wantCode(t, err, 409, client.CodeReservationClosed)
	_, err = c.ExtendReservation(ctx, r.ID, client.ExtendRequest{AmountMicros: 1})
	wantCode(t, err, 409, client.CodeReservationClosed)
	if got, err := c.Reservation(ctx, r.ID); err != nil || got.Status != client.ReservationCommitted || got.CapturedMicros != 18900 {
		t.Fatalf("Reservation after commit: %+v, %v", got, err)
	}

	// A charge now is rated with the new card: 60 s at 12000.
	ch, err := c.Charge(ctx, client.ChargeRequest{Reference: "call-2", Channel: "voice", Usage: &client.Usage{Destination: "14155550100", Seconds: client.Int64(60)}})
	if err != nil || ch.Transaction.AmountMicros != -12000 || ch.Transaction.Metadata["rate_version"] != json.Number(fmt.Sprint(v2.Version)) {
		t.Fatalf("charge after the card change: %+v, %v", ch, err)
	}
	page, err := c.Transactions(ctx, &client.TransactionsQuery{Type: client.TypeSpend})
	if err != nil || len(page.Transactions) != 2 || page.Transactions[1].ID != tx.ID {
		t.Fatalf("spends: %+v, %v", page, err)
	}
	mustBalance(t, c, funds-18900-12000)
}

// testReservations covers release, conflicts, capping, expiry and roles.
func testReservations(t *testing.T, s *testserver.Server, admin *client.Client) {
	ctx := context.Background()
	orgID, c := mustOrg(t, admin, "Holds", 100_000)
	res, err := c.CreateReservation(ctx, client.ReservationRequest{Reference: "h1", Channel: "llm", AmountMicros: 30_000, TTLSeconds: 60})
	if err != nil {
		t.Fatal(err)
	}
	h := res.Reservation
	if res.Replayed || h.AmountMicros != 30_000 || h.RateVersion != nil || h.Status != client.ReservationOpen {
		t.Fatalf("CreateReservation: %+v", res)
	}
	wantWallet(t, res.Balance, 100_000, 30_000)
	_, err = c.CreateReservation(ctx, client.ReservationRequest{Reference: "h1", Channel: "llm", AmountMicros: 31_000, TTLSeconds: 60})
	wantCode(t, err, 409, client.CodeIdempotencyConflict)
	_, err = c.CreateReservation(ctx, client.ReservationRequest{Reference: "h2", Channel: "llm", AmountMicros: 70_001})
	wantCode(t, err, 402, client.CodeInsufficientFunds)
	_, err = c.CreateReservation(ctx, client.ReservationRequest{Reference: "h3", Channel: "fax", Usage: &client.Usage{Destination: "1", Units: client.Int64(1)}})
	wantCode(t, err, 422, client.CodeNoRate)
	gen, err := c.CreateReservation(ctx, client.ReservationRequest{Channel: "llm", AmountMicros: 1})
	if err != nil || !strings.HasPrefix(gen.Reservation.Reference, "hold_") {
		t.Fatalf("CreateReservation without reference: %+v, %v", gen, err)
	}
	if _, err := c.ReleaseReservation(ctx, gen.Reservation.ID); err != nil {
		t.Fatal(err)
	}

	rel, err := c.ReleaseReservation(ctx, h.ID)
	if err != nil || rel.Reservation.Status != client.ReservationReleased || rel.Reservation.ClosedAt == nil || rel.Reservation.CapturedMicros != 0 {
		t.Fatalf("ReleaseReservation: %+v, %v", rel, err)
	}
	wantWallet(t, rel.Balance, 100_000, 0)
	rel2, err := c.ReleaseReservation(ctx, h.ID)
	if err != nil || rel2.Reservation.Status != client.ReservationReleased || !rel2.Reservation.ClosedAt.Equal(*rel.Reservation.ClosedAt) {
		t.Fatalf("second release: %+v, %v", rel2, err)
	}
	wantWallet(t, rel2.Balance, 100_000, 0)
	_, err = c.CommitReservation(ctx, h.ID, client.CommitRequest{AmountMicros: 1})
	wantCode(t, err, 409, client.CodeReservationClosed)
	_, err = c.ExtendReservation(ctx, h.ID, client.ExtendRequest{AmountMicros: 1})
	wantCode(t, err, 409, client.CodeReservationClosed)
	_, err = c.Reservation(ctx, "rsv_doesnotexist")
	wantCode(t, err, 404, client.CodeNotFound)
	_, other := mustOrg(t, admin, "Other holds", 0)
	_, err = other.Reservation(ctx, h.ID)
	wantCode(t, err, 404, client.CodeNotFound)
	_, err = other.ReleaseReservation(ctx, h.ID)
	wantCode(t, err, 404, client.CodeNotFound)
	if _, err := c.Reservation(ctx, ""); err == nil || client.StatusOf(err) != 0 {
		t.Fatalf("Reservation without id: %v", err)
	}

	// Roles: charge keys hold; read keys see holds but do not make them.
	read := client.New(s.URL, client.WithAPIKey(mustKey(t, admin, orgID, client.RoleRead)))
	if got, err := read.Reservation(ctx, h.ID); err != nil || got.ID != h.ID {
		t.Fatalf("read key reading hold %s: %+v, %v", h.ID, got, err)
	}
	_, err = read.CreateReservation(ctx, client.ReservationRequest{Reference: "r", Channel: "llm", AmountMicros: 1})
	wantCode(t, err, 403, client.CodeForbidden)

	// Usage above the hold beyond the wallet: capped, never below zero.
	capRes, err := c.CreateReservation(ctx, client.ReservationRequest{Reference: "h4", Channel: "llm", AmountMicros: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	cr, err := c.CommitReservation(ctx, capRes.Reservation.ID, client.CommitRequest{AmountMicros: 150_000})
	if err != nil {
		t.Fatal(err)
	}
	if cr.Replayed || !cr.Capped || cr.UncollectedMicros != 50_000 || cr.Expired || cr.Transaction.AmountMicros != -100_000 ||
		!cr.Reservation.Capped || cr.Reservation.CapturedMicros != 100_000 || cr.Reservation.UncollectedMicros != 50_000 {
		t.Fatalf("capped commit: %+v", cr)
	}
	wantWallet(t, cr.Balance, 0, 0)
	if !cr.Balance.OutboundPaused || *cr.Balance.OutboundBlockReason != client.BlockInsufficientBalance {
		t.Fatalf("empty wallet not paused: %+v", cr.Balance)
	}

	// A hold that expires frees its funds; extending it is refused, a late
	// commit still bills.
	_, late := mustOrg(t, admin, "Late", 50_000)
	lr, err := late.CreateReservation(ctx, client.ReservationRequest{Reference: "short", Channel: "voice", AmountMicros: 20_000, TTLSeconds: 1})
	if err != nil {
		t.Fatal(err)
	}
	testserver.WaitFor(t, 10*time.Second, "the hold to expire", func() bool {
		r, err := late.Reservation(ctx, lr.Reservation.ID)
		return err == nil && r.Status == client.ReservationExpired
	})
	mustBalance(t, late, 50_000)
	if b, _ := late.Balance(ctx); b.AvailableMicros != 50_000 {
		t.Fatalf("available after expiry: %+v", b)
	}
	_, err = late.ExtendReservation(ctx, lr.Reservation.ID, client.ExtendRequest{AmountMicros: 1})
	wantCode(t, err, 409, client.CodeReservationClosed)
	lc, err := late.CommitReservation(ctx, lr.Reservation.ID, client.CommitRequest{AmountMicros: 5000})
	if err != nil || !lc.Expired || lc.Capped || lc.Transaction.AmountMicros != -5000 || !lc.Reservation.Expired || lc.Reservation.Status != client.ReservationCommitted {
		t.Fatalf("late commit: %+v, %v", lc, err)
	}
	wantWallet(t, lc.Balance, 45_000, 0)
}

// noRedirect posts without following the 303.
var noRedirect = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// pay completes a development checkout and returns the redirect target.
func pay(t *testing.T, checkoutURL string) string {
	t.Helper()
	resp, err := noRedirect.Post(checkoutURL+"/pay", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST %s/pay: %d %s", checkoutURL, resp.StatusCode, body)
	}
	return resp.Header.Get("Location")
}

// testTopUp pays a top-up through the development provider: the request's
// answer is lost and retried with the same generated key, the checkout is
// paid twice, and the wallet is credited once, with a receipt.
func testTopUp(t *testing.T, s *testserver.Server, admin *client.Client) {
	ctx := context.Background()
	orgID, c := mustOrg(t, admin, "TopUp", 0)
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.PaymentProvider != client.ProviderDev || st.StripeConfigured || st.HasCustomer || !st.CanManage || !st.CanCheckout || st.LastTopup != nil ||
		!st.OutboundPaused || *st.OutboundBlockReason != client.BlockInsufficientBalance || st.OutboundBlockDetails != nil || st.Wallet.BalanceMicros != 0 {
		t.Fatalf("status before the top-up: %+v", st)
	}

	p := newScripted(t, s.URL)
	pc := client.New(p.URL, client.WithAPIKey(mustKey(t, admin, orgID, client.RoleAdmin)), fastRetries())
	req := client.TopUpRequest{Amount: 2500, SuccessURL: "https://example.com/billing?topup=ok", CancelURL: "https://example.com/billing?topup=no"}
	p.then("lose")
	tu, err := pc.TopUp(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := p.take()
	sameKeys(t, keys, 2, tu.IdempotencyKey)
	if !tu.Replayed || !strings.HasPrefix(tu.ID, "tu_") || tu.CheckoutURL != s.URL+"/dev/checkout/"+tu.ID || tu.SessionID == nil || *tu.SessionID != "dev_"+tu.ID ||
		tu.Amount != 2500 || tu.Currency != "usd" || tu.Status != client.TopupPending || tu.CreditMicros != 25_000_000 || tu.PaidAt != nil ||
		tu.CreatedAt.IsZero() || !strings.HasPrefix(tu.IdempotencyKey, "idem_") {
		t.Fatalf("TopUp: %+v", tu)
	}

	// The same key replays, on either route; another body conflicts.
	req.IdempotencyKey = tu.IdempotencyKey
	rep, err := c.TopUp(ctx, req)
	if err != nil || !rep.Replayed || rep.ID != tu.ID || rep.CheckoutURL != tu.CheckoutURL {
		t.Fatalf("TopUp replay: %+v, %v", rep, err)
	}
	alias, err := c.PurchaseCredits(ctx, req)
	if err != nil || !alias.Replayed || alias.ID != tu.ID {
		t.Fatalf("PurchaseCredits with the same key: %+v, %v", alias, err)
	}
	req.Amount = 2600
	_, err = c.TopUp(ctx, req)
	wantCode(t, err, 409, client.CodeIdempotencyConflict)
	req.Amount, req.IdempotencyKey = 2500, "short"
	_, err = c.TopUp(ctx, req)
	wantCode(t, err, 400, client.CodeIdempotencyKeyRequired)
	_, err = c.TopUp(ctx, client.TopUpRequest{Amount: 100, SuccessURL: req.SuccessURL, CancelURL: req.CancelURL})
	if e := wantCode(t, err, 400, client.CodeInvalidRequest); e.Details["field"] != "amount" {
		t.Fatalf("details %v", e.Details)
	}
	_, err = c.TopUp(ctx, client.TopUpRequest{Amount: 1000, SuccessURL: "not a url", CancelURL: req.CancelURL})
	if e := wantCode(t, err, 400, client.CodeInvalidRequest); e.Details["field"] != "successUrl" {
		t.Fatalf("details %v", e.Details)
	}
	read := client.New(s.URL, client.WithAPIKey(mustKey(t, admin, orgID, client.RoleRead)))
	_, err = read.TopUp(ctx, client.TopUpRequest{Amount: 1000, SuccessURL: req.SuccessURL, CancelURL: req.CancelURL})
	wantCode(t, err, 403, client.CodeForbidden)
	if rs, err := read.Status(ctx); err != nil || rs.CanManage || rs.CanCheckout {
		t.Fatalf("status with a read key: %+v, %v", rs, err)
	}
	mustBalance(t, c, 0)

	// Pay twice: credited once.
	if loc := pay(t, tu.CheckoutURL); loc != req.SuccessURL {
		t.Fatalf("pay redirects to %q", loc)
	}
	if loc := pay(t, tu.CheckoutURL); loc != req.SuccessURL {
		t.Fatalf("second pay redirects to %q", loc)
	}
	b := mustBalance(t, c, 25_000_000)
	if b.OutboundPaused {
		t.Fatalf("paused after the top-up: %+v", b)
	}
	if cb, err := c.Credits(ctx); err != nil || cb.BalanceMicros != 25_000_000 || cb.BalanceCents != 2500 {
		t.Fatalf("Credits: %+v, %v", cb, err)
	}
	page, err := c.Transactions(ctx, &client.TransactionsQuery{Type: client.TypeTopup})
	if err != nil || len(page.Transactions) != 1 {
		t.Fatalf("top-up entries: %+v, %v", page, err)
	}
	e := page.Transactions[0]
	if e.AmountMicros != 25_000_000 || e.AmountMinor != 2500 || e.Reference != "dev_session:"+tu.ID || e.Metadata["currency"] != "usd" ||
		e.Metadata["fx_rate"] != json.Number("1.0") || e.Metadata["topup_id"] != tu.ID {
		t.Fatalf("top-up entry %+v", e)
	}
	inv, err := c.Invoices(ctx)
	if err != nil || len(inv) != 1 {
		t.Fatalf("Invoices: %+v, %v", inv, err)
	}
	if i := inv[0]; !strings.HasPrefix(i.ID, "inv_") || i.Amount != 2500 || i.Currency != "usd" || i.Status != "paid" ||
		!strings.HasPrefix(i.Number, "INV-") || !strings.HasPrefix(i.PDFURL, s.URL+"/dev/receipts/"+orgID+"/"+i.ID+"?token=") || i.CreatedAt.IsZero() {
		t.Fatalf("invoice %+v", i)
	}
	st, err = c.Status(ctx)
	if err != nil || st.LastTopup == nil || st.LastTopup.ID != tu.ID || st.LastTopup.Status != client.TopupPaid || st.LastTopup.PaidAt == nil ||
		st.LastTopup.CreditMicros != 25_000_000 || st.OutboundPaused || st.Wallet.BalanceMicros != 25_000_000 {
		t.Fatalf("status after the top-up: %+v, %v", st, err)
	}
	// A replay now shows the top-up paid.
	req.IdempotencyKey = tu.IdempotencyKey
	if rep, err := c.TopUp(ctx, req); err != nil || !rep.Replayed || rep.Status != client.TopupPaid || rep.PaidAt == nil {
		t.Fatalf("replay after payment: %+v, %v", rep, err)
	}
}

// testFx sets the FX table and reads it back exactly, then tops up in EUR.
func testFx(t *testing.T, s *testserver.Server, admin *client.Client) {
	ctx := context.Background()
	var raw []string
	obs := client.New(s.URL, client.WithAdminToken(s.AdminToken), client.WithResponseObserver(func(_ *http.Response, body []byte) { raw = append(raw, string(body)) }))
	in := map[string]string{"eur": "1.0825", "gbp": "1.27", "jpy": "0.0067", "kwd": "3.25123457", "xau": "9999.99999999", "try": "0.00000001", "chf": "10000"}
	table := client.FxRates{}
	for cur, text := range in {
		r, err := client.ParseFxRate(text)
		if err != nil {
			t.Fatal(err)
		}
		table[cur] = r
	}
	set, err := obs.SetFxRates(ctx, table)
	if err != nil {
		t.Fatal(err)
	}
	got, err := obs.FxRates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for cur, want := range in {
		if set[cur].String() != want && !(want == "10000" && set[cur].String() == "10000.0") {
			t.Errorf("SetFxRates %s = %s, want %s", cur, set[cur], want)
		}
		if got[cur] != table[cur] || set[cur] != table[cur] {
			t.Errorf("%s: sent %d, committed %d, read %d (x 10^-8)", cur, table[cur], set[cur], got[cur])
		}
	}
	if len(got) != len(in) || len(set) != len(in) {
		t.Fatalf("FX tables: set %v, read %v", set, got)
	}
	if got["kwd"] != 325123457 || got["try"] != 1 || got["xau"] != 999999999999 {
		t.Fatalf("FX rates not exact: %v", got)
	}
	if last := raw[len(raw)-1]; !strings.Contains(last, `"eur":1.0825`) || !strings.Contains(last, `"xau":9999.99999999`) || !strings.Contains(last, `"try":0.00000001`) {
		t.Fatalf("GET fx-rates body: %s", last)
	}

	// A top-up in EUR: 10.00 EUR at 1.0825 credits 10,825,000 micros.
	_, c := mustOrg(t, admin, "EUR", 0)
	tu, err := c.TopUp(ctx, client.TopUpRequest{Amount: 1000, Currency: "eur", SuccessURL: "https://example.com/ok", CancelURL: "https://example.com/no"})
	if err != nil || tu.Currency != "eur" || tu.Amount != 1000 || tu.CreditMicros != 10_825_000 {
		t.Fatalf("TopUp in EUR: %+v, %v", tu, err)
	}
	pay(t, tu.CheckoutURL)
	mustBalance(t, c, 10_825_000)
	page, err := c.Transactions(ctx, &client.TransactionsQuery{Type: client.TypeTopup})
	if err != nil || len(page.Transactions) != 1 || page.Transactions[0].Metadata["fx_rate"] != json.Number("1.0825") || page.Transactions[0].Metadata["currency"] != "eur" {
		t.Fatalf("EUR top-up entry: %+v, %v", page, err)
	}
	_, err = c.TopUp(ctx, client.TopUpRequest{Amount: 1000, Currency: "sek", SuccessURL: "https://example.com/ok", CancelURL: "https://example.com/no"})
	if e := wantCode(t, err, 400, client.CodeInvalidRequest); e.Details["field"] != "currency" {
		t.Fatalf("details %v", e.Details)
	}

	// Refused rates; then the table is emptied.
	_, err = admin.SetFxRates(ctx, client.FxRates{"eur": 0})
	if e := wantCode(t, err, 400, client.CodeInvalidRequest); e.Details["field"] != "eur" {
		t.Fatalf("details %v", e.Details)
	}
	_, err = admin.SetFxRates(ctx, client.FxRates{"usd": client.FxRateScale})
	wantCode(t, err, 400, client.CodeInvalidRequest)
	if got, err := admin.FxRates(ctx); err != nil || got["eur"] != 108_250_000 {
		t.Fatalf("a refused PUT changed the table: %v, %v", got, err)
	}
	empty, err := admin.SetFxRates(ctx, nil)
	if err != nil || len(empty) != 0 {
		t.Fatalf("SetFxRates(nil): %v, %v", empty, err)
	}
	if got, err := admin.FxRates(ctx); err != nil || len(got) != 0 {
		t.Fatalf("FX table after emptying: %v, %v", got, err)
	}
}

// testGrants writes grants exactly once and sees one expire.
func testGrants(t *testing.T, admin *client.Client) {
	ctx := context.Background()
	orgID, c := mustOrg(t, admin, "Grants", 0)
	exp := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	req := client.GrantRequest{AmountMicros: 5_000_000, ExpiresAt: exp, Reason: "welcome credit", Reference: "g1"}
	g, err := admin.Grant(ctx, orgID, req)
	if err != nil {
		t.Fatal(err)
	}
	tx := g.Transaction
	if g.Replayed || g.Reference != "g1" || tx.Type != client.TypeGrant || tx.AmountMicros != 5_000_000 || tx.Reference != "grant:g1" ||
		tx.ExpiresAt == nil || !tx.ExpiresAt.Equal(exp) || g.Balance.BalanceMicros != 5_000_000 || g.RequestID == "" {
		t.Fatalf("Grant: %+v", g)
	}
	rep, err := admin.Grant(ctx, orgID, req)
	if err != nil || !rep.Replayed || rep.Transaction.ID != tx.ID {
		t.Fatalf("Grant replay: %+v, %v", rep, err)
	}
	req.AmountMicros = 6_000_000
	_, err = admin.Grant(ctx, orgID, req)
	wantCode(t, err, 409, client.CodeIdempotencyConflict)
	_, err = admin.Grant(ctx, orgID, client.GrantRequest{AmountMicros: 0, ExpiresAt: exp})
	if e := wantCode(t, err, 400, client.CodeInvalidRequest); e.Details["field"] != "amount_micros" {
		t.Fatalf("details %v", e.Details)
	}
	_, err = admin.Grant(ctx, "org_doesnotexist", client.GrantRequest{AmountMicros: 1, ExpiresAt: exp})
	wantCode(t, err, 404, client.CodeNotFound)
	if _, err := admin.Grant(ctx, orgID, client.GrantRequest{AmountMicros: 1}); err == nil || client.StatusOf(err) != 0 {
		t.Fatalf("Grant without expires_at: %v", err)
	}
	mustBalance(t, c, 5_000_000)

	// A short grant is spent first (earliest expiry); its unused remainder
	// leaves at expiry.
	short, err := admin.Grant(ctx, orgID, client.GrantRequest{AmountMicros: 1_000_000, ExpiresAt: time.Now().Add(1500 * time.Millisecond)})
	if err != nil || !strings.HasPrefix(short.Reference, "grant_") || short.Balance.BalanceMicros != 6_000_000 {
		t.Fatalf("short grant: %+v, %v", short, err)
	}
	if _, err := c.Charge(ctx, client.ChargeRequest{Reference: "spend", Channel: "sms", AmountMicros: 300_000}); err != nil {
		t.Fatal(err)
	}
	var expiry client.Transaction
	testserver.WaitFor(t, 10*time.Second, "an expiry entry", func() bool {
		p, err := c.Transactions(ctx, &client.TransactionsQuery{Type: client.TypeExpiry})
		if err != nil || len(p.Transactions) == 0 {
			return false
		}
		expiry = p.Transactions[0]
		return true
	})
	if expiry.AmountMicros != -700_000 {
		t.Fatalf("expiry entry %+v, want -700000 (the short grant's unspent part)", expiry)
	}
	mustBalance(t, c, 5_000_000)
}

// testDefaultRates commits the default card and sees it merged with an
// override; it leaves the default card empty again.
func testDefaultRates(t *testing.T, admin *client.Client) {
	ctx := context.Background()
	def := client.RateCard{Version: 999, Channels: map[string]client.ChannelRate{
		"fax":   {Per: client.PerUnit, Prices: map[string]int64{"1": 700, "*": 1000}},
		"voice": {Per: client.PerMinute, Prices: map[string]int64{"*": 60_000}},
		"llm":   {Per: client.PerToken, Models: map[string]client.ModelRate{"gpt-4o-mini": {InputPerMillion: 150_000, OutputPerMillion: 600_000}}},
	}}
	set, err := admin.SetRates(ctx, def)
	if err != nil {
		t.Fatal(err)
	}
	if set.OrgID != nil || set.Version < 1 || set.Version == 999 || len(set.Channels) != 3 || set.Channels["llm"].Models["gpt-4o-mini"].OutputPerMillion != 600_000 {
		t.Fatalf("SetRates: %+v", set)
	}
	orgID, c := mustOrg(t, admin, "Default card", 10_000_000)
	eff, err := c.Rates(ctx)
	if err != nil || eff.Version != set.Version || len(eff.Channels) != 3 || eff.Channels["fax"].Prices["1"] != 700 {
		t.Fatalf("Rates of an org without override: %+v, %v", eff, err)
	}
	ov, err := admin.SetOrgRates(ctx, orgID, voiceCard(9000))
	if err != nil {
		t.Fatal(err)
	}
	eff, err = c.Rates(ctx)
	if err != nil || eff.Version != ov.Version || eff.Channels["voice"].Prices["1"] != 9000 || eff.Channels["fax"].Prices["*"] != 1000 || len(eff.Channels) != 3 {
		t.Fatalf("Rates with an override: %+v, %v", eff, err)
	}
	ch, err := c.Charge(ctx, client.ChargeRequest{Reference: "fax-1", Channel: "fax", Usage: &client.Usage{Destination: "4930123", Units: client.Int64(3)}})
	if err != nil || ch.Transaction.AmountMicros != -3000 || ch.Transaction.Metadata["rate_version"] != json.Number(fmt.Sprint(set.Version)) || ch.Transaction.Metadata["country"] != "*" {
		t.Fatalf("fax charge at the default card: %+v, %v", ch, err)
	}
	// 1000 input + 2000 output tokens: ceil((150,000,000 + 1,200,000,000) / 10^6) = 1350.
	ch, err = c.Charge(ctx, client.ChargeRequest{Reference: "llm-1", Channel: "llm", Usage: &client.Usage{Model: "gpt-4o-mini", InputTokens: client.Int64(1000), OutputTokens: client.Int64(2000)}})
	if err != nil || ch.Transaction.AmountMicros != -1350 {
		t.Fatalf("llm charge: %+v, %v", ch, err)
	}
	// Only the rows of the grouping's own dimension are checked: the server
	// keys each spend by its prefix or model whatever group_by asks (a fax
	// spend shows as "fax:*" under group_by=model, where SPEC says "fax:-").
	rows, err := c.UsageByChannel(ctx, 1, client.GroupByModel)
	if err != nil || len(rows) != 2 || rows[0].Channel != "fax" || rows[0].TotalCostMicros != 3000 || rows[1].Key != "llm:gpt-4o-mini" || rows[1].TotalCostMicros != 1350 {
		t.Fatalf("usage by model: %+v, %v", rows, err)
	}
	rows, err = c.UsageByChannel(ctx, 1, client.GroupByDestination)
	if err != nil || len(rows) != 2 || rows[0].Key != "fax:*" || rows[0].TotalCostMicros != 3000 || rows[0].TotalMessages != 1 || rows[1].Channel != "llm" {
		t.Fatalf("usage by destination: %+v, %v", rows, err)
	}

	_, err = admin.SetRates(ctx, client.RateCard{Channels: map[string]client.ChannelRate{"sms": {Per: "parsec", Prices: map[string]int64{"*": 1}}}})
	wantCode(t, err, 400, client.CodeInvalidRequest)
	_, err = admin.SetOrgRates(ctx, "org_doesnotexist", voiceCard(1))
	wantCode(t, err, 404, client.CodeNotFound)
	empty, err := admin.SetRates(ctx, client.RateCard{})
	if err != nil || len(empty.Channels) != 0 || empty.Version <= ov.Version {
		t.Fatalf("SetRates(empty): %+v, %v", empty, err)
	}
}

// testCluster joins a real second orbitd through ClusterJoin (its --join
// points at a relay that makes the SDK call), then removes it.
func testCluster(t *testing.T, s *testserver.Server, admin *client.Client) {
	ctx := context.Background()
	self := client.ClusterJoinRequest{NodeID: "node1", RaftAddr: s.RaftAddr, HTTPAddr: s.HTTPAddr}
	ci, err := admin.ClusterJoin(ctx, self)
	if err != nil || len(ci.Nodes) != 1 || ci.Nodes[0].ID != "node1" || ci.Leader == nil || *ci.Leader != "node1" {
		t.Fatalf("re-joining itself: %+v, %v", ci, err)
	}
	_, err = admin.ClusterJoin(ctx, client.ClusterJoinRequest{NodeID: "node9"})
	wantCode(t, err, 400, client.CodeInvalidRequest)
	_, err = admin.ClusterJoin(ctx, client.ClusterJoinRequest{NodeID: "node9", RaftAddr: "nope", HTTPAddr: "127.0.0.1:1"})
	if e := wantCode(t, err, 400, client.CodeInvalidRequest); e.Details["field"] != "raft_addr" {
		t.Fatalf("details %v", e.Details)
	}
	_, err = admin.ClusterRemove(ctx, "node9")
	wantCode(t, err, 404, client.CodeNotFound)
	_, err = admin.ClusterRemove(ctx, "node1")
	wantCode(t, err, 400, client.CodeInvalidRequest)

	var joined sync.Map
	relay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req client.ClusterJoinRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		ci, err := admin.ClusterJoin(r.Context(), req)
		if err != nil {
			t.Logf("relay: ClusterJoin %+v: %v", req, err)
			unavailable(w, "")
			return
		}
		joined.Store("info", ci)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"data":{},"meta":{"request_id":"req_relay","timestamp":"2026-05-16T12:00:00.000Z"}}`)
	}))
	defer relay.Close()
	n2 := testserver.New(t)
	n2.ExtraArgs = []string{"--node-id", "node2", "--join", relay.URL}
	n2.Start()
	// node2 is ready once it hears from the leader, which can be before the
	// join call (which records its address afterwards) has answered.
	testserver.WaitFor(t, 30*time.Second, "the relayed ClusterJoin to answer", func() bool {
		_, ok := joined.Load("info")
		return ok
	})
	v, _ := joined.Load("info")
	ji := v.(*client.ClusterInfo)
	var node2 *client.ClusterNode
	for i := range ji.Nodes {
		if ji.Nodes[i].ID == "node2" {
			node2 = &ji.Nodes[i]
		}
	}
	if len(ji.Nodes) != 2 || node2 == nil || node2.RaftAddr != n2.RaftAddr || node2.Suffrage != "voter" || node2.HTTPAddr == nil || *node2.HTTPAddr != n2.HTTPAddr {
		t.Fatalf("ClusterJoin answer: %+v", ji)
	}
	// node2 answers admin calls too (forwarding to the leader as needed).
	via2 := client.New(n2.URL, client.WithAdminToken(s.AdminToken))
	testserver.WaitFor(t, 10*time.Second, "node2 to see node1 as leader", func() bool {
		ci, err := via2.Cluster(ctx)
		return err == nil && ci.NodeID == "node2" && ci.Leader != nil && *ci.Leader == "node1" && len(ci.Nodes) == 2
	})
	if a, err := via2.Audit(ctx); err != nil || len(a.Mismatches) != 0 {
		t.Fatalf("Audit through node2: %+v, %v", a, err)
	}

	after, err := admin.ClusterRemove(ctx, "node2")
	if err != nil || len(after.Nodes) != 1 || after.Nodes[0].ID != "node1" {
		t.Fatalf("ClusterRemove: %+v, %v", after, err)
	}
	n2.Kill()
	if ci, err := admin.Cluster(ctx); err != nil || len(ci.Nodes) != 1 || ci.Leader == nil || *ci.Leader != "node1" {
		t.Fatalf("cluster after the removal: %+v, %v", ci, err)
	}
	// The single node still takes writes.
	if _, err := admin.CreateOrg(ctx, "after removal"); err != nil {
		t.Fatalf("write after the removal: %v", err)
	}
}

func TestFxRate(t *testing.T) {
	for in, want := range map[string]int64{
		"1.0825": 108_250_000, "1": 100_000_000, "0.00000001": 1, "10000": 1_000_000_000_000, "1.10000000000": 110_000_000,
		"0.0067": 670_000, "007.5": 750_000_000, "9999.99999999": 999_999_999_999,
	} {
		r, err := client.ParseFxRate(in)
		if err != nil || int64(r) != want {
			t.Errorf("ParseFxRate(%q) = %d, %v; want %d", in, r, err, want)
		}
	}
	for _, bad := range []string{"", "1.", ".5", "-1", "+1", "1e3", "1.000000001", "abc", "1.2.3", " 1", "12345678901"} {
		if _, err := client.ParseFxRate(bad); err == nil {
			t.Errorf("ParseFxRate(%q) accepted", bad)
		}
	}
	for r, want := range map[client.FxRate]string{108_250_000: "1.0825", 200_000_000: "2.0", 1: "0.00000001", 0: "0.0", -50_000_000: "-0.5"} {
		if got := r.String(); got != want {
			t.Errorf("FxRate(%d).String() = %q, want %q", int64(r), got, want)
		}
	}
	var table client.FxRates
	if err := json.Unmarshal([]byte(`{"eur":1.0825,"jpy":0.0067,"xau":"2500.12345678"}`), &table); err != nil {
		t.Fatal(err)
	}
	if table["eur"] != 108_250_000 || table["jpy"] != 670_000 || table["xau"] != 250_012_345_678 {
		t.Fatalf("decoded %v", table)
	}
	b, err := json.Marshal(client.FxRates{"eur": 108_250_000, "gbp": 127_000_000})
	if err != nil || string(b) != `{"eur":1.0825,"gbp":1.27}` {
		t.Fatalf("encoded %s, %v", b, err)
	}
	if err := json.Unmarshal([]byte(`{"eur":1.000000001}`), &table); err == nil {
		t.Fatal("a rate beyond 8 decimals was rounded instead of refused")
	}
}

// TestRetriesKeepKeys: every retry of a call that needs an Idempotency-Key
// or a reference carries the same one, generated once.
func TestRetriesKeepKeys(t *testing.T) {
	var mu sync.Mutex
	var keys, bodies []string
	_, u := counting(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		keys, bodies = append(keys, r.Header.Get("Idempotency-Key")), append(bodies, string(b))
		mu.Unlock()
		unavailable(w, "0")
	})
	c := client.New(u, client.WithAdminToken("tok"), client.WithAPIKey("dv_live_sk_x"), client.WithRetries(2), client.WithBackoff(time.Millisecond, 2*time.Millisecond))
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"TopUp": func() error {
			_, err := c.TopUp(ctx, client.TopUpRequest{Amount: 1000, SuccessURL: "https://x/ok", CancelURL: "https://x/no"})
			return err
		},
		"PurchaseCredits": func() error {
			_, err := c.PurchaseCredits(ctx, client.TopUpRequest{Amount: 1000, SuccessURL: "https://x/ok", CancelURL: "https://x/no"})
			return err
		},
		"ExtendReservation": func() error {
			_, err := c.ExtendReservation(ctx, "rsv_x", client.ExtendRequest{AmountMicros: 5})
			return err
		},
		"CreateReservation": func() error {
			_, err := c.CreateReservation(ctx, client.ReservationRequest{Channel: "voice", AmountMicros: 5})
			return err
		},
		"Grant": func() error {
			_, err := c.Grant(ctx, "org_x", client.GrantRequest{AmountMicros: 5, ExpiresAt: time.Now().Add(time.Hour)})
			return err
		},
	} {
		mu.Lock()
		keys, bodies = nil, nil
		mu.Unlock()
		wantCode(t, call(), 503, client.CodeUnavailable)
		mu.Lock()
		if len(keys) != 3 || keys[0] != keys[1] || keys[1] != keys[2] || bodies[0] != bodies[1] || bodies[1] != bodies[2] {
			t.Errorf("%s: attempts with keys %q and bodies %q", name, keys, bodies)
		}
		needKey := name == "TopUp" || name == "PurchaseCredits" || name == "ExtendReservation"
		if needKey != (keys[0] != "") || (!needKey && !strings.Contains(bodies[0], `"reference":"`)) {
			t.Errorf("%s: key %q, body %s", name, keys[0], bodies[0])
		}
		mu.Unlock()
	}
}
