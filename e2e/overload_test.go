package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/orbit/orbit/internal/testserver"
)

// Overload test bounds: every loop ends by count and by time.
const (
	overloadMeasureFor   = 1500 * time.Millisecond // closed loop: the sustainable rate
	overloadMeasureConns = overloadWritesMax       // as many as may wait: the most the node does under the cap
	overloadDriveFor     = 3 * time.Second         // open loop at overloadFactor x that rate
	overloadFactor       = 3
	overloadConns        = 400
	overloadRequestsMax  = 150_000
	overloadWritesMax    = 32 // --max-pending-writes of the server under test
	overloadHealthMax    = 2 * time.Second
	overloadAckedP99Max  = 2 * time.Second // client-side, on a shared 2-core machine
	overloadOrgs         = 8
)

// overloadOutcome is what one charge's sender saw.
type overloadOutcome struct {
	status  int
	txID    string // 2xx
	shed    bool   // 503 overloaded / 429: nothing was done
	latency time.Duration
	err     error // no answer: the charge is in doubt
}

// overloadCharge sends one charge and checks a refusal's envelope. It uses
// fasthttp's client: net/http's costs the test more CPU than the server
// spends, and the load must come from this same small machine.
func overloadCharge(t *testing.T, hc *fasthttp.Client, url, key, ref string) overloadOutcome {
	// The body by hand: encoding/json's map marshalling is a large part of
	// the client's CPU at these rates (refs are plain ASCII).
	body := append(append([]byte(`{"reference":"`), ref...), `","channel":"sms","amount_micros":1000}`...)
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(url + "/api/v1/billing/charges")
	req.Header.SetMethod("POST")
	req.Header.SetContentType("application/json")
	req.Header.Set("X-API-Key", key)
	req.SetBody(body)
	start := time.Now()
	if err := hc.DoTimeout(req, resp, 20*time.Second); err != nil {
		return overloadOutcome{err: err, latency: time.Since(start)}
	}
	o := overloadOutcome{status: resp.StatusCode(), latency: time.Since(start)}
	raw := resp.Body()
	var env struct {
		Data struct {
			Transaction struct{ ID string } `json:"transaction"`
		} `json:"data"`
		Error struct{ Code, Message string } `json:"error"`
		Meta  struct {
			RequestID string `json:"request_id"`
		} `json:"meta"`
	}
	if jerr := json.Unmarshal(raw, &env); jerr != nil || env.Meta.RequestID == "" {
		t.Errorf("charge %s: %d without the envelope: %s", ref, o.status, raw)
		return o
	}
	retryAfter := string(resp.Header.Peek("Retry-After"))
	switch o.status {
	case 200, 201:
		o.txID = env.Data.Transaction.ID
	case 503, 429:
		wantCode := map[int]string{503: "unavailable", 429: "rate_limited"}[o.status]
		if env.Error.Code != wantCode || retryAfter == "" {
			t.Errorf("charge %s: %d %q Retry-After %q, want %q with Retry-After", ref, o.status, env.Error.Code, retryAfter, wantCode)
		}
		// The gate's 503 and a 429 are refusals before the log: nothing was
		// done. (A 503 for a log timeout would be in doubt.)
		o.shed = o.status == 429 || strings.HasPrefix(env.Error.Message, "overloaded")
	default:
		t.Errorf("charge %s: unexpected %d: %s", ref, o.status, raw)
	}
	return o
}

// TestOverloadShedsAndLosesNothing aims at three times the charge rate a
// node sustains, for a few seconds, from many connections, against a node
// with a small cap on waiting writes (it logs the factor reached: 2-2.6x
// on a 2-core machine, where the client runs too). /healthz keeps answering
// quickly, the excess is refused at once with 503 (or 429) and the
// envelope, accepted charges keep a bounded latency, and afterwards every
// acknowledged charge is in the ledger exactly once, no refused one is, and
// the balance is the funding less the ledger's spends.
func TestOverloadShedsAndLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("overload test: seconds of load")
	}
	const fund = 1_000_000_000_000
	s := testserver.New(t)
	s.ExtraArgs = []string{"--max-pending-writes", fmt.Sprint(overloadWritesMax)}
	// The server gets one CPU, the client the machine: on a 2-core machine a
	// client sharing both cores with the server cannot offer 3x what the
	// server sustains (it reached 1.4-2.4x).
	s.CPUs = "0"
	s.Start()
	// Several wallets, as real traffic has: each sender charges one of them.
	orgs := make([]testserver.Org, overloadOrgs)
	for i := range orgs {
		orgs[i] = s.MustOrg(t, fmt.Sprint("Overload ", i), fund)
	}
	keyOf := func(n int) string { return orgs[n%overloadOrgs].Key }
	hc := &fasthttp.Client{MaxConnsPerHost: overloadConns, ReadTimeout: 20 * time.Second, WriteTimeout: 20 * time.Second}
	defer hc.CloseIdleConnections()

	var mu sync.Mutex
	outcomes := map[string]overloadOutcome{}
	record := func(ref string, o overloadOutcome) {
		mu.Lock()
		outcomes[ref] = o
		mu.Unlock()
	}
	var seq atomic.Int64
	nextRef := func() (string, bool) {
		n := seq.Add(1)
		return fmt.Sprintf("ov-%d", n), n <= overloadRequestsMax
	}

	// 1. The sustainable rate: a few connections in closed loop.
	var wg sync.WaitGroup
	measureEnd := time.Now().Add(overloadMeasureFor)
	var measured atomic.Int64
	for w := range overloadMeasureConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(measureEnd) {
				ref, ok := nextRef()
				if !ok {
					return
				}
				o := overloadCharge(t, hc, s.URL, keyOf(w), ref)
				record(ref, o)
				if o.txID != "" {
					measured.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	rate := float64(measured.Load()) / overloadMeasureFor.Seconds()
	measureSent := int(seq.Load())
	if rate < 50 {
		t.Fatalf("only %.0f charges/s sustained before the overload: the node is not working", rate)
	}

	// 2. Overload: open loop at overloadFactor x rate from overloadConns
	// connections, each sending on its own schedule.
	target := rate * overloadFactor
	interval := time.Duration(float64(time.Second) * overloadConns / target)
	driveStart := time.Now()
	driveEnd := driveStart.Add(overloadDriveFor)
	healthDone := make(chan struct{})
	var healthWorst time.Duration
	var healthFailures []string
	var healthProbes int
	go func() { // a load balancer's probe: a new connection each time
		defer close(healthDone)
		probe := &http.Client{Timeout: 2 * overloadHealthMax, Transport: &http.Transport{DisableKeepAlives: true}}
		for time.Now().Before(driveEnd) {
			start := time.Now()
			resp, err := probe.Get(s.URL + "/healthz")
			d := time.Since(start)
			healthProbes++
			healthWorst = max(healthWorst, d)
			if err != nil {
				healthFailures = append(healthFailures, err.Error())
			} else {
				if resp.StatusCode != 200 {
					healthFailures = append(healthFailures, fmt.Sprint("status ", resp.StatusCode))
				}
				resp.Body.Close()
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	for w := range overloadConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := driveStart.Add(time.Duration(w) * interval / overloadConns)
			for {
				if d := time.Until(next); d > 0 {
					time.Sleep(d)
				}
				if time.Now().After(driveEnd) {
					return
				}
				next = next.Add(interval)
				ref, ok := nextRef()
				if !ok {
					return
				}
				record(ref, overloadCharge(t, hc, s.URL, keyOf(w), ref))
			}
		}()
	}
	wg.Wait()
	<-healthDone
	driveTook := time.Since(driveStart)

	// What the senders saw during the overload.
	var acked, shed, inDoubt, other int
	var ackedLatency, shedLatency []time.Duration
	driveSent := int(min(seq.Load(), overloadRequestsMax)) - measureSent
	for _, o := range outcomes {
		switch {
		case o.err != nil:
			inDoubt++
		case o.txID != "":
			acked++
			ackedLatency = append(ackedLatency, o.latency)
		case o.shed:
			shed++
			shedLatency = append(shedLatency, o.latency)
		default:
			other++
		}
	}
	sort.Slice(ackedLatency, func(i, j int) bool { return ackedLatency[i] < ackedLatency[j] })
	p99 := ackedLatency[len(ackedLatency)*99/100]
	sort.Slice(shedLatency, func(i, j int) bool { return shedLatency[i] < shedLatency[j] })
	var shedP50 time.Duration
	if len(shedLatency) > 0 {
		shedP50 = shedLatency[len(shedLatency)/2]
	}
	offered := float64(driveSent) / driveTook.Seconds()
	t.Logf("sustained %.0f charges/s with %d connections; overload: %d requests in %s (%.0f/s offered = %.1fx, target %.0f/s) from %d connections; in all %d acked, %d shed, %d in doubt; acked p99 %s, shed p50 %s; /healthz worst %s over %d probes",
		rate, overloadMeasureConns, driveSent, driveTook.Round(time.Millisecond), offered, offered/rate, target, overloadConns,
		acked, shed, inDoubt, p99, shedP50, healthWorst, healthProbes)
	if len(healthFailures) > 0 || healthWorst > overloadHealthMax {
		t.Errorf("/healthz under overload: worst %s (bound %s), failures %v", healthWorst, overloadHealthMax, healthFailures)
	}
	if shed == 0 {
		t.Errorf("nothing was shed at %dx the sustained rate with --max-pending-writes %d", overloadFactor, overloadWritesMax)
	}
	if other > 0 {
		t.Errorf("%d charges answered neither 2xx nor a shed", other)
	}
	if p99 > overloadAckedP99Max {
		t.Errorf("acknowledged charges p99 %s under overload, bound %s: latency is not bounded", p99, overloadAckedP99Max)
	}

	// 3. Nothing acknowledged lost, nothing doubled, nothing shed applied;
	// each balance is its funding less its ledger's spends.
	ledgerRefs := map[string]string{} // "charge:<ref>" -> entry id
	ledgerIDs := map[string]bool{}
	for _, org := range orgs {
		ledger := readSpends(t, s.Key(org.Key))
		for ref, n := range ledger.refs {
			if n != 1 {
				t.Fatalf("%s in the ledger %d times", ref, n)
			}
			ledgerRefs[ref] = org.ID
		}
		for id := range ledger.ids {
			ledgerIDs[id] = true
		}
		bal := s.Key(org.Key).Do("GET", "/api/v1/billing/balance", nil).Expect(t, 200).Data()
		if got := num(t, bal, "balance_micros"); got != fund-ledger.spent {
			t.Fatalf("%s: balance %d, want funding %d less the ledger's spends %d", org.ID, got, int64(fund), ledger.spent)
		}
	}
	for ref, o := range outcomes {
		_, inLedger := ledgerRefs["charge:"+ref]
		switch {
		case o.txID != "" && (!inLedger || !ledgerIDs[o.txID]):
			t.Fatalf("acknowledged charge %s (%s) missing from the ledger", ref, o.txID)
		case o.shed && inLedger:
			t.Fatalf("charge %s was refused (%d) but is in the ledger", ref, o.status)
		}
	}
	if len(ledgerRefs) < acked || len(ledgerRefs) > acked+inDoubt {
		t.Fatalf("%d spends in the ledger; %d acknowledged, %d in doubt", len(ledgerRefs), acked, inDoubt)
	}
	if audit := s.Admin().Do("GET", "/admin/v1/audit", nil).Expect(t, 200).Data(); len(audit["mismatches"].([]any)) != 0 {
		t.Fatalf("audit: %v", audit)
	}
}

// TestRateLimitPerIP: with --rate-limit-ip 5 one client address gets its
// burst of 5 on the API routes (operator API included), then 429
// rate_limited with Retry-After; health, readiness and metrics still
// answer; a refused request changes nothing; after the bucket refills the
// address is served again.
func TestRateLimitPerIP(t *testing.T) {
	s := testserver.New(t)
	s.ExtraArgs = []string{"--rate-limit-ip", "5"}
	s.Start()
	org := s.MustOrg(t, "Per IP", 1_000_000) // 3 requests of the burst of 5
	admin := s.Admin()
	ok, limited := 0, 0
	for i := range 10 {
		r := admin.Do("POST", "/admin/v1/orgs/"+org.ID+"/adjustments", map[string]any{"amount_micros": 1, "reference": fmt.Sprint("ipl-", i)})
		switch r.Status {
		case 201:
			ok++
		case 429:
			limited++
			if r.ErrorCode() != "rate_limited" || r.Header.Get("Retry-After") == "" {
				t.Fatalf("429 without the envelope or Retry-After: %v %s", r.Header, r.Body)
			}
		default:
			t.Fatalf("adjustment %d: %d %s", i, r.Status, r.Body)
		}
	}
	// The setup took 3 of the 5; up to 5 per second refill meanwhile.
	if ok < 2 || ok > 7 || limited == 0 {
		t.Fatalf("%d accepted, %d limited: want what is left of the burst of 5 accepted and the rest limited", ok, limited)
	}
	oaExpectErr(t, s.Key(org.Key).Do("GET", "/api/v1/billing/balance", nil), 429, "rate_limited") // the same address on the org API
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		for range 3 {
			s.Anon().Do("GET", p, nil).Expect(t, 200)
		}
	}
	var bal map[string]any
	testserver.WaitFor(t, 5*time.Second, "the address's bucket to refill", func() bool {
		r := s.Key(org.Key).Do("GET", "/api/v1/billing/balance", nil)
		bal = r.Data()
		return r.Status == 200
	})
	if got := num(t, bal, "balance_micros"); got != 1_000_000+int64(ok) {
		t.Fatalf("balance %d, want 1000000 + %d accepted adjustments of 1", got, ok)
	}
}

// TestConnectionCap: with --max-conns 8 a ninth open connection is
// refused with 503 unavailable in the error envelope before any request is
// read, and once connections close new ones are served again.
func TestConnectionCap(t *testing.T) {
	s := testserver.New(t)
	s.ExtraArgs = []string{"--max-conns", "8"}
	s.Start()
	testConnectionLimit(t, s, 8, 503, "unavailable")
}

// TestConnectionCapPerIP: with --max-conns-per-ip 3 a fourth connection
// from the same address is refused with 429 rate_limited in the envelope.
func TestConnectionCapPerIP(t *testing.T) {
	s := testserver.New(t)
	s.ExtraArgs = []string{"--max-conns-per-ip", "3"}
	s.Start()
	testConnectionLimit(t, s, 3, 429, "rate_limited")
}

// testConnectionLimit holds limit keep-alive connections to s, each served
// once, then requires the next connection to be refused with status and
// code, and a new connection to be served once those close.
func testConnectionLimit(t *testing.T, s *testserver.Server, limit, status int, code string) {
	t.Helper()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	get := func(c net.Conn) (*http.Response, []byte, error) {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", s.HTTPAddr)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp, body, err
	}
	// limit connections, each served. The harness's own readiness probe
	// closed its connection just before, and the server counts it until it
	// has read that close: a refusal here from such a stray connection is
	// retried with a fresh set (at most 5 s), never counted as served.
	testserver.WaitFor(t, 5*time.Second, fmt.Sprintf("%d connections served", limit), func() bool {
		for _, c := range conns {
			c.Close()
		}
		conns = nil
		for i := range limit {
			c, err := net.DialTimeout("tcp", s.HTTPAddr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
			resp, body, err := get(c)
			if err == nil && resp.StatusCode == status {
				t.Logf("connection %d of %d refused (%d), a stray connection still counted; retrying", i+1, limit, status)
				return false
			}
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("connection %d of %d: %v %s %v", i+1, limit, resp, body, err)
			}
		}
		return true
	})
	c, err := net.DialTimeout("tcp", s.HTTPAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	resp, body, err := get(c)
	c.Close()
	if err != nil {
		t.Fatalf("connection %d: %v, want a %d", limit+1, err, status)
	}
	var env struct {
		Error struct{ Code, Message string }
		Meta  struct {
			RequestID string `json:"request_id"`
		}
	}
	if resp.StatusCode != status || json.Unmarshal(body, &env) != nil || env.Error.Code != code ||
		env.Error.Message == "" || env.Meta.RequestID == "" {
		t.Fatalf("connection %d: %d %s, want %d with the %q envelope", limit+1, resp.StatusCode, body, status, code)
	}
	if resp.Header.Get("Retry-After") == "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("connection %d: headers %v, want Retry-After and JSON", limit+1, resp.Header)
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	testserver.WaitFor(t, 5*time.Second, "a slot free again", func() bool {
		r, err := s.Anon().TryDo("GET", "/healthz", nil)
		return err == nil && r.Status == 200
	})
}

// TestSlowHeadersDoNotBlock: against a real orbitd with --read-timeout 1s,
// clients trickling their request headers a byte at a time do not delay
// anyone else, and the server drops them after the timeout.
func TestSlowHeadersDoNotBlock(t *testing.T) {
	s := testserver.New(t)
	s.ExtraArgs = []string{"--read-timeout", "1s"}
	s.Start()
	org := s.MustOrg(t, "Beside slowloris", 1_000_000)
	const slow = 20
	dropped := make(chan time.Duration, slow)
	for range slow {
		c, err := net.DialTimeout("tcp", s.HTTPAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		go func() {
			start := time.Now()
			head := "POST /api/v1/billing/charges HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("a", 400) + "\r\n\r\n"
			for i := 0; i < len(head); i++ { // 400+ bytes at 20 ms: 8 s if never cut
				if _, err := c.Write([]byte{head[i]}); err != nil {
					dropped <- time.Since(start)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
			dropped <- -1
		}()
	}
	kc := s.KeyWithTimeout(org.Key, 2*time.Second)
	for i := range 20 {
		start := time.Now()
		r, err := kc.TryDo("POST", "/api/v1/billing/charges", chargeBody(fmt.Sprint("beside-", i), 10))
		if err != nil || r.Status != 201 {
			t.Fatalf("charge %d beside slow clients: %v %v", i, r, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("charge %d took %s beside slow clients", i, d)
		}
	}
	timeout := time.After(10 * time.Second)
	for range slow {
		select {
		case d := <-dropped:
			if d < 0 {
				t.Fatalf("a slow client sent its whole request: --read-timeout did not cut it off")
			}
		case <-timeout:
			t.Fatalf("slow connections still open 10 s later")
		}
	}
}
