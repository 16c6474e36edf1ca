package server

import (
	"testing"

	"github.com/orbit/orbit/engine"
)

// TestFuzzHarnessAcceptsValidRequests: the fuzzers' success checks are not
// vacuous. A valid request of each fuzzed route passes through the harness
// with its success status and submits its command, and an invalid one is
// refused having submitted nothing.
func TestFuzzHarnessAcceptsValidRequests(t *testing.T) {
	h := newFuzzHarness()
	for _, c := range []struct {
		method, route string
		body          string
		key           string
		status        int
		kind          engine.CommandKind
	}{
		{"POST", "charges", `{"reference":"s_1","channel":"sms","amount_micros":4200,"metadata":{"c":"x"}}`, "", 201, engine.CmdCharge},
		{"POST", "charges", `{"reference":"s_1","channel":"voice","usage":{"destination":"44","seconds":61}}`, "", 201, engine.CmdCharge},
		{"POST", "charges", `{"reference":"s_1","channel":"norate","usage":{"units":1}}`, "", 422, 0},
		{"POST", "charges", `{"reference":"s 1","channel":"sms","amount_micros":1}`, "", 400, 0},
		{"POST", "charges/batch", `{"charges":[{"reference":"b_1","channel":"sms","amount_micros":1}]}`, "", 200, engine.CmdCharge},
		{"POST", "reservations", `{"reference":"r_1","channel":"sms","amount_micros":5000,"ttl_seconds":60}`, "", 201, engine.CmdHoldCreate},
		{"POST", "reservations/" + engine.FirstIDAt(engine.PrefixReservation, fuzzTimeMs) + "/extend", `{"amount_micros":1}`, "extend-key-1", 200, engine.CmdHoldExtend},
		{"POST", "reservations/" + engine.FirstIDAt(engine.PrefixReservation, fuzzTimeMs) + "/commit", `{"amount_micros":1}`, "", 201, engine.CmdHoldCommit},
		{"POST", "reservations/" + engine.FirstIDAt(engine.PrefixReservation, fuzzTimeMs) + "/release", ``, "", 200, engine.CmdHoldRelease},
		{"POST", "reservations/nope/release", ``, "", 404, 0},
		{"POST", "refunds", `{"transaction_id":"` + engine.FirstIDAt(engine.PrefixTransaction, fuzzTimeMs) + `"}`, "refund-key-1", 201, engine.CmdRefund},
		{"POST", "refunds", `{"transaction_id":"` + engine.FirstIDAt(engine.PrefixTransaction, fuzzTimeMs) + `"}`, "short", 400, 0},
		{"POST", "charges/" + engine.FirstIDAt(engine.PrefixTransaction, fuzzTimeMs) + "/delivery", `{"status":"failed"}`, "", 200, engine.CmdDelivery},
		{"POST", "balance/top-up", `{"amount":500,"successUrl":"https://a.example/","cancelUrl":"https://a.example/"}`, "topup-key-1", 201, engine.CmdTopupCreate},
	} {
		var hdr []string
		if c.key != "" {
			hdr = []string{"Idempotency-Key", c.key}
		}
		var body []byte
		if c.body != "" {
			body = []byte(c.body)
		}
		a := h.orgDo(t, c.method, c.route, body, hdr...)
		if a.status != c.status || c.kind != 0 && (len(a.cmds) != 1 || a.cmds[0].Kind != c.kind) || c.kind == 0 && len(a.cmds) != 0 {
			t.Errorf("%s %s %s: status %d submitted %+v, want %d and %v", c.method, c.route, c.body, a.status, a.cmds, c.status, c.kind)
		}
	}
	for _, c := range []struct {
		method, route, body string
		status              int
		kind                engine.CommandKind
	}{
		{"POST", "orgs/" + fuzzOrg + "/adjustments", `{"amount_micros":-1,"reference":"adj-1"}`, 201, engine.CmdAdjustment},
		{"POST", "orgs/" + fuzzOrg + "/grants", `{"amount_micros":1,"reference":"g-1","expires_at":"2999-01-01T00:00:00Z"}`, 201, engine.CmdGrant},
		{"PUT", "rates", `{"channels":{"sms":{"per":"unit","prices":{"*":1}}}}`, 200, engine.CmdSetRates},
		{"PUT", "fx-rates", `{"eur":1.0825}`, 200, engine.CmdSetFxRates},
		{"PUT", "fx-rates", `{"eur":1e0}`, 400, 0},
	} {
		a := h.adminDo(t, c.method, c.route, []byte(c.body))
		if a.status != c.status || c.kind != 0 && (len(a.cmds) != 1 || a.cmds[0].Kind != c.kind) || c.kind == 0 && len(a.cmds) != 0 {
			t.Errorf("%s %s %s: status %d submitted %+v, want %d and %v", c.method, c.route, c.body, a.status, a.cmds, c.status, c.kind)
		}
	}
}
