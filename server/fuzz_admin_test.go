package server

import (
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/orbit/orbit/engine"
	"github.com/orbit/orbit/server/jsonx"
)

// adminFuzzRoutes are the operator API's routes with a body; {} is the
// fuzzed org id.
var adminFuzzRoutes = []struct{ method, route string }{
	{"POST", "orgs"},
	{"PATCH", "orgs/{}"},
	{"POST", "orgs/{}/keys"},
	{"POST", "orgs/{}/adjustments"},
	{"POST", "orgs/{}/grants"},
	{"POST", "orgs/{}/pause"},
	{"POST", "orgs/{}/unpause"},
	{"POST", "cluster/join"},
	{"PUT", "rates"},
	{"PUT", "orgs/{}/rates"},
	{"PUT", "fx-rates"},
}

// FuzzAdminBody fuzzes the operator API's bodies (orgs, keys, adjustments,
// grants, pause, cluster join, rate cards, FX rates) and the org id in
// their paths, with the properties of the org API's fuzzers.
func FuzzAdminBody(f *testing.F) {
	f.Add(uint8(3), fuzzOrg, []byte(`{"amount_micros":-5000,"reason":"goodwill","reference":"adj-1"}`))
	h := newFuzzHarness()
	f.Fuzz(func(t *testing.T, route uint8, id string, body []byte) {
		seg, ok := pathSegment(id)
		if !ok {
			return
		}
		r := adminFuzzRoutes[int(route)%len(adminFuzzRoutes)]
		path := strings.Replace(r.route, "{}", seg, 1)
		send := func(b []byte) fuzzAnswer { return h.adminDo(t, r.method, path, b) }
		a := send(body)
		a.expectStatus(t, 200, 201, 400, 413)
		if a.status >= 400 {
			return
		}
		now := time.Now().UnixMilli()
		switch r.route {
		case "orgs":
			c := a.oneCmd(t, engine.CmdCreateOrg)
			if strings.TrimSpace(c.Name) == "" || len(c.Name) > nameLenMax {
				t.Fatalf("org name %q accepted", c.Name)
			}
		case "orgs/{}":
			c := a.oneCmd(t, engine.CmdUpdateOrg)
			if c.OrgID != id || !c.SetName && !c.SetThreshold || c.SetName && (strings.TrimSpace(c.Name) == "" || len(c.Name) > nameLenMax) ||
				c.ThresholdMicros < 0 || c.ThresholdMicros > engine.MaxAmountMicros {
				t.Fatalf("org update %+v accepted", c)
			}
		case "orgs/{}/keys":
			c := a.oneCmd(t, engine.CmdCreateKey)
			if c.OrgID != id || (c.Role != engine.RoleAdmin && c.Role != engine.RoleCharge && c.Role != engine.RoleRead) ||
				len(c.KeyHash) != 64 || !strings.HasPrefix(c.KeyPrefix, apiKeyPrefix) {
				t.Fatalf("key %+v accepted", c)
			}
			return // a new secret each time: not comparable
		case "orgs/{}/adjustments":
			c := a.oneCmd(t, engine.CmdAdjustment)
			if c.OrgID != id || c.AmountMicros == 0 || c.AmountMicros > engine.MaxAmountMicros || c.AmountMicros < -engine.MaxAmountMicros ||
				checkReference("reference", c.Reference) != nil || utf8.RuneCountInString(c.Reason) > reasonLenMax {
				t.Fatalf("adjustment %+v accepted", c)
			}
		case "orgs/{}/grants":
			c := a.oneCmd(t, engine.CmdGrant)
			if c.OrgID != id || c.AmountMicros < 1 || c.AmountMicros > engine.MaxAmountMicros || c.ExpiresAtMs <= now-60_000 ||
				checkReference("reference", c.Reference) != nil || utf8.RuneCountInString(c.Reason) > reasonLenMax {
				t.Fatalf("grant %+v accepted", c)
			}
		case "orgs/{}/pause":
			if c := a.oneCmd(t, engine.CmdPause); c.OrgID != id || utf8.RuneCountInString(c.Reason) > reasonLenMax {
				t.Fatalf("pause %+v accepted", c)
			}
		case "orgs/{}/unpause":
			if c := a.oneCmd(t, engine.CmdUnpause); c.OrgID != id {
				t.Fatalf("unpause %+v accepted", c)
			}
		case "cluster/join":
			if len(a.cmds) != 0 {
				t.Fatalf("a join submitted %+v", a.cmds)
			}
		case "rates", "orgs/{}/rates":
			c := a.oneCmd(t, engine.CmdSetRates)
			if c.Card == nil || c.Card.Validate() != "" || (r.route == "rates") != (c.OrgID == "") {
				t.Fatalf("rate card %+v accepted for org %q", c.Card, c.OrgID)
			}
			// The card answered is the card committed.
			v, err := jsonx.Parse(a.data)
			ch, _ := v.Get("channels")
			if err != nil {
				t.Fatal(err)
			}
			card, aerr := decodeRateCard(jsonx.Value{Kind: jsonx.Object, Fields: []jsonx.Field{{Key: "channels", Value: ch}}})
			if aerr != nil || !reflect.DeepEqual(rateCardJSON(&card), rateCardJSON(c.Card)) {
				t.Fatalf("answered card %s (%v), committed %s", rateCardJSON(&card), aerr, rateCardJSON(c.Card))
			}
		case "fx-rates":
			c := a.oneCmd(t, engine.CmdSetFxRates)
			for cur, rate := range c.FxRates {
				if !validCurrencyCode(cur) || cur == "usd" || rate < 1 || rate > engine.FxRateMax {
					t.Fatalf("FX rate %s=%d accepted", cur, rate)
				}
			}
			v, err := jsonx.Parse(a.data)
			if err != nil {
				t.Fatal(err)
			}
			table, aerr := parseFxTable(v)
			if aerr != nil || len(table) != len(c.FxRates) || len(table) > 0 && !reflect.DeepEqual(table, c.FxRates) {
				t.Fatalf("answered FX table %v (%v), committed %v", table, aerr, c.FxRates)
			}
		}
		h.samePermuted(t, a, send, body)
	})
}

// rateCardJSON is a card as the API writes it: equal cards write alike.
func rateCardJSON(c *engine.RateCard) string {
	var w jw
	writeRateCard(&w, c)
	return string(w.b)
}

// FuzzParseFxRate: a rate that parses writes back as a number that parses
// to the same rate, and no refused text slips through the table parser.
func FuzzParseFxRate(f *testing.F) {
	for _, s := range []string{"1.0825", "0.00000001", "10000", "10000.000000001", "01.5", "1e3", "-1", "1.", ".5", "0.000000010"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		rate, ok := parseFxRate(text)
		if !ok {
			return
		}
		if rate < 1 || rate > engine.FxRateMax {
			t.Fatalf("%q parsed to %d, out of range", text, rate)
		}
		back := string(appendFxRate(nil, rate))
		if again, ok := parseFxRate(back); !ok || again != rate {
			t.Fatalf("%q -> %d -> %q -> %d, %v", text, rate, back, again, ok)
		}
	})
}
