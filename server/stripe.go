package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"net/http"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v79"
	"github.com/stripe/stripe-go/v79/client"

	"github.com/orbit/orbit/engine"
)

// The Stripe payment provider: top-ups are Stripe Checkout sessions
// (mode=payment) on the org's Stripe customer, and a top-up refunded through
// POST /refunds becomes a Stripe refund of its payment intent. Nothing here
// decides money: the wallet moves only through engine commands, credited by
// verified webhook events (webhooks.go).
//
// Every POST to Stripe carries an idempotency key of ours, scoped by org
// ("orbit:<org>:..."), so stripe-go's own retries and our clients' retries
// never create a second customer, session or refund, and two orgs that use
// the same Idempotency-Key never collide. (Without one stripe-go would retry
// with a random key.)

// Limits of the Stripe adapter.
const (
	// stripeCallTimeout bounds one Stripe call with its retries; it stays
	// below the HTTP server's 30 s write timeout.
	stripeCallTimeout = 25 * time.Second
	// stripeAttemptTimeout bounds one HTTP attempt.
	stripeAttemptTimeout = 8 * time.Second
	// stripeNetworkRetries is stripe-go's retry count (safe: our keys).
	stripeNetworkRetries = 2
	// stripeRefundPagesMax bounds the refunds listed for one payment.
	stripeRefundPagesMax = 10
	// stripeListTimeout bounds the invoice listing of GET /invoices: one
	// attempt, no retries, so that when Stripe is slow or down the endpoint
	// soon answers with the stored invoices.
	stripeListTimeout = 3 * time.Second
	// invoicesListMax bounds the invoices GET /invoices lists (the stored
	// ones, Stripe's page, and the merged list).
	invoicesListMax = 100
)

var _ [stripeCallTimeout - 3*stripeAttemptTimeout]struct{}

// stripeRefundEntryKey is the Stripe refund metadata key naming the
// topup_refund ledger entry a refund made through this API belongs to; the
// charge.refunded webhook passes it back so that refund debits nothing again.
const stripeRefundEntryKey = "orbit_refund_entry"

// stripePayments is the Stripe Checkout provider.
type stripePayments struct {
	api *client.API
	// reads is a client without retries for best-effort reads, each
	// bounded by readTimeout (stripe-go's sleep between retries ignores the
	// context, so a retrying client could overrun the bound).
	reads       *client.API
	readTimeout time.Duration
}

// newStripePayments returns the Stripe provider for a secret key; apiBase,
// when set, replaces Stripe's API URL (stripe-mock in tests).
func newStripePayments(secretKey, apiBase string) *stripePayments {
	cfg := &stripe.BackendConfig{
		HTTPClient:        &http.Client{Timeout: stripeAttemptTimeout},
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
		MaxNetworkRetries: stripe.Int64(stripeNetworkRetries),
		EnableTelemetry:   stripe.Bool(false),
	}
	if apiBase != "" {
		cfg.URL = stripe.String(apiBase)
	}
	b := stripe.GetBackendWithConfig(stripe.APIBackend, cfg)
	rcfg := *cfg
	rcfg.HTTPClient = &http.Client{Timeout: stripeListTimeout}
	rcfg.MaxNetworkRetries = stripe.Int64(0)
	rb := stripe.GetBackendWithConfig(stripe.APIBackend, &rcfg)
	return &stripePayments{
		api:         client.New(secretKey, &stripe.Backends{API: b, Connect: b, Uploads: b}),
		reads:       client.New(secretKey, &stripe.Backends{API: rb, Connect: rb, Uploads: rb}),
		readTimeout: stripeListTimeout,
	}
}

func (p *stripePayments) Provider() string { return "stripe" }

// CheckoutURL is the session's URL, recorded when the session was made.
func (p *stripePayments) CheckoutURL(t engine.TopupRecord) string { return t.CheckoutURL }

// stripeKey is the idempotency key of one Stripe request of an org.
func stripeKey(org, what, id string) string { return "orbit:" + org + ":" + what + ":" + id }

// StartCheckout creates the org's Stripe customer when none is recorded
// (recording it through recordCustomer before going on), then the Checkout
// Session of the pending top-up.
func (p *stripePayments) StartCheckout(ctx context.Context, org engine.OrgRecord, t engine.TopupRecord, recordCustomer func(string) error) (string, string, error) {
	ctx, cancel := context.WithTimeout(ctx, stripeCallTimeout)
	defer cancel()
	customer := org.StripeCustomerID
	if customer == "" {
		params := &stripe.CustomerParams{
			Name:        stripe.String(org.Name),
			Description: stripe.String("Orbit org " + org.ID),
			Metadata:    map[string]string{"org_id": org.ID},
		}
		params.Context = ctx
		params.SetIdempotencyKey(stripeKey(org.ID, "customer", org.ID))
		c, err := p.api.Customers.New(params)
		if err != nil {
			return "", "", fmt.Errorf("stripe: create customer: %w", err)
		}
		if c.ID == "" {
			return "", "", errors.New("stripe: customer without an id")
		}
		if err := recordCustomer(c.ID); err != nil {
			return "", "", err
		}
		customer = c.ID
	}
	md := map[string]string{"org_id": org.ID, "topup_id": t.ID}
	params := &stripe.CheckoutSessionParams{
		Mode:              stripe.String(string(stripe.CheckoutSessionModePayment)),
		Customer:          stripe.String(customer),
		ClientReferenceID: stripe.String(org.ID),
		SuccessURL:        stripe.String(t.SuccessURL),
		CancelURL:         stripe.String(t.CancelURL),
		Metadata:          md,
		PaymentIntentData: &stripe.CheckoutSessionPaymentIntentDataParams{
			Metadata:    md,
			Description: stripe.String("Orbit wallet top-up " + t.ID),
		},
		InvoiceCreation: &stripe.CheckoutSessionInvoiceCreationParams{
			Enabled: stripe.Bool(true),
			InvoiceData: &stripe.CheckoutSessionInvoiceCreationInvoiceDataParams{
				Metadata: md,
			},
		},
		LineItems: []*stripe.CheckoutSessionLineItemParams{{
			Quantity: stripe.Int64(1),
			PriceData: &stripe.CheckoutSessionLineItemPriceDataParams{
				Currency:   stripe.String(t.Currency),
				UnitAmount: stripe.Int64(t.AmountMinor),
				ProductData: &stripe.CheckoutSessionLineItemPriceDataProductDataParams{
					Name: stripe.String("Orbit prepaid credits"),
				},
			},
		}},
	}
	params.Context = ctx
	params.SetIdempotencyKey(stripeKey(org.ID, "topup", t.ID))
	sess, err := p.api.CheckoutSessions.New(params)
	if err != nil {
		return "", "", fmt.Errorf("stripe: create checkout session: %w", err)
	}
	if sess.ID == "" || sess.URL == "" {
		return "", "", errors.New("stripe: checkout session without an id or url")
	}
	return sess.ID, sess.URL, nil
}

// RefundPayment refunds amountMinor of a paid top-up's payment intent,
// exactly once per ledger entry: the idempotency key names the entry, and
// on a retry (a replayed request, whose first attempt may have reached
// Stripe more than a day ago, beyond Stripe's idempotency window) the
// payment's refunds are searched for the entry first.
func (p *stripePayments) RefundPayment(ctx context.Context, t engine.TopupRecord, amountMinor int64, entryID string, retry bool) error {
	ctx, cancel := context.WithTimeout(ctx, stripeCallTimeout)
	defer cancel()
	if retry {
		done, err := p.refundExists(ctx, t.PaymentIntent, entryID)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
	params := &stripe.RefundParams{
		PaymentIntent: stripe.String(t.PaymentIntent),
		Amount:        stripe.Int64(amountMinor),
		Reason:        stripe.String(string(stripe.RefundReasonRequestedByCustomer)),
		Metadata:      map[string]string{stripeRefundEntryKey: entryID, "org_id": t.OrgID, "topup_id": t.ID},
	}
	params.Context = ctx
	params.SetIdempotencyKey(stripeKey(t.OrgID, "refund", entryID))
	if _, err := p.api.Refunds.New(params); err != nil {
		return fmt.Errorf("stripe: create refund: %w", err)
	}
	return nil
}

// refundExists reports whether the payment already has a refund made for
// the ledger entry.
func (p *stripePayments) refundExists(ctx context.Context, paymentIntent, entryID string) (bool, error) {
	params := &stripe.RefundListParams{PaymentIntent: stripe.String(paymentIntent)}
	params.Context = ctx
	params.Limit = stripe.Int64(100)
	it := p.api.Refunds.List(params)
	for n := 0; it.Next(); n++ {
		if n >= 100*stripeRefundPagesMax {
			break
		}
		if r := it.Refund(); r != nil && r.Metadata[stripeRefundEntryKey] == entryID {
			return true, nil
		}
	}
	if err := it.Err(); err != nil {
		return false, fmt.Errorf("stripe: list refunds: %w", err)
	}
	return false, nil
}

// ChargeRefunds lists a charge's refunds, for charge.refunded events
// rendered without them (API versions since 2022-11-15 no longer include
// a charge's refunds unless expanded).
func (p *stripePayments) ChargeRefunds(ctx context.Context, chargeID string) ([]*stripe.Refund, error) {
	ctx, cancel := context.WithTimeout(ctx, stripeCallTimeout)
	defer cancel()
	params := &stripe.RefundListParams{Charge: stripe.String(chargeID)}
	params.Context = ctx
	params.Limit = stripe.Int64(100)
	it := p.api.Refunds.List(params)
	var out []*stripe.Refund
	for it.Next() {
		if len(out) >= 100*stripeRefundPagesMax {
			break
		}
		out = append(out, it.Refund())
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("stripe: list refunds of %s: %w", chargeID, err)
	}
	return out, nil
}

// Invoices lists the org's invoices kept by Stripe: one page of at most
// invoicesListMax of its customer's (Stripe's order, newest first), mapped
// by invoiceFromStripe. An org without a Stripe customer has none and
// Stripe is not called. It is one attempt bounded by readTimeout; on an
// error the caller answers with the stored invoices.
func (p *stripePayments) Invoices(ctx context.Context, org engine.OrgRecord) ([]engine.InvoiceRecord, error) {
	if org.StripeCustomerID == "" {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.readTimeout)
	defer cancel()
	params := &stripe.InvoiceListParams{Customer: stripe.String(org.StripeCustomerID)}
	params.Context = ctx
	params.Limit = stripe.Int64(invoicesListMax)
	params.Single = true // one page: no request for a next page
	it := p.reads.Invoices.List(params)
	var out []engine.InvoiceRecord
	for n := 0; n < invoicesListMax && it.Next(); n++ {
		if inv, ok := invoiceFromStripe(org.ID, it.Invoice()); ok {
			out = append(out, inv)
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("stripe: list invoices of customer %s: %w", org.StripeCustomerID, err)
	}
	return out, nil
}

// stripeUnixMax is the last second of year 9999: a time beyond it has no
// RFC 3339 rendering of four-digit years.
const stripeUnixMax = 253402300799

// stripeUnixMs converts a Stripe unix time (seconds) to unix ms; 0 (also
// for a missing or out-of-range time) is "none".
func stripeUnixMs(sec int64) int64 {
	if sec <= 0 || sec > stripeUnixMax {
		return 0
	}
	return sec * 1000
}

// invoiceFromStripe maps a listed Stripe invoice to the seed's invoice
// fields: amount is amount_paid when paid, else total (smallest currency
// unit); number and pdf_url are empty when Stripe has none (a draft); a
// missing period_start is the creation time and a missing period_end the
// period's start. ok is false for an invoice the document cannot describe
// (nil, an id that is not Stripe's in_..., no creation time, or a status
// outside draft, open, paid, uncollectible and void): it is left out.
func invoiceFromStripe(org string, inv *stripe.Invoice) (engine.InvoiceRecord, bool) {
	if inv == nil || !stripeInvoiceID(inv.ID) {
		return engine.InvoiceRecord{}, false
	}
	switch inv.Status {
	case stripe.InvoiceStatusDraft, stripe.InvoiceStatusOpen, stripe.InvoiceStatusPaid,
		stripe.InvoiceStatusUncollectible, stripe.InvoiceStatusVoid:
	default:
		return engine.InvoiceRecord{}, false
	}
	created := stripeUnixMs(inv.Created)
	if created == 0 {
		return engine.InvoiceRecord{}, false
	}
	start := stripeUnixMs(inv.PeriodStart)
	if start == 0 {
		start = created
	}
	end := stripeUnixMs(inv.PeriodEnd)
	if end == 0 {
		end = start
	}
	amount := inv.Total
	if inv.Status == stripe.InvoiceStatusPaid {
		amount = inv.AmountPaid
	}
	return engine.InvoiceRecord{
		ID: inv.ID, OrgID: org, Number: inv.Number, AmountMinor: amount,
		Currency: strings.ToLower(string(inv.Currency)), Status: string(inv.Status),
		PeriodStartMs: start, PeriodEndMs: end, PDFURL: inv.InvoicePDF, CreatedAtMs: created,
		TopupID: inv.Metadata["topup_id"],
	}, true
}

// stripeInvoiceID accepts Stripe's invoice ids: in_ and then letters,
// digits and underscores (the document's id pattern).
func stripeInvoiceID(id string) bool {
	if len(id) <= len("in_") || len(id) > 255 || !strings.HasPrefix(id, "in_") {
		return false
	}
	for i := len("in_"); i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// minorFromMicros converts micros back to a currency's minor unit at a
// top-up's rate, rounding down: floor(micros x 10^8 / (rate x
// 10^(6 - exponent))), the inverse of the engine's credit conversion.
func minorFromMicros(micros int64, currency string, rate int64) (int64, bool) {
	if micros < 0 || rate <= 0 {
		return 0, false
	}
	scale := uint64(1)
	for i := engine.CurrencyExponent(currency); i < 6; i++ {
		scale *= 10
	}
	dhi, d := bits.Mul64(uint64(rate), scale)
	if dhi != 0 {
		return 0, false
	}
	hi, lo := bits.Mul64(uint64(micros), uint64(engine.USDRateScale))
	if hi >= d {
		return 0, false
	}
	q, _ := bits.Div64(hi, lo, d)
	if q > 1<<63-1 {
		return 0, false
	}
	return int64(q), true
}

// metadataString returns an entry's metadata value when it is a JSON
// string (metadata values are kept as raw JSON).
func metadataString(md engine.Metadata, key string) (string, bool) {
	raw, ok := md.Get(key)
	if !ok {
		return "", false
	}
	var s string
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return "", false
	}
	return s, true
}
