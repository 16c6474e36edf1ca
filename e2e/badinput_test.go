package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/orbit/orbit/internal/testserver"
)

// badCase is one malformed request and the refusal SPEC.md requires.
type badCase struct {
	name   string
	as     string // "key" (the org's admin key), "read", "admin" (admin token), "anon", "orgkey-on-admin"
	method string
	path   string
	body   any               // nil, a string or []byte sent as is, or a value sent as JSON
	header map[string]string // extra headers; "Content-Type" overrides application/json
	raw    bool              // send over a raw connection (bodies above the 8 MiB transport limit)
	status int
	code   string
}

// charge returns a charge body with the given members replaced (a nil value
// removes the member).
func badCharge(over map[string]any) map[string]any {
	b := map[string]any{"reference": "bad-ref", "channel": "sms", "amount_micros": 1000}
	for k, v := range over {
		if v == nil {
			delete(b, k)
		} else {
			b[k] = v
		}
	}
	return b
}

// badChargeRaw is a charge body whose amount_micros is the literal text lit.
func badChargeRaw(lit string) string {
	return `{"reference":"bad-raw","channel":"sms","amount_micros":` + lit + `}`
}

// badMetadata is a charge body with the given metadata.
func badMetadata(md any) map[string]any { return badCharge(map[string]any{"metadata": md}) }

func badManyKeys(n int) map[string]any {
	md := map[string]any{}
	for i := 0; i < n; i++ {
		md[fmt.Sprintf("k%02d", i)] = "v"
	}
	return md
}

// TestBadInput sends malformed requests to a real server: each must be
// refused with the exact 4xx status and error code SPEC.md gives, in the
// error envelope, and none may write anything.
func TestBadInput(t *testing.T) {
	s := testserver.Start(t)
	org := s.MustOrg(t, "Bad input", 50_000_000)
	readKey := s.MustKey(t, org.ID, "read")
	key := s.Key(org.Key)
	// One spend to aim refunds and delivery reports at.
	spend := key.Do("POST", "/api/v1/billing/charges", map[string]any{"reference": "good-1", "channel": "sms", "amount_micros": 4200}).Expect(t, 201)
	spendID := oaObj(spend.Data(), "transaction")["id"].(string)
	cursorTS := oaObj(spend.Data(), "transaction")["created_at"].(string)

	before := badSnapshot(t, s, org)

	const txs = "/api/v1/billing/transactions"
	const usage = "/api/v1/billing/usage-by-channel"
	const charges = "/api/v1/billing/charges"
	const batch = "/api/v1/billing/charges/batch"
	const refunds = "/api/v1/billing/refunds"
	delivery := "/api/v1/billing/charges/" + spendID + "/delivery"
	orgPath := "/admin/v1/orgs/" + org.ID
	idem := map[string]string{"Idempotency-Key": "bad-refund-0001"}
	const topup = "/api/v1/billing/balance/top-up"
	const rsv = "/api/v1/billing/reservations"
	tuKey := map[string]string{"Idempotency-Key": "bad-topup-0001"}
	long := func(n int) string { return strings.Repeat("a", n) }

	cases := []badCase{
		// --- JSON syntax (SPEC 3: malformed JSON, duplicate keys, invalid UTF-8, control characters) ---
		{name: "broken JSON", method: "POST", path: charges, body: `{"reference":"r1","channel":"sms","amount_micros":`, status: 400, code: "invalid_request"},
		{name: "unterminated string", method: "POST", path: charges, body: `{"reference":"r1`, status: 400, code: "invalid_request"},
		{name: "trailing garbage", method: "POST", path: charges, body: `{"reference":"r2","channel":"sms","amount_micros":1} x`, status: 400, code: "invalid_request"},
		{name: "two JSON values", method: "POST", path: charges, body: `{"reference":"r2","channel":"sms","amount_micros":1}{}`, status: 400, code: "invalid_request"},
		{name: "trailing comma", method: "POST", path: charges, body: `{"reference":"r2","channel":"sms","amount_micros":1,}`, status: 400, code: "invalid_request"},
		{name: "single quotes", method: "POST", path: charges, body: `{'reference':'r2','channel':'sms','amount_micros':1}`, status: 400, code: "invalid_request"},
		{name: "body is an array", method: "POST", path: charges, body: `[{"reference":"r2","channel":"sms","amount_micros":1}]`, status: 400, code: "invalid_request"},
		{name: "body is a string", method: "POST", path: charges, body: `"charge"`, status: 400, code: "invalid_request"},
		{name: "duplicate keys", method: "POST", path: charges, body: `{"reference":"r3","channel":"sms","amount_micros":1,"amount_micros":100000}`, status: 400, code: "invalid_request"},
		{name: "duplicate keys in metadata", method: "POST", path: charges, body: `{"reference":"r3","channel":"sms","amount_micros":1,"metadata":{"a":"1","a":"2"}}`, status: 400, code: "invalid_request"},
		{name: "invalid UTF-8 in a string", method: "POST", path: charges, body: "{\"reference\":\"r4\",\"channel\":\"sms\",\"amount_micros\":1,\"metadata\":{\"note\":\"\xff\xfe\"}}", status: 400, code: "invalid_request"},
		{name: "invalid UTF-8 in a key", method: "POST", path: charges, body: "{\"reference\":\"r4\",\"channel\":\"sms\",\"amount_micros\":1,\"metadata\":{\"\xc3\x28\":\"x\"}}", status: 400, code: "invalid_request"},
		{name: "raw control character in a string", method: "POST", path: charges, body: "{\"reference\":\"r5\",\"channel\":\"sms\",\"amount_micros\":1,\"metadata\":{\"note\":\"a\x01b\"}}", status: 400, code: "invalid_request"},
		{name: "raw newline in a string", method: "POST", path: charges, body: "{\"reference\":\"r5\",\"channel\":\"sms\",\"amount_micros\":1,\"metadata\":{\"note\":\"a\nb\"}}", status: 400, code: "invalid_request"},
		{name: "escaped control character in a string", method: "POST", path: charges, body: `{"reference":"r5","channel":"sms","amount_micros":1,"metadata":{"note":"a\u0001b"}}`, status: 400, code: "invalid_request"},
		// --- wrong types ---
		{name: "string amount", method: "POST", path: charges, body: badCharge(map[string]any{"amount_micros": "1000"}), status: 400, code: "invalid_request"},
		{name: "bool reference", method: "POST", path: charges, body: badCharge(map[string]any{"reference": true}), status: 400, code: "invalid_request"},
		{name: "number channel", method: "POST", path: charges, body: badCharge(map[string]any{"channel": 7}), status: 400, code: "invalid_request"},
		{name: "null amount", method: "POST", path: charges, body: badChargeRaw("null"), status: 400, code: "invalid_request"},
		{name: "usage is a string", method: "POST", path: charges, body: badCharge(map[string]any{"amount_micros": nil, "usage": "1 sms"}), status: 400, code: "invalid_request"},
		{name: "usage units is a string", method: "POST", path: charges, body: badCharge(map[string]any{"amount_micros": nil, "usage": map[string]any{"destination": "1415", "units": "1"}}), status: 400, code: "invalid_request"},
		{name: "usage units negative", method: "POST", path: charges, body: badCharge(map[string]any{"amount_micros": nil, "usage": map[string]any{"destination": "1415", "units": -1}}), status: 400, code: "invalid_request"},
		{name: "usage unknown field", method: "POST", path: charges, body: badCharge(map[string]any{"amount_micros": nil, "usage": map[string]any{"destination": "1415", "units": 1, "pages": 2}}), status: 400, code: "invalid_request"},
		// --- amounts (SPEC 2: an integer from 1 to 10^15) ---
		{name: "zero amount", method: "POST", path: charges, body: badChargeRaw("0"), status: 400, code: "invalid_request"},
		{name: "negative zero amount", method: "POST", path: charges, body: badChargeRaw("-0"), status: 400, code: "invalid_request"},
		{name: "negative amount", method: "POST", path: charges, body: badChargeRaw("-5"), status: 400, code: "invalid_request"},
		{name: "fractional amount", method: "POST", path: charges, body: badChargeRaw("1.5"), status: 400, code: "invalid_request"},
		{name: "integral fraction amount", method: "POST", path: charges, body: badChargeRaw("1000.0"), status: 400, code: "invalid_request"},
		{name: "exponent amount", method: "POST", path: charges, body: badChargeRaw("1e3"), status: 400, code: "invalid_request"},
		{name: "upper-case exponent amount", method: "POST", path: charges, body: badChargeRaw("1E3"), status: 400, code: "invalid_request"},
		{name: "amount 10^15+1", method: "POST", path: charges, body: badChargeRaw("1000000000000001"), status: 400, code: "invalid_request"},
		{name: "amount 2^63", method: "POST", path: charges, body: badChargeRaw("9223372036854775808"), status: 400, code: "invalid_request"},
		{name: "amount -2^63", method: "POST", path: charges, body: badChargeRaw("-9223372036854775808"), status: 400, code: "invalid_request"},
		{name: "huge amount", method: "POST", path: charges, body: badChargeRaw("123456789012345678901234567890"), status: 400, code: "invalid_request"},
		{name: "huge exponent amount", method: "POST", path: charges, body: badChargeRaw("1e400"), status: 400, code: "invalid_request"},
		{name: "NaN amount", method: "POST", path: charges, body: badChargeRaw("NaN"), status: 400, code: "invalid_request"},
		{name: "Infinity amount", method: "POST", path: charges, body: badChargeRaw("Infinity"), status: 400, code: "invalid_request"},
		{name: "-Infinity amount", method: "POST", path: charges, body: badChargeRaw("-Infinity"), status: 400, code: "invalid_request"},
		{name: "leading-zero amount", method: "POST", path: charges, body: badChargeRaw("0100"), status: 400, code: "invalid_request"},
		{name: "hex amount", method: "POST", path: charges, body: badChargeRaw("0x10"), status: 400, code: "invalid_request"},
		{name: "plus-signed amount", method: "POST", path: charges, body: badChargeRaw("+5"), status: 400, code: "invalid_request"},
		// --- body size (SPEC 3: 1 MiB, 8 MiB on /charges/batch) ---
		{name: "2 MiB body on /charges", method: "POST", path: charges, body: badMetadata(map[string]any{"pad": long(2 << 20)}), status: 413, code: "payload_too_large"},
		{name: "9 MiB body on /charges/batch", method: "POST", path: batch, body: oaBigJSON(9 << 20), raw: true, status: 413, code: "payload_too_large"},
		// --- references and channels ---
		{name: "reference of 256 characters", method: "POST", path: charges, body: badCharge(map[string]any{"reference": long(256)}), status: 400, code: "invalid_request"},
		{name: "empty reference", method: "POST", path: charges, body: badCharge(map[string]any{"reference": ""}), status: 400, code: "invalid_request"},
		{name: "reference with a space", method: "POST", path: charges, body: badCharge(map[string]any{"reference": "sms msg 1"}), status: 400, code: "invalid_request"},
		{name: "reference with non-ASCII", method: "POST", path: charges, body: badCharge(map[string]any{"reference": "réf-1"}), status: 400, code: "invalid_request"},
		{name: "reference with a tab", method: "POST", path: charges, body: badCharge(map[string]any{"reference": "ref\t1"}), status: 400, code: "invalid_request"},
		{name: "missing reference", method: "POST", path: charges, body: badCharge(map[string]any{"reference": nil}), status: 400, code: "invalid_request"},
		{name: "upper-case channel", method: "POST", path: charges, body: badCharge(map[string]any{"channel": "SMS"}), status: 400, code: "invalid_request"},
		{name: "channel of 33 characters", method: "POST", path: charges, body: badCharge(map[string]any{"channel": long(33)}), status: 400, code: "invalid_request"},
		{name: "empty channel", method: "POST", path: charges, body: badCharge(map[string]any{"channel": ""}), status: 400, code: "invalid_request"},
		{name: "channel with a dash", method: "POST", path: charges, body: badCharge(map[string]any{"channel": "sms-eu"}), status: 400, code: "invalid_request"},
		{name: "missing channel", method: "POST", path: charges, body: badCharge(map[string]any{"channel": nil}), status: 400, code: "invalid_request"},
		// --- amount_micros xor usage; unknown fields ---
		{name: "both amount_micros and usage", method: "POST", path: charges, body: badCharge(map[string]any{"usage": map[string]any{"destination": "1415", "units": 1}}), status: 400, code: "invalid_request"},
		{name: "neither amount_micros nor usage", method: "POST", path: charges, body: badCharge(map[string]any{"amount_micros": nil}), status: 400, code: "invalid_request"},
		{name: "unknown field", method: "POST", path: charges, body: badCharge(map[string]any{"amount": 1000}), status: 400, code: "invalid_request"},
		{name: "unknown field: currency", method: "POST", path: charges, body: badCharge(map[string]any{"currency": "usd"}), status: 400, code: "invalid_request"},
		// --- metadata (SPEC 3) ---
		{name: "metadata with 21 keys", method: "POST", path: charges, body: badMetadata(badManyKeys(21)), status: 400, code: "invalid_request"},
		{name: "metadata key of 41 characters", method: "POST", path: charges, body: badMetadata(map[string]any{long(41): "x"}), status: 400, code: "invalid_request"},
		{name: "metadata empty key", method: "POST", path: charges, body: badMetadata(map[string]any{"": "x"}), status: 400, code: "invalid_request"},
		{name: "metadata value of 501 characters", method: "POST", path: charges, body: badMetadata(map[string]any{"note": long(501)}), status: 400, code: "invalid_request"},
		{name: "metadata nested object", method: "POST", path: charges, body: badMetadata(map[string]any{"nested": map[string]any{"a": 1}}), status: 400, code: "invalid_request"},
		{name: "metadata array value", method: "POST", path: charges, body: badMetadata(map[string]any{"list": []any{1, 2}}), status: 400, code: "invalid_request"},
		{name: "metadata null value", method: "POST", path: charges, body: badMetadata(map[string]any{"gone": nil}), status: 400, code: "invalid_request"},
		{name: "metadata system key channel", method: "POST", path: charges, body: badMetadata(map[string]any{"channel": "voice"}), status: 400, code: "invalid_request"},
		{name: "metadata system key rate_version", method: "POST", path: charges, body: badMetadata(map[string]any{"rate_version": 3}), status: 400, code: "invalid_request"},
		{name: "metadata system key country", method: "POST", path: charges, body: badMetadata(map[string]any{"country": "44"}), status: 400, code: "invalid_request"},
		{name: "metadata system key destination", method: "POST", path: charges, body: badMetadata(map[string]any{"destination": "14155550100"}), status: 400, code: "invalid_request"},
		{name: "metadata system key input_tokens", method: "POST", path: charges, body: badMetadata(map[string]any{"input_tokens": 10}), status: 400, code: "invalid_request"},
		{name: "metadata number out of range", method: "POST", path: charges, body: `{"reference":"md","channel":"sms","amount_micros":1,"metadata":{"n":1e400}}`, status: 400, code: "invalid_request"},
		{name: "metadata is a string", method: "POST", path: charges, body: badMetadata("campaign=spring"), status: 400, code: "invalid_request"},
		{name: "metadata is an array", method: "POST", path: charges, body: badMetadata([]any{"a"}), status: 400, code: "invalid_request"},
		// --- content type and empty bodies (SPEC 3: another type is 415) ---
		{name: "text/plain body", method: "POST", path: charges, body: `{"reference":"ct","channel":"sms","amount_micros":1}`, header: map[string]string{"Content-Type": "text/plain"}, status: 415, code: "unsupported_media_type"},
		{name: "form body", method: "POST", path: charges, body: `reference=ct&channel=sms&amount_micros=1`, header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, status: 415, code: "unsupported_media_type"},
		{name: "empty Content-Type", method: "POST", path: charges, body: `{"reference":"ct","channel":"sms","amount_micros":1}`, header: map[string]string{"Content-Type": ""}, status: 415, code: "unsupported_media_type"},
		{name: "application/jsonx", method: "POST", path: charges, body: `{"reference":"ct","channel":"sms","amount_micros":1}`, header: map[string]string{"Content-Type": "application/jsonx"}, status: 415, code: "unsupported_media_type"},
		{name: "text/plain on the batch", method: "POST", path: batch, body: `{"charges":[]}`, header: map[string]string{"Content-Type": "text/plain"}, status: 415, code: "unsupported_media_type"},
		{name: "missing body", method: "POST", path: charges, header: map[string]string{"Content-Type": "application/json"}, status: 400, code: "invalid_request"},
		{name: "whitespace body", method: "POST", path: charges, body: " \n\t ", status: 400, code: "invalid_request"},
		// --- batch ---
		{name: "batch of zero charges", method: "POST", path: batch, body: map[string]any{"charges": []any{}}, status: 400, code: "invalid_request"},
		{name: "batch of 1001 charges", method: "POST", path: batch, body: badBatch(1001), status: 400, code: "invalid_request"},
		{name: "batch charges not an array", method: "POST", path: batch, body: map[string]any{"charges": badCharge(nil)}, status: 400, code: "invalid_request"},
		{name: "batch without charges", method: "POST", path: batch, body: map[string]any{}, status: 400, code: "invalid_request"},
		{name: "batch unknown field", method: "POST", path: batch, body: map[string]any{"charges": []any{badCharge(nil)}, "atomic": true}, status: 400, code: "invalid_request"},
		{name: "batch broken JSON", method: "POST", path: batch, body: `{"charges":[{"reference":"b"`, status: 400, code: "invalid_request"},
		{name: "batch duplicate keys", method: "POST", path: batch, body: `{"charges":[],"charges":[]}`, status: 400, code: "invalid_request"},
		// --- transactions query (SPEC 4: bad limit or cursor is 400) ---
		{name: "cursor_ts without cursor_id", method: "GET", path: txs + "?cursor_ts=" + cursorTS, status: 400, code: "invalid_request"},
		{name: "cursor_id without cursor_ts", method: "GET", path: txs + "?cursor_id=" + spendID, status: 400, code: "invalid_request"},
		{name: "malformed cursor_ts", method: "GET", path: txs + "?cursor_ts=yesterday&cursor_id=" + spendID, status: 400, code: "invalid_request"},
		{name: "malformed cursor_id", method: "GET", path: txs + "?cursor_ts=" + cursorTS + "&cursor_id=ct_xyz", status: 400, code: "invalid_request"},
		{name: "cursor_id of another kind", method: "GET", path: txs + "?cursor_ts=" + cursorTS + "&cursor_id=" + org.ID, status: 400, code: "invalid_request"},
		{name: "mismatched cursor_ts and cursor_id", method: "GET", path: txs + "?cursor_ts=2020-01-01T00:00:00.000Z&cursor_id=" + spendID, status: 400, code: "invalid_request"},
		{name: "limit=0", method: "GET", path: txs + "?limit=0", status: 400, code: "invalid_request"},
		{name: "limit=101", method: "GET", path: txs + "?limit=101", status: 400, code: "invalid_request"},
		{name: "limit=abc", method: "GET", path: txs + "?limit=abc", status: 400, code: "invalid_request"},
		{name: "limit=-1", method: "GET", path: txs + "?limit=-1", status: 400, code: "invalid_request"},
		{name: "limit=1.5", method: "GET", path: txs + "?limit=1.5", status: 400, code: "invalid_request"},
		{name: "empty limit", method: "GET", path: txs + "?limit=", status: 400, code: "invalid_request"},
		{name: "unknown type filter", method: "GET", path: txs + "?type=payment", status: 400, code: "invalid_request"},
		{name: "upper-case channel filter", method: "GET", path: txs + "?channel=SMS", status: 400, code: "invalid_request"},
		{name: "malformed from", method: "GET", path: txs + "?from=2026-13-01", status: 400, code: "invalid_request"},
		{name: "from after to", method: "GET", path: txs + "?from=2026-06-01T00:00:00Z&to=2026-05-01T00:00:00Z", status: 400, code: "invalid_request"},
		// --- usage query (SPEC 4: days 1..366) ---
		{name: "days=0", method: "GET", path: usage + "?days=0", status: 400, code: "invalid_request"},
		{name: "days=367", method: "GET", path: usage + "?days=367", status: 400, code: "invalid_request"},
		{name: "days=x", method: "GET", path: usage + "?days=x", status: 400, code: "invalid_request"},
		{name: "group_by=foo", method: "GET", path: usage + "?group_by=foo", status: 400, code: "invalid_request"},
		// --- refunds (SPEC 3: Idempotency-Key 8-255 visible ASCII) ---
		{name: "refund without Idempotency-Key", method: "POST", path: refunds, body: map[string]any{"transaction_id": spendID, "amount_micros": 1}, status: 400, code: "idempotency_key_required"},
		{name: "refund with a 7-char Idempotency-Key", method: "POST", path: refunds, body: map[string]any{"transaction_id": spendID, "amount_micros": 1}, header: map[string]string{"Idempotency-Key": "1234567"}, status: 400, code: "idempotency_key_required"},
		{name: "refund with a 256-char Idempotency-Key", method: "POST", path: refunds, body: map[string]any{"transaction_id": spendID, "amount_micros": 1}, header: map[string]string{"Idempotency-Key": long(256)}, status: 400, code: "idempotency_key_required"},
		{name: "refund with a space in the Idempotency-Key", method: "POST", path: refunds, body: map[string]any{"transaction_id": spendID, "amount_micros": 1}, header: map[string]string{"Idempotency-Key": "refund key 1"}, status: 400, code: "idempotency_key_required"},
		{name: "refund of zero", method: "POST", path: refunds, body: map[string]any{"transaction_id": spendID, "amount_micros": 0}, header: idem, status: 400, code: "invalid_request"},
		{name: "refund above the spend", method: "POST", path: refunds, body: map[string]any{"transaction_id": spendID, "amount_micros": 4201}, header: idem, status: 400, code: "invalid_request"},
		{name: "refund unknown field", method: "POST", path: refunds, body: map[string]any{"transaction_id": spendID, "amount": 1}, header: idem, status: 400, code: "invalid_request"},
		{name: "refund without transaction_id", method: "POST", path: refunds, body: map[string]any{"amount_micros": 1}, header: idem, status: 400, code: "invalid_request"},
		{name: "refund of an unknown transaction", method: "POST", path: refunds, body: map[string]any{"transaction_id": oaUnknownTx}, header: idem, status: 404, code: "not_found"},
		{name: "refund as a read key", as: "read", method: "POST", path: refunds, body: map[string]any{"transaction_id": spendID}, header: idem, status: 403, code: "forbidden"},
		// --- top-ups (SPEC 4: amount 500..1,000,000 cents, Idempotency-Key required) ---
		{name: "top-up below 500 cents", method: "POST", path: topup, body: badTopup(map[string]any{"amount": 499}), header: tuKey, status: 400, code: "invalid_request"},
		{name: "top-up above 1,000,000 cents", method: "POST", path: topup, body: badTopup(map[string]any{"amount": 1_000_001}), header: tuKey, status: 400, code: "invalid_request"},
		{name: "top-up string amount", method: "POST", path: topup, body: badTopup(map[string]any{"amount": "10000"}), header: tuKey, status: 400, code: "invalid_request"},
		{name: "top-up fractional amount", method: "POST", path: topup, body: badTopup(map[string]any{"amount": 100.5}), header: tuKey, status: 400, code: "invalid_request"},
		{name: "top-up currency without an FX rate", method: "POST", path: topup, body: badTopup(map[string]any{"currency": "xts"}), header: tuKey, status: 400, code: "invalid_request"},
		{name: "top-up relative successUrl", method: "POST", path: topup, body: badTopup(map[string]any{"successUrl": "/billing?topup=ok"}), header: tuKey, status: 400, code: "invalid_request"},
		{name: "top-up without cancelUrl", method: "POST", path: topup, body: badTopup(map[string]any{"cancelUrl": nil}), header: tuKey, status: 400, code: "invalid_request"},
		{name: "top-up unknown field", method: "POST", path: topup, body: badTopup(map[string]any{"mode": "subscription"}), header: tuKey, status: 400, code: "invalid_request"},
		{name: "top-up without Idempotency-Key", method: "POST", path: topup, body: badTopup(nil), status: 400, code: "idempotency_key_required"},
		{name: "top-up alias with a 7-char Idempotency-Key", method: "POST", path: "/api/v1/billing/credits/purchase", body: badTopup(nil), header: map[string]string{"Idempotency-Key": "abcdefg"}, status: 400, code: "idempotency_key_required"},
		// --- reservations (SPEC 4: ttl_seconds 1..86400; Idempotency-Key on extend) ---
		{name: "reservation ttl_seconds 0", method: "POST", path: rsv, body: badHold(map[string]any{"ttl_seconds": 0}), status: 400, code: "invalid_request"},
		{name: "reservation ttl_seconds 86401", method: "POST", path: rsv, body: badHold(map[string]any{"ttl_seconds": 86401}), status: 400, code: "invalid_request"},
		{name: "reservation ttl_seconds as a string", method: "POST", path: rsv, body: badHold(map[string]any{"ttl_seconds": "60"}), status: 400, code: "invalid_request"},
		{name: "reservation zero amount", method: "POST", path: rsv, body: badHold(map[string]any{"amount_micros": 0}), status: 400, code: "invalid_request"},
		{name: "reservation both amount and usage", method: "POST", path: rsv, body: badHold(map[string]any{"usage": map[string]any{"destination": "1", "seconds": 60}}), status: 400, code: "invalid_request"},
		{name: "reservation reference with a space", method: "POST", path: rsv, body: badHold(map[string]any{"reference": "call 1"}), status: 400, code: "invalid_request"},
		{name: "reservation unknown field", method: "POST", path: rsv, body: badHold(map[string]any{"auto_commit": true}), status: 400, code: "invalid_request"},
		{name: "extend without Idempotency-Key", method: "POST", path: rsv + "/rsv_000000000000000000000000/extend", body: map[string]any{"amount_micros": 1}, status: 400, code: "idempotency_key_required"},
		{name: "commit with neither amount nor usage", method: "POST", path: rsv + "/rsv_000000000000000000000000/commit", body: map[string]any{}, status: 400, code: "invalid_request"},
		{name: "commit of an unknown reservation", method: "POST", path: rsv + "/rsv_000000000000000000000000/commit", body: map[string]any{"amount_micros": 1}, status: 404, code: "not_found"},
		// --- delivery reports ---
		{name: "delivery status lost", method: "POST", path: delivery, body: map[string]any{"status": "lost"}, status: 400, code: "invalid_request"},
		{name: "delivery status upper-case", method: "POST", path: delivery, body: map[string]any{"status": "DELIVERED"}, status: 400, code: "invalid_request"},
		{name: "delivery without status", method: "POST", path: delivery, body: map[string]any{}, status: 400, code: "invalid_request"},
		{name: "delivery unknown field", method: "POST", path: delivery, body: map[string]any{"status": "delivered", "at": "now"}, status: 400, code: "invalid_request"},
		{name: "delivery of an unknown transaction", method: "POST", path: "/api/v1/billing/charges/" + oaUnknownTx + "/delivery", body: map[string]any{"status": "delivered"}, status: 404, code: "not_found"},
		{name: "delivery as a read key", as: "read", method: "POST", path: delivery, body: map[string]any{"status": "delivered"}, status: 403, code: "forbidden"},
		// --- auth and routing (SPEC 3) ---
		{name: "admin route with an org key (X-API-Key)", as: "key", method: "GET", path: "/admin/v1/orgs", status: 401, code: "unauthenticated"},
		{name: "admin route with an org key (Bearer)", as: "orgkey-on-admin", method: "GET", path: "/admin/v1/orgs", status: 401, code: "unauthenticated"},
		{name: "admin adjustment with an org key", as: "orgkey-on-admin", method: "POST", path: orgPath + "/adjustments", body: map[string]any{"amount_micros": 1_000_000, "reference": "steal"}, status: 401, code: "unauthenticated"},
		{name: "admin route without auth", as: "anon", method: "GET", path: "/admin/v1/orgs", status: 401, code: "unauthenticated"},
		{name: "admin route with a wrong token", as: "anon", method: "GET", path: "/admin/v1/orgs", header: map[string]string{"Authorization": "Bearer not-the-token"}, status: 401, code: "unauthenticated"},
		{name: "org route without auth", as: "anon", method: "GET", path: "/api/v1/billing/balance", status: 401, code: "unauthenticated"},
		{name: "charge without auth", as: "anon", method: "POST", path: charges, body: badCharge(nil), status: 401, code: "unauthenticated"},
		{name: "org route with an unknown key", as: "anon", method: "GET", path: "/api/v1/billing/balance", header: map[string]string{"X-API-Key": "dv_live_sk_" + long(48)}, status: 401, code: "unauthenticated"},
		{name: "org route with the admin token", as: "anon", method: "GET", path: "/api/v1/billing/balance", header: map[string]string{"Authorization": "Bearer " + s.AdminToken}, status: 401, code: "unauthenticated"},
		{name: "charge as a read key", as: "read", method: "POST", path: charges, body: badCharge(nil), status: 403, code: "forbidden"},
		{name: "unknown route", method: "GET", path: "/api/v1/billing/nope", status: 404, code: "not_found"},
		{name: "unknown top-level route", as: "anon", method: "GET", path: "/v2/billing/balance", status: 404, code: "not_found"},
		{name: "unknown transaction id", method: "GET", path: txs + "/" + oaUnknownTx, status: 404, code: "not_found"},
		{name: "malformed transaction id", method: "GET", path: txs + "/12345", status: 404, code: "not_found"},
		{name: "wrong method", method: "GET", path: charges, status: 405, code: "method_not_allowed"},
		// --- operator API on the same org (nothing may change) ---
		{name: "adjustment of zero", as: "admin", method: "POST", path: orgPath + "/adjustments", body: map[string]any{"amount_micros": 0, "reference": "adj-0"}, status: 400, code: "invalid_request"},
		{name: "adjustment above 10^15", as: "admin", method: "POST", path: orgPath + "/adjustments", body: map[string]any{"amount_micros": 1_000_000_000_000_001, "reference": "adj-big"}, status: 400, code: "invalid_request"},
		{name: "adjustment fractional", as: "admin", method: "POST", path: orgPath + "/adjustments", body: `{"amount_micros":1.5,"reference":"adj-frac"}`, status: 400, code: "invalid_request"},
		{name: "adjustment without reference", as: "admin", method: "POST", path: orgPath + "/adjustments", body: map[string]any{"amount_micros": 1}, status: 400, code: "invalid_request"},
		{name: "adjustment unknown field", as: "admin", method: "POST", path: orgPath + "/adjustments", body: map[string]any{"amount_micros": 1, "reference": "adj-x", "currency": "usd"}, status: 400, code: "invalid_request"},
		{name: "threshold below zero", as: "admin", method: "PATCH", path: orgPath, body: map[string]any{"pause_threshold_micros": -1}, status: 400, code: "invalid_request"},
		{name: "threshold above 10^15", as: "admin", method: "PATCH", path: orgPath, body: map[string]any{"pause_threshold_micros": 1_000_000_000_000_001}, status: 400, code: "invalid_request"},
		{name: "empty patch", as: "admin", method: "PATCH", path: orgPath, body: map[string]any{}, status: 400, code: "invalid_request"},
		{name: "pause unknown field", as: "admin", method: "POST", path: orgPath + "/pause", body: map[string]any{"reason": "x", "until": "never"}, status: 400, code: "invalid_request"},
		{name: "grant of zero", as: "admin", method: "POST", path: orgPath + "/grants", body: map[string]any{"amount_micros": 0, "expires_at": "2999-01-01T00:00:00Z", "reference": "g0"}, status: 400, code: "invalid_request"},
		{name: "grant without expires_at", as: "admin", method: "POST", path: orgPath + "/grants", body: map[string]any{"amount_micros": 1, "reference": "g1"}, status: 400, code: "invalid_request"},
		{name: "grant with a malformed expires_at", as: "admin", method: "POST", path: orgPath + "/grants", body: map[string]any{"amount_micros": 1, "expires_at": "2999-01-01", "reference": "g2"}, status: 400, code: "invalid_request"},
		{name: "rate card with an unknown per", as: "admin", method: "PUT", path: orgPath + "/rates", body: map[string]any{"channels": map[string]any{"sms": map[string]any{"per": "month", "prices": map[string]any{"*": 1}}}}, status: 400, code: "invalid_request"},
		{name: "rate card with a negative price", as: "admin", method: "PUT", path: orgPath + "/rates", body: map[string]any{"channels": map[string]any{"sms": map[string]any{"per": "unit", "prices": map[string]any{"*": -1}}}}, status: 400, code: "invalid_request"},
		{name: "rate card with a non-digit prefix", as: "admin", method: "PUT", path: orgPath + "/rates", body: map[string]any{"channels": map[string]any{"sms": map[string]any{"per": "unit", "prices": map[string]any{"+1": 1}}}}, status: 400, code: "invalid_request"},
		{name: "rate card with an upper-case channel", as: "admin", method: "PUT", path: orgPath + "/rates", body: map[string]any{"channels": map[string]any{"SMS": map[string]any{"per": "unit", "prices": map[string]any{"*": 1}}}}, status: 400, code: "invalid_request"},
		{name: "key with an unknown role", as: "admin", method: "POST", path: orgPath + "/keys", body: map[string]any{"role": "owner"}, status: 400, code: "invalid_request"},
	}
	if len(cases) < 45 {
		t.Fatalf("only %d cases", len(cases))
	}

	for _, c := range cases {
		var cl *testserver.Client
		headers := map[string]string{}
		switch c.as {
		case "", "key":
			cl = key
			headers["X-API-Key"] = org.Key
		case "read":
			cl = s.Key(readKey)
			headers["X-API-Key"] = readKey
		case "admin":
			cl = s.Admin()
			headers["Authorization"] = "Bearer " + s.AdminToken
		case "anon":
			cl = s.Anon()
		case "orgkey-on-admin":
			cl = s.Anon().With("Authorization", "Bearer "+org.Key)
			headers["Authorization"] = "Bearer " + org.Key
		default:
			t.Fatalf("%s: unknown client %q", c.name, c.as)
		}
		for k, v := range c.header {
			cl = cl.With(k, v)
			headers[k] = v
		}
		var r *testserver.Response
		if c.raw {
			if _, ok := headers["Content-Type"]; !ok {
				headers["Content-Type"] = "application/json"
			}
			r = oaSendRaw(t, s.URL, c.method, c.path, headers, []byte(c.body.(string)))
		} else {
			var err error
			if r, err = cl.TryDo(c.method, c.path, c.body); err != nil {
				t.Errorf("%s: %s %s: %v", c.name, c.method, c.path, err)
				continue
			}
		}
		badCheck(t, c, r)
	}

	// Nothing was written: the balance, the pause state and the ledger are
	// as they were, and the server is alive.
	after := badSnapshot(t, s, org)
	if after != before {
		t.Errorf("state changed by refused requests:\nbefore %+v\nafter  %+v", before, after)
	}
	s.Anon().Do("GET", "/healthz", nil).Expect(t, 200)
	s.Anon().Do("GET", "/readyz", nil).Expect(t, 200)
}

// badCheck asserts one refusal: the exact status and code, the error
// envelope, and never a 5xx.
func badCheck(t *testing.T, c badCase, r *testserver.Response) {
	t.Helper()
	where := fmt.Sprintf("%s (%s %s)", c.name, c.method, oaShort(c.path))
	if r.Status >= 500 {
		t.Errorf("%s: server error %d: %s", where, r.Status, oaClip(r.Body))
		return
	}
	if r.Status != c.status || r.ErrorCode() != c.code {
		t.Errorf("%s: got %d %q, want %d %q (SPEC.md); body: %s", where, r.Status, r.ErrorCode(), c.status, c.code, oaClip(r.Body))
		return
	}
	if len(r.JSON) != 2 || r.JSON["error"] == nil || r.JSON["meta"] == nil {
		t.Errorf("%s: not the error envelope {error, meta}: %s", where, oaClip(r.Body))
		return
	}
	e, meta := oaObj(r.JSON, "error"), oaObj(r.JSON, "meta")
	if msg, _ := e["message"].(string); msg == "" {
		t.Errorf("%s: error.message missing: %s", where, oaClip(r.Body))
	}
	for k := range e {
		if k != "code" && k != "message" && k != "details" {
			t.Errorf("%s: unexpected error member %q", where, k)
		}
	}
	rid, _ := meta["request_id"].(string)
	ts, _ := meta["timestamp"].(string)
	if rid == "" || ts == "" || len(meta) != 2 || r.Header.Get("X-Request-Id") != rid {
		t.Errorf("%s: bad meta %v (X-Request-Id %q)", where, meta, r.Header.Get("X-Request-Id"))
	}
}

func oaShort(p string) string {
	if len(p) > 80 {
		return p[:80] + "..."
	}
	return p
}

// badTopup returns a top-up body with the given members replaced (a nil
// value removes the member).
func badTopup(over map[string]any) map[string]any {
	b := map[string]any{"amount": 10000, "currency": "usd",
		"successUrl": "https://orbit.devotel.io/billing?topup=ok", "cancelUrl": "https://orbit.devotel.io/billing?topup=cancelled"}
	for k, v := range over {
		if v == nil {
			delete(b, k)
		} else {
			b[k] = v
		}
	}
	return b
}

// badHold returns a reservation body with the given members replaced.
func badHold(over map[string]any) map[string]any {
	b := map[string]any{"reference": "bad-call", "channel": "voice", "amount_micros": 1000, "ttl_seconds": 60}
	for k, v := range over {
		if v == nil {
			delete(b, k)
		} else {
			b[k] = v
		}
	}
	return b
}

func badBatch(n int) map[string]any {
	l := make([]any, n)
	for i := range l {
		l[i] = map[string]any{"reference": fmt.Sprintf("bb-%d", i), "channel": "sms", "amount_micros": 1}
	}
	return map[string]any{"charges": l}
}

// badState is what refused requests must not change.
type badState struct {
	BalanceMicros, AvailableMicros, ReservedMicros, ThresholdMicros int64
	Paused                                                          bool
	Transactions                                                    int
	NewestID                                                        string
	Keys                                                            int
	LastTopup                                                       string
}

func badSnapshot(t *testing.T, s *testserver.Server, org testserver.Org) badState {
	t.Helper()
	b := s.Key(org.Key).Do("GET", "/api/v1/billing/balance", nil).Expect(t, 200).Data()
	st := badState{
		BalanceMicros: oaNum(b["balance_micros"]), AvailableMicros: oaNum(b["available_micros"]),
		ReservedMicros: oaNum(b["reserved_micros"]), ThresholdMicros: oaNum(b["pause_threshold_micros"]),
		Paused: b["outbound_paused"] == true,
	}
	q := "/api/v1/billing/transactions?limit=100"
	for pages := 0; pages < 1000; pages++ {
		d := s.Key(org.Key).Do("GET", q, nil).Expect(t, 200).Data()
		items, _ := d["transactions"].([]any)
		if st.NewestID == "" && len(items) > 0 {
			st.NewestID, _ = oaObj(items[0])["id"].(string)
		}
		st.Transactions += len(items)
		if d["has_more"] != true {
			break
		}
		c := oaObj(d, "next_cursor")
		q = fmt.Sprintf("/api/v1/billing/transactions?limit=100&cursor_ts=%s&cursor_id=%s", c["cursor_ts"], c["cursor_id"])
	}
	lt, _ := s.Key(org.Key).Do("GET", "/api/v1/billing/status", nil).Expect(t, 200).Data()["last_topup"].(map[string]any)
	st.LastTopup = fmt.Sprint(lt)
	st.Keys = len(oaList(t, s.Admin().Do("GET", "/admin/v1/orgs/"+org.ID+"/keys", nil).Expect(t, 200)))
	return st
}
