package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/orbit/orbit/engine"
)

// The request fuzzers drive whole requests through Server.Handle over
// fuzzStore, a store that accepts every command and finds every record. The
// store never fails, so any 5xx is the handler's own; and since it accepts
// every command, a 4xx can only come from the request's validation, which
// must then have submitted nothing ("a bad input changes nothing").

const (
	fuzzKey      = apiKeyPrefix + "fuzz0123456789abcdef0123456789abcdef0123456789"
	fuzzOrg      = "org_06H1MS8JAW00000000300001"
	fuzzAdmin    = "fuzz-admin-token"
	fuzzSecret   = "whsec_fuzz"
	fuzzTimeMs   = 1_760_000_000_000
	fuzzKnownPI  = "pi_fuzz_known"
	fuzzNoRateCh = "norate" // Estimate has no rate for this channel: 422
	fuzzTopupID  = "tu_06H1MS8JAW00000000300001"
	fuzzKeyID    = "key_06H1MS8JAW00000000300001"
)

// fuzzStore is a Store that accepts every command and records it.
type fuzzStore struct {
	key       engine.APIKey
	submitted []engine.Command
}

func newFuzzStore() *fuzzStore {
	return &fuzzStore{key: engine.APIKey{ID: fuzzKeyID, OrgID: fuzzOrg, Role: engine.RoleAdmin}}
}

func (f *fuzzStore) Submit(_ context.Context, cmds []engine.Command) ([]engine.Result, error) {
	f.submitted = append(f.submitted, cmds...)
	out := make([]engine.Result, len(cmds))
	for i, c := range cmds {
		r := engine.Result{Code: engine.CodeOK, Wallet: engine.WalletView{OrgID: c.OrgID, BalanceMicros: 1_000_000}}
		txID := engine.FirstIDAt(engine.PrefixTransaction, fuzzTimeMs+int64(i))
		entry := func(t engine.EntryType, amount int64) {
			r.TxID = txID
			r.Entry = &engine.Entry{ID: txID, OrgID: c.OrgID, Type: t, AmountMicros: amount, BalanceAfterMicros: 1_000_000,
				Reference: c.Reference, Metadata: c.Metadata, CreatedAtMs: fuzzTimeMs}
		}
		hold := func(id string) {
			r.Hold = &engine.Hold{ID: id, OrgID: c.OrgID, Reference: c.Reference, Channel: "sms", Status: engine.HoldOpen,
				AmountMicros: 1, Metadata: c.Metadata, CreatedAtMs: fuzzTimeMs, ExpiresAtMs: fuzzTimeMs + 1000}
		}
		switch c.Kind {
		case engine.CmdCharge:
			entry(engine.EntrySpend, -c.AmountMicros)
		case engine.CmdAdjustment:
			entry(engine.EntryAdjustment, c.AmountMicros)
		case engine.CmdGrant:
			entry(engine.EntryGrant, c.AmountMicros)
		case engine.CmdRefund:
			entry(engine.EntryRefund, 1)
		case engine.CmdHoldCreate:
			hold(engine.FirstIDAt(engine.PrefixReservation, fuzzTimeMs))
		case engine.CmdHoldExtend, engine.CmdHoldRelease:
			hold(c.TxID)
		case engine.CmdHoldCommit:
			hold(c.TxID)
			entry(engine.EntrySpend, -1)
		case engine.CmdTopupCreate:
			r.ID = fuzzTopupID
		case engine.CmdCreateOrg:
			r.ID = fuzzOrg
		case engine.CmdCreateKey:
			r.ID = fuzzKeyID
		case engine.CmdSetRates:
			r.ID = "7"
		}
		out[i] = r
	}
	return out, nil
}

func (f *fuzzStore) Wallet(org string) (engine.WalletView, bool) {
	return engine.WalletView{OrgID: org, BalanceMicros: 1_000_000}, true
}

func (f *fuzzStore) OrgRecord(org string) (engine.OrgRecord, bool) {
	return engine.OrgRecord{ID: org, Name: "Fuzz", CreatedAtMs: fuzzTimeMs}, true
}

func (f *fuzzStore) Orgs() []engine.OrgRecord {
	o, _ := f.OrgRecord(fuzzOrg)
	return []engine.OrgRecord{o}
}

func (f *fuzzStore) OrgCount() int { return 1 }

func (f *fuzzStore) KeyByHash(hash string) (*engine.APIKey, bool) {
	if hash != hashKey([]byte(fuzzKey)) {
		return nil, false
	}
	k := f.key
	return &k, true
}

func (f *fuzzStore) Keys(org string) []engine.APIKey {
	k, _ := f.KeyByID(org, fuzzKeyID)
	return []engine.APIKey{k}
}

func (f *fuzzStore) KeyByID(org, id string) (engine.APIKey, bool) {
	return engine.APIKey{ID: id, OrgID: org, Role: engine.RoleAdmin, Prefix: "dv_live_sk_abc", CreatedAtMs: fuzzTimeMs}, true
}

func (f *fuzzStore) Transactions(string, engine.TxQuery) ([]engine.EntryView, bool, error) {
	return nil, false, nil
}

func (f *fuzzStore) Transaction(org, id string) (engine.EntryView, bool, error) {
	return engine.EntryView{Entry: engine.Entry{ID: id, OrgID: org, Type: engine.EntrySpend, AmountMicros: -1, CreatedAtMs: fuzzTimeMs}}, true, nil
}

func (f *fuzzStore) Usage(string, int64, int64) ([]engine.UsageRow, error) { return nil, nil }

func (f *fuzzStore) Invoices(string, int) ([]engine.InvoiceRecord, error) { return nil, nil }

func (f *fuzzStore) Invoice(string, string) (engine.InvoiceRecord, bool, error) {
	return engine.InvoiceRecord{}, false, nil
}

func (f *fuzzStore) Topup(id string) (engine.TopupRecord, bool, error) {
	return engine.TopupRecord{ID: id, OrgID: fuzzOrg, Status: engine.TopupPending, AmountMinor: 500, Currency: "usd",
		FxRate: engine.USDRateScale, CreditMicros: 5_000_000, Provider: "dev", CreatedAtMs: fuzzTimeMs}, true, nil
}

func (f *fuzzStore) Estimate(_, channel string, _ *engine.Usage) (int64, string, bool) {
	if channel == fuzzNoRateCh {
		return 0, "no rate for channel " + channel, false
	}
	return 1000, "", true
}

func (f *fuzzStore) Rates(string) (engine.RateCard, int64, bool) {
	return engine.RateCard{Channels: map[string]engine.ChannelRate{"sms": {Per: "unit", Prices: map[string]int64{"*": 1}}}}, 1, true
}

func (f *fuzzStore) DefaultRates() (engine.RateCard, int64) {
	c, v, _ := f.Rates("")
	return c, v
}

func (f *fuzzStore) Hold(org, id string) (engine.Hold, bool, error) {
	return engine.Hold{ID: id, OrgID: org, Status: engine.HoldOpen, Channel: "sms", CreatedAtMs: fuzzTimeMs}, true, nil
}

func (f *fuzzStore) Audit() (int, []engine.AuditMismatch, error) { return 1, nil, nil }
func (f *fuzzStore) Ready() bool                                 { return true }
func (f *fuzzStore) Fault() error                                { return nil }
func (f *fuzzStore) Cluster() ClusterInfo                        { return ClusterInfo{NodeID: "n1", Leader: "n1"} }
func (f *fuzzStore) IsLeader() bool                              { return true }
func (f *fuzzStore) LeaderHTTPAddr() string                      { return "" }
func (f *fuzzStore) NodeID() string                              { return "n1" }
func (f *fuzzStore) ReadBarrier() error                          { return nil }
func (f *fuzzStore) Join(string, string, string) error           { return nil }
func (f *fuzzStore) Remove(string) error                         { return nil }

func (f *fuzzStore) TopupByPaymentIntent(pi string) (engine.TopupRecord, bool, error) {
	if pi != fuzzKnownPI {
		return engine.TopupRecord{}, false, nil
	}
	t, _, _ := f.Topup(fuzzTopupID)
	t.Status, t.PaymentIntent, t.Provider = engine.TopupPaid, pi, "stripe"
	return t, true, nil
}

func (f *fuzzStore) FxRates() map[string]int64 { return map[string]int64{"eur": 108_250_000} }

// fuzzHarness is a Server over a fuzzStore.
type fuzzHarness struct {
	st  *fuzzStore
	srv *Server
	ctx fasthttp.RequestCtx
}

func newFuzzHarness() *fuzzHarness {
	st := newFuzzStore()
	return &fuzzHarness{st: st, srv: New(Config{
		Store: st, AdminToken: fuzzAdmin, PublicURL: "http://127.0.0.1:1",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), StripeWebhookSecret: fuzzSecret,
	})}
}

// fuzzAnswer is one response, decoded.
type fuzzAnswer struct {
	status int
	data   json.RawMessage
	code   string
	cmds   []engine.Command // what the request submitted
}

// envelope is the JSON shape of every answer (server/envelope.go).
type envelope struct {
	Data  json.RawMessage `json:"data"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Meta *struct {
		RequestID string `json:"request_id"`
	} `json:"meta"`
}

// do sends one request (headers as name, value pairs) and checks what every
// answer must satisfy: no 5xx; a JSON envelope with data on success and a
// documented error code of the answer's status on a refusal; and a refusal
// submitted nothing.
func (h *fuzzHarness) do(t *testing.T, method, uri string, body []byte, headers ...string) fuzzAnswer {
	t.Helper()
	h.st.submitted = h.st.submitted[:0]
	ctx := &h.ctx
	ctx.Request.Reset()
	ctx.Response.Reset()
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI(uri)
	for i := 0; i+1 < len(headers); i += 2 {
		ctx.Request.Header.Set(headers[i], headers[i+1])
	}
	if body != nil {
		ctx.Request.SetBody(body)
	}
	h.srv.Handle(ctx)
	a := fuzzAnswer{status: ctx.Response.StatusCode(), cmds: append([]engine.Command(nil), h.st.submitted...)}
	if a.status >= 500 {
		t.Fatalf("%s %s: status %d: %s", method, uri, a.status, ctx.Response.Body())
	}
	if documented, ok := docStatuses(method, string(ctx.Path())); ok && !documented[a.status] {
		t.Fatalf("%s %s: status %d is not documented for the operation in api/openapi.yaml: %s", method, uri, a.status, ctx.Response.Body())
	} else if !ok && a.status != 404 && a.status != 405 {
		t.Fatalf("%s %s: no documented operation, answered %d", method, uri, a.status)
	}
	if string(ctx.Response.Header.ContentType()) != "application/json" {
		if a.status == 200 && strings.HasPrefix(uri, "/api/v1/billing/transactions/export") {
			return a // the CSV export
		}
		t.Fatalf("%s %s: status %d with Content-Type %q", method, uri, a.status, ctx.Response.Header.ContentType())
	}
	var env envelope
	if err := json.Unmarshal(ctx.Response.Body(), &env); err != nil {
		t.Fatalf("%s %s: status %d, body is not JSON: %v: %q", method, uri, a.status, err, ctx.Response.Body())
	}
	if env.Meta == nil || env.Meta.RequestID == "" {
		t.Fatalf("%s %s: envelope without meta.request_id: %s", method, uri, ctx.Response.Body())
	}
	if a.status >= 400 {
		if env.Error == nil || env.Data != nil {
			t.Fatalf("%s %s: refusal %d without the error envelope: %s", method, uri, a.status, ctx.Response.Body())
		}
		if want, ok := errorStatus[env.Error.Code]; !ok || want != a.status || env.Error.Message == "" {
			t.Fatalf("%s %s: status %d with error code %q (documented status %d): %s", method, uri, a.status, env.Error.Code, want, ctx.Response.Body())
		}
		if len(a.cmds) != 0 {
			t.Fatalf("%s %s: refused with %d (%s) but submitted %+v", method, uri, a.status, env.Error.Code, a.cmds)
		}
		a.code = env.Error.Code
		return a
	}
	if env.Error != nil || len(env.Data) == 0 {
		t.Fatalf("%s %s: success %d without data: %s", method, uri, a.status, ctx.Response.Body())
	}
	a.data = env.Data
	return a
}

// docOps are the document's operations: path template, method (upper
// case) and documented statuses.
var docOps = func() (ops []struct {
	segs     []string
	method   string
	statuses map[int]bool
}) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPIJSON, &doc); err != nil {
		panic(err)
	}
	for path, item := range doc.Paths {
		for method, raw := range item {
			var op struct {
				Responses map[string]json.RawMessage `json:"responses"`
			}
			if json.Unmarshal(raw, &op) != nil || op.Responses == nil {
				continue // parameters, not an operation
			}
			st := map[int]bool{}
			for code := range op.Responses {
				n, _ := strconv.Atoi(code)
				st[n] = true
			}
			ops = append(ops, struct {
				segs     []string
				method   string
				statuses map[int]bool
			}{strings.Split(path, "/"), strings.ToUpper(method), st})
		}
	}
	return ops
}()

// docStatuses returns the documented statuses of the operation a request
// reaches (a literal segment beats a parameter: /transactions/export is not
// /transactions/{id}); false when the document has no such operation.
func docStatuses(method, path string) (map[int]bool, bool) {
	segs := strings.Split(path, "/")
	best, bestLiterals := -1, -1
	for i, op := range docOps {
		if op.method != method || len(op.segs) != len(segs) {
			continue
		}
		literals := 0
		for j, s := range op.segs {
			switch {
			case s == segs[j]:
				literals++
			case strings.HasPrefix(s, "{") && segs[j] != "":
			default:
				literals = -1
			}
			if literals < 0 {
				break
			}
		}
		if literals > bestLiterals {
			best, bestLiterals = i, literals
		}
	}
	if best < 0 {
		return nil, false
	}
	return docOps[best].statuses, true
}

// orgDo sends a request with the harness's org key.
func (h *fuzzHarness) orgDo(t *testing.T, method, route string, body []byte, headers ...string) fuzzAnswer {
	t.Helper()
	return h.do(t, method, "/api/v1/billing/"+route, body,
		append([]string{"X-API-Key", fuzzKey, "Content-Type", "application/json"}, headers...)...)
}

// adminDo sends a request with the admin token.
func (h *fuzzHarness) adminDo(t *testing.T, method, route string, body []byte) fuzzAnswer {
	t.Helper()
	return h.do(t, method, "/admin/v1/"+route, body, "Authorization", "Bearer "+fuzzAdmin, "Content-Type", "application/json")
}

// oneCmd returns the only command a successful answer submitted.
func (a fuzzAnswer) oneCmd(t *testing.T, kind engine.CommandKind) engine.Command {
	t.Helper()
	if len(a.cmds) != 1 || a.cmds[0].Kind != kind {
		t.Fatalf("status %d submitted %+v, want one %s", a.status, a.cmds, kind)
	}
	return a.cmds[0]
}

// expectStatus fails unless the answer's status is one of want.
func (a fuzzAnswer) expectStatus(t *testing.T, want ...int) {
	t.Helper()
	for _, w := range want {
		if a.status == w {
			return
		}
	}
	t.Fatalf("status %d (%s), want one of %v", a.status, a.code, want)
}

// pathSegment makes a fuzzed id usable as one path segment: the router sees
// exactly the segment the fuzzer chose or the request is not sent.
func pathSegment(id string) (string, bool) {
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c <= 0x20 || c >= 0x7f || c == '/' || c == '?' || c == '#' || c == '%' || c == '\\' || c == '.' {
			return "", false
		}
	}
	return id, id != ""
}
