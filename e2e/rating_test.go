package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orbit/orbit/internal/testserver"
)

var rateCard = map[string]any{"channels": map[string]any{
	"sms":   map[string]any{"per": "unit", "prices": map[string]any{"1": 4200, "44": 35000, "*": 50000}},
	"voice": map[string]any{"per": "minute", "increment": []int{60, 6}, "prices": map[string]any{"1": 9000, "*": 30000}},
	"llm": map[string]any{"per": "token", "models": map[string]any{
		"gpt-4o-mini": map[string]any{"input_per_million": 150000, "output_per_million": 600000}}},
}}

func mustRates(t *testing.T, s *testserver.Server) int64 {
	t.Helper()
	return num(t, s.Admin().Do("PUT", "/admin/v1/rates", rateCard).Expect(t, 200).Data(), "version")
}

func TestRatedCharges(t *testing.T) {
	s := testserver.Start(t)
	org := s.MustOrg(t, "Rated", 10_000_000)
	c := s.Key(org.Key)
	if r := c.Do("POST", "/api/v1/billing/charges", map[string]any{"reference": "u0", "channel": "sms", "usage": map[string]any{"destination": "14155550100", "units": 1}}); r.Status != 422 || r.ErrorCode() != "no_rate" {
		t.Fatalf("usage before any card: %d %s", r.Status, r.Body)
	}
	version := mustRates(t, s)
	cases := []struct {
		channel string
		usage   map[string]any
		cost    int64
		country any
	}{
		{"sms", map[string]any{"destination": "14155550100", "units": 1}, 4200, "1"},
		{"sms", map[string]any{"destination": "447700900123", "units": 2}, 70000, "44"},
		{"sms", map[string]any{"destination": "33612345678"}, 50000, "*"},
		{"voice", map[string]any{"destination": "14155550100", "seconds": 61}, 9900, "1"}, // 66 s x 9000 / 60
		{"voice", map[string]any{"destination": "14155550100", "seconds": 0}, 0, "1"},     // a 0-second call
		{"llm", map[string]any{"model": "gpt-4o-mini", "input_tokens": 1000, "output_tokens": 500}, 450, nil},
		{"llm", map[string]any{"model": "gpt-4o-mini", "input_tokens": 1, "output_tokens": 0}, 1, nil}, // rounded up
	}
	for i, tc := range cases {
		d := c.Do("POST", "/api/v1/billing/charges", map[string]any{"reference": fmt.Sprint("rated-", i), "channel": tc.channel, "usage": tc.usage}).Expect(t, 201).Data()
		tx := obj(t, d, "transaction")
		md := obj(t, tx, "metadata")
		if num(t, tx, "amount_micros") != -tc.cost || num(t, md, "rate_version") != version || md["country"] != tc.country || md["channel"] != tc.channel {
			t.Fatalf("case %d: %v", i, tx)
		}
	}
	if r := c.Do("POST", "/api/v1/billing/charges", map[string]any{"reference": "x", "channel": "llm", "usage": map[string]any{"model": "unknown"}}); r.Status != 422 {
		t.Fatalf("unknown model: %d", r.Status)
	}
	// Usage with an input its channel's rate does not take is refused, not
	// billed as if the input were absent (seconds on sms would bill 1 unit),
	// for charges and holds alike, and writes nothing.
	before := num(t, c.Do("GET", "/api/v1/billing/balance", nil).Expect(t, 200).Data(), "balance_micros")
	for _, tc := range []struct {
		path, channel, input string
		usage                map[string]any
	}{
		{"/charges", "sms", "seconds", map[string]any{"destination": "14155550100", "seconds": 5}},
		{"/charges", "sms", "model", map[string]any{"destination": "14155550100", "units": 1, "model": "gpt-4o-mini"}},
		{"/charges", "voice", "units", map[string]any{"destination": "14155550100", "seconds": 60, "units": 2}},
		{"/charges", "llm", "destination", map[string]any{"model": "gpt-4o-mini", "input_tokens": 10, "destination": "1"}},
		{"/reservations", "voice", "input_tokens", map[string]any{"destination": "14155550100", "seconds": 60, "input_tokens": 3}},
	} {
		r := c.Do("POST", "/api/v1/billing"+tc.path, map[string]any{"reference": "foreign-" + tc.channel + "-" + tc.input, "channel": tc.channel, "usage": tc.usage})
		if r.Status != 422 || r.ErrorCode() != "no_rate" || !strings.Contains(r.ErrorMessage(), "usage."+tc.input) {
			t.Errorf("%s %s with %s: %d %s, want 422 no_rate naming usage.%s", tc.path, tc.channel, tc.input, r.Status, r.Body, tc.input)
		}
	}
	if after := num(t, c.Do("GET", "/api/v1/billing/balance", nil).Expect(t, 200).Data(), "balance_micros"); after != before {
		t.Errorf("refused usage moved the balance from %d to %d", before, after)
	}
	// An org override replaces the default for the channels it names.
	s.Admin().Do("PUT", "/admin/v1/orgs/"+org.ID+"/rates", map[string]any{"channels": map[string]any{
		"sms": map[string]any{"per": "unit", "prices": map[string]any{"*": 1000}}}}).Expect(t, 200)
	rates := c.Do("GET", "/api/v1/billing/rates", nil).Expect(t, 200).Data()
	chs := obj(t, rates, "channels")
	if num(t, obj(t, obj(t, chs, "sms"), "prices"), "*") != 1000 || chs["voice"] == nil {
		t.Fatalf("effective rates: %v", rates)
	}
	d := c.Do("POST", "/api/v1/billing/charges", map[string]any{"reference": "after-override", "channel": "sms", "usage": map[string]any{"destination": "14155550100"}}).Expect(t, 201).Data()
	if num(t, obj(t, d, "transaction"), "amount_micros") != -1000 {
		t.Fatalf("override not applied: %v", d)
	}
	// Replay of a rated charge after a new card is still a replay.
	re := c.Do("POST", "/api/v1/billing/charges", map[string]any{"reference": "rated-0", "channel": "sms", "usage": map[string]any{"destination": "14155550100", "units": 1}}).Expect(t, 200)
	if num(t, obj(t, re.Data(), "transaction"), "amount_micros") != -4200 {
		t.Fatalf("replay: %s", re.Body)
	}
	grouped := c.Do("GET", "/api/v1/billing/usage-by-channel?group_by=destination", nil).Expect(t, 200).JSON["data"].([]any)
	keys := map[string]bool{}
	for _, g := range grouped {
		keys[g.(map[string]any)["key"].(string)] = true
	}
	for _, k := range []string{"sms:1", "sms:44", "sms:*", "voice:1", "llm:-"} {
		if !keys[k] {
			t.Fatalf("group %s missing from %v", k, keys)
		}
	}
	if keys["llm:gpt-4o-mini"] {
		t.Fatalf("group_by=destination shows a model: %v", keys)
	}
	byModel := c.Do("GET", "/api/v1/billing/usage-by-channel?group_by=model", nil).Expect(t, 200).JSON["data"].([]any)
	found := false
	for _, g := range byModel {
		if g.(map[string]any)["key"] == "llm:gpt-4o-mini" {
			found = true
		}
	}
	if !found {
		t.Fatalf("llm:gpt-4o-mini missing: %v", byModel)
	}
	for _, g := range byModel {
		if k := g.(map[string]any)["key"].(string); k != "llm:gpt-4o-mini" && !strings.HasSuffix(k, ":-") {
			t.Fatalf("group_by=model shows %q", k)
		}
	}
	// The operator reads the default card and an org's effective card.
	def := s.Admin().Do("GET", "/admin/v1/rates", nil).Expect(t, 200).Data()
	if num(t, obj(t, obj(t, obj(t, def, "channels"), "sms"), "prices"), "*") != 50000 {
		t.Fatalf("default card: %v", def)
	}
	eff := s.Admin().Do("GET", "/admin/v1/orgs/"+org.ID+"/rates", nil).Expect(t, 200).Data()
	if num(t, obj(t, obj(t, obj(t, eff, "channels"), "sms"), "prices"), "*") != 1000 {
		t.Fatalf("org's effective card: %v", eff)
	}
}

func balanceOf(t *testing.T, c *testserver.Client) map[string]any {
	t.Helper()
	return c.Do("GET", "/api/v1/billing/balance", nil).Expect(t, 200).Data()
}

func TestVoiceCallHoldExtendCommit(t *testing.T) {
	s := testserver.Start(t)
	mustRates(t, s)
	org := s.MustOrg(t, "Voice", 1_000_000)
	c := s.Key(org.Key)
	hold := c.Do("POST", "/api/v1/billing/reservations", map[string]any{"reference": "call-1", "channel": "voice", "usage": map[string]any{"destination": "14155550100", "seconds": 120}}).Expect(t, 201).Data()
	rsv := obj(t, hold, "reservation")
	id := rsv["id"].(string)
	if num(t, rsv, "amount_micros") != 18_000 || rsv["status"] != "open" {
		t.Fatalf("hold: %v", rsv)
	}
	b := obj(t, hold, "balance")
	if num(t, b, "balance_micros") != 1_000_000 || num(t, b, "available_micros") != 982_000 || num(t, b, "reserved_micros") != 18_000 {
		t.Fatalf("balance under hold: %v", b)
	}
	// The same create again replays.
	c.Do("POST", "/api/v1/billing/reservations", map[string]any{"reference": "call-1", "channel": "voice", "usage": map[string]any{"destination": "14155550100", "seconds": 120}}).Expect(t, 200)
	for i, key := range []string{"extend-key-1", "extend-key-2"} {
		c.With("Idempotency-Key", key).Do("POST", "/api/v1/billing/reservations/"+id+"/extend", map[string]any{"amount_micros": 9000}).Expect(t, 200)
		// A retry with the same key never holds twice.
		r := c.With("Idempotency-Key", key).Do("POST", "/api/v1/billing/reservations/"+id+"/extend", map[string]any{"amount_micros": 9000}).Expect(t, 200)
		if num(t, obj(t, r.Data(), "reservation"), "amount_micros") != 18_000+9000*int64(i+1) {
			t.Fatalf("after extend %d: %s", i, r.Body)
		}
	}
	// A commit whose usage names an input the hold's rate does not take is
	// refused before anything is written; the hold stays open.
	if r := c.Do("POST", "/api/v1/billing/reservations/"+id+"/commit", map[string]any{"usage": map[string]any{"destination": "14155550100", "seconds": 150, "units": 3}}); r.Status != 422 || r.ErrorCode() != "no_rate" || !strings.Contains(r.ErrorMessage(), "usage.units") {
		t.Fatalf("commit with units on a per-minute hold: %d %s", r.Status, r.Body)
	}
	// The call lasted 150 s: 150 billable -> 60 + ceil(90/6)*6 = 150 s x 9000/60 = 22,500.
	commit := c.Do("POST", "/api/v1/billing/reservations/"+id+"/commit", map[string]any{"usage": map[string]any{"destination": "14155550100", "seconds": 150}}).Expect(t, 201).Data()
	tx := obj(t, commit, "transaction")
	if num(t, tx, "amount_micros") != -22_500 || commit["capped"] != false || num(t, commit, "uncollected_micros") != 0 || tx["reference"] != "reservation:call-1" {
		t.Fatalf("commit: %v", commit)
	}
	b = balanceOf(t, c)
	if num(t, b, "balance_micros") != 977_500 || num(t, b, "reserved_micros") != 0 || num(t, b, "available_micros") != 977_500 {
		t.Fatalf("after commit: %v", b)
	}
	// Same commit replays; another is 409; release after commit is 409; extend after commit 409.
	c.Do("POST", "/api/v1/billing/reservations/"+id+"/commit", map[string]any{"usage": map[string]any{"destination": "14155550100", "seconds": 150}}).Expect(t, 200)
	for _, r := range []*testserver.Response{
		c.Do("POST", "/api/v1/billing/reservations/"+id+"/commit", map[string]any{"amount_micros": 5}),
		c.Do("POST", "/api/v1/billing/reservations/"+id+"/release", nil),
		c.With("Idempotency-Key", "extend-key-3").Do("POST", "/api/v1/billing/reservations/"+id+"/extend", map[string]any{"amount_micros": 1}),
	} {
		if r.Status != 409 || r.ErrorCode() != "reservation_closed" {
			t.Fatalf("after commit: %d %s", r.Status, r.Body)
		}
	}
	got := c.Do("GET", "/api/v1/billing/reservations/"+id, nil).Expect(t, 200).Data()
	if got["status"] != "committed" || num(t, got, "captured_micros") != 22_500 {
		t.Fatalf("reservation: %v", got)
	}
}

func TestLLMStreamCommitAboveHoldAndCapped(t *testing.T) {
	s := testserver.Start(t)
	mustRates(t, s)
	org := s.MustOrg(t, "LLM", 10_000)
	c := s.Key(org.Key)
	// Above the hold, with funds: the excess comes from available.
	id := obj(t, c.Do("POST", "/api/v1/billing/reservations", map[string]any{"reference": "stream-1", "channel": "llm", "amount_micros": 1000}).Expect(t, 201).Data(), "reservation")["id"].(string)
	d := c.Do("POST", "/api/v1/billing/reservations/"+id+"/commit", map[string]any{"usage": map[string]any{"model": "gpt-4o-mini", "input_tokens": 2000, "output_tokens": 2000}}).Expect(t, 201).Data()
	if num(t, obj(t, d, "transaction"), "amount_micros") != -1500 || d["capped"] != false {
		t.Fatalf("commit above hold: %v", d)
	}
	// Without funds: capped at what the wallet has, never below zero.
	id = obj(t, c.Do("POST", "/api/v1/billing/reservations", map[string]any{"reference": "stream-2", "channel": "llm", "amount_micros": 2000}).Expect(t, 201).Data(), "reservation")["id"].(string)
	d = c.Do("POST", "/api/v1/billing/reservations/"+id+"/commit", map[string]any{"amount_micros": 50_000}).Expect(t, 201).Data()
	if num(t, obj(t, d, "transaction"), "amount_micros") != -8500 || d["capped"] != true || num(t, d, "uncollected_micros") != 41_500 {
		t.Fatalf("capped commit: %v", d)
	}
	b := balanceOf(t, c)
	if num(t, b, "balance_micros") != 0 || b["outbound_block_reason"] != "insufficient_balance" {
		t.Fatalf("after capped commit: %v", b)
	}
	if r := c.Do("POST", "/api/v1/billing/reservations", map[string]any{"reference": "stream-3", "channel": "llm", "amount_micros": 1}); r.Status != 402 {
		t.Fatalf("hold on an empty wallet: %d", r.Status)
	}
}

func TestOneSecondHoldExpires(t *testing.T) {
	s := testserver.Start(t)
	org := s.MustOrg(t, "Expiry", 100_000)
	c := s.Key(org.Key)
	id := obj(t, c.Do("POST", "/api/v1/billing/reservations", map[string]any{"reference": "short", "channel": "voice", "amount_micros": 60_000, "ttl_seconds": 1}).Expect(t, 201).Data(), "reservation")["id"].(string)
	if num(t, balanceOf(t, c), "available_micros") != 40_000 {
		t.Fatal("hold did not reduce available")
	}
	// Released by the system within a second of expires_at, with no traffic.
	start := time.Now()
	testserver.WaitFor(t, 5*time.Second, "hold expiry", func() bool {
		return c.Do("GET", "/api/v1/billing/reservations/"+id, nil).Data()["status"] == "expired"
	})
	if waited := time.Since(start); waited > 2500*time.Millisecond {
		t.Fatalf("expired %s after creation", waited)
	}
	if b := balanceOf(t, c); num(t, b, "available_micros") != 100_000 || num(t, b, "reserved_micros") != 0 {
		t.Fatalf("after expiry: %v", b)
	}
	c.Do("POST", "/api/v1/billing/reservations/"+id+"/release", nil).Expect(t, 200) // no-op
	if r := c.With("Idempotency-Key", "late-extend").Do("POST", "/api/v1/billing/reservations/"+id+"/extend", map[string]any{"amount_micros": 1}); r.Status != 409 {
		t.Fatalf("extend after expiry: %d", r.Status)
	}
	// A late commit still bills, from available funds.
	d := c.Do("POST", "/api/v1/billing/reservations/"+id+"/commit", map[string]any{"amount_micros": 30_000}).Expect(t, 201).Data()
	if d["expired"] != true || num(t, obj(t, d, "transaction"), "amount_micros") != -30_000 {
		t.Fatalf("late commit: %v", d)
	}
}

func TestGrantsExpireUnderConcurrentSpends(t *testing.T) {
	s := testserver.Start(t)
	org := s.MustOrg(t, "Grants", 0)
	c, a := s.Key(org.Key), s.Admin()
	a.Do("POST", "/admin/v1/orgs/"+org.ID+"/adjustments", map[string]any{"amount_micros": 500_000, "reason": "paid", "reference": "cash"}).Expect(t, 201)
	expires := time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339Nano)
	g := a.Do("POST", "/admin/v1/orgs/"+org.ID+"/grants", map[string]any{"amount_micros": 300_000, "expires_at": expires, "reason": "promo", "reference": "promo-1"}).Expect(t, 201).Data()
	if obj(t, g, "transaction")["expires_at"] == nil {
		t.Fatalf("grant entry without expires_at: %v", g)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	spent := int64(0)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				r, err := c.TryDo("POST", "/api/v1/billing/charges", chargeBody(fmt.Sprintf("g%d-%d", w, i), 1000))
				if err == nil && r.Status == 201 {
					mu.Lock()
					spent += 1000
					mu.Unlock()
				}
			}
		}(w)
	}
	wg.Wait()
	// Spends drew on the grant first; what is left of it expires.
	testserver.WaitFor(t, 6*time.Second, "grant expiry", func() bool {
		txs := c.Do("GET", "/api/v1/billing/transactions?type=expiry", nil).Data()["transactions"].([]any)
		return len(txs) == 1
	})
	exp := c.Do("GET", "/api/v1/billing/transactions?type=expiry", nil).Data()["transactions"].([]any)[0].(map[string]any)
	if num(t, exp, "amount_micros") != -(300_000 - spent) {
		t.Fatalf("expiry %d, want the grant's unused %d", num(t, exp, "amount_micros"), 300_000-spent)
	}
	if b := balanceOf(t, c); num(t, b, "balance_micros") != 500_000 {
		t.Fatalf("balance after expiry %v, want the paid 500000 intact", b)
	}
	audit := a.Do("GET", "/admin/v1/audit", nil).Expect(t, 200).Data()
	if len(audit["mismatches"].([]any)) != 0 {
		t.Fatalf("audit: %v", audit)
	}
}

// oaExerciseRateReads covers the operator's rate-card reads (TestEveryRoute).
func oaExerciseRateReads(t *testing.T, s *testserver.Server) {
	a := s.Admin()
	a.Do("GET", "/admin/v1/rates", nil).Expect(t, 200)
	if r := s.Anon().Do("GET", "/admin/v1/rates", nil); r.Status != 401 {
		t.Errorf("default card without the token: %d", r.Status)
	}
	org := s.MustOrg(t, "RateReads", 0)
	if d := a.Do("GET", "/admin/v1/orgs/"+org.ID+"/rates", nil).Expect(t, 200).Data(); d["org_id"] != org.ID {
		t.Errorf("org card: %v", d)
	}
	if r := a.Do("GET", "/admin/v1/orgs/org_00000000000000000000000000/rates", nil); r.Status != 404 {
		t.Errorf("unknown org's card: %d", r.Status)
	}
	if r := s.Anon().Do("GET", "/admin/v1/orgs/"+org.ID+"/rates", nil); r.Status != 401 {
		t.Errorf("org card without the token: %d", r.Status)
	}
}
