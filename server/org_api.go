package server

import (
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/orbit/orbit/engine"
)

// orgRoute is one route of the org API.
type orgRoute struct {
	pattern string
	method  string
	roles   string // roles allowed, space separated
	handle  func(s *Server, ctx *fasthttp.RequestCtx, rs *reqState, k *engine.APIKey, arg string)
}

const (
	rolesAll         = "admin charge read"
	rolesAdmin       = "admin"
	rolesCharge      = "admin charge"
	rolesAdminOrRead = "admin read"
)

// orgRoutes: a pattern's "{id}" matches one path segment, passed as arg.
var orgRoutes = []orgRoute{
	{"balance", "GET", rolesAll, (*Server).getBalance},
	{"credits", "GET", rolesAll, (*Server).getBalance},
	{"transactions", "GET", rolesAdminOrRead, (*Server).listTransactions},
	{"transactions/export", "GET", rolesAdminOrRead, (*Server).exportTransactions},
	{"transactions/{id}", "GET", rolesAdminOrRead, (*Server).getTransaction},
	{"usage", "GET", rolesAdminOrRead, (*Server).usageSeries},
	{"usage-by-channel", "GET", rolesAdminOrRead, (*Server).usageByChannel},
	{"invoices", "GET", rolesAdminOrRead, (*Server).listInvoices},
	{"status", "GET", rolesAll, (*Server).getStatus},
	{"rates", "GET", rolesAll, (*Server).getRates},
	{"refunds", "POST", rolesAdmin, (*Server).postRefund},
	{"balance/top-up", "POST", rolesAdmin, (*Server).postTopup},
	{"credits/purchase", "POST", rolesAdmin, (*Server).postTopup},
	{"charges", "POST", rolesCharge, (*Server).postCharge},
	{"charges/batch", "POST", rolesCharge, (*Server).postChargeBatch},
	{"charges/{id}/delivery", "POST", rolesCharge, (*Server).postDelivery},
	{"reservations", "POST", rolesCharge, (*Server).postReservation},
	{"reservations/{id}", "GET", rolesAll, (*Server).getReservation}, // SPEC.md: read keys make every GET
	{"reservations/{id}/extend", "POST", rolesCharge, (*Server).postReservationExtend},
	{"reservations/{id}/commit", "POST", rolesCharge, (*Server).postReservationCommit},
	{"reservations/{id}/release", "POST", rolesCharge, (*Server).postReservationRelease},
	// Served before key authentication (server.go): Stripe signs its events.
	{"webhooks/stripe", "POST", "", (*Server).stripeWebhook},
}

// orgRouteNames are the routes' full patterns, for metrics and logs, made
// once rather than per request.
var orgRouteNames = func() []string {
	names := make([]string, len(orgRoutes))
	for i := range orgRoutes {
		names[i] = "/api/v1/billing/" + orgRoutes[i].pattern
	}
	return names
}()

// matchPattern matches path segments against a pattern whose segments in
// braces ("{id}", "{}") each capture one non-empty segment, appended to args.
// It does not allocate when args has room: org routes run it per request.
func matchPattern(pattern, path string, args []string) ([]string, bool) {
	for {
		p, prest, pmore := strings.Cut(pattern, "/")
		seg, srest, smore := strings.Cut(path, "/")
		if len(p) > 0 && p[0] == '{' {
			if seg == "" {
				return args, false
			}
			args = append(args, seg)
		} else if p != seg {
			return args, false
		}
		if pmore != smore {
			return args, false
		}
		if !pmore {
			return args, true
		}
		pattern, path = prest, srest
	}
}

func (s *Server) orgAPI(ctx *fasthttp.RequestCtx, rs *reqState, path string) {
	rs.route = "/api/v1/billing/unknown"
	k, err := s.authKey(ctx)
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	rs.orgID = k.OrgID
	if s.rateLimited(ctx, rs, k.ID) {
		return
	}
	method := string(ctx.Method())
	methodMismatch := false
	var argBuf [2]string
	for i := range orgRoutes {
		r := &orgRoutes[i]
		args, ok := matchPattern(r.pattern, path, argBuf[:0])
		if !ok {
			continue
		}
		arg := ""
		if len(args) > 0 {
			arg = args[0]
		}
		if r.method != method {
			methodMismatch = true
			continue
		}
		rs.route = orgRouteNames[i]
		if !strings.Contains(r.roles, k.Role) {
			respondError(ctx, rs, newError(errForbidden, "the key's role "+k.Role+" does not allow this call"))
			return
		}
		r.handle(s, ctx, rs, k, arg)
		return
	}
	if methodMismatch {
		respondError(ctx, rs, newError(errMethodNotAllowed, "method not allowed on this route"))
		return
	}
	respondError(ctx, rs, newError(errNotFound, "no such route"))
}

func (s *Server) getBalance(ctx *fasthttp.RequestCtx, rs *reqState, k *engine.APIKey, _ string) {
	v, ok := s.store.Wallet(k.OrgID)
	if !ok {
		respondError(ctx, rs, newError(errNotFound, "org not found"))
		return
	}
	respond(ctx, rs, 200, func(w *jw) { writeBalance(w, v) })
}

func (s *Server) getStatus(ctx *fasthttp.RequestCtx, rs *reqState, k *engine.APIKey, _ string) {
	v, ok := s.store.Wallet(k.OrgID)
	if !ok {
		respondError(ctx, rs, newError(errNotFound, "org not found"))
		return
	}
	canManage := k.Role == engine.RoleAdmin
	org, _ := s.store.OrgRecord(k.OrgID)
	respond(ctx, rs, 200, func(w *jw) {
		w.objStart()
		w.kStr("billing_model", "payg")
		w.kBool("stripe_configured", s.payments.Provider() == "stripe")
		w.kBool("has_customer", org.StripeCustomerID != "")
		w.kBool("can_manage", canManage)
		w.kBool("can_checkout", canManage)
		w.kStr("payment_provider", s.payments.Provider())
		w.key("wallet")
		writeBalance(w, v)
		reason := v.BlockReason()
		w.kBool("outbound_paused", reason != "")
		w.kStrOrNull("outbound_block_reason", reason)
		w.kStrOrNull("outbound_block_details", v.HoldDetails)
		w.kInt("pause_threshold_micros", v.ThresholdMicros)
		w.key("last_topup")
		s.writeLastTopup(w, k.OrgID)
		w.objEnd()
	})
}

func (s *Server) getRates(ctx *fasthttp.RequestCtx, rs *reqState, k *engine.APIKey, _ string) {
	card, version, ok := s.store.Rates(k.OrgID)
	if !ok {
		respondError(ctx, rs, newError(errNotFound, "org not found"))
		return
	}
	respond(ctx, rs, 200, func(w *jw) {
		w.objStart()
		w.kInt("version", version)
		w.key("channels")
		writeRateCard(w, &card)
		w.objEnd()
	})
}

// writeTxWithBalance writes {"transaction": ..., "balance": ...}.
func writeTxWithBalance(w *jw, e *engine.EntryView, v engine.WalletView) {
	w.objStart()
	w.key("transaction")
	writeEntry(w, e)
	w.key("balance")
	writeBalance(w, v)
	w.objEnd()
}

// answerWrite answers a money-moving command that writes one entry: 201 with
// the entry, 200 + Idempotent-Replayed with the original entry, or the error.
func (s *Server) answerWrite(ctx *fasthttp.RequestCtx, rs *reqState, orgID string, r *engine.Result) {
	if e := resultError(r); e != nil {
		respondError(ctx, rs, e)
		return
	}
	ev, ok := s.entryOf(orgID, r)
	if !ok {
		respondError(ctx, rs, newError(errUnavailable, "transaction not readable yet; retry"))
		return
	}
	status := fasthttp.StatusCreated
	if r.Code == engine.CodeReplayed {
		status = fasthttp.StatusOK
		ctx.Response.Header.Set("Idempotent-Replayed", "true")
	}
	respond(ctx, rs, status, func(w *jw) { writeTxWithBalance(w, &ev, r.Wallet) })
}

// entryOf returns the entry a result names: the one it wrote, or for a
// replay the original, read back from the ledger.
func (s *Server) entryOf(orgID string, r *engine.Result) (engine.EntryView, bool) {
	if r.Entry != nil && r.Code == engine.CodeOK {
		return engine.EntryView{Entry: *r.Entry}, true
	}
	ev, ok, err := s.store.Transaction(orgID, r.TxID)
	if err != nil || !ok {
		return engine.EntryView{}, false
	}
	return ev, true
}
