package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v79/webhook"

	"github.com/orbit/orbit/internal/testserver"
)

// The Stripe adapter against stripe-mock (Stripe's API mock), through a
// recording proxy that shows which requests reached "Stripe", with which
// idempotency keys and parameters, and can make Stripe fail. stripe-mock is
// stateless (canned answers, no idempotency), so it proves that the adapter
// sends well-formed requests; exactly-once and the money come from the
// ledger, checked through the API. Webhook events are built and signed here
// with the server's webhook secret, as Stripe would deliver them.

const (
	stripeTestKey     = "sk_test_123"
	stripeTestWebhook = "whsec_test"
	stripeWebhookURL  = "/api/v1/billing/webhooks/stripe"
)

// startStripeMock runs stripe-mock on free loopback ports until the test
// ends and returns its HTTP base URL. It is ready once it answers an API
// request over HTTP and its HTTPS port accepts connections: a port taken
// between FreePort and stripe-mock's bind (one of the two ports suffices)
// makes it exit, and then it starts again on fresh ports (CI once saw every
// Stripe call of a test fail after a start that only dialed the HTTP port).
func startStripeMock(t *testing.T) string {
	t.Helper()
	gopath, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		t.Fatalf("go env GOPATH: %v", err)
	}
	bin := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "stripe-mock")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("stripe-mock is not installed at %s: run `make stripe-mock` (go install github.com/stripe/stripe-mock@v0.203.0)", bin)
	}
	var lastLogs string
	for attempt := 1; attempt <= 3; attempt++ {
		base, logs, ok := startStripeMockOnce(t, bin)
		if ok {
			return base
		}
		lastLogs = logs
	}
	t.Fatalf("stripe-mock did not start in 3 attempts; last output:\n%s", lastLogs)
	return ""
}

// startStripeMockOnce starts stripe-mock and waits until it serves; on
// failure it returns its output and ok=false, with the process stopped.
func startStripeMockOnce(t *testing.T, bin string) (base, output string, ok bool) {
	t.Helper()
	httpAddr, httpsAddr := testserver.FreePort(t), testserver.FreePort(t)
	cmd := exec.Command(bin, "-http-addr", httpAddr, "-https-addr", httpsAddr)
	var logs bytes.Buffer
	var logsMu sync.Mutex
	cmd.Stdout = writerFunc(func(p []byte) (int, error) { logsMu.Lock(); defer logsMu.Unlock(); return logs.Write(p) })
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("start stripe-mock: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			logsMu.Lock()
			defer logsMu.Unlock()
			return "", logs.String(), false
		default:
		}
		if stripeMockServes(httpAddr, httpsAddr) {
			t.Cleanup(stop)
			return "http://" + httpAddr, "", true
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	logsMu.Lock()
	defer logsMu.Unlock()
	return "", "not serving after 30 s:\n" + logs.String(), false
}

// stripeMockServes reports whether an API request over HTTP gets stripe-mock's
// answer and the HTTPS port accepts connections.
func stripeMockServes(httpAddr, httpsAddr string) bool {
	req, err := http.NewRequest("GET", "http://"+httpAddr+"/v1/customers", nil)
	if err != nil {
		return false
	}
	req.Header.Set("Authorization", "Bearer "+stripeTestKey)
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	c, err := net.DialTimeout("tcp", httpsAddr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// stripeCall is one request that reached the proxy.
type stripeCall struct {
	Method, Path, Key string
	Form              url.Values
}

// stripeProxy forwards to stripe-mock and records every request.
type stripeProxy struct {
	mu    sync.Mutex
	calls []stripeCall
	fail  atomic.Bool  // answer 500 instead of forwarding
	delay atomic.Int64 // wait this long (ns) before answering, unless the client gives up
	URL   string
}

func newStripeProxy(t *testing.T, target string) *stripeProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &stripeProxy{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form := r.URL.Query()
		if r.Method == http.MethodPost {
			form, _ = url.ParseQuery(string(body))
		}
		p.mu.Lock()
		p.calls = append(p.calls, stripeCall{Method: r.Method, Path: r.URL.Path, Key: r.Header.Get("Idempotency-Key"), Form: form})
		p.mu.Unlock()
		if d := time.Duration(p.delay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		if p.fail.Load() {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"error":{"type":"api_error","message":"injected failure"}}`))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// mark returns how many calls were seen so far; since returns the calls
// after a mark.
func (p *stripeProxy) mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.calls)
}

func (p *stripeProxy) since(n int) []stripeCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]stripeCall(nil), p.calls[n:]...)
}

// stripeHarness is an orbitd on the Stripe provider, stripe-mock behind the
// recording proxy.
type stripeHarness struct {
	s     *testserver.Server
	proxy *stripeProxy
}

func startStripeHarness(t *testing.T) *stripeHarness {
	t.Helper()
	proxy := newStripeProxy(t, startStripeMock(t))
	s := testserver.New(t)
	s.ExtraEnv = []string{
		"STRIPE_SECRET_KEY=" + stripeTestKey,
		"STRIPE_WEBHOOK_SECRET=" + stripeTestWebhook,
		"STRIPE_API_BASE=" + proxy.URL,
	}
	s.Start()
	return &stripeHarness{s: s, proxy: proxy}
}

// event is a Stripe event body around data.object.
func stripeEventBody(t testing.TB, id, typ string, object map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"id": id, "object": "event", "api_version": "2024-06-20", "created": time.Now().Unix(),
		"livemode": false, "pending_webhooks": 1, "type": typ, "data": map[string]any{"object": object},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// deliverAt posts an event signed with secret at ts, as Stripe does.
func (h *stripeHarness) deliverAt(body []byte, secret string, ts time.Time) *testserver.Response {
	sig := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret, Timestamp: ts}).Header
	return h.s.Anon().With("Stripe-Signature", sig).Do("POST", stripeWebhookURL, body)
}

// deliver posts a correctly signed event and expects 200 received.
func (h *stripeHarness) deliver(t *testing.T, body []byte) {
	t.Helper()
	r := h.deliverAt(body, stripeTestWebhook, time.Now())
	if d := oaExpectOK(t, r, 200); d["received"] != true {
		t.Fatalf("webhook answer %s", oaClip(r.Body))
	}
}

func paidSession(org, topup, session, pi string, amount int64, currency string) map[string]any {
	return map[string]any{
		"id": session, "object": "checkout.session", "mode": "payment", "status": "complete", "payment_status": "paid",
		"client_reference_id": org, "metadata": map[string]string{"org_id": org, "topup_id": topup},
		"payment_intent": pi, "amount_total": amount, "currency": currency, "customer": "cus_test",
	}
}

// stripeTopup starts a top-up and returns its response data.
func stripeTopup(t *testing.T, c *testserver.Client, key string, amount int64, currency string) map[string]any {
	t.Helper()
	return oaExpectOK(t, c.With("Idempotency-Key", key).Do("POST", "/api/v1/billing/balance/top-up", map[string]any{
		"amount": amount, "currency": currency,
		"successUrl": "https://orbit.devotel.io/billing?topup=ok", "cancelUrl": "https://orbit.devotel.io/billing?topup=cancelled",
	}), 201)
}

func walletMicros(t *testing.T, c *testserver.Client) (balance, available int64) {
	t.Helper()
	b := oaExpectOK(t, c.Do("GET", "/api/v1/billing/balance", nil), 200)
	return num(t, b, "balance_micros"), num(t, b, "available_micros")
}

// ledger returns the org's entries, newest first.
func ledger(t *testing.T, c *testserver.Client) []map[string]any {
	t.Helper()
	d := oaExpectOK(t, c.Do("GET", "/api/v1/billing/transactions?limit=100", nil), 200)
	var out []map[string]any
	for _, e := range d["transactions"].([]any) {
		out = append(out, e.(map[string]any))
	}
	return out
}

func entriesOfType(entries []map[string]any, typ string) []map[string]any {
	var out []map[string]any
	for _, e := range entries {
		if e["type"] == typ {
			out = append(out, e)
		}
	}
	return out
}

// paidTopup makes a top-up of an org through the API and pays it with a
// signed checkout.session.completed; it returns the top-up's ledger entry.
func (h *stripeHarness) paidTopup(t *testing.T, org testserver.Org, key, pi string, amount int64, currency string) (topup, entry map[string]any) {
	t.Helper()
	c := h.s.Key(org.Key)
	tu := stripeTopup(t, c, key, amount, currency)
	h.deliver(t, stripeEventBody(t, "evt_paid_"+key, "checkout.session.completed",
		paidSession(org.ID, tu["topup_id"].(string), tu["session_id"].(string), pi, amount, currency)))
	for _, e := range entriesOfType(ledger(t, c), "topup") {
		if e["reference"] == "stripe_session:"+tu["session_id"].(string) {
			return tu, e
		}
	}
	t.Fatalf("no topup entry for session %v", tu["session_id"])
	return nil, nil
}

func TestStripe(t *testing.T) {
	h := startStripeHarness(t)
	s, a := h.s, h.s.Admin()

	t.Run("top-up creates a Checkout Session once per Idempotency-Key", func(t *testing.T) {
		org := s.MustOrg(t, "Stripe checkout", 0)
		c := s.Key(org.Key)
		st := oaExpectOK(t, c.Do("GET", "/api/v1/billing/status", nil), 200)
		if st["stripe_configured"] != true || st["has_customer"] != false || st["payment_provider"] != "stripe" {
			t.Errorf("status before any top-up: %v", st)
		}
		m := h.proxy.mark()
		tu := stripeTopup(t, c, "topup-stripe-0001", 10000, "usd")
		topupID, session := tu["topup_id"].(string), tu["session_id"].(string)
		if !strings.HasPrefix(tu["checkoutUrl"].(string), "https://checkout.stripe.com/") || !strings.HasPrefix(session, "cs_") ||
			tu["status"] != "pending" || num(t, tu, "credit_micros") != 100_000_000 {
			t.Errorf("top-up: %v", tu)
		}
		calls := h.proxy.since(m)
		if len(calls) != 2 || calls[0].Path != "/v1/customers" || calls[1].Path != "/v1/checkout/sessions" {
			t.Fatalf("Stripe calls %+v, want a customer then a checkout session", calls)
		}
		if calls[0].Key != "orbit:"+org.ID+":customer:"+org.ID || calls[0].Form.Get("metadata[org_id]") != org.ID {
			t.Errorf("customer request: %+v", calls[0])
		}
		f := calls[1].Form
		want := map[string]string{
			"mode": "payment", "client_reference_id": org.ID, "metadata[org_id]": org.ID, "metadata[topup_id]": topupID,
			"payment_intent_data[metadata][org_id]": org.ID, "payment_intent_data[metadata][topup_id]": topupID,
			"invoice_creation[enabled]": "true", "invoice_creation[invoice_data][metadata][org_id]": org.ID,
			"line_items[0][quantity]": "1", "line_items[0][price_data][currency]": "usd", "line_items[0][price_data][unit_amount]": "10000",
			"success_url": "https://orbit.devotel.io/billing?topup=ok", "cancel_url": "https://orbit.devotel.io/billing?topup=cancelled",
		}
		for k, v := range want {
			if f.Get(k) != v {
				t.Errorf("checkout session %s = %q, want %q", k, f.Get(k), v)
			}
		}
		if !strings.HasPrefix(f.Get("customer"), "cus_") {
			t.Errorf("checkout session customer %q", f.Get("customer"))
		}
		if calls[1].Key != "orbit:"+org.ID+":topup:"+topupID {
			t.Errorf("checkout session idempotency key %q", calls[1].Key)
		}

		// The same key and body: the same session, and Stripe is not called.
		m = h.proxy.mark()
		r := c.With("Idempotency-Key", "topup-stripe-0001").Do("POST", "/api/v1/billing/credits/purchase", map[string]any{
			"amount": 10000, "currency": "usd",
			"successUrl": "https://orbit.devotel.io/billing?topup=ok", "cancelUrl": "https://orbit.devotel.io/billing?topup=cancelled",
		})
		d := oaExpectOK(t, r, 200)
		if r.Header.Get("Idempotent-Replayed") != "true" || d["checkoutUrl"] != tu["checkoutUrl"] || d["session_id"] != session || d["topup_id"] != topupID {
			t.Errorf("replay: %s", oaClip(r.Body))
		}
		if calls := h.proxy.since(m); len(calls) != 0 {
			t.Errorf("a replay called Stripe: %+v", calls)
		}
		st = oaExpectOK(t, c.Do("GET", "/api/v1/billing/status", nil), 200)
		if st["has_customer"] != true {
			t.Errorf("status after a top-up: has_customer %v", st["has_customer"])
		}

		// A second top-up reuses the org's customer.
		m = h.proxy.mark()
		stripeTopup(t, c, "topup-stripe-0002", 2500, "usd")
		calls = h.proxy.since(m)
		if len(calls) != 1 || calls[0].Path != "/v1/checkout/sessions" || calls[0].Form.Get("customer") != f.Get("customer") {
			t.Errorf("second top-up's Stripe calls %+v, want one session on customer %s", calls, f.Get("customer"))
		}

		// Another org with the same Idempotency-Key gets its own Stripe keys.
		other := s.MustOrg(t, "Stripe checkout 2", 0)
		m = h.proxy.mark()
		tu2 := stripeTopup(t, s.Key(other.Key), "topup-stripe-0001", 10000, "usd")
		calls = h.proxy.since(m)
		if tu2["topup_id"] == topupID || len(calls) != 2 || calls[1].Key != "orbit:"+other.ID+":topup:"+tu2["topup_id"].(string) {
			t.Errorf("other org's top-up %v, Stripe calls %+v", tu2, calls)
		}
	})

	t.Run("Stripe failure is 503 and the retry completes the same top-up", func(t *testing.T) {
		org := s.MustOrg(t, "Stripe down", 0)
		c := s.Key(org.Key)
		body := map[string]any{"amount": 5000, "currency": "usd",
			"successUrl": "https://orbit.devotel.io/billing?topup=ok", "cancelUrl": "https://orbit.devotel.io/billing?topup=cancelled"}
		h.proxy.fail.Store(true)
		oaExpectErr(t, c.With("Idempotency-Key", "topup-down-0001").Do("POST", "/api/v1/billing/balance/top-up", body), 503, "unavailable")
		h.proxy.fail.Store(false)
		r := c.With("Idempotency-Key", "topup-down-0001").Do("POST", "/api/v1/billing/balance/top-up", body)
		d := oaExpectOK(t, r, 200) // the top-up was recorded by the first attempt
		if r.Header.Get("Idempotent-Replayed") != "true" || !strings.HasPrefix(d["session_id"].(string), "cs_") || d["checkoutUrl"] == "" {
			t.Errorf("retry after a Stripe failure: %s", oaClip(r.Body))
		}
	})

	t.Run("checkout.session.completed credits once however often delivered", func(t *testing.T) {
		org := s.MustOrg(t, "Stripe credit", 0)
		c := s.Key(org.Key)
		tu := stripeTopup(t, c, "topup-credit-0001", 10000, "usd")
		topupID, session := tu["topup_id"].(string), tu["session_id"].(string)
		ev := stripeEventBody(t, "evt_credit_1", "checkout.session.completed", paidSession(org.ID, topupID, session, "pi_credit_1", 10000, "usd"))
		for i := 0; i < 3; i++ {
			h.deliver(t, ev)
		}
		// Stripe may also report the same payment as async success.
		h.deliver(t, stripeEventBody(t, "evt_credit_2", "checkout.session.async_payment_succeeded", paidSession(org.ID, topupID, session, "pi_credit_1", 10000, "usd")))
		if bal, _ := walletMicros(t, c); bal != 100_000_000 {
			t.Fatalf("balance %d after one payment delivered 4 times, want 100000000", bal)
		}
		tops := entriesOfType(ledger(t, c), "topup")
		if len(tops) != 1 || tops[0]["reference"] != "stripe_session:"+session || num(t, tops[0], "amount_minor") != 10000 {
			t.Fatalf("topup entries %v", tops)
		}
		if md := oaObj(tops[0], "metadata"); md["currency"] != "usd" || md["fx_rate"] != 1.0 || md["topup_id"] != topupID {
			t.Errorf("topup metadata %v", md)
		}
		st := oaExpectOK(t, c.Do("GET", "/api/v1/billing/status", nil), 200)
		if lt := oaObj(st, "last_topup"); lt["topup_id"] != topupID || lt["status"] != "paid" || lt["checkoutUrl"] != tu["checkoutUrl"] {
			t.Errorf("last_topup %v", lt)
		}

		// A completed session that is not paid yet credits nothing.
		tu2 := stripeTopup(t, c, "topup-credit-0002", 5000, "usd")
		unpaid := paidSession(org.ID, tu2["topup_id"].(string), tu2["session_id"].(string), "pi_credit_2", 5000, "usd")
		unpaid["payment_status"] = "unpaid"
		h.deliver(t, stripeEventBody(t, "evt_credit_3", "checkout.session.completed", unpaid))
		if bal, _ := walletMicros(t, c); bal != 100_000_000 {
			t.Errorf("an unpaid session credited: balance %d", bal)
		}
		// ... until its async payment succeeds.
		unpaid["payment_status"] = "paid"
		h.deliver(t, stripeEventBody(t, "evt_credit_4", "checkout.session.async_payment_succeeded", unpaid))
		if bal, _ := walletMicros(t, c); bal != 150_000_000 {
			t.Errorf("async success: balance %d, want 150000000", bal)
		}

		// An expired checkout closes its pending top-up.
		tu3 := stripeTopup(t, c, "topup-credit-0003", 5000, "usd")
		exp := paidSession(org.ID, tu3["topup_id"].(string), tu3["session_id"].(string), "", 5000, "usd")
		exp["payment_status"], exp["status"], exp["payment_intent"] = "unpaid", "expired", nil
		h.deliver(t, stripeEventBody(t, "evt_credit_5", "checkout.session.expired", exp))
		r := c.With("Idempotency-Key", "topup-credit-0003").Do("POST", "/api/v1/billing/balance/top-up", map[string]any{"amount": 5000, "currency": "usd",
			"successUrl": "https://orbit.devotel.io/billing?topup=ok", "cancelUrl": "https://orbit.devotel.io/billing?topup=cancelled"})
		if d := oaExpectOK(t, r, 200); d["status"] != "expired" {
			t.Errorf("expired top-up replays as %v", d["status"])
		}
	})

	t.Run("unverified and unknown events change nothing", func(t *testing.T) {
		org := s.MustOrg(t, "Stripe bad events", 0)
		c := s.Key(org.Key)
		tu := stripeTopup(t, c, "topup-bad-0001", 10000, "usd")
		ev := stripeEventBody(t, "evt_bad_1", "checkout.session.completed",
			paidSession(org.ID, tu["topup_id"].(string), tu["session_id"].(string), "pi_bad_1", 10000, "usd"))
		oaExpectErr(t, h.deliverAt(ev, "whsec_wrong", time.Now()), 400, "invalid_request")
		oaExpectErr(t, h.deliverAt(ev, stripeTestWebhook, time.Now().Add(-10*time.Minute)), 400, "invalid_request")
		oaExpectErr(t, s.Anon().Do("POST", stripeWebhookURL, ev), 400, "invalid_request") // unsigned
		tampered := bytes.Replace(ev, []byte(`"amount_total":10000`), []byte(`"amount_total":99999`), 1)
		sig := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: ev, Secret: stripeTestWebhook}).Header
		oaExpectErr(t, s.Anon().With("Stripe-Signature", sig).Do("POST", stripeWebhookURL, tampered), 400, "invalid_request")
		// Unknown event types, and events of unknown orgs or top-ups: 200.
		h.deliver(t, stripeEventBody(t, "evt_bad_2", "customer.created", map[string]any{"id": "cus_x", "object": "customer"}))
		h.deliver(t, stripeEventBody(t, "evt_bad_3", "checkout.session.completed",
			paidSession(oaUnknownOrg, tu["topup_id"].(string), tu["session_id"].(string), "pi_bad_1", 10000, "usd")))
		h.deliver(t, stripeEventBody(t, "evt_bad_4", "checkout.session.completed",
			paidSession(org.ID, "tu_000000000000000000000000", "cs_unknown", "pi_bad_1", 10000, "usd")))
		h.deliver(t, stripeEventBody(t, "evt_bad_5", "charge.refunded", map[string]any{"id": "ch_x", "object": "charge", "payment_intent": "pi_unknown",
			"refunds": map[string]any{"object": "list", "data": []any{map[string]any{"id": "re_x", "amount": 100, "status": "succeeded"}}}}))
		if bal, _ := walletMicros(t, c); bal != 0 || len(ledger(t, c)) != 0 {
			t.Fatalf("refused events changed the wallet: balance %d, ledger %v", bal, ledger(t, c))
		}
		// The same event, correctly signed, then credits.
		h.deliver(t, ev)
		if bal, _ := walletMicros(t, c); bal != 100_000_000 {
			t.Errorf("the verified event: balance %d", bal)
		}
		// Anything but POST is 405.
		oaExpectErr(t, s.Anon().Do("GET", stripeWebhookURL, nil), 405, "method_not_allowed")
	})

	t.Run("invoice.paid is listed with the seed's fields", func(t *testing.T) {
		org := s.MustOrg(t, "Stripe invoices", 0)
		c := s.Key(org.Key)
		inv := map[string]any{
			"id": "inv_abc123", "object": "invoice", "number": "INV-2026-003", "amount_paid": 10000, "amount_due": 10000, "total": 10000,
			"currency": "usd", "status": "paid", "customer": "cus_test",
			"period_start": time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC).Unix(), "period_end": time.Date(2026, 5, 31, 23, 59, 59, 0, time.UTC).Unix(),
			"invoice_pdf": "https://pay.stripe.com/invoice/acct_xxx/inv_abc123/pdf", "created": time.Date(2026, 5, 16, 11, 22, 33, 0, time.UTC).Unix(),
			"metadata": map[string]string{"org_id": org.ID},
		}
		h.deliver(t, stripeEventBody(t, "evt_inv_1", "invoice.paid", inv))
		h.deliver(t, stripeEventBody(t, "evt_inv_1", "invoice.paid", inv)) // redelivered
		invs := oaList(t, c.Do("GET", "/api/v1/billing/invoices", nil).Expect(t, 200))
		if len(invs) != 1 {
			t.Fatalf("invoices %v", invs)
		}
		got := oaObj(invs[0])
		want := map[string]any{"id": "inv_abc123", "number": "INV-2026-003", "amount": 10000.0, "currency": "usd", "status": "paid",
			"period_start": "2026-05-01T00:00:00.000Z", "period_end": "2026-05-31T23:59:59.000Z",
			"pdf_url": "https://pay.stripe.com/invoice/acct_xxx/inv_abc123/pdf", "created_at": "2026-05-16T11:22:33.000Z"}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("invoice %s = %v, want %v", k, got[k], v)
			}
		}
		if bal, _ := walletMicros(t, c); bal != 0 {
			t.Errorf("an invoice moved money: balance %d", bal)
		}
	})

	t.Run("refunds: outside the API, through the API, and a Stripe failure", func(t *testing.T) {
		org := s.MustOrg(t, "Stripe refunds", 0)
		c := s.Key(org.Key)
		_, entry := h.paidTopup(t, org, "topup-refund-0001", "pi_refund_1", 10000, "usd")
		topupTx := entry["id"].(string)
		charge := func(refunds ...map[string]any) map[string]any {
			var data []any
			var total int64
			for _, r := range refunds {
				data = append(data, r)
				total += int64(r["amount"].(int))
			}
			return map[string]any{"id": "ch_refund_1", "object": "charge", "amount": 10000, "amount_refunded": total, "refunded": false,
				"payment_intent": "pi_refund_1", "refunds": map[string]any{"object": "list", "data": data, "has_more": false}}
		}
		external := map[string]any{"id": "re_external_1", "object": "refund", "amount": 3000, "status": "succeeded", "payment_intent": "pi_refund_1", "metadata": map[string]string{}}

		// A refund made in Stripe's dashboard: one topup_refund, however
		// often reported.
		h.deliver(t, stripeEventBody(t, "evt_refund_1", "charge.refunded", charge(external)))
		h.deliver(t, stripeEventBody(t, "evt_refund_1", "charge.refunded", charge(external)))
		if bal, _ := walletMicros(t, c); bal != 70_000_000 {
			t.Fatalf("balance %d after an external refund of 3000 cents, want 70000000", bal)
		}
		trs := entriesOfType(ledger(t, c), "topup_refund")
		if len(trs) != 1 || num(t, trs[0], "amount_micros") != -30_000_000 || oaObj(trs[0], "metadata")["stripe_refund_id"] != "re_external_1" {
			t.Fatalf("topup_refund entries %v", trs)
		}

		// A refund through the API: the entry, then a Stripe refund of the
		// payment intent keyed by the entry.
		m := h.proxy.mark()
		r := c.With("Idempotency-Key", "refund-api-0001").Do("POST", "/api/v1/billing/refunds", map[string]any{
			"transaction_id": topupTx, "amount_micros": 20_000_000, "reason": "customer asked"})
		d := oaExpectOK(t, r, 201)
		apiEntry := oaObj(d, "transaction")
		apiEntryID := apiEntry["id"].(string)
		if apiEntry["type"] != "topup_refund" || num(t, apiEntry, "amount_micros") != -20_000_000 {
			t.Fatalf("API refund entry %v", apiEntry)
		}
		calls := h.proxy.since(m)
		if len(calls) != 1 || calls[0].Path != "/v1/refunds" || calls[0].Key != "orbit:"+org.ID+":refund:"+apiEntryID ||
			calls[0].Form.Get("payment_intent") != "pi_refund_1" || calls[0].Form.Get("amount") != "2000" ||
			calls[0].Form.Get("metadata[orbit_refund_entry]") != apiEntryID {
			t.Fatalf("Stripe calls of the API refund: %+v", calls)
		}
		// Its charge.refunded event (listing both refunds) debits nothing more.
		apiRefund := map[string]any{"id": "re_api_1", "object": "refund", "amount": 2000, "status": "succeeded", "payment_intent": "pi_refund_1",
			"metadata": map[string]string{"orbit_refund_entry": apiEntryID}}
		h.deliver(t, stripeEventBody(t, "evt_refund_2", "charge.refunded", charge(external, apiRefund)))
		if bal, _ := walletMicros(t, c); bal != 50_000_000 {
			t.Fatalf("balance %d after the API refund and its event, want 50000000", bal)
		}
		if n := len(entriesOfType(ledger(t, c), "topup_refund")); n != 2 {
			t.Fatalf("%d topup_refund entries, want 2", n)
		}

		// Stripe down: 503 with the entry written; the client's retry with
		// the same key completes the card refund with the same Stripe key.
		h.proxy.fail.Store(true)
		m = h.proxy.mark()
		body := map[string]any{"transaction_id": topupTx, "amount_micros": 10_000_000}
		oaExpectErr(t, c.With("Idempotency-Key", "refund-api-0002").Do("POST", "/api/v1/billing/refunds", body), 503, "unavailable")
		h.proxy.fail.Store(false)
		if bal, _ := walletMicros(t, c); bal != 40_000_000 {
			t.Fatalf("balance %d after the refund whose Stripe call failed, want 40000000 (the entry is written)", bal)
		}
		r = c.With("Idempotency-Key", "refund-api-0002").Do("POST", "/api/v1/billing/refunds", body)
		d = oaExpectOK(t, r, 200)
		retryEntryID := oaObj(d, "transaction")["id"].(string)
		if r.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("retry not replayed: %s", oaClip(r.Body))
		}
		var posts []stripeCall
		sawList := false
		for _, call := range h.proxy.since(m) {
			switch {
			case call.Method == "POST" && call.Path == "/v1/refunds":
				posts = append(posts, call)
			case call.Method == "GET" && call.Path == "/v1/refunds" && call.Form.Get("payment_intent") == "pi_refund_1":
				sawList = true
			}
		}
		if len(posts) < 2 || !sawList {
			t.Fatalf("Stripe calls of the failed refund and its retry: %+v", h.proxy.since(m))
		}
		for _, p := range posts {
			if p.Key != "orbit:"+org.ID+":refund:"+retryEntryID || p.Form.Get("amount") != "1000" {
				t.Errorf("refund request %+v: want key orbit:%s:refund:%s and amount 1000", p, org.ID, retryEntryID)
			}
		}
		if bal, _ := walletMicros(t, c); bal != 40_000_000 {
			t.Fatalf("balance %d after the retry, want 40000000 (debited once)", bal)
		}

		// Refunding more than is left of the top-up is 400.
		oaExpectErr(t, c.With("Idempotency-Key", "refund-api-0003").Do("POST", "/api/v1/billing/refunds",
			map[string]any{"transaction_id": topupTx, "amount_micros": 90_000_000}), 400, "invalid_request")
		// Less than a cent cannot be refunded to a card.
		oaExpectErr(t, c.With("Idempotency-Key", "refund-api-0004").Do("POST", "/api/v1/billing/refunds",
			map[string]any{"transaction_id": topupTx, "amount_micros": 9_999}), 400, "invalid_request")
	})

	t.Run("disputes pause the org until the operator unpauses", func(t *testing.T) {
		org := s.MustOrg(t, "Stripe disputes", 50_000_000)
		c := s.Key(org.Key)
		h.paidTopup(t, org, "topup-dispute-0001", "pi_dispute_1", 10000, "usd")
		dispute := func(status string) map[string]any {
			return map[string]any{"id": "dp_1", "object": "dispute", "amount": 10000, "currency": "usd", "status": status,
				"charge": "ch_dispute_1", "payment_intent": "pi_dispute_1", "reason": "fraudulent"}
		}
		h.deliver(t, stripeEventBody(t, "evt_dispute_1", "charge.dispute.created", dispute("needs_response")))
		h.deliver(t, stripeEventBody(t, "evt_dispute_1", "charge.dispute.created", dispute("needs_response")))
		bal, _ := walletMicros(t, c)
		if bal != 50_000_000 {
			t.Fatalf("balance %d after the dispute, want 50000000", bal)
		}
		ds := entriesOfType(ledger(t, c), "dispute")
		if len(ds) != 1 || num(t, ds[0], "amount_micros") != -100_000_000 || oaObj(ds[0], "metadata")["stripe_dispute_id"] != "dp_1" {
			t.Fatalf("dispute entries %v", ds)
		}
		b := oaExpectOK(t, c.Do("GET", "/api/v1/billing/balance", nil), 200)
		if b["outbound_paused"] != true || b["outbound_block_reason"] != "payment_disputed" {
			t.Errorf("balance after a dispute: %v", b)
		}
		oaExpectErr(t, c.Do("POST", "/api/v1/billing/charges", chargeBody("dispute-sms-1", 4200)), 403, "outbound_paused")

		// Won: the money comes back, the pause stays until the operator lifts it.
		h.deliver(t, stripeEventBody(t, "evt_dispute_2", "charge.dispute.closed", dispute("won")))
		h.deliver(t, stripeEventBody(t, "evt_dispute_3", "charge.dispute.closed", dispute("won")))
		if bal, _ := walletMicros(t, c); bal != 150_000_000 {
			t.Fatalf("balance %d after the dispute was won, want 150000000", bal)
		}
		if ds := entriesOfType(ledger(t, c), "dispute"); len(ds) != 2 || num(t, ds[0], "amount_micros") != 100_000_000 {
			t.Fatalf("dispute entries after winning %v", ds)
		}
		oaExpectErr(t, c.Do("POST", "/api/v1/billing/charges", chargeBody("dispute-sms-2", 4200)), 403, "outbound_paused")
		oaExpectOK(t, a.Do("POST", "/admin/v1/orgs/"+org.ID+"/unpause", nil), 200)
		oaExpectOK(t, c.Do("POST", "/api/v1/billing/charges", chargeBody("dispute-sms-3", 4200)), 201)
	})

	t.Run("FX: a EUR top-up credits at the committed rate", func(t *testing.T) {
		oaExpectErr(t, a.Do("PUT", "/admin/v1/fx-rates", map[string]any{"eur": "1.0825"}), 400, "invalid_request")
		oaExpectErr(t, a.Do("PUT", "/admin/v1/fx-rates", map[string]any{"EUR": 1.0825}), 400, "invalid_request")
		oaExpectErr(t, a.Do("PUT", "/admin/v1/fx-rates", map[string]any{"usd": 1}), 400, "invalid_request")
		oaExpectErr(t, a.Do("PUT", "/admin/v1/fx-rates", `{"eur": 1.123456789}`), 400, "invalid_request")
		oaExpectErr(t, a.Do("PUT", "/admin/v1/fx-rates", `{"eur": 0}`), 400, "invalid_request")
		oaExpectErr(t, a.Do("PUT", "/admin/v1/fx-rates", `{"eur": 1e0}`), 400, "invalid_request")
		oaExpectErr(t, a.Do("PUT", "/admin/v1/fx-rates", `{"eur": 10000.5}`), 400, "invalid_request")
		r := a.Do("PUT", "/admin/v1/fx-rates", `{"eur": 1.0825, "jpy": 0.0067}`)
		if d := oaExpectOK(t, r, 200); d["eur"] != 1.0825 || d["jpy"] != 0.0067 || !bytes.Contains(r.Body, []byte(`"eur":1.0825`)) {
			t.Fatalf("PUT fx-rates: %s", oaClip(r.Body))
		}
		if d := oaExpectOK(t, a.Do("GET", "/admin/v1/fx-rates", nil), 200); len(d) != 2 || d["eur"] != 1.0825 {
			t.Fatalf("GET fx-rates: %v", d)
		}

		org := s.MustOrg(t, "Stripe EUR", 0)
		c := s.Key(org.Key)
		oaExpectErr(t, c.With("Idempotency-Key", "topup-gbp-0001").Do("POST", "/api/v1/billing/balance/top-up", map[string]any{"amount": 10000, "currency": "gbp",
			"successUrl": "https://orbit.devotel.io/billing?topup=ok", "cancelUrl": "https://orbit.devotel.io/billing?topup=cancelled"}), 400, "invalid_request")
		// 450 EUR cents are worth 487 US cents: below the minimum.
		oaExpectErr(t, c.With("Idempotency-Key", "topup-eur-0000").Do("POST", "/api/v1/billing/balance/top-up", map[string]any{"amount": 450, "currency": "eur",
			"successUrl": "https://orbit.devotel.io/billing?topup=ok", "cancelUrl": "https://orbit.devotel.io/billing?topup=cancelled"}), 400, "invalid_request")

		m := h.proxy.mark()
		const want = 10000 * 10_000 * 108_250_000 / 100_000_000 // floor(amount x 10^4 x rate / 10^8)
		tu, entry := h.paidTopup(t, org, "topup-eur-0001", "pi_eur_1", 10000, "eur")
		if num(t, tu, "credit_micros") != want || tu["currency"] != "eur" {
			t.Errorf("EUR top-up %v", tu)
		}
		for _, call := range h.proxy.since(m) {
			if call.Path == "/v1/checkout/sessions" && (call.Form.Get("line_items[0][price_data][currency]") != "eur" || call.Form.Get("line_items[0][price_data][unit_amount]") != "10000") {
				t.Errorf("EUR checkout session %v", call.Form)
			}
		}
		if bal, _ := walletMicros(t, c); bal != want {
			t.Fatalf("balance %d after 10000 EUR cents at 1.0825, want %d", bal, want)
		}
		if md := oaObj(entry, "metadata"); md["currency"] != "eur" || md["fx_rate"] != 1.0825 || num(t, entry, "amount_micros") != want {
			t.Errorf("EUR top-up entry %v", entry)
		}
		// A full refund returns the 10000 EUR cents to the card.
		m = h.proxy.mark()
		oaExpectOK(t, c.With("Idempotency-Key", "refund-eur-0001").Do("POST", "/api/v1/billing/refunds", map[string]any{"transaction_id": entry["id"]}), 201)
		calls := h.proxy.since(m)
		if len(calls) != 1 || calls[0].Form.Get("amount") != "10000" || calls[0].Form.Get("payment_intent") != "pi_eur_1" {
			t.Errorf("EUR refund's Stripe calls %+v", calls)
		}
		if bal, _ := walletMicros(t, c); bal != 0 {
			t.Errorf("balance %d after the full refund", bal)
		}
	})
}

// oaExerciseStripeRoutes exercises the Stripe webhook and FX routes on a
// server with the development provider (no webhook secret), for
// TestEveryRoute's coverage; TestStripe covers them with Stripe.
func oaExerciseStripeRoutes(t *testing.T, s *testserver.Server) {
	t.Helper()
	a, anon := s.Admin(), s.Anon()
	ev := stripeEventBody(t, "evt_dev_1", "checkout.session.completed", map[string]any{"id": "cs_1"})
	sig := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: ev, Secret: "whsec_any"}).Header
	oaExpectErr(t, anon.With("Stripe-Signature", sig).Do("POST", stripeWebhookURL, ev), 400, "invalid_request")
	oaExpectErr(t, anon.Do("POST", stripeWebhookURL, oaBigJSON(oaMiB+1)), 413, "payload_too_large")

	if d := oaExpectOK(t, a.Do("PUT", "/admin/v1/fx-rates", map[string]any{"eur": 1.0825}), 200); d["eur"] != 1.0825 {
		t.Errorf("PUT fx-rates: %v", d)
	}
	if d := oaExpectOK(t, a.Do("GET", "/admin/v1/fx-rates", nil), 200); d["eur"] != 1.0825 {
		t.Errorf("GET fx-rates: %v", d)
	}
	oaExpectErr(t, a.Do("PUT", "/admin/v1/fx-rates", map[string]any{"eur": -1}), 400, "invalid_request")
	oaExpectErr(t, anon.Do("PUT", "/admin/v1/fx-rates", map[string]any{"eur": 1}), 401, "unauthenticated")
	oaExpectErr(t, anon.Do("GET", "/admin/v1/fx-rates", nil), 401, "unauthenticated")
	oaExpectErr(t, a.With("Content-Type", "text/plain").Do("PUT", "/admin/v1/fx-rates", `{"eur":1}`), 415, "unsupported_media_type")
	oaExpectErr(t, a.Do("PUT", "/admin/v1/fx-rates", oaBigJSON(oaMiB+1)), 413, "payload_too_large")
	// A top-up in a configured currency works with the development provider too.
	org := s.MustOrg(t, "FX dev", 0)
	tu := oaExpectOK(t, s.Key(org.Key).With("Idempotency-Key", "topup-fx-dev-1").Do("POST", "/api/v1/billing/balance/top-up", map[string]any{
		"amount": 10000, "currency": "eur", "successUrl": "https://orbit.devotel.io/billing?topup=ok", "cancelUrl": "https://orbit.devotel.io/billing?topup=cancelled"}), 201)
	if tu["currency"] != "eur" || oaNum(tu["credit_micros"]) != 108_250_000 {
		t.Errorf("EUR top-up with the development provider: %v", tu)
	}
}
