package server

import (
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/orbit/orbit/engine"
	"github.com/orbit/orbit/server/jsonx"
)

// FuzzDecodeRateCard: any bytes either decode to a card that validates, or
// are refused with a 400 — never a panic; and an accepted card, written as
// the API answers it, decodes to the same card.
func FuzzDecodeRateCard(f *testing.F) {
	for _, seed := range []string{
		`{"channels":{"sms":{"per":"unit","prices":{"1":4200,"44":35000,"*":50000}}}}`,
		`{"channels":{"voice":{"per":"minute","increment":[60,6],"prices":{"1":9000,"*":30000}}}}`,
		`{"channels":{"llm":{"per":"token","models":{"gpt-4o-mini":{"input_per_million":150000,"output_per_million":600000}}}}}`,
		`{"channels":{}}`, `{"channels":{"x":{"per":"unit","prices":{"1a":1}}}}`,
		`{"channels":{"voice":{"per":"minute","increment":[0,6],"prices":{"*":1}}}}`, `[]`, `{"channels":{"sms":{"per":"unit","prices":{"*":-1}}}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := jsonx.Parse(data)
		if err != nil || v.Kind != jsonx.Object {
			return
		}
		card, apiErr := decodeRateCard(v)
		if apiErr != nil {
			if apiErr.status() != 400 {
				t.Fatalf("refusal with status %d", apiErr.status())
			}
			return
		}
		if msg := card.Validate(); msg != "" {
			t.Fatalf("accepted a card that does not validate: %s", msg)
		}
		written := rateCardJSON(&card)
		ch, err := jsonx.Parse([]byte(written))
		if err != nil {
			t.Fatalf("written card %s: %v", written, err)
		}
		again, apiErr := decodeRateCard(jsonx.Value{Kind: jsonx.Object, Fields: []jsonx.Field{{Key: "channels", Value: ch}}})
		if apiErr != nil || rateCardJSON(&again) != written {
			t.Fatalf("card %s decodes again as %s (%v)", written, rateCardJSON(&again), apiErr)
		}
	})
}

// FuzzTxQuery: any query string either parses into a bounded query or is
// refused with a 400; an accepted cursor names a transaction id of its own
// time, and the cursor the server writes for that entry (next_cursor) is
// accepted again as the same cursor.
func FuzzTxQuery(f *testing.F) {
	for _, seed := range []string{
		"limit=30", "limit=0", "limit=101", "cursor_ts=2026-05-16T11:21:18.901Z&cursor_id=ct_06H1MS8JAW00000000300001",
		"cursor_ts=2026-05-16T11:21:18.901Z", "type=spend&channel=sms", "from=2026-01-01T00:00:00Z&to=2025-01-01T00:00:00Z",
		"channel=SMS", "type=nope", "limit=%00",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, query string) {
		var args fasthttp.Args
		args.Parse(query)
		q, apiErr := parseTxQuery(&args)
		if apiErr != nil {
			if apiErr.status() != 400 {
				t.Fatalf("refusal with status %d", apiErr.status())
			}
			return
		}
		if q.Limit < 1 || q.Limit > transactionsLimitMax {
			t.Fatalf("limit %d accepted", q.Limit)
		}
		if q.FromMs > 0 && q.ToMs > 0 && q.FromMs >= q.ToMs {
			t.Fatalf("empty window accepted: %d >= %d", q.FromMs, q.ToMs)
		}
		if q.BeforeID == "" {
			return
		}
		ms, ok := engine.IDTimeMs(q.BeforeID, engine.PrefixTransaction)
		if !ok {
			t.Fatalf("cursor_id %q accepted", q.BeforeID)
		}
		var next fasthttp.Args
		next.Set("cursor_ts", formatTime(ms))
		next.Set("cursor_id", q.BeforeID)
		if again, apiErr := parseTxQuery(&next); apiErr != nil || again.BeforeID != q.BeforeID {
			t.Fatalf("next_cursor %s refused: %v", next.String(), apiErr)
		}
	})
}
