package server

import (
	"context"
	"strconv"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/orbit/orbit/engine"
)

// benchStore answers a charge at once, so the benchmark measures the HTTP
// layer alone: parsing, auth, validation, admission hand-off, encoding.
// Methods a charge never calls are left to the embedded nil interface.
type benchStore struct {
	Store
	key engine.APIKey
}

func (b *benchStore) Ready() bool                             { return true }
func (b *benchStore) Fault() error                            { return nil }
func (b *benchStore) IsLeader() bool                          { return true }
func (b *benchStore) ReadBarrier() error                      { return nil }
func (b *benchStore) Orgs() []engine.OrgRecord                { return nil }
func (b *benchStore) OrgCount() int                           { return 0 }
func (b *benchStore) KeyByHash(string) (*engine.APIKey, bool) { return &b.key, true }
func (b *benchStore) Wallet(org string) (engine.WalletView, bool) {
	return engine.WalletView{OrgID: org, BalanceMicros: 1_000_000}, true
}
func (b *benchStore) Submit(_ context.Context, cmds []engine.Command) ([]engine.Result, error) {
	res := make([]engine.Result, len(cmds))
	for i, c := range cmds {
		res[i] = engine.Result{Code: engine.CodeOK, TxID: "ct_06H1MS8JAW00000000300001", Entry: &engine.Entry{
			ID: "ct_06H1MS8JAW00000000300001", OrgID: c.OrgID, Type: engine.EntrySpend, AmountMicros: -c.AmountMicros,
			BalanceAfterMicros: 1_000_000, Reference: "charge:" + c.Reference, Metadata: c.Metadata, CreatedAtMs: 1_700_000_000_000,
		}, Wallet: engine.WalletView{OrgID: c.OrgID, BalanceMicros: 1_000_000}}
	}
	return res, nil
}

// BenchmarkHandleCharge is one POST /charges through the server's handler,
// with -benchmem's allocations per charge.
func BenchmarkHandleCharge(b *testing.B) {
	st := &benchStore{key: engine.APIKey{ID: "key_1", OrgID: "org_06H1MS8JAW00000000300001", Role: engine.RoleCharge}}
	s := New(Config{Store: st, Metrics: NewMetrics()})
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.SetRequestURI("/api/v1/billing/charges")
		ctx.Request.Header.SetContentType("application/json")
		ctx.Request.Header.Set("X-API-Key", "dv_live_sk_0123456789abcdef")
		ctx.Request.SetBodyString(`{"reference":"sms_msg_` + strconv.Itoa(i) + `","channel":"sms","amount_micros":4200,"metadata":{"campaign":"spring"}}`)
		s.Handle(&ctx)
		if ctx.Response.StatusCode() != 201 {
			b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}

// BenchmarkHandleChargeBatch is one POST /charges/batch of 1,000 charges
// through the server's handler; allocations are per request (divide by
// 1,000 for per charge).
func BenchmarkHandleChargeBatch(b *testing.B) {
	st := &benchStore{key: engine.APIKey{ID: "key_1", OrgID: "org_06H1MS8JAW00000000300001", Role: engine.RoleCharge}}
	s := New(Config{Store: st, Metrics: NewMetrics()})
	var ctx fasthttp.RequestCtx
	var body []byte
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		body = append(body[:0], `{"charges":[`...)
		for j := 0; j < 1000; j++ {
			if j > 0 {
				body = append(body, ',')
			}
			body = append(body, `{"reference":"sms_msg_`...)
			body = strconv.AppendInt(body, int64(i*1000+j), 10)
			body = append(body, `","channel":"sms","amount_micros":4200,"metadata":{"campaign":"spring"}}`...)
		}
		body = append(body, "]}"...)
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.SetRequestURI("/api/v1/billing/charges/batch")
		ctx.Request.Header.SetContentType("application/json")
		ctx.Request.Header.Set("X-API-Key", "dv_live_sk_0123456789abcdef")
		ctx.Request.SetBody(body)
		s.Handle(&ctx)
		if ctx.Response.StatusCode() != 200 {
			b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}
