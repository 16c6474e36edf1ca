package server

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"html/template"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/orbit/orbit/engine"
)

// The development payment provider's pages: a checkout page with a Pay
// button, which credits the wallet through the same command a Stripe
// checkout.session.completed event does, and receipt pages for the invoices
// it issues. Only served while the development provider is in use; it takes
// no money, so it must never face the internet.

var devCheckoutPage = template.Must(template.New("checkout").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Orbit development checkout</title>
<style>body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}
.card{border:1px solid #ccc;border-radius:8px;padding:1.5rem}button{font-size:1.1rem;padding:.6rem 1.4rem}
.note{color:#555;font-size:.9rem}</style></head>
<body><main class="card">
<h1>Top up your Orbit wallet</h1>
<p>Amount: <strong id="amount">{{.Amount}}</strong></p>
<p>Status: <strong id="status">{{.Status}}</strong></p>
{{if eq .Status "pending"}}<form method="post" action="{{.PayPath}}"><button type="submit" id="pay">Pay {{.Amount}}</button></form>
<p><a href="{{.CancelURL}}" id="cancel">Cancel</a></p>{{else}}<p><a href="{{.SuccessURL}}">Back to billing</a></p>{{end}}
<p class="note">Development payment provider: no card is charged. Configure STRIPE_SECRET_KEY for real payments.</p>
</main></body></html>
`))

var devReceiptPage = template.Must(template.New("receipt").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Receipt {{.Number}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}td{padding:.3rem 1rem .3rem 0}</style></head>
<body><main><h1>Receipt {{.Number}}</h1><table>
<tr><td>Amount</td><td>{{.Amount}}</td></tr><tr><td>Status</td><td>{{.Status}}</td></tr>
<tr><td>Date</td><td>{{.Date}}</td></tr><tr><td>Invoice id</td><td>{{.ID}}</td></tr></table>
<p>One-time top-up of a prepaid Orbit wallet (development payment provider).</p></main></body></html>
`))

func (s *Server) devProvider(ctx *fasthttp.RequestCtx, rs *reqState, path string) {
	rs.route = "/dev/unknown"
	if s.payments.Provider() != "dev" {
		respondError(ctx, rs, newError(errNotFound, "no such route"))
		return
	}
	parts := strings.Split(path, "/")
	switch {
	case len(parts) == 2 && parts[0] == "checkout":
		rs.route = "/dev/checkout/{id}"
		if !ctx.IsGet() && !ctx.IsHead() {
			methodNotAllowed(ctx, rs, "GET, HEAD")
			return
		}
		s.devCheckout(ctx, rs, parts[1])
	case len(parts) == 3 && parts[0] == "checkout" && parts[2] == "pay":
		rs.route = "/dev/checkout/{id}/pay"
		if !ctx.IsPost() {
			methodNotAllowed(ctx, rs, "POST")
			return
		}
		s.devPay(ctx, rs, parts[1])
	case len(parts) == 3 && parts[0] == "receipts":
		rs.route = "/dev/receipts/{org}/{id}"
		if !ctx.IsGet() && !ctx.IsHead() {
			methodNotAllowed(ctx, rs, "GET, HEAD")
			return
		}
		s.devReceipt(ctx, rs, parts[1], parts[2])
	default:
		respondError(ctx, rs, newError(errNotFound, "no such route"))
	}
}

func (s *Server) devTopup(ctx *fasthttp.RequestCtx, rs *reqState, id string) (engine.TopupRecord, bool) {
	if _, ok := engine.IDTimeMs(id, engine.PrefixTopup); ok {
		if t, ok, err := s.store.Topup(id); err == nil && ok {
			return t, true
		}
	}
	respondError(ctx, rs, newError(errNotFound, "top-up not found"))
	return engine.TopupRecord{}, false
}

func formatMinor(amount int64, currency string) string {
	var w jw
	w.b = appendUSD(w.b, amount*engine.MicrosPerCent)
	s := string(w.b)
	return strings.ToUpper(currency) + " " + s[:len(s)-2] // two decimals of a cent-based amount
}

func (s *Server) devCheckout(ctx *fasthttp.RequestCtx, rs *reqState, id string) {
	t, ok := s.devTopup(ctx, rs, id)
	if !ok {
		return
	}
	ctx.SetContentType("text/html; charset=utf-8")
	ctx.Response.Header.Set("X-Request-Id", rs.requestID)
	_ = devCheckoutPage.Execute(ctx, map[string]string{
		"Amount": formatMinor(t.AmountMinor, t.Currency), "Status": t.Status,
		"PayPath": "/dev/checkout/" + t.ID + "/pay", "CancelURL": t.CancelURL, "SuccessURL": t.SuccessURL,
	})
}

// devPay completes the payment: it credits the wallet once, however often it
// is called, and redirects to the top-up's successUrl.
func (s *Server) devPay(ctx *fasthttp.RequestCtx, rs *reqState, id string) {
	t, ok := s.devTopup(ctx, rs, id)
	if !ok {
		return
	}
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	r, err := s.submitOne(ctx, engine.Command{
		Kind: engine.CmdTopupComplete, OrgID: t.OrgID, TopupID: t.ID,
		SessionID: "dev_" + t.ID, PaymentIntent: "dev_pi_" + hex.EncodeToString(raw[:]),
	})
	if err == nil {
		err = resultError(&r)
	}
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	ctx.Response.Header.Set("X-Request-Id", rs.requestID)
	ctx.Redirect(t.SuccessURL, fasthttp.StatusSeeOther)
}

func (s *Server) devReceipt(ctx *fasthttp.RequestCtx, rs *reqState, org, id string) {
	inv, ok, err := s.store.Invoice(org, id)
	token := string(ctx.QueryArgs().Peek("token"))
	want := ""
	if i := strings.Index(inv.PDFURL, "?token="); i >= 0 {
		want = inv.PDFURL[i+len("?token="):]
	}
	if err != nil || !ok || want == "" || subtle.ConstantTimeCompare([]byte(token), []byte(want)) != 1 {
		respondError(ctx, rs, newError(errNotFound, "receipt not found"))
		return
	}
	ctx.SetContentType("text/html; charset=utf-8")
	ctx.Response.Header.Set("X-Request-Id", rs.requestID)
	_ = devReceiptPage.Execute(ctx, map[string]string{
		"Number": inv.Number, "Amount": formatMinor(inv.AmountMinor, inv.Currency), "Status": inv.Status,
		"Date": formatTime(inv.CreatedAtMs), "ID": inv.ID,
	})
}
