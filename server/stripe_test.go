package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v79"
	"github.com/stripe/stripe-go/v79/webhook"
	"github.com/valyala/fasthttp"

	"github.com/orbit/orbit/engine"
)

const testWebhookSecret = "whsec_unit_test"

// webhookStore is the part of Store the webhook reads; everything else
// panics (the embedded interface is nil), so a test fails loudly if the
// webhook touches more.
type webhookStore struct {
	Store
	submitted [][]engine.Command
	results   func(engine.Command) engine.Result
	submitErr error
	topups    map[string]engine.TopupRecord // by payment intent
	orgs      []engine.OrgRecord
	readErr   error
}

func (f *webhookStore) Submit(_ context.Context, cmds []engine.Command) ([]engine.Result, error) {
	if f.submitErr != nil {
		return nil, f.submitErr
	}
	f.submitted = append(f.submitted, append([]engine.Command(nil), cmds...))
	out := make([]engine.Result, len(cmds))
	for i, c := range cmds {
		if f.results != nil {
			out[i] = f.results(c)
		}
	}
	return out, nil
}

func (f *webhookStore) TopupByPaymentIntent(pi string) (engine.TopupRecord, bool, error) {
	if f.readErr != nil {
		return engine.TopupRecord{}, false, f.readErr
	}
	t, ok := f.topups[pi]
	return t, ok, nil
}

func (f *webhookStore) Orgs() []engine.OrgRecord { return f.orgs }
func (f *webhookStore) OrgCount() int            { return len(f.orgs) }

func newWebhookServer(t *testing.T, st *webhookStore, secret string) *Server {
	t.Helper()
	return New(Config{
		Store: st, AdminToken: "t", PublicURL: "http://127.0.0.1:1",
		Logger:              slog.New(slog.NewTextHandler(io.Discard, nil)),
		StripeWebhookSecret: secret,
	})
}

// stripeEvent is a webhook event body with a data.object.
func stripeEvent(id, typ string, object any) []byte {
	b, err := json.Marshal(map[string]any{
		"id": id, "object": "event", "type": typ, "api_version": "2020-08-27", "created": 1747390953,
		"livemode": false, "data": map[string]any{"object": object},
	})
	if err != nil {
		panic(err)
	}
	return b
}

// signed returns the Stripe-Signature header of body at ts.
func signed(body []byte, secret string, ts time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret, Timestamp: ts}).Header
}

// deliver posts an event to the webhook handler and returns the status and
// the error code ("" on success).
func deliver(t *testing.T, s *Server, body []byte, sig string) (int, string) {
	t.Helper()
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.SetRequestURI(stripeWebhookPath)
	ctx.Request.Header.SetContentType("application/json; charset=utf-8")
	if sig != "" {
		ctx.Request.Header.Set("Stripe-Signature", sig)
	}
	ctx.Request.SetBody(body)
	s.stripeWebhook(&ctx, &reqState{requestID: "req_test", start: time.Now()}, nil, "")
	var env struct {
		Data  map[string]any `json:"data"`
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(ctx.Response.Body(), &env); err != nil {
		t.Fatalf("webhook answer is not JSON: %v: %s", err, ctx.Response.Body())
	}
	if ctx.Response.StatusCode() == 200 && env.Data["received"] != true {
		t.Fatalf("200 without received: true: %s", ctx.Response.Body())
	}
	return ctx.Response.StatusCode(), env.Error.Code
}

var paidTopup = engine.TopupRecord{ID: "tu_1", OrgID: "org_1", Status: engine.TopupPaid, AmountMinor: 10000, Currency: "usd",
	FxRate: engine.USDRateScale, CreditMicros: 100_000_000, Provider: "stripe", SessionID: "cs_1", PaymentIntent: "pi_1", EntryID: "ct_1"}

func TestWebhookEventCommands(t *testing.T) {
	session := func(paymentStatus string, md map[string]string, clientRef string) map[string]any {
		return map[string]any{"id": "cs_1", "object": "checkout.session", "mode": "payment", "payment_status": paymentStatus,
			"metadata": md, "client_reference_id": clientRef, "payment_intent": "pi_1", "amount_total": 10000, "currency": "usd"}
	}
	md := map[string]string{"org_id": "org_1", "topup_id": "tu_1"}
	refund := func(id string, amount int64, status string, md map[string]string) map[string]any {
		return map[string]any{"id": id, "object": "refund", "amount": amount, "status": status, "metadata": md, "payment_intent": "pi_1"}
	}
	charge := func(refunds []any) map[string]any {
		c := map[string]any{"id": "ch_1", "object": "charge", "payment_intent": "pi_1", "amount": 10000, "amount_refunded": 3000}
		if refunds != nil {
			c["refunds"] = map[string]any{"object": "list", "data": refunds, "has_more": false}
		}
		return c
	}
	dispute := func(status string) map[string]any {
		return map[string]any{"id": "dp_1", "object": "dispute", "amount": 10000, "status": status, "payment_intent": "pi_1", "charge": "ch_1"}
	}
	invoice := map[string]any{"id": "in_1", "object": "invoice", "number": "ABCD-0001", "amount_paid": 10000, "total": 10000,
		"currency": "usd", "status": "paid", "period_start": 1747390000, "period_end": 1747390953, "created": 1747390900,
		"invoice_pdf": "https://pay.stripe.com/invoice/acct_1/in_1/pdf", "customer": "cus_1", "metadata": map[string]string{"org_id": "org_1", "topup_id": "tu_1"}}
	finalized := map[string]any{"id": "in_2", "object": "invoice", "number": "ABCD-0002", "amount_paid": 0, "total": 2500,
		"currency": "eur", "status": "open", "period_start": 1747390000, "period_end": 1747390953, "created": 1747390900,
		"invoice_pdf": nil, "customer": "cus_9", "metadata": map[string]string{}}
	ev := func(typ string) engine.Command {
		return engine.Command{Kind: engine.CmdPaymentEvent, Reference: "evt_1", Name: typ}
	}
	with := func(c engine.Command, f func(*engine.Command)) engine.Command { f(&c); return c }

	cases := []struct {
		name   string
		typ    string
		object any
		want   []engine.Command
	}{
		{"completed and paid credits", engine.EventCheckoutCompleted, session("paid", md, "org_1"), []engine.Command{with(ev(engine.EventCheckoutCompleted), func(c *engine.Command) {
			c.OrgID, c.TopupID, c.SessionID, c.PaymentIntent, c.AmountMinor, c.Currency = "org_1", "tu_1", "cs_1", "pi_1", 10000, "usd"
		})}},
		{"completed but unpaid waits", engine.EventCheckoutCompleted, session("unpaid", md, "org_1"), nil},
		{"org from client_reference_id", engine.EventCheckoutCompleted, session("paid", map[string]string{"topup_id": "tu_1"}, "org_1"), []engine.Command{with(ev(engine.EventCheckoutCompleted), func(c *engine.Command) {
			c.OrgID, c.TopupID, c.SessionID, c.PaymentIntent, c.AmountMinor, c.Currency = "org_1", "tu_1", "cs_1", "pi_1", 10000, "usd"
		})}},
		{"session of no top-up", engine.EventCheckoutCompleted, session("paid", nil, ""), nil},
		{"async payment succeeded credits", engine.EventCheckoutAsyncSucceded, session("paid", md, "org_1"), []engine.Command{with(ev(engine.EventCheckoutAsyncSucceded), func(c *engine.Command) {
			c.OrgID, c.TopupID, c.SessionID, c.PaymentIntent, c.AmountMinor, c.Currency = "org_1", "tu_1", "cs_1", "pi_1", 10000, "usd"
		})}},
		{"expired closes", engine.EventCheckoutExpired, session("unpaid", md, "org_1"), []engine.Command{with(ev(engine.EventCheckoutExpired), func(c *engine.Command) {
			c.OrgID, c.TopupID, c.SessionID, c.PaymentIntent, c.AmountMinor = "org_1", "tu_1", "cs_1", "pi_1", 10000
		})}},
		{"invoice paid", engine.EventInvoicePaid, invoice, []engine.Command{with(ev(engine.EventInvoicePaid), func(c *engine.Command) {
			c.OrgID, c.TopupID = "org_1", "tu_1"
			c.Invoice = &engine.InvoiceRecord{ID: "in_1", OrgID: "org_1", Number: "ABCD-0001", AmountMinor: 10000, Currency: "usd", Status: "paid",
				PeriodStartMs: 1747390000000, PeriodEndMs: 1747390953000, PDFURL: "https://pay.stripe.com/invoice/acct_1/in_1/pdf", CreatedAtMs: 1747390900000, TopupID: "tu_1"}
		})}},
		{"invoice finalized: total, org by customer", engine.EventInvoiceFinalized, finalized, []engine.Command{with(ev(engine.EventInvoiceFinalized), func(c *engine.Command) {
			c.OrgID = "org_9"
			c.Invoice = &engine.InvoiceRecord{ID: "in_2", OrgID: "org_9", Number: "ABCD-0002", AmountMinor: 2500, Currency: "eur", Status: "open",
				PeriodStartMs: 1747390000000, PeriodEndMs: 1747390953000, CreatedAtMs: 1747390900000}
		})}},
		{"charge refunded: one command per refund", engine.EventChargeRefunded, charge([]any{
			refund("re_1", 1000, "succeeded", nil),
			refund("re_2", 2000, "succeeded", map[string]string{stripeRefundEntryKey: "ct_9"}),
			refund("re_3", 500, "failed", nil),
		}), []engine.Command{
			with(ev(engine.EventChargeRefunded), func(c *engine.Command) {
				c.Reference, c.OrgID, c.TopupID, c.PaymentIntent, c.TxID, c.AmountMinor = "evt_1:re_1", "org_1", "tu_1", "pi_1", "re_1", 1000
			}),
			with(ev(engine.EventChargeRefunded), func(c *engine.Command) {
				c.Reference, c.OrgID, c.TopupID, c.PaymentIntent, c.TxID, c.AmountMinor, c.RefundEntryID = "evt_1:re_2", "org_1", "tu_1", "pi_1", "re_2", 2000, "ct_9"
			}),
		}},
		{"charge refunded without its refunds asks Stripe", engine.EventChargeRefunded, charge(nil), []engine.Command{
			with(ev(engine.EventChargeRefunded), func(c *engine.Command) {
				c.Reference, c.OrgID, c.TopupID, c.PaymentIntent, c.TxID, c.AmountMinor = "evt_1:re_listed", "org_1", "tu_1", "pi_1", "re_listed", 700
			}),
		}},
		{"refund of an unknown payment", engine.EventChargeRefunded, map[string]any{"id": "ch_2", "object": "charge", "payment_intent": "pi_unknown",
			"refunds": map[string]any{"data": []any{refund("re_1", 1000, "succeeded", nil)}}}, nil},
		{"dispute created", engine.EventDisputeCreated, dispute("needs_response"), []engine.Command{with(ev(engine.EventDisputeCreated), func(c *engine.Command) {
			c.OrgID, c.TopupID, c.PaymentIntent, c.TxID, c.AmountMinor, c.Reason = "org_1", "tu_1", "pi_1", "dp_1", 10000, "needs_response"
		})}},
		{"dispute closed won", engine.EventDisputeClosed, dispute("won"), []engine.Command{with(ev(engine.EventDisputeClosed), func(c *engine.Command) {
			c.OrgID, c.TopupID, c.PaymentIntent, c.TxID, c.AmountMinor, c.Reason = "org_1", "tu_1", "pi_1", "dp_1", 10000, "won"
		})}},
		{"unknown event type", "customer.created", map[string]any{"id": "cus_1", "object": "customer"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := &webhookStore{topups: map[string]engine.TopupRecord{"pi_1": paidTopup},
				orgs: []engine.OrgRecord{{ID: "org_1", StripeCustomerID: "cus_1"}, {ID: "org_9", StripeCustomerID: "cus_9"}}}
			s := newWebhookServer(t, st, testWebhookSecret)
			if tc.name == "charge refunded without its refunds asks Stripe" {
				s.payments = listedRefunds{devPayments{}}
			}
			body := stripeEvent("evt_1", tc.typ, tc.object)
			status, code := deliver(t, s, body, signed(body, testWebhookSecret, time.Now()))
			if status != 200 || code != "" {
				t.Fatalf("status %d %q, want 200", status, code)
			}
			var got []engine.Command
			for _, b := range st.submitted {
				got = append(got, b...)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("commands\n got %+v\nwant %+v", got, tc.want)
			}
			if len(st.submitted) > 1 {
				t.Fatalf("%d submissions, want one", len(st.submitted))
			}
		})
	}
}

// listedRefunds stands in for the Stripe provider's refund listing.
type listedRefunds struct{ devPayments }

func (listedRefunds) Provider() string { return "stripe" }

func (listedRefunds) ChargeRefunds(_ context.Context, chargeID string) ([]*stripe.Refund, error) {
	if chargeID != "ch_1" {
		return nil, errors.New("unexpected charge " + chargeID)
	}
	return []*stripe.Refund{{ID: "re_listed", Amount: 700, Status: stripe.RefundStatusSucceeded}}, nil
}

func TestWebhookRefusesUnverifiedEvents(t *testing.T) {
	st := &webhookStore{topups: map[string]engine.TopupRecord{"pi_1": paidTopup}}
	s := newWebhookServer(t, st, testWebhookSecret)
	body := stripeEvent("evt_1", engine.EventCheckoutCompleted, map[string]any{"id": "cs_1", "payment_status": "paid",
		"metadata": map[string]string{"org_id": "org_1", "topup_id": "tu_1"}})
	cases := []struct {
		name string
		body []byte
		sig  string
	}{
		{"no signature", body, ""},
		{"signed with another secret", body, signed(body, "whsec_other", time.Now())},
		{"ten minutes old", body, signed(body, testWebhookSecret, time.Now().Add(-10*time.Minute))},
		{"body changed after signing", append([]byte(" "), body...), signed(body, testWebhookSecret, time.Now())},
		{"garbage header", body, "t=abc,v1=zz"},
		{"signed but not JSON", []byte("not json"), signed([]byte("not json"), testWebhookSecret, time.Now())},
		{"signed event without data", []byte(`{"id":"evt_2","type":"checkout.session.completed"}`), signed([]byte(`{"id":"evt_2","type":"checkout.session.completed"}`), testWebhookSecret, time.Now())},
		{"signed session that is not an object", stripeEvent("evt_3", engine.EventCheckoutCompleted, "cs_1"), signed(stripeEvent("evt_3", engine.EventCheckoutCompleted, "cs_1"), testWebhookSecret, time.Now())},
	}
	for _, tc := range cases {
		if status, code := deliver(t, s, tc.body, tc.sig); status != 400 || code != errInvalidRequest {
			t.Errorf("%s: %d %q, want 400 invalid_request", tc.name, status, code)
		}
	}
	if len(st.submitted) != 0 {
		t.Fatalf("unverified events submitted %v", st.submitted)
	}

	// Without a webhook secret no event can be verified.
	s = newWebhookServer(t, st, "")
	if status, code := deliver(t, s, body, signed(body, "", time.Now())); status != 400 || code != errInvalidRequest {
		t.Errorf("no secret configured: %d %q, want 400", status, code)
	}
	// A body over the limit is 413.
	s = newWebhookServer(t, st, testWebhookSecret)
	big := []byte(`{"pad":"` + strings.Repeat("a", webhookBodyBytesMax) + `"}`)
	if status, code := deliver(t, s, big, signed(big, testWebhookSecret, time.Now())); status != 413 || code != errPayloadTooLarge {
		t.Errorf("big body: %d %q, want 413", status, code)
	}
	if len(st.submitted) != 0 {
		t.Fatalf("refused events submitted %v", st.submitted)
	}
}

func TestWebhookUnavailableAndRefusedResults(t *testing.T) {
	body := stripeEvent("evt_1", engine.EventDisputeCreated, map[string]any{"id": "dp_1", "amount": 100, "status": "needs_response", "payment_intent": "pi_1"})
	sig := signed(body, testWebhookSecret, time.Now())

	// A failed read or a failed submission is 503: Stripe delivers again.
	st := &webhookStore{readErr: errors.New("disk")}
	if status, code := deliver(t, newWebhookServer(t, st, testWebhookSecret), body, sig); status != 503 || code != errUnavailable {
		t.Errorf("read failure: %d %q, want 503", status, code)
	}
	st = &webhookStore{topups: map[string]engine.TopupRecord{"pi_1": paidTopup}, submitErr: errors.New("no leader")}
	if status, code := deliver(t, newWebhookServer(t, st, testWebhookSecret), body, sig); status != 503 || code != errUnavailable {
		t.Errorf("submit failure: %d %q, want 503", status, code)
	}
	// An event the engine refuses (unknown org or top-up) is still 200:
	// retrying cannot change the answer.
	st = &webhookStore{topups: map[string]engine.TopupRecord{"pi_1": paidTopup},
		results: func(engine.Command) engine.Result {
			return engine.Result{Code: engine.CodeNotFound, Message: "org not found"}
		}}
	if status, code := deliver(t, newWebhookServer(t, st, testWebhookSecret), body, sig); status != 200 || code != "" {
		t.Errorf("refused event: %d %q, want 200", status, code)
	}
}

func TestParseFxRate(t *testing.T) {
	cases := []struct {
		text string
		want int64
		ok   bool
	}{
		{"1.0825", 108_250_000, true},
		{"1", 100_000_000, true},
		{"1.0", 100_000_000, true},
		{"0.00000001", 1, true},
		{"0.0067", 670_000, true},
		{"10000", engine.FxRateMax, true},
		{"1.123456780", 112_345_678, true}, // a ninth decimal that is zero
		{"0", 0, false},
		{"0.000000001", 0, false},
		{"1.123456789", 0, false},
		{"10000.00000001", 0, false},
		{"-1", 0, false},
		{"1e3", 0, false},
		{"1.5E0", 0, false},
		{"01.5", 0, false},
		{".5", 0, false},
		{"1.", 0, false},
		{"99999999999999999999", 0, false},
	}
	for _, tc := range cases {
		got, ok := parseFxRate(tc.text)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("parseFxRate(%q) = %d, %v; want %d, %v", tc.text, got, ok, tc.want, tc.ok)
		}
		if ok {
			if back, _ := parseFxRate(string(appendFxRate(nil, got))); back != got {
				t.Errorf("appendFxRate(%d) = %s does not parse back", got, appendFxRate(nil, got))
			}
		}
	}
	if s := string(appendFxRate(nil, 108_250_000)); s != "1.0825" {
		t.Errorf("appendFxRate(108250000) = %s", s)
	}
	if s := string(appendFxRate(nil, 100_000_000)); s != "1.0" {
		t.Errorf("appendFxRate(10^8) = %s", s)
	}
}

func TestMinorFromMicros(t *testing.T) {
	cases := []struct {
		micros   int64
		currency string
		rate     int64
		want     int64
	}{
		{100_000_000, "usd", engine.USDRateScale, 10000},
		{108_250_000, "eur", 108_250_000, 10000}, // 10000 EUR cents at 1.0825
		{54_125_000, "eur", 108_250_000, 5000},
		{54_124_999, "eur", 108_250_000, 4999}, // rounded down
		{6_700_000, "jpy", 670_000, 1000},      // exponent 0
		{3_250_000, "kwd", 325_000_000, 1000},  // exponent 3
		{9_999, "usd", engine.USDRateScale, 0},
	}
	for _, tc := range cases {
		if got, ok := minorFromMicros(tc.micros, tc.currency, tc.rate); !ok || got != tc.want {
			t.Errorf("minorFromMicros(%d, %s, %d) = %d, %v; want %d", tc.micros, tc.currency, tc.rate, got, ok, tc.want)
		}
	}
	if _, ok := minorFromMicros(-1, "usd", engine.USDRateScale); ok {
		t.Error("negative micros converted")
	}
}

// stripeInvoiceJSON is a listed Stripe invoice as the API renders it, with
// fields replaced or removed (nil) by over (json.RawMessage("null") for a
// JSON null).
func stripeInvoiceJSON(t *testing.T, over map[string]any) *stripe.Invoice {
	t.Helper()
	m := map[string]any{
		"id": "in_1Pgc6tB7WZ01zgkWu9fdqL6I", "object": "invoice", "number": "A1B2-0001", "customer": "cus_1",
		"amount_paid": 10000, "amount_due": 10000, "total": 10000, "currency": "usd", "status": "paid",
		"period_start": 1746057600, "period_end": 1748735999, "created": 1747394553,
		"invoice_pdf": "https://pay.stripe.com/invoice/acct_1/in_1/pdf", "metadata": map[string]string{"topup_id": "tu_1"},
	}
	for k, v := range over {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var inv stripe.Invoice
	if err := json.Unmarshal(b, &inv); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	return &inv
}

func TestInvoiceFromStripe(t *testing.T) {
	null := json.RawMessage("null")
	paid := engine.InvoiceRecord{ID: "in_1Pgc6tB7WZ01zgkWu9fdqL6I", OrgID: "org_1", Number: "A1B2-0001", AmountMinor: 10000,
		Currency: "usd", Status: "paid", PeriodStartMs: 1746057600000, PeriodEndMs: 1748735999000,
		PDFURL: "https://pay.stripe.com/invoice/acct_1/in_1/pdf", CreatedAtMs: 1747394553000, TopupID: "tu_1"}
	with := func(f func(*engine.InvoiceRecord)) engine.InvoiceRecord { r := paid; f(&r); return r }
	cases := []struct {
		name string
		over map[string]any
		want engine.InvoiceRecord
		ok   bool
	}{
		{"paid: amount_paid", nil, paid, true},
		{"paid for less than the total", map[string]any{"amount_paid": 7000}, with(func(r *engine.InvoiceRecord) { r.AmountMinor = 7000 }), true},
		// stripe-mock's canned invoice: a draft without number or PDF.
		{"draft: total, empty number and pdf", map[string]any{"status": "draft", "amount_paid": 0, "total": 1000, "number": null, "invoice_pdf": null},
			with(func(r *engine.InvoiceRecord) { r.Status, r.AmountMinor, r.Number, r.PDFURL = "draft", 1000, "", "" }), true},
		{"open: total", map[string]any{"status": "open", "amount_paid": 0, "total": 2500},
			with(func(r *engine.InvoiceRecord) { r.Status, r.AmountMinor = "open", 2500 }), true},
		{"void and uncollectible are listed", map[string]any{"status": "void"}, with(func(r *engine.InvoiceRecord) { r.Status, r.AmountMinor = "void", 10000 }), true},
		{"upper-case currency", map[string]any{"currency": "EUR"}, with(func(r *engine.InvoiceRecord) { r.Currency = "eur" }), true},
		{"no metadata", map[string]any{"metadata": null}, with(func(r *engine.InvoiceRecord) { r.TopupID = "" }), true},
		{"missing periods: the creation time", map[string]any{"period_start": null, "period_end": 0},
			with(func(r *engine.InvoiceRecord) { r.PeriodStartMs, r.PeriodEndMs = 1747394553000, 1747394553000 }), true},
		{"missing period end: the start", map[string]any{"period_end": null},
			with(func(r *engine.InvoiceRecord) { r.PeriodEndMs = 1746057600000 }), true},
		{"period beyond year 9999", map[string]any{"period_end": int64(253402300800)},
			with(func(r *engine.InvoiceRecord) { r.PeriodEndMs = 1746057600000 }), true},
		{"no creation time", map[string]any{"created": null}, engine.InvoiceRecord{}, false},
		{"no status", map[string]any{"status": null}, engine.InvoiceRecord{}, false},
		{"unknown status", map[string]any{"status": "deleted"}, engine.InvoiceRecord{}, false},
		{"no id", map[string]any{"id": null}, engine.InvoiceRecord{}, false},
		{"not an invoice id", map[string]any{"id": "inv_1"}, engine.InvoiceRecord{}, false},
		{"id outside the pattern", map[string]any{"id": "in_1/../x"}, engine.InvoiceRecord{}, false},
		{"bare prefix", map[string]any{"id": "in_"}, engine.InvoiceRecord{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := invoiceFromStripe("org_1", stripeInvoiceJSON(t, tc.over))
			if ok != tc.ok || got != tc.want {
				t.Fatalf("invoiceFromStripe = %+v, %v\nwant %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
	if _, ok := invoiceFromStripe("org_1", nil); ok {
		t.Error("a nil invoice was mapped")
	}
	// The mapped record renders with the document's types (no nulls).
	st := &invoicesStore{org: engine.OrgRecord{ID: "org_1", StripeCustomerID: "cus_1"}}
	s := newInvoicesServer(t, st, listedInvoices{invs: []engine.InvoiceRecord{
		with(func(r *engine.InvoiceRecord) { r.Status, r.AmountMinor, r.Number, r.PDFURL = "draft", 1000, "", "" })}})
	data := getInvoices(t, s)
	want := `[{"id":"in_1Pgc6tB7WZ01zgkWu9fdqL6I","number":"","amount":1000,"currency":"usd","status":"draft",` +
		`"period_start":"2025-05-01T00:00:00.000Z","period_end":"2025-05-31T23:59:59.000Z","pdf_url":"","created_at":"2025-05-16T11:22:33.000Z"}]`
	if data != want {
		t.Errorf("rendered\n got %s\nwant %s", data, want)
	}
}

func TestMergeInvoices(t *testing.T) {
	inv := func(id string, created int64, number string) engine.InvoiceRecord {
		return engine.InvoiceRecord{ID: id, Number: number, CreatedAtMs: created}
	}
	stored := []engine.InvoiceRecord{inv("in_b", 300, "stored"), inv("inv_a", 100, "receipt")}
	listed := []engine.InvoiceRecord{inv("in_c", 400, "listed"), inv("in_b", 300, "stale"), inv("in_d", 100, "listed"), inv("in_e", 50, "listed")}
	got := mergeInvoices(stored, listed, 100)
	want := []engine.InvoiceRecord{inv("in_c", 400, "listed"), inv("in_b", 300, "stored"), inv("inv_a", 100, "receipt"),
		inv("in_d", 100, "listed"), inv("in_e", 50, "listed")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("merged\n got %+v\nwant %+v", got, want)
	}
	if got := mergeInvoices(stored, listed, 2); !reflect.DeepEqual(got, want[:2]) {
		t.Errorf("merged at most 2: %+v", got)
	}
	if got := mergeInvoices(stored, nil, 100); !reflect.DeepEqual(got, stored) {
		t.Errorf("nothing listed: %+v", got)
	}
	if got := mergeInvoices(nil, listed[:1], 100); !reflect.DeepEqual(got, listed[:1]) {
		t.Errorf("nothing stored: %+v", got)
	}
}

// TestStripeInvoices runs the Stripe provider's invoice listing against a
// fake Stripe API: the request, the mapping, no call without a customer,
// and one bounded attempt when Stripe fails or hangs.
func TestStripeInvoices(t *testing.T) {
	var calls atomic.Int32
	var mode atomic.Value // "ok", "fail", "hang"
	mode.Store("ok")
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		switch mode.Load() {
		case "fail":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"error":{"type":"api_error","message":"injected failure"}}`))
			return
		case "hang":
			select {
			case <-hang:
			case <-r.Context().Done():
			}
			return
		}
		if r.Method != "GET" || r.URL.Path != "/v1/invoices" || r.URL.Query().Get("customer") != "cus_1" || r.URL.Query().Get("limit") != "100" {
			t.Errorf("Stripe request %s %s", r.Method, r.URL)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"object":"list","url":"/v1/invoices","has_more":true,"data":[
			{"id":"in_2","object":"invoice","number":null,"status":"draft","amount_paid":0,"total":1000,"currency":"usd",
			 "period_start":1234567890,"period_end":1234567890,"created":1234567890,"invoice_pdf":null,"metadata":{}},
			{"id":"in_1","object":"invoice","number":"N-1","status":"paid","amount_paid":500,"total":500,"currency":"usd",
			 "period_start":1234560000,"period_end":1234567000,"created":1234567000,"invoice_pdf":"https://pay.stripe.com/x/pdf","metadata":null},
			{"id":"in_3","object":"invoice","status":null,"created":1234567000}]}`))
	}))
	defer srv.Close()
	defer close(hang)
	p := newStripePayments("sk_test_unit", srv.URL)
	org := engine.OrgRecord{ID: "org_1", StripeCustomerID: "cus_1"}

	got, err := p.Invoices(context.Background(), org)
	want := []engine.InvoiceRecord{
		{ID: "in_2", OrgID: "org_1", AmountMinor: 1000, Currency: "usd", Status: "draft", PeriodStartMs: 1234567890000, PeriodEndMs: 1234567890000, CreatedAtMs: 1234567890000},
		{ID: "in_1", OrgID: "org_1", Number: "N-1", AmountMinor: 500, Currency: "usd", Status: "paid", PeriodStartMs: 1234560000000, PeriodEndMs: 1234567000000,
			PDFURL: "https://pay.stripe.com/x/pdf", CreatedAtMs: 1234567000000},
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Invoices = %+v, %v\nwant %+v", got, err, want)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d Stripe calls, want 1 (one page, has_more notwithstanding)", n)
	}

	calls.Store(0)
	if got, err := p.Invoices(context.Background(), engine.OrgRecord{ID: "org_2"}); err != nil || got != nil || calls.Load() != 0 {
		t.Errorf("an org without a customer: %+v, %v, %d Stripe calls", got, err, calls.Load())
	}

	mode.Store("fail")
	if _, err := p.Invoices(context.Background(), org); err == nil || calls.Load() != 1 {
		t.Errorf("Stripe failing: err %v after %d calls, want an error after one attempt", err, calls.Load())
	}

	mode.Store("hang")
	p.readTimeout = 200 * time.Millisecond
	start := time.Now()
	if _, err := p.Invoices(context.Background(), org); err == nil {
		t.Error("Stripe hanging: no error")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Stripe hanging: answered after %v, want about the 200ms bound", d)
	}
}

// invoicesStore is the part of Store GET /invoices reads.
type invoicesStore struct {
	Store
	org     engine.OrgRecord
	stored  []engine.InvoiceRecord
	readErr error
}

func (f *invoicesStore) Invoices(org string, limit int) ([]engine.InvoiceRecord, error) {
	if org != f.org.ID || limit != invoicesListMax {
		return nil, errors.New("unexpected read")
	}
	return f.stored, f.readErr
}

func (f *invoicesStore) OrgRecord(org string) (engine.OrgRecord, bool) { return f.org, org == f.org.ID }

func (f *invoicesStore) Orgs() []engine.OrgRecord { return []engine.OrgRecord{f.org} }
func (f *invoicesStore) OrgCount() int            { return 1 }

// listedInvoices stands in for the Stripe provider's invoice listing.
type listedInvoices struct {
	devPayments
	invs  []engine.InvoiceRecord
	err   error
	calls *int
}

func (listedInvoices) Provider() string { return "stripe" }

func (l listedInvoices) Invoices(_ context.Context, org engine.OrgRecord) ([]engine.InvoiceRecord, error) {
	if l.calls != nil {
		*l.calls++
	}
	return l.invs, l.err
}

func newInvoicesServer(t *testing.T, st *invoicesStore, p Payments) *Server {
	t.Helper()
	s := New(Config{Store: st, AdminToken: "t", PublicURL: "http://127.0.0.1:1", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if p != nil {
		s.payments = p
	}
	return s
}

// getInvoices calls the GET /invoices handler for the store's org and
// returns the answer's data.
func getInvoices(t *testing.T, s *Server) string {
	t.Helper()
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("GET")
	ctx.Request.SetRequestURI("/api/v1/billing/invoices")
	s.listInvoices(&ctx, &reqState{requestID: "req_test", start: time.Now()}, &engine.APIKey{OrgID: "org_1", Role: "read"}, "")
	if ctx.Response.StatusCode() != 200 {
		t.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(ctx.Response.Body(), &env); err != nil {
		t.Fatalf("answer is not JSON: %v: %s", err, ctx.Response.Body())
	}
	return string(env.Data)
}

func TestListInvoicesMergesAndFallsBack(t *testing.T) {
	receipt := engine.InvoiceRecord{ID: "inv_1", OrgID: "org_1", Number: "INV-2026-001", AmountMinor: 500, Currency: "usd", Status: "paid",
		PeriodStartMs: 1747394553000, PeriodEndMs: 1747394553000, PDFURL: "/dev/receipts/org_1/inv_1?token=x", CreatedAtMs: 1747394553000}
	storedStripe := engine.InvoiceRecord{ID: "in_1", OrgID: "org_1", Number: "N-1", AmountMinor: 10000, Currency: "usd", Status: "paid",
		PeriodStartMs: 1747000000000, PeriodEndMs: 1747100000000, PDFURL: "https://pay.stripe.com/1/pdf", CreatedAtMs: 1747100000000}
	st := &invoicesStore{org: engine.OrgRecord{ID: "org_1", StripeCustomerID: "cus_1"}, stored: []engine.InvoiceRecord{receipt, storedStripe}}
	storedOnly := `[{"id":"inv_1","number":"INV-2026-001","amount":500,"currency":"usd","status":"paid","period_start":"2025-05-16T11:22:33.000Z",` +
		`"period_end":"2025-05-16T11:22:33.000Z","pdf_url":"http://127.0.0.1:1/dev/receipts/org_1/inv_1?token=x","created_at":"2025-05-16T11:22:33.000Z"},` +
		`{"id":"in_1","number":"N-1","amount":10000,"currency":"usd","status":"paid","period_start":"2025-05-11T21:46:40.000Z",` +
		`"period_end":"2025-05-13T01:33:20.000Z","pdf_url":"https://pay.stripe.com/1/pdf","created_at":"2025-05-13T01:33:20.000Z"}]`

	// The development provider: the stored list, unchanged.
	if got := getInvoices(t, newInvoicesServer(t, st, nil)); got != storedOnly {
		t.Errorf("development provider\n got %s\nwant %s", got, storedOnly)
	}

	// Stripe: merged, the stored in_1 winning over Stripe's, newest first.
	calls := 0
	listed := []engine.InvoiceRecord{
		{ID: "in_2", OrgID: "org_1", AmountMinor: 1000, Currency: "usd", Status: "draft", PeriodStartMs: 1747500000000, PeriodEndMs: 1747500000000, CreatedAtMs: 1747500000000},
		{ID: "in_1", OrgID: "org_1", Number: "N-1", AmountMinor: 1, Currency: "usd", Status: "open", PeriodStartMs: 1, PeriodEndMs: 1, CreatedAtMs: 1747100000000},
	}
	got := getInvoices(t, newInvoicesServer(t, st, listedInvoices{invs: listed, calls: &calls}))
	want := `[{"id":"in_2","number":"","amount":1000,"currency":"usd","status":"draft","period_start":"2025-05-17T16:40:00.000Z",` +
		`"period_end":"2025-05-17T16:40:00.000Z","pdf_url":"","created_at":"2025-05-17T16:40:00.000Z"},` + storedOnly[1:]
	if got != want || calls != 1 {
		t.Errorf("merged (%d provider calls)\n got %s\nwant %s", calls, got, want)
	}

	// Stripe failing: the stored list.
	calls = 0
	got = getInvoices(t, newInvoicesServer(t, st, listedInvoices{err: errors.New("stripe: down"), calls: &calls}))
	if got != storedOnly || calls != 1 {
		t.Errorf("Stripe failing (%d provider calls)\n got %s\nwant %s", calls, got, storedOnly)
	}

	// A stored invoice whose event had no period is dated by its creation.
	st2 := &invoicesStore{org: engine.OrgRecord{ID: "org_1"}, stored: []engine.InvoiceRecord{{ID: "in_9", Status: "open", Currency: "usd", CreatedAtMs: 1747394553000}}}
	if got := getInvoices(t, newInvoicesServer(t, st2, nil)); !strings.Contains(got, `"period_start":"2025-05-16T11:22:33.000Z","period_end":"2025-05-16T11:22:33.000Z"`) {
		t.Errorf("stored invoice without a period: %s", got)
	}
}
