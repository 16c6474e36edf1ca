package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orbit/orbit/client"
	"github.com/orbit/orbit/internal/testserver"
)

// mustOrg creates an org through the SDK, with an admin key and, when
// fundMicros > 0, funds from an adjustment. It returns the org id and a
// client holding the key.
func mustOrg(t *testing.T, admin *client.Client, name string, fundMicros int64) (string, *client.Client) {
	t.Helper()
	ctx := context.Background()
	org, err := admin.CreateOrg(ctx, name)
	if err != nil {
		t.Fatalf("CreateOrg: %v", err)
	}
	key := mustKey(t, admin, org.ID, client.RoleAdmin)
	if fundMicros > 0 {
		if _, err := admin.Adjust(ctx, org.ID, client.AdjustmentRequest{AmountMicros: fundMicros, Reason: "test funds", Reference: "fund-" + org.ID}); err != nil {
			t.Fatalf("Adjust: %v", err)
		}
	}
	return org.ID, client.New(admin.BaseURL(), client.WithAPIKey(key))
}

func mustKey(t *testing.T, admin *client.Client, orgID, role string) string {
	t.Helper()
	k, err := admin.CreateKey(context.Background(), orgID, role)
	if err != nil {
		t.Fatalf("CreateKey(%s): %v", role, err)
	}
	return k.Key
}

// wantCode fails unless err is an API *Error with the status and code.
func wantCode(t *testing.T, err error, status int, code string) *client.Error {
	t.Helper()
	e, ok := client.AsError(err)
	if !ok {
		t.Fatalf("error %v (%T), want API error %d %s", err, err, status, code)
	}
	if e.Status != status || e.Code != code {
		t.Fatalf("error %d %s (%s), want %d %s", e.Status, e.Code, e.Message, status, code)
	}
	if !client.IsCode(err, code) {
		t.Fatalf("IsCode(%q) false for %v", code, err)
	}
	if e.RequestID == "" {
		t.Fatalf("error without request id: %v", err)
	}
	return e
}

func mustBalance(t *testing.T, c *client.Client, wantMicros int64) *client.Balance {
	t.Helper()
	b, err := c.Balance(context.Background())
	if err != nil {
		t.Fatalf("Balance: %v", err)
	}
	if b.BalanceMicros != wantMicros {
		t.Fatalf("balance %d micros, want %d", b.BalanceMicros, wantMicros)
	}
	return b
}

// TestClient runs every SDK method against one real orbitd.
func TestClient(t *testing.T) {
	s := testserver.Start(t)
	admin := client.New(s.URL, client.WithAdminToken(s.AdminToken))
	t.Run("OrgsAndKeys", func(t *testing.T) { testOrgsAndKeys(t, s, admin) })
	t.Run("ChargesRefunds", func(t *testing.T) { testChargesRefunds(t, admin) })
	t.Run("Reads", func(t *testing.T) { testReads(t, admin) })
	t.Run("Roles", func(t *testing.T) { testRoles(t, s, admin) })
	t.Run("PauseAuditCluster", func(t *testing.T) { testPauseAuditCluster(t, admin) })
	t.Run("Pagination", func(t *testing.T) { testPagination(t, admin) })
	t.Run("RetryRefundSameKey", func(t *testing.T) { testRetryRefundSameKey(t, s, admin) })
	t.Run("RetryChargeAfterLostResponse", func(t *testing.T) { testRetryChargeAfterLostResponse(t, s, admin) })
	t.Run("VoiceCall", func(t *testing.T) { testVoiceCall(t, s, admin) })
	t.Run("Reservations", func(t *testing.T) { testReservations(t, s, admin) })
	t.Run("TopUp", func(t *testing.T) { testTopUp(t, s, admin) })
	t.Run("Fx", func(t *testing.T) { testFx(t, s, admin) })
	t.Run("Grants", func(t *testing.T) { testGrants(t, admin) })
	t.Run("DefaultRates", func(t *testing.T) { testDefaultRates(t, admin) })
	t.Run("Cluster", func(t *testing.T) { testCluster(t, s, admin) })
}

func testOrgsAndKeys(t *testing.T, s *testserver.Server, admin *client.Client) {
	ctx := context.Background()
	before := time.Now().Add(-time.Minute)
	org, err := admin.CreateOrg(ctx, "Acme")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(org.ID, "org_") || org.Name != "Acme" || org.Wallet.BalanceMicros != 0 || org.Wallet.Currency != "usd" {
		t.Fatalf("created org %+v", org)
	}
	if org.CreatedAt.Before(before) || org.CreatedAt.After(time.Now().Add(time.Minute)) || org.CreatedAt.Location() != time.UTC {
		t.Fatalf("created_at %v", org.CreatedAt)
	}

	got, err := admin.GetOrg(ctx, org.ID)
	if err != nil || got.ID != org.ID || got.Name != "Acme" || !got.CreatedAt.Equal(org.CreatedAt) {
		t.Fatalf("GetOrg: %+v, %v", got, err)
	}
	all, err := admin.ListOrgs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, o := range all {
		found = found || o.ID == org.ID
	}
	if !found {
		t.Fatalf("ListOrgs lacks %s: %+v", org.ID, all)
	}

	upd, err := admin.UpdateOrg(ctx, org.ID, client.UpdateOrgRequest{Name: client.String("Acme Inc"), PauseThresholdMicros: client.Int64(1000)})
	if err != nil || upd.Name != "Acme Inc" || upd.PauseThresholdMicros != 1000 || upd.Wallet.PauseThresholdMicros != 1000 {
		t.Fatalf("UpdateOrg: %+v, %v", upd, err)
	}
	if _, err := admin.UpdateOrg(ctx, org.ID, client.UpdateOrgRequest{}); err == nil {
		t.Fatal("UpdateOrg with nothing to change succeeded")
	}
	_, err = admin.UpdateOrg(ctx, org.ID, client.UpdateOrgRequest{PauseThresholdMicros: client.Int64(-1)})
	if e := wantCode(t, err, 400, client.CodeInvalidRequest); e.Details["field"] != "pause_threshold_micros" {
		t.Fatalf("details %v", e.Details)
	}

	_, err = admin.GetOrg(ctx, "org_doesnotexist")
	wantCode(t, err, 404, client.CodeNotFound)

	readKey, err := admin.CreateKey(ctx, org.ID, client.RoleRead)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(readKey.Key, "dv_live_sk_") || readKey.Role != client.RoleRead || !strings.HasPrefix(readKey.Key, readKey.Prefix) ||
		readKey.OrgID != org.ID || !strings.HasPrefix(readKey.ID, "key_") || readKey.RevokedAt != nil {
		t.Fatalf("CreateKey: %+v", readKey)
	}
	adminKey, err := admin.CreateKey(ctx, org.ID, "")
	if err != nil || adminKey.Role != client.RoleAdmin {
		t.Fatalf("CreateKey default role: %+v, %v", adminKey, err)
	}
	_, err = admin.CreateKey(ctx, org.ID, "owner")
	if e := wantCode(t, err, 400, client.CodeInvalidRequest); e.Details["field"] != "role" {
		t.Fatalf("details %v", e.Details)
	}

	keys, err := admin.ListKeys(ctx, org.ID)
	if err != nil || len(keys) != 2 {
		t.Fatalf("ListKeys: %+v, %v", keys, err)
	}
	for _, k := range keys {
		if k.Key != "" {
			t.Fatalf("ListKeys shows a secret: %+v", k)
		}
	}

	// The key works, then is revoked and fails with 401.
	kc := client.New(s.URL, client.WithAPIKey(readKey.Key))
	if _, err := kc.Balance(ctx); err != nil {
		t.Fatalf("Balance with a fresh key: %v", err)
	}
	rev, err := admin.RevokeKey(ctx, org.ID, readKey.ID)
	if err != nil || rev.RevokedAt == nil || rev.ID != readKey.ID {
		t.Fatalf("RevokeKey: %+v, %v", rev, err)
	}
	_, err = kc.Balance(ctx)
	wantCode(t, err, 401, client.CodeUnauthenticated)
	_, err = admin.RevokeKey(ctx, org.ID, "key_doesnotexist")
	wantCode(t, err, 404, client.CodeNotFound)

	// An org key is not the admin token; no key at all is not an org key.
	_, err = client.New(s.URL, client.WithAdminToken(adminKey.Key)).ListOrgs(ctx)
	wantCode(t, err, 401, client.CodeUnauthenticated)
	_, err = client.New(s.URL).Balance(ctx)
	wantCode(t, err, 401, client.CodeUnauthenticated)
}

func testChargesRefunds(t *testing.T, admin *client.Client) {
	ctx := context.Background()
	orgID, c := mustOrg(t, admin, "Charges", 0)
	want := int64(0)

	// Adjustments: exactly once by reference.
	adj, err := admin.Adjust(ctx, orgID, client.AdjustmentRequest{AmountMicros: 10_000_000, Reason: "funds", Reference: "fund-1"})
	if err != nil {
		t.Fatal(err)
	}
	want += 10_000_000
	if adj.Replayed || adj.Transaction.Type != client.TypeAdjustment || adj.Transaction.AmountMicros != 10_000_000 ||
		adj.Balance.BalanceMicros != want || adj.Transaction.BalanceAfterMicros != want || adj.Reference != "fund-1" {
		t.Fatalf("Adjust: %+v", adj)
	}
	again, err := admin.Adjust(ctx, orgID, client.AdjustmentRequest{AmountMicros: 10_000_000, Reason: "funds", Reference: "fund-1"})
	if err != nil || !again.Replayed || again.Transaction.ID != adj.Transaction.ID {
		t.Fatalf("Adjust replay: %+v, %v", again, err)
	}
	_, err = admin.Adjust(ctx, orgID, client.AdjustmentRequest{AmountMicros: 20_000_000, Reason: "funds", Reference: "fund-1"})
	wantCode(t, err, 409, client.CodeIdempotencyConflict)
	gen, err := admin.Adjust(ctx, orgID, client.AdjustmentRequest{AmountMicros: 1_000_000, Reason: "generated reference"})
	if err != nil || gen.Reference == "" || gen.Transaction.Reference == "" {
		t.Fatalf("Adjust without reference: %+v, %v", gen, err)
	}
	want += 1_000_000
	_, err = admin.Adjust(ctx, orgID, client.AdjustmentRequest{AmountMicros: -want - 1, Reason: "too much"})
	wantCode(t, err, 402, client.CodeInsufficientFunds)
	b := mustBalance(t, c, want)
	if b.BalanceUSD.String() != "11.0000" || b.BalanceCents != 1100 || b.Credits != 1100 || b.AvailableMicros != want || b.OutboundPaused || b.OutboundBlockReason != nil || b.AsOf == "" {
		t.Fatalf("balance %+v", b)
	}

	// Charges: 201, then a replay, then a conflict.
	req := client.ChargeRequest{Reference: "c1", Channel: "sms", AmountMicros: 1_500_000, Metadata: map[string]any{"campaign": "spring", "n": 3}}
	ch, err := c.Charge(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	want -= 1_500_000
	tx := ch.Transaction
	if ch.Replayed || tx.Type != client.TypeSpend || tx.AmountMicros != -1_500_000 || tx.AmountMinor != -150 || tx.Reference != "charge:c1" ||
		tx.Channel() != "sms" || tx.Metadata["campaign"] != "spring" || tx.Metadata["n"] != json.Number("3") ||
		tx.DeliveryStatus != nil || tx.RefundedAt != nil || tx.ExpiresAt != nil || tx.CreatedAt.IsZero() ||
		ch.Balance.BalanceMicros != want || ch.RequestID == "" {
		t.Fatalf("Charge: %+v", ch)
	}
	rep, err := c.Charge(ctx, req)
	if err != nil || !rep.Replayed || rep.Transaction.ID != tx.ID || !rep.Transaction.CreatedAt.Equal(tx.CreatedAt) {
		t.Fatalf("Charge replay: %+v, %v", rep, err)
	}
	mustBalance(t, c, want)
	req.AmountMicros = 1_600_000
	_, err = c.Charge(ctx, req)
	wantCode(t, err, 409, client.CodeIdempotencyConflict)

	_, err = c.Charge(ctx, client.ChargeRequest{Reference: "big", Channel: "sms", AmountMicros: want + 1})
	e := wantCode(t, err, 402, client.CodeInsufficientFunds)
	if e.Details["available_micros"] != json.Number(fmt.Sprint(want)) {
		t.Fatalf("402 details %v", e.Details)
	}
	_, err = c.Charge(ctx, client.ChargeRequest{Reference: "rated", Channel: "sms", Usage: &client.Usage{Destination: "14155550100", Units: client.Int64(1)}})
	wantCode(t, err, 422, client.CodeNoRate)
	_, err = c.Charge(ctx, client.ChargeRequest{Reference: "bad", Channel: "SMS!", AmountMicros: 1})
	wantCode(t, err, 400, client.CodeInvalidRequest)
	if _, err := c.Charge(ctx, client.ChargeRequest{Channel: "sms", AmountMicros: 1}); err == nil || client.StatusOf(err) != 0 {
		t.Fatalf("Charge without reference: %v", err)
	}
	mustBalance(t, c, want)

	// Transaction by id.
	one, err := c.Transaction(ctx, tx.ID)
	if err != nil || one.ID != tx.ID || one.AmountMicros != tx.AmountMicros || one.Reference != tx.Reference {
		t.Fatalf("Transaction: %+v, %v", one, err)
	}
	_, err = c.Transaction(ctx, "ct_doesnotexist")
	wantCode(t, err, 404, client.CodeNotFound)

	// Delivery reports.
	d, err := c.Delivery(ctx, tx.ID, client.DeliveryDelivered)
	if err != nil || d.DeliveryStatus == nil || *d.DeliveryStatus != "delivered" {
		t.Fatalf("Delivery: %+v, %v", d, err)
	}
	if _, err := c.Delivery(ctx, tx.ID, client.DeliveryDelivered); err != nil {
		t.Fatalf("repeated delivery report: %v", err)
	}
	_, err = c.Delivery(ctx, tx.ID, client.DeliveryFailed)
	wantCode(t, err, 409, client.CodeIdempotencyConflict)
	mustBalance(t, c, want)

	// Refunds: partial with a key (replayed on repeat), then the rest with
	// a generated key.
	r1, err := c.Refund(ctx, client.RefundRequest{TransactionID: tx.ID, AmountMicros: 500_000, Reason: "partial", IdempotencyKey: "refund-key-0001"})
	if err != nil {
		t.Fatal(err)
	}
	want += 500_000
	if r1.Replayed || r1.Transaction.Type != client.TypeRefund || r1.Transaction.AmountMicros != 500_000 ||
		r1.Transaction.Reference != "refund:"+tx.ID || r1.Balance.BalanceMicros != want || r1.IdempotencyKey != "refund-key-0001" {
		t.Fatalf("Refund: %+v", r1)
	}
	r1b, err := c.Refund(ctx, client.RefundRequest{TransactionID: tx.ID, AmountMicros: 500_000, Reason: "partial", IdempotencyKey: "refund-key-0001"})
	if err != nil || !r1b.Replayed || r1b.Transaction.ID != r1.Transaction.ID {
		t.Fatalf("Refund replay: %+v, %v", r1b, err)
	}
	_, err = c.Refund(ctx, client.RefundRequest{TransactionID: tx.ID, AmountMicros: 1, Reason: "other", IdempotencyKey: "refund-key-0001"})
	wantCode(t, err, 409, client.CodeIdempotencyConflict)
	r2, err := c.Refund(ctx, client.RefundRequest{TransactionID: tx.ID})
	if err != nil {
		t.Fatal(err)
	}
	want += 1_000_000
	if r2.Transaction.AmountMicros != 1_000_000 || !strings.HasPrefix(r2.IdempotencyKey, "idem_") || r2.Replayed {
		t.Fatalf("Refund of the rest: %+v", r2)
	}
	mustBalance(t, c, want)
	spent, err := c.Transaction(ctx, tx.ID)
	if err != nil || spent.RefundedAt == nil {
		t.Fatalf("spend after full refund: %+v, %v", spent, err)
	}
	_, err = c.Refund(ctx, client.RefundRequest{TransactionID: tx.ID, AmountMicros: 1})
	wantCode(t, err, 400, client.CodeInvalidRequest)
	_, err = c.Refund(ctx, client.RefundRequest{TransactionID: adj.Transaction.ID})
	wantCode(t, err, 400, client.CodeNotRefundable)
	_, err = c.Refund(ctx, client.RefundRequest{TransactionID: "ct_doesnotexist"})
	wantCode(t, err, 404, client.CodeNotFound)

	// Batch: each decided on its own, in order.
	br, err := c.ChargeBatch(ctx, []client.ChargeRequest{
		{Reference: "b1", Channel: "sms", AmountMicros: 100_000},
		{Reference: "b1", Channel: "sms", AmountMicros: 100_000},
		{Reference: "b2", Channel: "voice", AmountMicros: 1_000_000_000},
		{Reference: "b3", Channel: "BAD", AmountMicros: 1},
		{Reference: "b4", Channel: "voice", AmountMicros: 200_000},
	})
	if err != nil {
		t.Fatal(err)
	}
	want -= 300_000
	var statuses []int
	for _, it := range br.Results {
		statuses = append(statuses, it.Status)
	}
	if fmt.Sprint(statuses) != "[201 200 402 400 201]" {
		t.Fatalf("batch statuses %v", statuses)
	}
	if br.Results[1].Transaction == nil || br.Results[1].Transaction.ID != br.Results[0].Transaction.ID || !br.Results[1].Replayed() || br.Results[0].Replayed() {
		t.Fatalf("batch repeat: %+v", br.Results[:2])
	}
	if err := br.Results[2].Err(); !client.IsCode(err, client.CodeInsufficientFunds) || client.StatusOf(err) != 402 {
		t.Fatalf("batch item 2: %v", err)
	}
	if br.Results[0].Err() != nil || br.Balance.BalanceMicros != want {
		t.Fatalf("batch: %+v", br)
	}
	mustBalance(t, c, want)

	// Usage: sms = one spend of 1.5 fully refunded plus b1; voice = b4.
	rows, err := c.UsageByChannel(ctx, 30, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Channel != "voice" || rows[0].TotalCostMicros != 200_000 || rows[0].TotalMessages != 1 ||
		rows[1].Key != "sms" || rows[1].TotalMessages != 2 || rows[1].Delivered != 1 || rows[1].TotalCostMicros != 100_000 ||
		rows[1].TotalCostMinor != 10 || rows[1].TotalCost.String() != "0.1000" {
		t.Fatalf("usage %+v", rows)
	}
	grouped, err := c.UsageByChannel(ctx, 1, "destination")
	if err != nil || len(grouped) != 2 || grouped[0].Key != "voice:-" || grouped[1].Key != "sms:-" {
		t.Fatalf("usage by destination %+v, %v", grouped, err)
	}
	_, err = c.UsageByChannel(ctx, 400, "")
	wantCode(t, err, 400, client.CodeInvalidRequest)
}

func testReads(t *testing.T, admin *client.Client) {
	ctx := context.Background()
	_, c := mustOrg(t, admin, "Reads", 2_000_000)
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.BillingModel != "payg" || !st.CanManage || st.Wallet.BalanceMicros != 2_000_000 || st.OutboundPaused || st.OutboundBlockReason != nil || st.LastTopup != nil {
		t.Fatalf("status %+v", st)
	}
	inv, err := c.Invoices(ctx)
	if err != nil || len(inv) != 0 {
		t.Fatalf("Invoices: %+v, %v", inv, err)
	}
	rates, err := c.Rates(ctx)
	if err != nil || rates.Channels == nil {
		t.Fatalf("Rates: %+v, %v", rates, err)
	}
	rows, err := c.UsageByChannel(ctx, 0, "")
	if err != nil || len(rows) != 0 {
		t.Fatalf("usage of an org without spends: %+v, %v", rows, err)
	}
}

func testRoles(t *testing.T, s *testserver.Server, admin *client.Client) {
	ctx := context.Background()
	orgID, _ := mustOrg(t, admin, "Roles", 1_000_000)
	read := client.New(s.URL, client.WithAPIKey(mustKey(t, admin, orgID, client.RoleRead)))
	charge := client.New(s.URL, client.WithAPIKey(mustKey(t, admin, orgID, client.RoleCharge)))

	if _, err := read.Balance(ctx); err != nil {
		t.Fatalf("read key Balance: %v", err)
	}
	if _, err := read.Transactions(ctx, nil); err != nil {
		t.Fatalf("read key Transactions: %v", err)
	}
	_, err := read.Charge(ctx, client.ChargeRequest{Reference: "r1", Channel: "sms", AmountMicros: 1})
	wantCode(t, err, 403, client.CodeForbidden)

	ch, err := charge.Charge(ctx, client.ChargeRequest{Reference: "r1", Channel: "sms", AmountMicros: 1})
	if err != nil {
		t.Fatalf("charge key Charge: %v", err)
	}
	_, err = charge.Transactions(ctx, nil)
	wantCode(t, err, 403, client.CodeForbidden)
	_, err = charge.Refund(ctx, client.RefundRequest{TransactionID: ch.Transaction.ID})
	wantCode(t, err, 403, client.CodeForbidden)

	// Another org's transaction is not found.
	_, other := mustOrg(t, admin, "Other", 0)
	_, err = other.Transaction(ctx, ch.Transaction.ID)
	wantCode(t, err, 404, client.CodeNotFound)
}

func testPauseAuditCluster(t *testing.T, admin *client.Client) {
	ctx := context.Background()
	orgID, c := mustOrg(t, admin, "Paused", 5_000_000)
	o, err := admin.Pause(ctx, orgID, "fraud review")
	if err != nil {
		t.Fatal(err)
	}
	w := o.Wallet
	if !w.OutboundPaused || w.OutboundBlockReason == nil || *w.OutboundBlockReason != client.BlockOperatorHold ||
		w.OutboundBlockDetails == nil || *w.OutboundBlockDetails != "fraud review" {
		t.Fatalf("paused wallet %+v", w)
	}
	_, err = c.Charge(ctx, client.ChargeRequest{Reference: "p1", Channel: "sms", AmountMicros: 1})
	e := wantCode(t, err, 403, client.CodeOutboundPaused)
	if e.Details["outbound_block_reason"] != client.BlockOperatorHold {
		t.Fatalf("details %v", e.Details)
	}
	if o, err = admin.Unpause(ctx, orgID); err != nil || o.Wallet.OutboundPaused {
		t.Fatalf("Unpause: %+v, %v", o, err)
	}
	if _, err := c.Charge(ctx, client.ChargeRequest{Reference: "p1", Channel: "sms", AmountMicros: 1}); err != nil {
		t.Fatalf("charge after unpause: %v", err)
	}
	_, err = admin.Pause(ctx, "org_doesnotexist", "")
	wantCode(t, err, 404, client.CodeNotFound)

	a, err := admin.Audit(ctx)
	if err != nil || a.OrgsChecked < 1 || len(a.Mismatches) != 0 {
		t.Fatalf("Audit: %+v, %v", a, err)
	}
	ci, err := admin.Cluster(ctx)
	if err != nil || ci.Leader == nil || *ci.Leader != ci.NodeID || len(ci.Nodes) != 1 || ci.AppliedIndex == 0 || ci.Term == 0 || ci.Digest == "" {
		t.Fatalf("Cluster: %+v, %v", ci, err)
	}
}

func testPagination(t *testing.T, admin *client.Client) {
	ctx := context.Background()
	_, c := mustOrg(t, admin, "Pages", 100_000_000)
	const n = 57
	reqs := make([]client.ChargeRequest, n)
	for i := range reqs {
		reqs[i] = client.ChargeRequest{Reference: fmt.Sprintf("page-%03d", i), Channel: "sms", AmountMicros: 1000}
		if i%3 == 0 {
			reqs[i].Channel = "voice"
		}
	}
	br, err := c.ChargeBatch(ctx, reqs)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range br.Results {
		if it.Status != 201 {
			t.Fatalf("batch item %+v", it)
		}
	}
	first, err := c.Transactions(ctx, &client.TransactionsQuery{Limit: 100})
	if err != nil || len(first.Transactions) != n+1 || first.HasMore || first.NextCursor != nil {
		t.Fatalf("one page of everything: %d items, has_more %v, %v", len(first.Transactions), first.HasMore, err)
	}

	// Walk in pages of 10 while new entries arrive after the first page:
	// every original entry is seen exactly once, newest first.
	seen := map[string]int{}
	var order []client.Transaction
	i := 0
	for tx, err := range c.AllTransactions(ctx, &client.TransactionsQuery{Limit: 10}) {
		if err != nil {
			t.Fatal(err)
		}
		seen[tx.ID]++
		order = append(order, tx)
		if i == 0 {
			for j := 0; j < 3; j++ {
				if _, err := c.Charge(ctx, client.ChargeRequest{Reference: fmt.Sprintf("late-%d", j), Channel: "sms", AmountMicros: 1}); err != nil {
					t.Fatal(err)
				}
			}
		}
		i++
	}
	if len(order) != n+1 || len(seen) != n+1 {
		t.Fatalf("iterator saw %d entries (%d distinct), want %d", len(order), len(seen), n+1)
	}
	for _, tx := range first.Transactions {
		if seen[tx.ID] != 1 {
			t.Fatalf("entry %s seen %d times", tx.ID, seen[tx.ID])
		}
	}
	for k := 1; k < len(order); k++ {
		a, b := order[k-1], order[k]
		if a.CreatedAt.Before(b.CreatedAt) || (a.CreatedAt.Equal(b.CreatedAt) && a.ID <= b.ID) {
			t.Fatalf("not newest first at %d: %s %v then %s %v", k, a.ID, a.CreatedAt, b.ID, b.CreatedAt)
		}
	}

	count := func(q *client.TransactionsQuery) int {
		t.Helper()
		k := 0
		for _, err := range c.AllTransactions(ctx, q) {
			if err != nil {
				t.Fatal(err)
			}
			k++
		}
		return k
	}
	if got := count(&client.TransactionsQuery{Limit: 7, Type: client.TypeSpend}); got != n+3 {
		t.Fatalf("spends: %d, want %d", got, n+3)
	}
	if got := count(&client.TransactionsQuery{Limit: 7, Channel: "voice"}); got != (n+2)/3 {
		t.Fatalf("voice: %d, want %d", got, (n+2)/3)
	}
	if got := count(&client.TransactionsQuery{Limit: 7, Type: client.TypeAdjustment}); got != 1 {
		t.Fatalf("adjustments: %d, want 1", got)
	}
	if got := count(&client.TransactionsQuery{From: time.Now().Add(time.Hour)}); got != 0 {
		t.Fatalf("entries from the future: %d", got)
	}
	if got := count(&client.TransactionsQuery{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour)}); got != n+4 {
		t.Fatalf("entries of the last hour: %d, want %d", got, n+4)
	}

	// Breaking out of the loop stops the walk.
	k := 0
	for range c.AllTransactions(ctx, &client.TransactionsQuery{Limit: 5}) {
		if k++; k == 12 {
			break
		}
	}
	if k != 12 {
		t.Fatalf("break: %d", k)
	}

	_, err = c.Transactions(ctx, &client.TransactionsQuery{Limit: 101})
	wantCode(t, err, 400, client.CodeInvalidRequest)
	var gotErr error
	for _, err := range c.AllTransactions(ctx, &client.TransactionsQuery{Type: "nonsense"}) {
		gotErr = err
	}
	wantCode(t, gotErr, 400, client.CodeInvalidRequest)
}

// flaky is an httptest server in front of the real one: fail decides, for
// each request (counted from 1), whether to answer it itself.
type flaky struct {
	mu       sync.Mutex
	n        int
	keys     []string
	upstream *httputil.ReverseProxy
	fail     func(n int, w http.ResponseWriter, r *http.Request) bool
}

func newFlaky(t *testing.T, upstreamURL string, fail func(n int, w http.ResponseWriter, r *http.Request) bool) (*flaky, *httptest.Server) {
	u, err := url.Parse(upstreamURL)
	if err != nil {
		t.Fatal(err)
	}
	f := &flaky{upstream: httputil.NewSingleHostReverseProxy(u), fail: fail}
	ts := httptest.NewServer(f)
	t.Cleanup(ts.Close)
	return f, ts
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.n++
	n := f.n
	f.keys = append(f.keys, r.Header.Get("Idempotency-Key"))
	f.mu.Unlock()
	if f.fail(n, w, r) {
		return
	}
	f.upstream.ServeHTTP(w, r)
}

func (f *flaky) seen() (int, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n, append([]string(nil), f.keys...)
}

func unavailable(w http.ResponseWriter, retryAfter string) {
	w.Header().Set("Content-Type", "application/json")
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.WriteHeader(503)
	io.WriteString(w, `{"error":{"code":"unavailable","message":"no leader"},"meta":{"request_id":"req_flaky","timestamp":"2026-05-16T12:00:00.000Z"}}`)
}

// A refund answered 503 on its first attempt is retried with the same
// generated Idempotency-Key and takes effect once.
func testRetryRefundSameKey(t *testing.T, s *testserver.Server, admin *client.Client) {
	ctx := context.Background()
	orgID, c := mustOrg(t, admin, "RetryRefund", 1_000_000)
	ch, err := c.Charge(ctx, client.ChargeRequest{Reference: "to-refund", Channel: "sms", AmountMicros: 300_000})
	if err != nil {
		t.Fatal(err)
	}
	f, ts := newFlaky(t, s.URL, func(n int, w http.ResponseWriter, r *http.Request) bool {
		if n == 1 {
			unavailable(w, "0")
			return true
		}
		return false
	})
	key := mustKey(t, admin, orgID, client.RoleAdmin)
	rc := client.New(ts.URL, client.WithAPIKey(key), client.WithBackoff(5*time.Millisecond, 20*time.Millisecond))
	res, err := rc.Refund(ctx, client.RefundRequest{TransactionID: ch.Transaction.ID, AmountMicros: 100_000})
	if err != nil {
		t.Fatalf("Refund through a flaky proxy: %v", err)
	}
	n, keys := f.seen()
	if n != 2 || keys[0] == "" || keys[0] != keys[1] || keys[0] != res.IdempotencyKey {
		t.Fatalf("attempts %d with Idempotency-Keys %q (result's %q)", n, keys, res.IdempotencyKey)
	}
	if res.Replayed || res.Transaction.AmountMicros != 100_000 {
		t.Fatalf("Refund: %+v", res)
	}
	mustBalance(t, c, 800_000)
}

// A charge whose response is lost after the server applied it is retried
// with the same reference: the server replays it, nothing is charged twice.
func testRetryChargeAfterLostResponse(t *testing.T, s *testserver.Server, admin *client.Client) {
	ctx := context.Background()
	orgID, c := mustOrg(t, admin, "RetryCharge", 1_000_000)
	apiKey := mustKey(t, admin, orgID, client.RoleAdmin)
	f, ts := newFlaky(t, s.URL, func(n int, w http.ResponseWriter, r *http.Request) bool {
		if n != 1 {
			return false
		}
		// Forward the charge, then drop the connection without an answer.
		body, _ := io.ReadAll(r.Body)
		req, _ := http.NewRequest(r.Method, s.URL+r.URL.Path, strings.NewReader(string(body)))
		req.Header = r.Header.Clone()
		if resp, err := http.DefaultClient.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
		return true
	})
	rc := client.New(ts.URL, client.WithAPIKey(apiKey), client.WithBackoff(5*time.Millisecond, 20*time.Millisecond))
	res, err := rc.Charge(ctx, client.ChargeRequest{Reference: "lost-answer", Channel: "sms", AmountMicros: 250_000})
	if err != nil {
		t.Fatalf("Charge through a connection-dropping proxy: %v", err)
	}
	if n, _ := f.seen(); n != 2 {
		t.Fatalf("attempts %d, want 2", n)
	}
	if !res.Replayed || res.Balance.BalanceMicros != 750_000 {
		t.Fatalf("retried charge: replayed %v, balance %d", res.Replayed, res.Balance.BalanceMicros)
	}
	mustBalance(t, c, 750_000)
}

// counting is a stand-alone httptest server that answers with h and counts
// requests.
func counting(t *testing.T, h func(n int, w http.ResponseWriter, r *http.Request)) (*atomic.Int64, string) {
	var n atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h(int(n.Add(1)), w, r)
	}))
	t.Cleanup(ts.Close)
	return &n, ts.URL
}

func okBalance(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"data":{"balance_usd":1.5000,"balance_cents":150,"credits":150,"outbound_paused":false,"outbound_block_reason":null,"balance_micros":1500000,"reserved_micros":0,"available_micros":1500000,"currency":"usd","outbound_block_details":null,"pause_threshold_micros":0,"as_of":"0:7"},"meta":{"request_id":"req_ok","timestamp":"2026-05-16T12:00:00.000Z"}}`)
}

func TestNoRetryWhenNotIdempotent(t *testing.T) {
	n, u := counting(t, func(_ int, w http.ResponseWriter, _ *http.Request) { unavailable(w, "0") })
	c := client.New(u, client.WithAdminToken("tok"), client.WithAPIKey("dv_live_sk_x"), client.WithRetries(2), client.WithBackoff(time.Millisecond, 2*time.Millisecond))
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"CreateOrg": func() error { _, err := c.CreateOrg(ctx, "x"); return err },
		"CreateKey": func() error { _, err := c.CreateKey(ctx, "org_x", ""); return err },
		"UpdateOrg": func() error {
			_, err := c.UpdateOrg(ctx, "org_x", client.UpdateOrgRequest{Name: client.String("y")})
			return err
		},
		"RevokeKey":     func() error { _, err := c.RevokeKey(ctx, "org_x", "key_x"); return err },
		"Pause":         func() error { _, err := c.Pause(ctx, "org_x", ""); return err },
		"Unpause":       func() error { _, err := c.Unpause(ctx, "org_x"); return err },
		"ClusterRemove": func() error { _, err := c.ClusterRemove(ctx, "node9"); return err },
	} {
		before := n.Load()
		err := call()
		wantCode(t, err, 503, client.CodeUnavailable)
		if got := n.Load() - before; got != 1 {
			t.Fatalf("%s: %d attempts, want 1", name, got)
		}
	}
	// Retry-safe calls use every retry, then report the last 503.
	for name, call := range map[string]func() error{
		"Balance": func() error { _, err := c.Balance(ctx); return err },
		"Charge": func() error {
			_, err := c.Charge(ctx, client.ChargeRequest{Reference: "r", Channel: "sms", AmountMicros: 1})
			return err
		},
		"Adjust": func() error {
			_, err := c.Adjust(ctx, "org_x", client.AdjustmentRequest{AmountMicros: 1, Reason: "r"})
			return err
		},
		"Refund":   func() error { _, err := c.Refund(ctx, client.RefundRequest{TransactionID: "ct_x"}); return err },
		"Delivery": func() error { _, err := c.Delivery(ctx, "ct_x", client.DeliveryFailed); return err },
		"ListOrgs": func() error { _, err := c.ListOrgs(ctx); return err },
		"Credits":  func() error { _, err := c.Credits(ctx); return err },
		"TopUp": func() error {
			_, err := c.TopUp(ctx, client.TopUpRequest{Amount: 1000, SuccessURL: "https://x/ok", CancelURL: "https://x/no"})
			return err
		},
		"PurchaseCredits": func() error {
			_, err := c.PurchaseCredits(ctx, client.TopUpRequest{Amount: 1000, SuccessURL: "https://x/ok", CancelURL: "https://x/no"})
			return err
		},
		"CreateReservation": func() error {
			_, err := c.CreateReservation(ctx, client.ReservationRequest{Reference: "r", Channel: "voice", AmountMicros: 1})
			return err
		},
		"Reservation": func() error { _, err := c.Reservation(ctx, "rsv_x"); return err },
		"ExtendReservation": func() error {
			_, err := c.ExtendReservation(ctx, "rsv_x", client.ExtendRequest{AmountMicros: 1})
			return err
		},
		"CommitReservation": func() error {
			_, err := c.CommitReservation(ctx, "rsv_x", client.CommitRequest{AmountMicros: 1})
			return err
		},
		"ReleaseReservation": func() error { _, err := c.ReleaseReservation(ctx, "rsv_x"); return err },
		"Grant": func() error {
			_, err := c.Grant(ctx, "org_x", client.GrantRequest{AmountMicros: 1, ExpiresAt: time.Now().Add(time.Hour)})
			return err
		},
		"SetRates":    func() error { _, err := c.SetRates(ctx, client.RateCard{}); return err },
		"SetOrgRates": func() error { _, err := c.SetOrgRates(ctx, "org_x", client.RateCard{}); return err },
		"FxRates":     func() error { _, err := c.FxRates(ctx); return err },
		"SetFxRates":  func() error { _, err := c.SetFxRates(ctx, client.FxRates{"eur": 1}); return err },
		"ClusterJoin": func() error {
			_, err := c.ClusterJoin(ctx, client.ClusterJoinRequest{NodeID: "n", RaftAddr: "h:1", HTTPAddr: "h:2"})
			return err
		},
	} {
		before := n.Load()
		err := call()
		wantCode(t, err, 503, client.CodeUnavailable)
		if got := n.Load() - before; got != 3 {
			t.Fatalf("%s: %d attempts, want 3", name, got)
		}
	}
}

func TestRetryHonoursRetryAfter(t *testing.T) {
	n, u := counting(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(429)
			io.WriteString(w, `{"error":{"code":"rate_limited","message":"slow down"},"meta":{"request_id":"req_429","timestamp":"2026-05-16T12:00:00.000Z"}}`)
			return
		}
		okBalance(w)
	})
	c := client.New(u, client.WithAPIKey("dv_live_sk_x"), client.WithBackoff(time.Millisecond, time.Millisecond))
	start := time.Now()
	b, err := c.Balance(context.Background())
	if err != nil || b.BalanceMicros != 1_500_000 || b.BalanceUSD.String() != "1.5000" {
		t.Fatalf("Balance: %+v, %v", b, err)
	}
	if el := time.Since(start); el < 900*time.Millisecond {
		t.Fatalf("retried after %v, want Retry-After's 1s", el)
	}
	if n.Load() != 2 {
		t.Fatalf("attempts %d", n.Load())
	}

	// A Retry-After beyond the call's deadline is not waited for.
	_, u2 := counting(t, func(_ int, w http.ResponseWriter, _ *http.Request) { unavailable(w, "30") })
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = client.New(u2).Balance(ctx)
	wantCode(t, err, 503, client.CodeUnavailable)
	if el := time.Since(start); el > 250*time.Millisecond {
		t.Fatalf("gave up after %v", el)
	}
}

func TestRetryTransportError(t *testing.T) {
	n, u := counting(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		okBalance(w)
	})
	c := client.New(u, client.WithAPIKey("dv_live_sk_x"), client.WithBackoff(time.Millisecond, 5*time.Millisecond))
	if _, err := c.Balance(context.Background()); err != nil {
		t.Fatalf("Balance after a dropped connection: %v", err)
	}
	if n.Load() < 2 {
		t.Fatalf("attempts %d", n.Load())
	}
	// With retries off the transport error is returned, not an *Error.
	// (A fresh transport: net/http itself retries a GET on a reused
	// keep-alive connection that closes.)
	n.Store(0)
	fresh := &http.Client{Transport: &http.Transport{}}
	_, err := client.New(u, client.WithRetries(0), client.WithHTTPClient(fresh)).Balance(context.Background())
	if err == nil || client.StatusOf(err) != 0 {
		t.Fatalf("want a transport error, got %v", err)
	}
}

func TestDeadlines(t *testing.T) {
	_, u := counting(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := client.New(u).Balance(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("context deadline: %v after %v", err, time.Since(start))
	}
	// Without a deadline on the context the client's default applies.
	start = time.Now()
	_, err = client.New(u, client.WithTimeout(100*time.Millisecond)).Balance(context.Background())
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("default timeout: %v after %v", err, time.Since(start))
	}
}

func TestUnexpectedResponseAndRequestID(t *testing.T) {
	_, u := counting(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/billing/balance" {
			w.WriteHeader(502)
			io.WriteString(w, "<html>bad gateway</html>")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(404)
		fmt.Fprintf(w, `{"error":{"code":"not_found","message":"org not found"},"meta":{"request_id":%q,"timestamp":"2026-05-16T12:00:00.000Z"}}`, r.Header.Get("X-Request-Id"))
	})
	c := client.New(u+"/", client.WithRetries(0))
	_, err := c.Balance(context.Background())
	e, ok := client.AsError(err)
	if !ok || e.Status != 502 || e.Code != client.CodeUnexpectedResponse || !strings.Contains(e.Message, "bad gateway") {
		t.Fatalf("502: %v", err)
	}
	_, err = c.GetOrg(client.WithRequestID(context.Background(), "req_mine_1"), "org_x")
	e = wantCode(t, err, 404, client.CodeNotFound)
	if e.RequestID != "req_mine_1" || !strings.Contains(e.Error(), "404 not_found: org not found (request req_mine_1)") {
		t.Fatalf("error %q, request id %q", e.Error(), e.RequestID)
	}
}
