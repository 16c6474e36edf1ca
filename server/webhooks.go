package server

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/stripe/stripe-go/v79"
	"github.com/stripe/stripe-go/v79/webhook"
	"github.com/valyala/fasthttp"

	"github.com/orbit/orbit/engine"
)

// Stripe webhooks: POST /api/v1/billing/webhooks/stripe, authenticated by
// the Stripe-Signature header (no API key). A verified event becomes
// CmdPaymentEvent commands; the engine applies each at most once by the
// event's id (and by the id of the session, refund or dispute it carries),
// so Stripe may deliver an event any number of times. Events this server
// does not act on, and events about top-ups or orgs it does not know, are
// answered 200 and change nothing (Stripe would otherwise retry them for
// days); a bad signature or a stale timestamp is 400 and changes nothing.
// An invoice event is stored only when GET /invoices can list its invoice
// as documented (id, status, creation time); otherwise it is ignored (200).
//
// A paid checkout session credits its top-up only when it is the top-up's:
// the org in its metadata (and client_reference_id, when both are set), the
// top-up of that org in its metadata, the same amount_total and currency
// (compared by the engine, so every replica decides alike) and the
// top-up's recorded session. A payment that does not match credits nothing,
// is answered 200 all the same (the signed event is authentic; Stripe's
// retries would bring the same contradiction for days) and is logged as a
// warning for the operator to settle, since money may have been taken. A
// payment for a top-up whose checkout already expired is still credited,
// once: the money was taken.

// stripeWebhookPath is served before org authentication (server.go).
const stripeWebhookPath = "/api/v1/billing/webhooks/stripe"

// webhookBodyBytesMax bounds an event's body.
const webhookBodyBytesMax = bodyBytesMax

// eventLookup is what mapping an event to commands reads besides the event.
type eventLookup interface {
	// TopupByPaymentIntent finds the top-up a payment intent paid.
	TopupByPaymentIntent(pi string) (engine.TopupRecord, bool, error)
	// OrgByStripeCustomer finds the org of a Stripe customer.
	OrgByStripeCustomer(customer string) (string, bool)
	// ChargeRefunds lists a charge's refunds (for an event that does not
	// carry them).
	ChargeRefunds(chargeID string) ([]*stripe.Refund, error)
}

// errEventUnavailable: the event could not be mapped for now (a read
// failed); Stripe retries it.
var errEventUnavailable = errors.New("event lookup failed")

// eventError is a verified event whose object cannot be read.
type eventError struct{ msg string }

func (e *eventError) Error() string { return e.msg }

// eventMismatch is a verified payment event that contradicts itself or its
// top-up: it credits nothing and is answered 200 (Stripe's retries would
// deliver the same event again and cannot change the answer), logged as a
// warning for the operator, since money may have been taken.
type eventMismatch struct{ msg string }

func (e *eventMismatch) Error() string { return e.msg }

// eventCommands maps a verified Stripe event to the commands that apply it,
// and says why when there are none.
func eventCommands(ev *stripe.Event, look eventLookup) ([]engine.Command, string, error) {
	if ev.ID == "" || ev.Data == nil || len(ev.Data.Raw) == 0 {
		return nil, "", &eventError{"event without an id or a data.object"}
	}
	typ := string(ev.Type)
	base := engine.Command{Kind: engine.CmdPaymentEvent, Reference: ev.ID, Name: typ}
	switch typ {
	case engine.EventCheckoutCompleted, engine.EventCheckoutAsyncSucceded, engine.EventCheckoutExpired:
		var sess stripe.CheckoutSession
		if err := json.Unmarshal(ev.Data.Raw, &sess); err != nil || sess.ID == "" {
			return nil, "", &eventError{"data.object is not a checkout session"}
		}
		if typ == engine.EventCheckoutCompleted && sess.PaymentStatus != stripe.CheckoutSessionPaymentStatusPaid {
			return nil, "checkout completed but not paid yet (payment_status " + string(sess.PaymentStatus) + ")", nil
		}
		org := sess.Metadata["org_id"]
		if org == "" {
			org = sess.ClientReferenceID
		}
		topup := sess.Metadata["topup_id"]
		if org == "" || topup == "" {
			return nil, "checkout session without org and top-up metadata", nil
		}
		if ref := sess.ClientReferenceID; ref != "" && ref != org {
			return nil, "", &eventMismatch{"checkout session's client_reference_id " + ref + " is not its metadata org_id " + org}
		}
		c := base
		c.OrgID, c.TopupID, c.SessionID, c.AmountMinor = org, topup, sess.ID, sess.AmountTotal
		if sess.PaymentIntent != nil {
			c.PaymentIntent = sess.PaymentIntent.ID
		}
		if typ != engine.EventCheckoutExpired {
			// What was paid: the engine credits only when it matches the
			// top-up (amount and currency), so the comparison is replicated.
			c.Currency = strings.ToLower(string(sess.Currency))
			if c.Currency == "" || sess.AmountTotal <= 0 {
				return nil, "", &eventMismatch{"paid checkout session without amount_total and currency"}
			}
		}
		return []engine.Command{c}, "", nil

	case engine.EventInvoicePaid, engine.EventInvoiceFinalized:
		var inv stripe.Invoice
		if err := json.Unmarshal(ev.Data.Raw, &inv); err != nil || inv.ID == "" {
			return nil, "", &eventError{"data.object is not an invoice"}
		}
		org := inv.Metadata["org_id"]
		if org == "" && inv.Customer != nil && inv.Customer.ID != "" {
			org, _ = look.OrgByStripeCustomer(inv.Customer.ID)
		}
		if org == "" {
			return nil, "invoice of no known org", nil
		}
		amount := inv.AmountPaid
		if amount == 0 {
			amount = inv.Total
		}
		created := stripeUnixMs(inv.Created)
		if created == 0 {
			created = stripeUnixMs(ev.Created)
		}
		// GET /invoices lists what is stored: an invoice its document
		// cannot describe is not stored (the event is still answered 200).
		if !webhookInvoiceID(inv.ID) || !webhookInvoiceStatus[inv.Status] || created == 0 {
			return nil, "invoice with an id, status or creation time the API cannot list", nil
		}
		c := base
		c.OrgID, c.TopupID = org, inv.Metadata["topup_id"]
		c.Invoice = &engine.InvoiceRecord{
			ID: inv.ID, OrgID: org, Number: inv.Number, AmountMinor: amount, Currency: string(inv.Currency),
			Status: string(inv.Status), PeriodStartMs: stripeUnixMs(inv.PeriodStart), PeriodEndMs: stripeUnixMs(inv.PeriodEnd),
			PDFURL: inv.InvoicePDF, CreatedAtMs: created, TopupID: inv.Metadata["topup_id"],
		}
		return []engine.Command{c}, "", nil

	case engine.EventChargeRefunded:
		var ch stripe.Charge
		if err := json.Unmarshal(ev.Data.Raw, &ch); err != nil || ch.ID == "" {
			return nil, "", &eventError{"data.object is not a charge"}
		}
		pi := ""
		if ch.PaymentIntent != nil {
			pi = ch.PaymentIntent.ID
		}
		t, why, err := topupOfPayment(look, pi)
		if t == nil {
			return nil, why, err
		}
		var refunds []*stripe.Refund
		if ch.Refunds != nil {
			refunds = ch.Refunds.Data
		}
		if ch.Refunds == nil || ch.Refunds.HasMore {
			if refunds, err = look.ChargeRefunds(ch.ID); err != nil {
				return nil, "", errEventUnavailable
			}
		}
		var cmds []engine.Command
		for _, r := range refunds {
			if r == nil || r.ID == "" || r.Amount <= 0 || r.Status == stripe.RefundStatusFailed || r.Status == stripe.RefundStatusCanceled {
				continue
			}
			c := base
			// One event carries several refunds; each is its own command,
			// applied once by event and refund.
			c.Reference = ev.ID + ":" + r.ID
			c.OrgID, c.TopupID, c.PaymentIntent = t.OrgID, t.ID, pi
			c.TxID, c.AmountMinor, c.RefundEntryID = r.ID, r.Amount, r.Metadata[stripeRefundEntryKey]
			cmds = append(cmds, c)
		}
		if len(cmds) == 0 {
			return nil, "charge refunded without a refund to record", nil
		}
		return cmds, "", nil

	case engine.EventDisputeCreated, engine.EventDisputeClosed:
		var d stripe.Dispute
		if err := json.Unmarshal(ev.Data.Raw, &d); err != nil || d.ID == "" {
			return nil, "", &eventError{"data.object is not a dispute"}
		}
		pi := ""
		if d.PaymentIntent != nil {
			pi = d.PaymentIntent.ID
		} else if d.Charge != nil && d.Charge.PaymentIntent != nil {
			pi = d.Charge.PaymentIntent.ID
		}
		t, why, err := topupOfPayment(look, pi)
		if t == nil {
			return nil, why, err
		}
		c := base
		c.OrgID, c.TopupID, c.PaymentIntent = t.OrgID, t.ID, pi
		c.TxID, c.AmountMinor, c.Reason = d.ID, d.Amount, string(d.Status)
		return []engine.Command{c}, "", nil
	}
	return nil, "event type not handled", nil
}

// webhookInvoiceID accepts the invoice ids the API documents: Stripe's
// in_... (and inv_..., the receipts' prefix), then letters, digits and
// underscores.
func webhookInvoiceID(id string) bool {
	if strings.HasPrefix(id, "inv_") {
		id = "in_" + id[len("inv_"):]
	}
	return stripeInvoiceID(id)
}

// webhookInvoiceStatus are the invoice statuses the API documents.
var webhookInvoiceStatus = map[stripe.InvoiceStatus]bool{
	stripe.InvoiceStatusDraft: true, stripe.InvoiceStatusOpen: true, stripe.InvoiceStatusPaid: true,
	stripe.InvoiceStatusUncollectible: true, stripe.InvoiceStatusVoid: true,
}

// topupOfPayment finds the top-up a payment intent paid; nil with a reason
// when there is none.
func topupOfPayment(look eventLookup, pi string) (*engine.TopupRecord, string, error) {
	if pi == "" {
		return nil, "no payment intent", nil
	}
	t, ok, err := look.TopupByPaymentIntent(pi)
	if err != nil {
		return nil, "", errEventUnavailable
	}
	if !ok {
		return nil, "payment intent of no known top-up", nil
	}
	return &t, "", nil
}

// webhookLookup reads what events need from the store and Stripe.
type webhookLookup struct{ s *Server }

func (l webhookLookup) TopupByPaymentIntent(pi string) (engine.TopupRecord, bool, error) {
	return l.s.store.TopupByPaymentIntent(pi)
}

func (l webhookLookup) OrgByStripeCustomer(customer string) (string, bool) {
	for _, o := range l.s.store.Orgs() {
		if o.StripeCustomerID == customer {
			return o.ID, true
		}
	}
	return "", false
}

// refundLister is a provider that can list a charge's refunds (Stripe).
type refundLister interface {
	ChargeRefunds(ctx context.Context, chargeID string) ([]*stripe.Refund, error)
}

func (l webhookLookup) ChargeRefunds(chargeID string) ([]*stripe.Refund, error) {
	p, ok := l.s.payments.(refundLister)
	if !ok {
		return nil, nil // no Stripe API to ask
	}
	return p.ChargeRefunds(context.Background(), chargeID)
}

// stripeWebhook verifies and applies one Stripe event.
func (s *Server) stripeWebhook(ctx *fasthttp.RequestCtx, rs *reqState, _ *engine.APIKey, _ string) {
	rs.route = stripeWebhookPath
	if !ctx.IsPost() {
		respondError(ctx, rs, newError(errMethodNotAllowed, "method not allowed on this route"))
		return
	}
	body := ctx.PostBody()
	if len(body) > webhookBodyBytesMax {
		respondError(ctx, rs, newError(errPayloadTooLarge, "event body too large"))
		return
	}
	if s.cfg.StripeWebhookSecret == "" {
		respondError(ctx, rs, invalid("Stripe webhooks are not configured on this server (no STRIPE_WEBHOOK_SECRET)"))
		return
	}
	sig := string(ctx.Request.Header.Peek("Stripe-Signature"))
	ev, err := webhook.ConstructEventWithOptions(body, sig, s.cfg.StripeWebhookSecret,
		webhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true})
	if err != nil {
		msg := "invalid Stripe-Signature"
		switch {
		case errors.Is(err, webhook.ErrNotSigned):
			msg = "Stripe-Signature header missing"
		case errors.Is(err, webhook.ErrTooOld):
			msg = "Stripe-Signature timestamp is outside the 5-minute tolerance"
		case errors.Is(err, webhook.ErrInvalidHeader), errors.Is(err, webhook.ErrNoValidSignature):
		default:
			msg = "event body is not a Stripe event"
		}
		respondError(ctx, rs, invalid(msg))
		return
	}
	cmds, why, err := eventCommands(&ev, webhookLookup{s})
	var bad *eventError
	var mismatch *eventMismatch
	switch {
	case errors.As(err, &bad):
		respondError(ctx, rs, invalid(bad.msg))
		return
	case errors.As(err, &mismatch):
		s.log.Warn("stripe payment event refused: nothing credited; review the payment", "event", ev.ID, "type", ev.Type, "why", mismatch.msg)
		cmds, why = nil, ""
	case err != nil:
		respondError(ctx, rs, newError(errUnavailable, "the event cannot be applied now; retry"))
		return
	}
	if len(cmds) == 0 {
		if why != "" {
			s.log.Info("stripe event ignored", "event", ev.ID, "type", ev.Type, "why", why)
		}
	} else {
		res, aerr := s.submit(ctx, cmds...)
		if aerr != nil {
			respondError(ctx, rs, aerr)
			return
		}
		for i, r := range res {
			if r.Code == engine.CodeOK || r.Code == engine.CodeReplayed {
				s.log.Debug("stripe event applied", "event", cmds[i].Reference, "type", ev.Type, "org", cmds[i].OrgID, "tx", r.TxID)
				continue
			}
			// A refused payment (no such top-up of the org, or one whose
			// amount, currency or session differs) credits nothing: 200
			// all the same, as redelivery cannot change the answer.
			s.log.Warn("stripe event changed nothing", "event", cmds[i].Reference, "type", ev.Type,
				"org", cmds[i].OrgID, "topup", cmds[i].TopupID, "code", r.Code.String(), "msg", r.Message)
		}
	}
	respond(ctx, rs, 200, func(w *jw) { w.objStart(); w.kBool("received", true); w.objEnd() })
}
