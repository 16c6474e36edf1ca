package server

import (
	"context"
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/orbit/orbit/engine"
)

// gatedStore is benchStore whose Submit waits until release is closed, so a
// test can hold writes inside the server.
type gatedStore struct {
	benchStore
	release chan struct{}
	entered chan struct{}
	nodes   []ClusterNode
}

func (g *gatedStore) Submit(ctx context.Context, cmds []engine.Command) ([]engine.Result, error) {
	g.entered <- struct{}{}
	<-g.release
	return g.benchStore.Submit(ctx, cmds)
}

func (g *gatedStore) Cluster() ClusterInfo { return ClusterInfo{Nodes: g.nodes} }

func newGatedStore() *gatedStore {
	return &gatedStore{
		benchStore: benchStore{key: engine.APIKey{ID: "key_1", OrgID: "org_06H1MS8JAW00000000300001", Role: engine.RoleAdmin}},
		release:    make(chan struct{}),
		entered:    make(chan struct{}, 64),
	}
}

// gateRequest runs one request through h from remote and returns its status,
// error code and Retry-After.
func gateRequest(h fasthttp.RequestHandler, method, path, remote string, body string, headers ...string) (int, string, string) {
	var req fasthttp.Request
	req.Header.SetMethod(method)
	req.SetRequestURI(path)
	req.Header.Set("X-API-Key", "dv_live_sk_0123456789abcdef")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if body != "" {
		req.Header.SetContentType("application/json")
		req.SetBodyString(body)
	}
	var ctx fasthttp.RequestCtx
	addr, _ := net.ResolveTCPAddr("tcp", remote)
	ctx.Init(&req, addr, nil)
	h(&ctx)
	var env struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(ctx.Response.Body(), &env)
	return ctx.Response.StatusCode(), env.Error.Code, string(ctx.Response.Header.Peek("Retry-After"))
}

func gateChargeJSON(ref string) string {
	return `{"reference":"` + ref + `","channel":"sms","amount_micros":4200}`
}

// TestWritesWaitingCap: with two writes waiting for the log, a third is
// answered 503 unavailable with Retry-After at once and never reaches the
// store; health and reads still answer; once the two finish, writes are
// admitted again.
func TestWritesWaitingCap(t *testing.T) {
	st := newGatedStore()
	s := New(Config{Store: st, Metrics: NewMetrics(), WritesWaitingMax: 2})
	var wg sync.WaitGroup
	statuses := make([]int, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], _, _ = gateRequest(s.Handle, "POST", "/api/v1/billing/charges", "10.0.0.1:1000", gateChargeJSON("w-"+strconv.Itoa(i)))
		}()
	}
	<-st.entered
	<-st.entered
	start := time.Now()
	status, code, retry := gateRequest(s.Handle, "POST", "/api/v1/billing/charges", "10.0.0.1:1000", gateChargeJSON("w-shed"))
	if status != 503 || code != "unavailable" || retry == "" {
		t.Fatalf("third write: %d %q Retry-After %q, want 503 unavailable with Retry-After", status, code, retry)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the shed write took %s: it must be answered at once", d)
	}
	if len(st.entered) != 0 {
		t.Fatalf("the shed write reached the store")
	}
	if status, _, _ := gateRequest(s.Handle, "GET", "/healthz", "10.0.0.1:1000", ""); status != 200 {
		t.Fatalf("/healthz while writes wait: %d", status)
	}
	close(st.release)
	wg.Wait()
	if statuses[0] != 201 || statuses[1] != 201 {
		t.Fatalf("the waiting writes ended %v, want 201 201", statuses)
	}
	if status, _, _ := gateRequest(s.Handle, "POST", "/api/v1/billing/charges", "10.0.0.1:1000", gateChargeJSON("w-after")); status != 201 {
		t.Fatalf("a write after the queue drained: %d, want 201", status)
	}
	if n := s.writes.waiting.Load(); n != 0 {
		t.Fatalf("%d writes counted as waiting after all finished", n)
	}
}

// TestRateLimitPerIP: each client address gets its burst, then 429
// rate_limited with Retry-After; another address is unaffected; health,
// readiness, metrics and the Stripe webhook are never limited.
func TestRateLimitPerIP(t *testing.T) {
	st := newGatedStore()
	close(st.release)
	go func() {
		for range st.entered {
		}
	}()
	defer close(st.entered)
	s := New(Config{Store: st, Metrics: NewMetrics(), RateLimitPerIP: 3})
	ok, limited := 0, 0
	for i := range 6 {
		status, code, retry := gateRequest(s.Handle, "POST", "/api/v1/billing/charges", "10.0.0.1:1000", gateChargeJSON("ip-"+strconv.Itoa(i)))
		switch {
		case status == 201:
			ok++
		case status == 429 && code == "rate_limited" && retry != "":
			limited++
		default:
			t.Fatalf("request %d: %d %q Retry-After %q", i, status, code, retry)
		}
	}
	if ok != 3 || limited != 3 {
		t.Fatalf("%d accepted, %d limited; want 3 and 3 (burst 3 within well under a second)", ok, limited)
	}
	if status, _, _ := gateRequest(s.Handle, "GET", "/api/v1/billing/balance", "10.0.0.1:2000", ""); status != 429 {
		t.Fatalf("another port of the same address: %d, want 429", status)
	}
	if status, _, _ := gateRequest(s.Handle, "POST", "/api/v1/billing/charges", "10.0.0.2:1000", gateChargeJSON("ip-other")); status != 201 {
		t.Fatalf("another address: %d, want 201", status)
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		for range 5 {
			if status, _, _ := gateRequest(s.Handle, "GET", p, "10.0.0.1:1000", ""); status == 429 {
				t.Fatalf("%s was rate limited", p)
			}
		}
	}
	if isIPLimitedPath(stripeWebhookPath) || !isIPLimitedPath("/admin/v1/orgs") || !isIPLimitedPath("/dev/checkout/x") || isIPLimitedPath("/openapi.json") {
		t.Fatalf("isIPLimitedPath covers the wrong routes")
	}
}

// TestAdminListenerSplit: with an admin listener, the public handler
// answers 404 for /admin/ (unless a cluster peer forwards it), and the
// admin handler answers 404 for everything but /admin/ and health.
func TestAdminListenerSplit(t *testing.T) {
	st := newGatedStore()
	st.nodes = []ClusterNode{{ID: "n2", HTTPAddr: "10.0.0.9:8080", RaftAddr: "10.0.0.9:7000"}}
	s := New(Config{Store: st, Metrics: NewMetrics(), AdminToken: "tok", AdminListener: true})
	auth := []string{"Authorization", "Bearer tok"}
	if status, code, _ := gateRequest(s.Handle, "GET", "/admin/v1/cluster", "10.0.0.1:1000", "", auth...); status != 404 || code != "not_found" {
		t.Fatalf("admin path on the public listener: %d %q, want 404 not_found", status, code)
	}
	fwd := append([]string{forwardedHeader, "n2"}, auth...)
	if status, _, _ := gateRequest(s.Handle, "GET", "/admin/v1/nope", "10.0.0.1:1000", "", fwd...); status != 404 {
		t.Fatalf("forwarding header from a stranger: %d, want 404", status)
	}
	if !s.servedOn(rolePublic, gateCtxFrom("10.0.0.9:5555", forwardedHeader, "n2"), "/admin/v1/orgs") {
		t.Fatalf("a request forwarded by a peer is not served on the public listener")
	}
	if s.servedOn(rolePublic, gateCtxFrom("10.0.0.9:5555"), "/admin/v1/orgs") {
		t.Fatalf("a peer's request without the forwarding header is served")
	}
	if status, code, _ := gateRequest(s.HandleAdmin, "GET", "/api/v1/billing/balance", "10.0.0.1:1000", ""); status != 404 || code != "not_found" {
		t.Fatalf("org path on the admin listener: %d %q, want 404 not_found", status, code)
	}
	for _, p := range []string{"/", "/openapi.json", "/dev/checkout/tu_1"} {
		if status, _, _ := gateRequest(s.HandleAdmin, "GET", p, "10.0.0.1:1000", ""); status != 404 {
			t.Fatalf("%s on the admin listener: %d, want 404", p, status)
		}
	}
	if status, _, _ := gateRequest(s.HandleAdmin, "GET", "/healthz", "10.0.0.1:1000", ""); status != 200 {
		t.Fatalf("/healthz on the admin listener: %d", status)
	}
	if status, _, _ := gateRequest(s.Handle, "GET", "/healthz", "10.0.0.1:1000", ""); status != 200 {
		t.Fatalf("/healthz on the public listener: %d", status)
	}
	// Without the split, the public handler serves the operator API.
	plain := New(Config{Store: st, Metrics: NewMetrics(), AdminToken: "tok"})
	if !plain.servedOn(rolePublic, gateCtxFrom("10.0.0.1:1"), "/admin/v1/orgs") {
		t.Fatalf("without --admin-addr the admin API is not served publicly")
	}
	if err := plain.ServeAdmin(nil); err == nil {
		t.Fatalf("ServeAdmin without AdminListener did not fail")
	}
}

func gateCtxFrom(remote string, headers ...string) *fasthttp.RequestCtx {
	var req fasthttp.Request
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	ctx := &fasthttp.RequestCtx{}
	addr, _ := net.ResolveTCPAddr("tcp", remote)
	ctx.Init(&req, addr, nil)
	return ctx
}

// TestSlowClientDoesNotBlockOthers: a client trickling its request headers
// one byte at a time holds only its own connection: other clients are
// answered at once meanwhile, and the server closes the slow connection
// once ReadTimeout passes.
func TestSlowClientDoesNotBlockOthers(t *testing.T) {
	st := newGatedStore()
	s := New(Config{Store: st, Metrics: NewMetrics(), ReadTimeout: 700 * time.Millisecond, ConnsMax: 64})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	}()
	addr := ln.Addr().String()

	// Eight slow clients, each sending one header byte every 50 ms.
	const slowClients = 8
	closedAfter := make(chan time.Duration, slowClients)
	for range slowClients {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		go func(c net.Conn) {
			start := time.Now()
			head := "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 200) + "\r\n\r\n"
			for i := 0; i < len(head); i++ {
				if _, err := c.Write([]byte{head[i]}); err != nil {
					closedAfter <- time.Since(start)
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
			closedAfter <- -1 // sent it all: the timeout did not fire
		}(c)
	}

	// Meanwhile other clients are answered quickly.
	client := &fasthttp.Client{}
	for i := range 20 {
		var req fasthttp.Request
		var resp fasthttp.Response
		req.SetRequestURI("http://" + addr + "/healthz")
		start := time.Now()
		if err := client.DoTimeout(&req, &resp, 2*time.Second); err != nil {
			t.Fatalf("request %d beside slow clients: %v", i, err)
		}
		if resp.StatusCode() != 200 || time.Since(start) > 500*time.Millisecond {
			t.Fatalf("request %d beside slow clients: %d after %s", i, resp.StatusCode(), time.Since(start))
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The server drops each slow connection after about ReadTimeout: the
	// client's writes then fail (reset) within a few seconds at most. The
	// whole header would need 200+ x 50 ms = 10 s.
	deadline := time.After(8 * time.Second)
	for range slowClients {
		select {
		case d := <-closedAfter:
			if d < 0 {
				t.Fatalf("a slow client sent its whole request: ReadTimeout did not cut it off")
			}
			if d < 600*time.Millisecond {
				t.Fatalf("a slow connection was closed after %s, before ReadTimeout", d)
			}
		case <-deadline:
			t.Fatalf("slow connections still open 8 s later: ReadTimeout does not bound the header read")
		}
	}
}
