package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orbit/orbit/internal/testserver"
)

// num reads a JSON number field as int64.
func num(t testing.TB, m map[string]any, key string) int64 {
	t.Helper()
	v, ok := m[key].(float64)
	if !ok {
		t.Fatalf("field %q is %T (%v), want a number", key, m[key], m[key])
	}
	return int64(v)
}

func obj(t testing.TB, m map[string]any, key string) map[string]any {
	t.Helper()
	v, ok := m[key].(map[string]any)
	if !ok {
		t.Fatalf("field %q is %T, want an object", key, m[key])
	}
	return v
}

func chargeBody(ref string, amount int64) map[string]any {
	return map[string]any{"reference": ref, "channel": "sms", "amount_micros": amount}
}

func TestSeedBalanceShape(t *testing.T) {
	s := testserver.Start(t)
	org := s.MustOrg(t, "Seed", 150_000_000)
	for _, path := range []string{"/api/v1/billing/balance", "/api/v1/billing/credits"} {
		r := s.Key(org.Key).With("X-Request-Id", "req_balance_001").Do("GET", path, nil).Expect(t, 200)
		d := r.Data()
		if d["balance_usd"].(float64) != 150.0 || num(t, d, "balance_cents") != 15000 || num(t, d, "credits") != 15000 {
			t.Fatalf("balance fields: %s", r.Body)
		}
		if d["outbound_paused"] != false || d["outbound_block_reason"] != nil {
			t.Fatalf("pause fields: %s", r.Body)
		}
		if !strings.Contains(string(r.Body), `"balance_usd":150.0000`) {
			t.Fatalf("balance_usd not written with 4 decimals: %s", r.Body)
		}
		meta := obj(t, r.JSON, "meta")
		if meta["request_id"] != "req_balance_001" {
			t.Fatalf("request id not echoed: %v", meta)
		}
		if _, err := time.Parse("2006-01-02T15:04:05.000Z", meta["timestamp"].(string)); err != nil {
			t.Fatalf("meta.timestamp %v: %v", meta["timestamp"], err)
		}
		if r.Header.Get("X-Request-Id") != "req_balance_001" {
			t.Fatal("X-Request-Id header not echoed")
		}
	}
	// Authorization: Bearer works as well as X-API-Key.
	s.Anon().With("Authorization", "Bearer "+org.Key).Do("GET", "/api/v1/billing/balance", nil).Expect(t, 200)
}

func TestSeedTopupThroughDevCheckout(t *testing.T) {
	s := testserver.Start(t)
	org := s.MustOrg(t, "Topup", 0)
	c := s.Key(org.Key).With("Idempotency-Key", "topup-key-0001")
	body := map[string]any{"amount": 10000, "currency": "usd",
		"successUrl": "https://orbit.devotel.io/billing?topup=ok", "cancelUrl": "https://orbit.devotel.io/billing?topup=cancelled"}
	for _, path := range []string{"/api/v1/billing/balance/top-up"} {
		first := c.Do("POST", path, body).Expect(t, 201).Data()
		url, _ := first["checkoutUrl"].(string)
		if !strings.HasPrefix(url, s.URL+"/dev/checkout/tu_") {
			t.Fatalf("checkoutUrl %q", url)
		}
		// Same key and body: the original checkoutUrl again, no new top-up.
		again := c.Do("POST", path, body).Expect(t, 200)
		if again.Data()["checkoutUrl"] != url || again.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replay: %s", again.Body)
		}
		// Same key, other body: 409.
		other := map[string]any{"amount": 20000, "currency": "usd", "successUrl": body["successUrl"], "cancelUrl": body["cancelUrl"]}
		if r := c.Do("POST", path, other); r.Status != 409 || r.ErrorCode() != "idempotency_conflict" {
			t.Fatalf("conflict: %d %s", r.Status, r.Body)
		}
		// The alias is the same route.
		if r := c.Do("POST", "/api/v1/billing/credits/purchase", body).Expect(t, 200); r.Data()["checkoutUrl"] != url {
			t.Fatal("alias answered another top-up")
		}
		// The checkout page, then Pay, twice: credited once.
		page, err := http.Get(url)
		if err != nil || page.StatusCode != 200 {
			t.Fatalf("checkout page: %v %v", err, page)
		}
		page.Body.Close()
		noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		for i := 0; i < 2; i++ {
			resp, err := noRedirect.Post(url+"/pay", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 303 || resp.Header.Get("Location") != body["successUrl"] {
				t.Fatalf("pay: %d %q", resp.StatusCode, resp.Header.Get("Location"))
			}
		}
	}
	// Currency codes are case-insensitive.
	upper := s.Key(org.Key).With("Idempotency-Key", "topup-upper-1").Do("POST", "/api/v1/billing/balance/top-up",
		map[string]any{"amount": 1000, "currency": "USD", "successUrl": body["successUrl"], "cancelUrl": body["cancelUrl"]}).Expect(t, 201)
	if upper.Data()["currency"] != "usd" {
		t.Fatalf("currency USD stored as %v", upper.Data()["currency"])
	}
	bal := s.Key(org.Key).Do("GET", "/api/v1/billing/balance", nil).Expect(t, 200).Data()
	if num(t, bal, "balance_cents") != 10000 || num(t, bal, "balance_micros") != 100_000_000 {
		t.Fatalf("balance after top-up: %v", bal)
	}
	txs := s.Key(org.Key).Do("GET", "/api/v1/billing/transactions", nil).Expect(t, 200).Data()["transactions"].([]any)
	if len(txs) != 1 {
		t.Fatalf("%d transactions, want exactly one top-up", len(txs))
	}
	tx := txs[0].(map[string]any)
	md := obj(t, tx, "metadata")
	if tx["type"] != "topup" || num(t, tx, "amount_minor") != 10000 || !strings.HasPrefix(tx["reference"].(string), "dev_session:tu_") ||
		md["currency"] != "usd" || md["fx_rate"] != 1.0 {
		t.Fatalf("top-up entry: %v", tx)
	}
	invs := s.Key(org.Key).Do("GET", "/api/v1/billing/invoices", nil).Expect(t, 200).JSON["data"].([]any)
	if len(invs) != 1 {
		t.Fatalf("invoices: %v", invs)
	}
	inv := invs[0].(map[string]any)
	if num(t, inv, "amount") != 10000 || inv["currency"] != "usd" || inv["status"] != "paid" || !strings.HasPrefix(inv["number"].(string), "INV-") {
		t.Fatalf("invoice: %v", inv)
	}
	resp, err := http.Get(inv["pdf_url"].(string))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("receipt page: %v %v", err, resp)
	}
	resp.Body.Close()
}

func TestChargeReplayConflictAndInsufficientFunds(t *testing.T) {
	s := testserver.Start(t)
	org := s.MustOrg(t, "Charges", 10_000)
	c := s.Key(org.Key)
	body := map[string]any{"reference": "sms_msg_01J9KP3R5W8YEQ4DXG6N7H2VKZ", "channel": "sms", "amount_micros": 4200, "metadata": map[string]any{"campaign": "spring"}}
	first := c.Do("POST", "/api/v1/billing/charges", body).Expect(t, 201).Data()
	tx := obj(t, first, "transaction")
	if tx["type"] != "spend" || num(t, tx, "amount_micros") != -4200 || num(t, tx, "amount_minor") != 0 ||
		tx["reference"] != "charge:sms_msg_01J9KP3R5W8YEQ4DXG6N7H2VKZ" || obj(t, tx, "metadata")["channel"] != "sms" {
		t.Fatalf("spend entry: %v", tx)
	}
	if num(t, obj(t, first, "balance"), "balance_micros") != 5800 {
		t.Fatalf("balance after charge: %v", first["balance"])
	}
	// Same body, reordered keys: a replay of the same transaction.
	re := c.Do("POST", "/api/v1/billing/charges", `{"channel":"sms","metadata":{"campaign":"spring"},"amount_micros":4200,"reference":"sms_msg_01J9KP3R5W8YEQ4DXG6N7H2VKZ"}`).Expect(t, 200)
	if re.Header.Get("Idempotent-Replayed") != "true" || obj(t, re.Data(), "transaction")["id"] != tx["id"] {
		t.Fatalf("replay: %s", re.Body)
	}
	body["amount_micros"] = 4300
	if r := c.Do("POST", "/api/v1/billing/charges", body); r.Status != 409 || r.ErrorCode() != "idempotency_conflict" {
		t.Fatalf("conflict: %d %s", r.Status, r.Body)
	}
	// 402: nothing written, and the pause shows once funds are at the threshold.
	if r := c.Do("POST", "/api/v1/billing/charges", chargeBody("too-big", 5801)); r.Status != 402 || r.ErrorCode() != "insufficient_funds" {
		t.Fatalf("overdraft: %d %s", r.Status, r.Body)
	}
	c.Do("POST", "/api/v1/billing/charges", chargeBody("all-of-it", 5800)).Expect(t, 201)
	bal := c.Do("GET", "/api/v1/billing/balance", nil).Expect(t, 200).Data()
	if num(t, bal, "balance_micros") != 0 || bal["outbound_paused"] != true || bal["outbound_block_reason"] != "insufficient_balance" {
		t.Fatalf("empty wallet: %v", bal)
	}
	if r := c.Do("POST", "/api/v1/billing/charges", chargeBody("after-empty", 1)); r.Status != 402 {
		t.Fatalf("charge on empty wallet: %d", r.Status)
	}
	txs := c.Do("GET", "/api/v1/billing/transactions?limit=100", nil).Expect(t, 200).Data()["transactions"].([]any)
	if len(txs) != 3 { // funding + two spends; refusals leave no trace
		t.Fatalf("%d transactions after refusals, want 3", len(txs))
	}
	// A refused reference is a new attempt once funds arrive; a credit clears the pause.
	s.Admin().Do("POST", "/admin/v1/orgs/"+org.ID+"/adjustments", map[string]any{"amount_micros": 1000, "reason": "top", "reference": "credit-2"}).Expect(t, 201)
	bal = c.Do("GET", "/api/v1/billing/balance", nil).Expect(t, 200).Data()
	if bal["outbound_paused"] != false {
		t.Fatalf("credit did not clear the pause: %v", bal)
	}
	c.Do("POST", "/api/v1/billing/charges", chargeBody("too-big", 1000)).Expect(t, 201)
}

func TestOperatorPauseAndThreshold(t *testing.T) {
	s := testserver.Start(t)
	org := s.MustOrg(t, "Pause", 1_000_000)
	a, c := s.Admin(), s.Key(org.Key)
	a.Do("POST", "/admin/v1/orgs/"+org.ID+"/pause", map[string]any{"reason": "fraud review"}).Expect(t, 200)
	r := c.Do("POST", "/api/v1/billing/charges", chargeBody("p1", 10))
	if r.Status != 403 || r.ErrorCode() != "outbound_paused" {
		t.Fatalf("paused charge: %d %s", r.Status, r.Body)
	}
	bal := c.Do("GET", "/api/v1/billing/balance", nil).Data()
	if bal["outbound_block_reason"] != "operator_hold" || bal["outbound_block_details"] != "fraud review" {
		t.Fatalf("pause state: %v", bal)
	}
	a.Do("POST", "/admin/v1/orgs/"+org.ID+"/unpause", nil).Expect(t, 200)
	c.Do("POST", "/api/v1/billing/charges", chargeBody("p1", 10)).Expect(t, 201)
	// Threshold: charges must leave available above it.
	a.Do("PATCH", "/admin/v1/orgs/"+org.ID, map[string]any{"pause_threshold_micros": 999_000}).Expect(t, 200)
	if r := c.Do("POST", "/api/v1/billing/charges", chargeBody("p2", 991)); r.Status != 402 {
		t.Fatalf("charge below threshold: %d", r.Status)
	}
	c.Do("POST", "/api/v1/billing/charges", chargeBody("p3", 990)).Expect(t, 201)
	if bal := c.Do("GET", "/api/v1/billing/balance", nil).Data(); bal["outbound_block_reason"] != "insufficient_balance" {
		t.Fatalf("at threshold: %v", bal)
	}
}

func TestBatchMixedOutcomes(t *testing.T) {
	s := testserver.Start(t)
	org := s.MustOrg(t, "Batch", 10_000)
	c := s.Key(org.Key)
	c.Do("POST", "/api/v1/billing/charges", chargeBody("existing", 1000)).Expect(t, 201)
	batch := map[string]any{"charges": []any{
		chargeBody("b1", 3000),            // 201
		chargeBody("existing", 1000),      // 200 replay of an earlier request
		chargeBody("b2", 7000),            // 402: 6000 left
		map[string]any{"reference": "b3"}, // 400: no channel
		chargeBody("b1", 3000),            // 200: retry of item 0
		chargeBody("b1", 3001),            // 409: same reference, other body
		chargeBody("b4", 6000),            // 201: exactly what is left
	}}
	d := c.Do("POST", "/api/v1/billing/charges/batch", batch).Expect(t, 200).Data()
	want := []int64{201, 200, 402, 400, 200, 409, 201}
	results := d["results"].([]any)
	if len(results) != len(want) {
		t.Fatalf("%d results", len(results))
	}
	var b1 any
	for i, r := range results {
		m := r.(map[string]any)
		if num(t, m, "index") != int64(i) || num(t, m, "status") != want[i] {
			t.Fatalf("item %d: %v, want status %d", i, m, want[i])
		}
		if i == 0 {
			b1 = obj(t, m, "transaction")["id"]
		}
		if i == 4 && obj(t, m, "transaction")["id"] != b1 {
			t.Fatal("in-batch retry answered with another transaction")
		}
	}
	if num(t, obj(t, d, "balance"), "balance_micros") != 0 {
		t.Fatalf("balance after batch: %v", d["balance"])
	}
}

func TestRefundsOfSpends(t *testing.T) {
	s := testserver.Start(t)
	org := s.MustOrg(t, "Refunds", 100_000)
	c := s.Key(org.Key)
	spend := obj(t, c.Do("POST", "/api/v1/billing/charges", chargeBody("r1", 10_000)).Expect(t, 201).Data(), "transaction")
	id := spend["id"].(string)
	refund := func(key string, body map[string]any) *testserver.Response {
		return c.With("Idempotency-Key", key).Do("POST", "/api/v1/billing/refunds", body)
	}
	part := refund("refund-key-1", map[string]any{"transaction_id": id, "amount_micros": 4000, "reason": "failed send"}).Expect(t, 201).Data()
	rt := obj(t, part, "transaction")
	if rt["type"] != "refund" || num(t, rt, "amount_micros") != 4000 || rt["reference"] != "refund:"+id {
		t.Fatalf("refund entry: %v", rt)
	}
	// Retry with the same key: replayed, not refunded twice.
	again := refund("refund-key-1", map[string]any{"transaction_id": id, "amount_micros": 4000, "reason": "failed send"}).Expect(t, 200)
	if obj(t, again.Data(), "transaction")["id"] != rt["id"] {
		t.Fatal("refund replay answered another entry")
	}
	if r := refund("refund-key-2", map[string]any{"transaction_id": id, "amount_micros": 6001}); r.Status != 400 {
		t.Fatalf("refund above what is left: %d %s", r.Status, r.Body)
	}
	if r := c.Do("POST", "/api/v1/billing/refunds", map[string]any{"transaction_id": id}); r.Status != 400 || r.ErrorCode() != "idempotency_key_required" {
		t.Fatalf("refund without key: %d %s", r.Status, r.Body)
	}
	refund("refund-key-3", map[string]any{"transaction_id": id}).Expect(t, 201) // the rest
	got := c.Do("GET", "/api/v1/billing/transactions/"+id, nil).Expect(t, 200).Data()
	if got["refunded_at"] == nil {
		t.Fatalf("fully refunded spend has no refunded_at: %v", got)
	}
	if r := refund("refund-key-4", map[string]any{"transaction_id": id}); r.Status != 400 {
		t.Fatalf("refund of a fully refunded spend: %d", r.Status)
	}
	// Only spends (and top-ups) are refundable.
	txs := c.Do("GET", "/api/v1/billing/transactions?type=adjustment", nil).Expect(t, 200).Data()["transactions"].([]any)
	adj := txs[0].(map[string]any)["id"].(string)
	if r := refund("refund-key-5", map[string]any{"transaction_id": adj}); r.Status != 400 || r.ErrorCode() != "not_refundable" {
		t.Fatalf("refund of an adjustment: %d %s", r.Status, r.Body)
	}
	if b := c.Do("GET", "/api/v1/billing/balance", nil).Data(); num(t, b, "balance_micros") != 100_000 {
		t.Fatalf("balance after full refund: %v", b)
	}
	usage := c.Do("GET", "/api/v1/billing/usage-by-channel?days=30", nil).Expect(t, 200).JSON["data"].([]any)
	row := usage[0].(map[string]any)
	if row["key"] != "sms" || num(t, row, "total_messages") != 1 || num(t, row, "total_cost_micros") != 0 {
		t.Fatalf("usage after refund: %v", row)
	}
}

func TestDeliveryReportsAndUsage(t *testing.T) {
	s := testserver.Start(t)
	org := s.MustOrg(t, "Usage", 1_000_000)
	c := s.Key(org.Key)
	var ids []string
	for i := 0; i < 3; i++ {
		ids = append(ids, obj(t, c.Do("POST", "/api/v1/billing/charges", chargeBody(fmt.Sprint("d", i), 4200)).Expect(t, 201).Data(), "transaction")["id"].(string))
	}
	c.Do("POST", "/api/v1/billing/charges", map[string]any{"reference": "v1", "channel": "voice", "amount_micros": 90_000}).Expect(t, 201)
	c.Do("POST", "/api/v1/billing/charges/"+ids[0]+"/delivery", map[string]any{"status": "delivered"}).Expect(t, 200)
	c.Do("POST", "/api/v1/billing/charges/"+ids[0]+"/delivery", map[string]any{"status": "delivered"}).Expect(t, 200) // no-op
	if r := c.Do("POST", "/api/v1/billing/charges/"+ids[0]+"/delivery", map[string]any{"status": "failed"}); r.Status != 409 {
		t.Fatalf("changing a delivery status: %d", r.Status)
	}
	c.Do("POST", "/api/v1/billing/charges/"+ids[1]+"/delivery", map[string]any{"status": "failed"}).Expect(t, 200)
	rows := c.Do("GET", "/api/v1/billing/usage-by-channel?days=30", nil).Expect(t, 200).JSON["data"].([]any)
	if len(rows) != 2 {
		t.Fatalf("usage rows: %v", rows)
	}
	voice, sms := rows[0].(map[string]any), rows[1].(map[string]any) // cost descending
	if voice["channel"] != "voice" || num(t, voice, "total_cost_micros") != 90_000 || num(t, voice, "total_cost_minor") != 9 || voice["total_cost"].(float64) != 0.09 {
		t.Fatalf("voice row: %v", voice)
	}
	if sms["key"] != "sms" || num(t, sms, "total_messages") != 3 || num(t, sms, "delivered") != 1 || num(t, sms, "failed") != 1 ||
		num(t, sms, "total_cost_minor") != 1 || num(t, sms, "total_cost_micros") != 12_600 {
		t.Fatalf("sms row: %v", sms)
	}
	grouped := c.Do("GET", "/api/v1/billing/usage-by-channel?days=7&group_by=destination", nil).Expect(t, 200).JSON["data"].([]any)
	if grouped[1].(map[string]any)["key"] != "sms:-" {
		t.Fatalf("grouped usage: %v", grouped)
	}
}

func TestPaginationWhileWritesContinue(t *testing.T) {
	s := testserver.Start(t)
	org := s.MustOrg(t, "Pages", 100_000_000)
	c := s.Key(org.Key)
	for i := 0; i < 45; i++ {
		c.Do("POST", "/api/v1/billing/charges", chargeBody(fmt.Sprint("pre", i), 100)).Expect(t, 201)
	}
	// Writers keep adding entries while we page.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 200; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := c.TryDo("POST", "/api/v1/billing/charges", chargeBody(fmt.Sprint("live", i), 100)); err != nil {
				return
			}
		}
	}()
	seen := map[string]bool{}
	var order []string
	path := "/api/v1/billing/transactions?limit=7"
	for pages := 0; pages < 100; pages++ {
		d := c.Do("GET", path, nil).Expect(t, 200).Data()
		for _, x := range d["transactions"].([]any) {
			id := x.(map[string]any)["id"].(string)
			if seen[id] {
				t.Fatalf("entry %s repeated", id)
			}
			seen[id] = true
			order = append(order, id)
		}
		if d["has_more"] != true {
			if d["next_cursor"] != nil {
				t.Fatal("next_cursor set on the last page")
			}
			break
		}
		cur := obj(t, d, "next_cursor")
		path = fmt.Sprintf("/api/v1/billing/transactions?limit=7&cursor_ts=%s&cursor_id=%s", cur["cursor_ts"], cur["cursor_id"])
	}
	close(stop)
	wg.Wait()
	for i := 1; i < len(order); i++ {
		if order[i] >= order[i-1] {
			t.Fatalf("not newest first at %d", i)
		}
	}
	// Everything older than the first page's first entry was seen: the 45
	// charges before the writers and the funding entry, at least.
	if len(seen) < 46 {
		t.Fatalf("saw %d entries, want at least 46", len(seen))
	}
	all := map[string]bool{}
	path = "/api/v1/billing/transactions?limit=100"
	for {
		d := c.Do("GET", path, nil).Expect(t, 200).Data()
		for _, x := range d["transactions"].([]any) {
			all[x.(map[string]any)["id"].(string)] = true
		}
		if d["has_more"] != true {
			break
		}
		cur := obj(t, d, "next_cursor")
		path = fmt.Sprintf("/api/v1/billing/transactions?limit=100&cursor_ts=%s&cursor_id=%s", cur["cursor_ts"], cur["cursor_id"])
	}
	first := order[0]
	for id := range all {
		if id <= first && !seen[id] {
			t.Fatalf("entry %s older than the first page was skipped", id)
		}
	}
}

func TestOrgIsolationRevocationAndRoles(t *testing.T) {
	s := testserver.Start(t)
	a := s.MustOrg(t, "A", 100_000)
	b := s.MustOrg(t, "B", 100_000)
	ca, cb := s.Key(a.Key), s.Key(b.Key)
	txA := obj(t, ca.Do("POST", "/api/v1/billing/charges", chargeBody("iso", 100)).Expect(t, 201).Data(), "transaction")["id"].(string)
	// B sees none of A's ids and cannot act on them.
	if r := cb.Do("GET", "/api/v1/billing/transactions/"+txA, nil); r.Status != 404 {
		t.Fatalf("cross-org read: %d", r.Status)
	}
	if r := cb.Do("POST", "/api/v1/billing/charges/"+txA+"/delivery", map[string]any{"status": "failed"}); r.Status != 404 {
		t.Fatalf("cross-org delivery: %d", r.Status)
	}
	if r := cb.With("Idempotency-Key", "cross-org-1").Do("POST", "/api/v1/billing/refunds", map[string]any{"transaction_id": txA}); r.Status != 404 {
		t.Fatalf("cross-org refund: %d", r.Status)
	}
	// The same reference in another org is another charge.
	cb.Do("POST", "/api/v1/billing/charges", chargeBody("iso", 100)).Expect(t, 201)
	if n := len(cb.Do("GET", "/api/v1/billing/transactions", nil).Data()["transactions"].([]any)); n != 2 {
		t.Fatalf("org B sees %d entries, want its own 2", n)
	}
	// Roles.
	read := s.Key(s.MustKey(t, a.ID, "read"))
	read.Do("GET", "/api/v1/billing/transactions", nil).Expect(t, 200)
	if r := read.Do("POST", "/api/v1/billing/charges", chargeBody("ro", 1)); r.Status != 403 || r.ErrorCode() != "forbidden" {
		t.Fatalf("read key charging: %d %s", r.Status, r.Body)
	}
	charge := s.Key(s.MustKey(t, a.ID, "charge"))
	charge.Do("POST", "/api/v1/billing/charges", chargeBody("ck", 1)).Expect(t, 201)
	charge.Do("GET", "/api/v1/billing/balance", nil).Expect(t, 200)
	// A read key makes every GET (SPEC.md section 3), a hold's state included.
	hold := obj(t, charge.Do("POST", "/api/v1/billing/reservations", map[string]any{"reference": "ro-hold", "channel": "sms", "amount_micros": 100}).Expect(t, 201).Data(), "reservation")
	if got := read.Do("GET", "/api/v1/billing/reservations/"+hold["id"].(string), nil).Expect(t, 200).Data(); got["id"] != hold["id"] || got["status"] != "open" {
		t.Fatalf("read key reading hold %v: %v", hold["id"], got)
	}
	if r := charge.Do("GET", "/api/v1/billing/transactions", nil); r.Status != 403 {
		t.Fatalf("charge key listing: %d", r.Status)
	}
	// Revocation: 401 from then on. An org key is not an admin token.
	keys := s.Admin().Do("GET", "/admin/v1/orgs/"+a.ID+"/keys", nil).Expect(t, 200).JSON["data"].([]any)
	for _, k := range keys {
		if _, has := k.(map[string]any)["key"]; has {
			t.Fatal("key listing shows a secret")
		}
	}
	first := keys[0].(map[string]any)["id"].(string)
	s.Admin().Do("DELETE", "/admin/v1/orgs/"+a.ID+"/keys/"+first, nil).Expect(t, 200)
	if r := ca.Do("GET", "/api/v1/billing/balance", nil); r.Status != 401 || r.ErrorCode() != "unauthenticated" {
		t.Fatalf("revoked key: %d %s", r.Status, r.Body)
	}
	if r := s.Anon().With("Authorization", "Bearer "+b.Key).Do("GET", "/admin/v1/orgs", nil); r.Status != 401 {
		t.Fatalf("org key on the admin API: %d", r.Status)
	}
	audit := s.Admin().Do("GET", "/admin/v1/audit", nil).Expect(t, 200).Data()
	if num(t, audit, "orgs_checked") != 2 || len(audit["mismatches"].([]any)) != 0 {
		t.Fatalf("audit: %v", audit)
	}
}

func TestGracefulRestartKeepsEverything(t *testing.T) {
	s := testserver.Start(t)
	org := s.MustOrg(t, "Restart", 1_000_000)
	c := s.Key(org.Key)
	tx := obj(t, c.Do("POST", "/api/v1/billing/charges", chargeBody("before", 1234)).Expect(t, 201).Data(), "transaction")
	asOf := c.Do("GET", "/api/v1/billing/balance", nil).Data()["as_of"]
	s.Stop()
	s.Start()
	c = s.Key(org.Key)
	bal := c.Do("GET", "/api/v1/billing/balance", nil).Expect(t, 200).Data()
	if num(t, bal, "balance_micros") != 1_000_000-1234 || bal["as_of"] != asOf {
		t.Fatalf("after restart: %v (as_of was %v)", bal, asOf)
	}
	r := c.Do("POST", "/api/v1/billing/charges", chargeBody("before", 1234)).Expect(t, 200)
	if obj(t, r.Data(), "transaction")["id"] != tx["id"] {
		t.Fatal("replay after restart answered another transaction")
	}
}
