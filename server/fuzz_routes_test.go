package server

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/orbit/orbit/engine"
	"github.com/orbit/orbit/server/jsonx"
)

// Request fuzzers of the org API's write routes: every body either is
// refused with a documented 4xx that submitted nothing, or submits exactly
// the command its route makes, whose fields satisfy the limits the decoder
// promises (SPEC.md section 3) and which does not depend on the order of
// the body's members. Seeds: testdata/fuzz/<FuzzName>/.

// checkMetadata checks a decoded metadata: at most 20 keys of 1-40
// characters, none written by the system, sorted, each value one JSON
// string, number or boolean.
func checkMetadata(t *testing.T, md engine.Metadata) {
	t.Helper()
	if len(md) > metadataKeysMax {
		t.Fatalf("metadata with %d keys accepted", len(md))
	}
	for i, kv := range md {
		if n := utf8.RuneCountInString(kv.Key); n < 1 || n > metadataKeyLenMax || systemMetadataKeys[kv.Key] {
			t.Fatalf("metadata key %q accepted", kv.Key)
		}
		if i > 0 && md[i-1].Key >= kv.Key {
			t.Fatalf("metadata not sorted or with a duplicate key: %q", md)
		}
		v, err := jsonx.Parse([]byte(kv.Value))
		if err != nil || (v.Kind != jsonx.String && v.Kind != jsonx.Number && v.Kind != jsonx.Bool) {
			t.Fatalf("metadata value %q of %q accepted", kv.Value, kv.Key)
		}
	}
}

// checkDebit checks what a charge or a reservation submits.
func checkDebit(t *testing.T, c engine.Command) {
	t.Helper()
	if c.OrgID != fuzzOrg {
		t.Fatalf("command for org %q, want the key's org", c.OrgID)
	}
	if err := checkReference("reference", c.Reference); err != nil {
		t.Fatalf("reference %q accepted: %s", c.Reference, err.message)
	}
	if err := checkChannel(c.Channel); err != nil || c.Channel == fuzzNoRateCh && c.Usage != nil {
		t.Fatalf("channel %q accepted", c.Channel)
	}
	if c.AmountMicros < 1 || c.AmountMicros > engine.MaxAmountMicros {
		t.Fatalf("amount %d accepted", c.AmountMicros)
	}
	if c.Usage != nil {
		u := c.Usage
		for _, n := range []int64{u.Units, u.Seconds, u.InputTokens, u.OutputTokens} {
			if n < 0 || n > 1_000_000_000_000 {
				t.Fatalf("usage %+v accepted", *u)
			}
		}
	}
	checkMetadata(t, c.Metadata)
	if len(c.BodyHash) != 32 {
		t.Fatalf("body hash %q", c.BodyHash)
	}
}

// reversed returns an object body with its members in reverse order, or
// false when body is not one.
func reversed(body []byte) ([]byte, bool) {
	v, err := jsonx.Parse(body)
	if err != nil || v.Kind != jsonx.Object || len(v.Fields) < 2 {
		return nil, false
	}
	f := append([]jsonx.Field(nil), v.Fields...)
	for i, j := 0, len(f)-1; i < j; i, j = i+1, j-1 {
		f[i], f[j] = f[j], f[i]
	}
	v.Fields = f
	return jsonx.AppendValue(nil, v), true
}

// samePermuted sends an accepted body again with its members reversed: the
// same request must submit the same command (and so hash the same, or a
// client's retry would conflict with itself).
func (h *fuzzHarness) samePermuted(t *testing.T, first fuzzAnswer, send func(body []byte) fuzzAnswer, body []byte) {
	t.Helper()
	rb, ok := reversed(body)
	if !ok {
		return
	}
	again := send(rb)
	if again.status != first.status || !reflect.DeepEqual(again.cmds, first.cmds) {
		t.Fatalf("the body with its members reversed answers %d with %+v, the body %d with %+v", again.status, again.cmds, first.status, first.cmds)
	}
}

func FuzzChargeBody(f *testing.F) {
	f.Add([]byte(`{"reference":"sms_1","channel":"sms","amount_micros":4200,"metadata":{"campaign":"spring"}}`))
	h := newFuzzHarness()
	f.Fuzz(func(t *testing.T, body []byte) {
		send := func(b []byte) fuzzAnswer { return h.orgDo(t, "POST", "charges", b) }
		a := send(body)
		a.expectStatus(t, 201, 400, 413, 422)
		if a.status != 201 {
			return
		}
		checkDebit(t, a.oneCmd(t, engine.CmdCharge))
		h.samePermuted(t, a, send, body)
	})
}

func FuzzChargeBatchBody(f *testing.F) {
	f.Add([]byte(`{"charges":[{"reference":"a1","channel":"sms","amount_micros":1},{"reference":"a1","channel":"SMS","amount_micros":1}]}`))
	h := newFuzzHarness()
	f.Fuzz(func(t *testing.T, body []byte) {
		a := h.orgDo(t, "POST", "charges/batch", body)
		a.expectStatus(t, 200, 400, 413)
		if a.status != 200 {
			return
		}
		var d struct {
			Results []struct {
				Index  int `json:"index"`
				Status int `json:"status"`
				Error  *struct {
					Code string `json:"code"`
				} `json:"error"`
			} `json:"results"`
		}
		if err := json.Unmarshal(a.data, &d); err != nil {
			t.Fatal(err)
		}
		v, _ := jsonx.Parse(body)
		items, _ := v.Get("charges")
		if len(d.Results) != len(items.Items) || len(d.Results) < 1 || len(d.Results) > batchChargesMax {
			t.Fatalf("%d results for %d charges", len(d.Results), len(items.Items))
		}
		created := 0
		for i, r := range d.Results {
			switch {
			case r.Index != i:
				t.Fatalf("result %d has index %d", i, r.Index)
			case r.Status == 201 && r.Error == nil:
				created++
			case r.Status >= 400 && r.Status < 500 && r.Error != nil && errorStatus[r.Error.Code] == r.Status:
			default:
				t.Fatalf("result %d: status %d error %+v", i, r.Status, r.Error)
			}
		}
		if created != len(a.cmds) {
			t.Fatalf("%d charges created, %d submitted", created, len(a.cmds))
		}
		for _, c := range a.cmds {
			if c.Kind != engine.CmdCharge {
				t.Fatalf("batch submitted %s", c.Kind)
			}
			checkDebit(t, c)
		}
	})
}

func FuzzReservationBody(f *testing.F) {
	f.Add([]byte(`{"reference":"call_1","channel":"voice","usage":{"destination":"4420","seconds":600},"ttl_seconds":900}`))
	h := newFuzzHarness()
	f.Fuzz(func(t *testing.T, body []byte) {
		send := func(b []byte) fuzzAnswer { return h.orgDo(t, "POST", "reservations", b) }
		a := send(body)
		a.expectStatus(t, 201, 400, 413, 422)
		if a.status != 201 {
			return
		}
		c := a.oneCmd(t, engine.CmdHoldCreate)
		checkDebit(t, c)
		if c.TTLSeconds < 0 || c.TTLSeconds > engine.HoldTTLSecondsMax {
			t.Fatalf("ttl %d accepted", c.TTLSeconds)
		}
		h.samePermuted(t, a, send, body)
	})
}

// FuzzReservationAction fuzzes the reservation id in the path, the
// Idempotency-Key and the body of GET, extend, commit and release.
func FuzzReservationAction(f *testing.F) {
	f.Add(uint8(1), "rsv_06H1MS8JAW00000000300001", "extend-0001", []byte(`{"amount_micros":500,"ttl_seconds":60}`))
	h := newFuzzHarness()
	f.Fuzz(func(t *testing.T, action uint8, id, key string, body []byte) {
		seg, ok := pathSegment(id)
		if !ok {
			return
		}
		route := "reservations/" + seg
		method := "POST"
		switch action % 4 {
		case 0:
			method, body = "GET", nil
		case 1:
			route += "/extend"
		case 2:
			route += "/commit"
		case 3:
			route += "/release"
		}
		send := func(b []byte) fuzzAnswer { return h.orgDo(t, method, route, b, "Idempotency-Key", key) }
		a := send(body)
		a.expectStatus(t, 200, 201, 400, 404, 413, 415)
		if a.status >= 400 {
			return
		}
		if method == "GET" {
			if len(a.cmds) != 0 {
				t.Fatalf("GET submitted %+v", a.cmds)
			}
			return
		}
		var c engine.Command
		switch action % 4 {
		case 1:
			c = a.oneCmd(t, engine.CmdHoldExtend)
			if !idempotencyKeyOK(key) || c.Reference != key || c.AmountMicros < 1 || c.AmountMicros > engine.MaxAmountMicros ||
				c.TTLSeconds < 0 || c.TTLSeconds > engine.HoldTTLSecondsMax {
				t.Fatalf("extend %+v accepted with key %q", c, key)
			}
		case 2:
			c = a.oneCmd(t, engine.CmdHoldCommit)
			if c.Usage == nil && (c.AmountMicros < 1 || c.AmountMicros > engine.MaxAmountMicros) || c.Usage != nil && c.AmountMicros != 0 {
				t.Fatalf("commit %+v accepted", c)
			}
		case 3:
			c = a.oneCmd(t, engine.CmdHoldRelease)
		}
		if c.OrgID != fuzzOrg || c.TxID != id || !validHoldID(id) {
			t.Fatalf("%s of %q submitted %+v", route, id, c)
		}
		if method == "POST" && action%4 != 3 {
			h.samePermuted(t, a, send, body)
		}
	})
}

// idempotencyKeyOK is the Idempotency-Key rule, restated for the checks.
func idempotencyKeyOK(k string) bool {
	return len(k) >= idempotencyKeyLenMin && len(k) <= idempotencyKeyLenMax && visibleASCIIString(k)
}

func FuzzRefundBody(f *testing.F) {
	f.Add("refund-0001", []byte(`{"transaction_id":"ct_06H1MS8JAW00000000300001","amount_micros":100,"reason":"dup"}`))
	h := newFuzzHarness()
	f.Fuzz(func(t *testing.T, key string, body []byte) {
		send := func(b []byte) fuzzAnswer { return h.orgDo(t, "POST", "refunds", b, "Idempotency-Key", key) }
		a := send(body)
		a.expectStatus(t, 201, 400, 404, 413)
		if a.status != 201 {
			return
		}
		c := a.oneCmd(t, engine.CmdRefund)
		_, txOK := engine.IDTimeMs(c.TxID, engine.PrefixTransaction)
		if !idempotencyKeyOK(key) || c.Reference != key || !txOK || c.AmountMicros < 0 || c.AmountMicros > engine.MaxAmountMicros ||
			utf8.RuneCountInString(c.Reason) > reasonLenMax || c.OrgID != fuzzOrg {
			t.Fatalf("refund %+v accepted with key %q", c, key)
		}
		h.samePermuted(t, a, send, body)
	})
}

func FuzzDeliveryBody(f *testing.F) {
	f.Add("ct_06H1MS8JAW00000000300001", []byte(`{"status":"delivered"}`))
	h := newFuzzHarness()
	f.Fuzz(func(t *testing.T, id string, body []byte) {
		seg, ok := pathSegment(id)
		if !ok {
			return
		}
		a := h.orgDo(t, "POST", "charges/"+seg+"/delivery", body)
		a.expectStatus(t, 200, 400, 404, 413)
		if a.status != 200 {
			return
		}
		c := a.oneCmd(t, engine.CmdDelivery)
		_, txOK := engine.IDTimeMs(id, engine.PrefixTransaction)
		if c.TxID != id || !txOK || (c.Status != engine.DeliveryDelivered && c.Status != engine.DeliveryFailed) || c.OrgID != fuzzOrg {
			t.Fatalf("delivery %+v accepted", c)
		}
	})
}

func FuzzTopupBody(f *testing.F) {
	f.Add("topup-0001", []byte(`{"amount":5000,"currency":"usd","successUrl":"https://a.example/ok","cancelUrl":"https://a.example/no"}`))
	h := newFuzzHarness()
	f.Fuzz(func(t *testing.T, key string, body []byte) {
		send := func(b []byte) fuzzAnswer { return h.orgDo(t, "POST", "balance/top-up", b, "Idempotency-Key", key) }
		a := send(body)
		a.expectStatus(t, 201, 400, 413)
		if a.status != 201 {
			return
		}
		c := a.oneCmd(t, engine.CmdTopupCreate)
		if !idempotencyKeyOK(key) || c.Reference != key || c.AmountMinor < 1 || !validCurrencyCode(c.Currency) ||
			(c.Currency == "usd" && (c.AmountMinor < engine.TopupCentsMin || c.AmountMinor > engine.TopupCentsMax)) ||
			checkURL("successUrl", c.SuccessURL) != nil || checkURL("cancelUrl", c.CancelURL) != nil || c.Provider != "dev" {
			t.Fatalf("top-up %+v accepted with key %q", c, key)
		}
		h.samePermuted(t, a, send, body)
	})
}

// FuzzQueries fuzzes the query strings of the org API's reads: the ledger
// page (cursor and filters), the CSV export, and both usage reports. A
// read answers 200 or 400 and submits nothing.
func FuzzQueries(f *testing.F) {
	f.Add(uint8(0), "limit=30&cursor_ts=2026-05-16T11:21:18.901Z&cursor_id=ct_06H1MS8JAW00000000300001")
	h := newFuzzHarness()
	routes := []string{"transactions", "transactions/export", "usage", "usage-by-channel"}
	f.Fuzz(func(t *testing.T, route uint8, query string) {
		if !visibleASCIIString(query) || strings.Contains(query, "#") {
			return // not a request line's query: clients percent-encode the rest
		}
		a := h.orgDo(t, "GET", routes[int(route)%len(routes)]+"?"+query, nil)
		a.expectStatus(t, 200, 400)
		if len(a.cmds) != 0 {
			t.Fatalf("a read submitted %+v", a.cmds)
		}
	})
}

// FuzzRouting fuzzes the method, path, Content-Type and body of requests to
// the org and operator APIs: whatever route (or none) a request reaches,
// the answer is a documented status in the envelope, and a refusal
// submitted nothing.
func FuzzRouting(f *testing.F) {
	f.Add(uint8(1), "reservations/rsv_06H1MS8JAW00000000300001/commit", "application/json; charset=utf-8", []byte(`{"amount_micros":1}`))
	h := newFuzzHarness()
	methods := []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
	f.Fuzz(func(t *testing.T, m uint8, path, ctype string, body []byte) {
		if !visibleASCIIString(path) || strings.ContainsAny(path, "?#%") || !visibleASCIIString(strings.ReplaceAll(ctype, " ", "")) {
			return // not a request line's path, or not a header value
		}
		method := methods[int(m)%len(methods)]
		if method == "HEAD" {
			return // no body to check
		}
		if m >= 128 {
			h.do(t, method, "/admin/v1/"+path, body, "Authorization", "Bearer "+fuzzAdmin, "Content-Type", ctype)
			return
		}
		h.do(t, method, "/api/v1/billing/"+path, body, "X-API-Key", fuzzKey, "Content-Type", ctype, "Idempotency-Key", "fuzz-routing-key")
	})
}
