package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orbit/orbit/internal/testserver"
)

// ctlIn runs the CLI with stdin.
func ctlIn(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = runWithInput(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// jsonAfter decodes the JSON document that starts at the first line
// beginning with "{" in out.
func jsonAfter(t *testing.T, out string) map[string]any {
	t.Helper()
	i := strings.Index(out, "\n{")
	if strings.HasPrefix(out, "{") {
		i = -1
	} else if i < 0 {
		t.Fatalf("no JSON in:\n%s", out)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out[i+1:]), &m); err != nil {
		t.Fatalf("JSON: %v in:\n%s", err, out)
	}
	return m
}

func num(t *testing.T, v any) int64 {
	t.Helper()
	f, ok := v.(float64)
	if !ok {
		t.Fatalf("%v (%T) is not a number", v, v)
	}
	return int64(f)
}

func testRatesCLI(t *testing.T, s *testserver.Server) {
	admin := []string{"--url", s.URL, "--admin-token", s.AdminToken}
	a := func(args ...string) []string { return append(append([]string(nil), admin...), args...) }
	org := s.MustOrg(t, "Rates", 1_000_000)
	other := s.MustOrg(t, "Rates other", 0)
	withKey := func(key string, args ...string) []string {
		return append([]string{"--url", s.URL, "--api-key", key}, args...)
	}

	// An override from a file.
	file := writeFile(t, "voice.json", `{"channels": {"voice": {"per": "minute", "increment": [60, 6], "prices": {"1": 9000, "*": 30000}}}}`)
	out := mustCtl(t, a("rates", "set", file, "--org", org.ID)...)
	m := regexp.MustCompile(`Committed the rate card override of org (\S+) as version (\d+)`).FindStringSubmatch(out)
	if m == nil || m[1] != org.ID {
		t.Fatalf("rates set --org:\n%s", out)
	}
	set := jsonAfter(t, out)
	if set["org_id"] != org.ID || num(t, set["version"]) < 1 {
		t.Fatalf("rates set --org JSON: %v", set)
	}
	overrideVersion := num(t, set["version"])

	// rates get: the effective card, as JSON; --org checks the key.
	got := jsonAfter(t, mustCtl(t, a("rates", "get", "--org", org.ID, "--api-key", org.Key)...))
	voice := got["channels"].(map[string]any)["voice"].(map[string]any)
	if num(t, got["version"]) != overrideVersion || voice["per"] != "minute" || num(t, voice["prices"].(map[string]any)["1"]) != 9000 ||
		len(voice["increment"].([]any)) != 2 {
		t.Fatalf("rates get --org: %v", got)
	}
	wantFail(t, 2, []string{"not a key of org " + other.ID}, a("rates", "get", "--org", other.ID, "--api-key", org.Key)...)
	wantFail(t, 2, []string{"API key", "default card"}, a("rates", "get")...)

	// The default card from stdin; the org sees it merged with its override.
	code, out, errOut := ctlIn(t, `{"channels":{"sms":{"per":"unit","prices":{"1":4200,"44":35000,"*":50000}}}}`, a("rates", "set", "-")...)
	if code != 0 || !strings.Contains(out, "Committed the default rate card as version") {
		t.Fatalf("rates set -: exit %d\n%s%s", code, out, errOut)
	}
	def := jsonAfter(t, out)
	if def["org_id"] != nil || num(t, def["version"]) <= overrideVersion {
		t.Fatalf("rates set - JSON: %v", def)
	}
	eff := mustCtl(t, withKey(org.Key, "rates", "get")...)
	got = jsonAfter(t, eff)
	chs := got["channels"].(map[string]any)
	if len(chs) != 2 || chs["sms"] == nil || chs["voice"] == nil || num(t, got["version"]) != num(t, def["version"]) {
		t.Fatalf("rates get after the default card: %v", got)
	}
	// What rates get prints is accepted back by rates set.
	code, out, errOut = ctlIn(t, eff, a("rates", "set", "-", "--org", other.ID)...)
	if code != 0 {
		t.Fatalf("rates get | rates set -: exit %d\n%s%s", code, out, errOut)
	}
	if got := jsonAfter(t, mustCtl(t, withKey(other.Key, "rates", "get")...)); len(got["channels"].(map[string]any)) != 2 {
		t.Fatalf("the copied card: %v", got)
	}
	raw := mustCtl(t, withKey(org.Key, "--json", "rates", "get")...)
	if !strings.Contains(raw, `"meta"`) || !strings.Contains(raw, `"data"`) {
		t.Fatalf("rates get --json is not the envelope:\n%s", raw)
	}

	// A hold rated with the override: 60 s at 9000 micros a minute.
	out = mustCtl(t, withKey(org.Key, "reservations", "create", "--channel", "voice", "--destination", "14155550100", "--seconds", "60", "--reference", "call-1")...)
	if !strings.Contains(out, "Held $0.0090 (9000 micros) on voice") || !regexp.MustCompile(`Rate version:\s+`+regexp.QuoteMeta(strings.TrimSpace(m[2]))+`\n`).MatchString(out) {
		t.Fatalf("rated hold:\n%s", out)
	}

	// Bad files are usage errors; a card the server refuses is exit 1.
	wantFail(t, 2, []string{"no such file"}, a("rates", "set", filepath.Join(t.TempDir(), "missing.json"))...)
	wantFail(t, 2, []string{"not a rate card", "unknown field"}, a("rates", "set", writeFile(t, "typo.json", `{"chanels": {}}`))...)
	wantFail(t, 2, []string{"no \"channels\""}, a("rates", "set", writeFile(t, "empty.json", `{}`))...)
	wantFail(t, 2, []string{"trailing data"}, a("rates", "set", writeFile(t, "two.json", `{"channels": {}} {}`))...)
	wantFail(t, 1, []string{"invalid_request", "HTTP 400"}, a("rates", "set", writeFile(t, "neg.json", `{"channels": {"sms": {"per": "unit", "prices": {"*": -1}}}}`))...)
	wantFail(t, 1, []string{"not_found", "HTTP 404"}, a("rates", "set", file, "--org", "org_doesnotexist")...)

	// Leave no default card behind.
	if out := mustCtl(t, a("rates", "set", writeFile(t, "none.json", `{"channels": {}}`))...); !strings.Contains(out, `"channels": {}`) {
		t.Fatalf("empty default card:\n%s", out)
	}
}

func testGrantCLI(t *testing.T, s *testserver.Server) {
	admin := []string{"--url", s.URL, "--admin-token", s.AdminToken}
	a := func(args ...string) []string { return append(append([]string(nil), admin...), args...) }
	org := s.MustOrg(t, "Grant", 0)
	exp := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	expText := exp.Format(time.RFC3339)
	out := mustCtl(t, a("grant", org.ID, "5000000", "--expires-at", expText, "--reason", "welcome credit", "--reference", "g-1")...)
	if !strings.Contains(out, "Granted $5.0000 (5000000 micros) to org "+org.ID+", expiring at "+exp.Format(timeLayout)) ||
		!regexp.MustCompile(`Balance:\s+\$5\.0000 \(5000000 micros\)`).MatchString(out) || !regexp.MustCompile(`Reference:\s+g-1\n`).MatchString(out) {
		t.Fatalf("grant:\n%s", out)
	}
	if out := mustCtl(t, a("grant", "--reference", "g-1", org.ID, "5000000", "--reason", "welcome credit", "--expires-at", expText)...); !strings.Contains(out, "Replayed") {
		t.Fatalf("grant replay:\n%s", out)
	}
	wantFail(t, 1, []string{"idempotency_conflict", "HTTP 409"}, a("grant", org.ID, "6000000", "--expires-at", expText, "--reason", "welcome credit", "--reference", "g-1")...)
	wantFail(t, 1, []string{"not_found", "HTTP 404"}, a("grant", "org_doesnotexist", "1", "--expires-at", expText)...)
	raw := mustCtl(t, a("--json", "grant", org.ID, "1000", "--expires-at", expText)...)
	var env struct {
		Data struct {
			Transaction struct {
				Type      string `json:"type"`
				ExpiresAt string `json:"expires_at"`
			} `json:"transaction"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(raw), &env); err != nil || env.Data.Transaction.ExpiresAt != exp.Format(timeLayout) || env.Data.Transaction.Type != "grant" {
		t.Fatalf("grant --json: %v\n%s", err, raw)
	}
	if out := mustCtl(t, "--url", s.URL, "--api-key", org.Key, "balance"); !strings.Contains(out, "$5.0010 (5001000 micros)") {
		t.Fatalf("balance after grants:\n%s", out)
	}
}

func testFxCLI(t *testing.T, s *testserver.Server) {
	admin := []string{"--url", s.URL, "--admin-token", s.AdminToken}
	a := func(args ...string) []string { return append(append([]string(nil), admin...), args...) }
	out := mustCtl(t, a("fx", "set", "eur=1.0825", "GBP=1.27", "jpy=0.0067")...)
	if !strings.Contains(out, "Committed the FX table (3 currencies).") || !regexp.MustCompile(`(?m)^eur\s+1\.0825$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^gbp\s+1\.27$`).MatchString(out) || !regexp.MustCompile(`(?m)^jpy\s+0\.0067$`).MatchString(out) {
		t.Fatalf("fx set:\n%s", out)
	}
	if got := mustCtl(t, a("fx", "get")...); got != out[strings.Index(out, "\n")+1:] {
		t.Fatalf("fx get differs from what fx set committed:\n%s\nvs\n%s", got, out)
	}
	out = mustCtl(t, a("fx", "set", "--merge", "chf=0.91234567")...)
	if !strings.Contains(out, "(4 currencies)") || !regexp.MustCompile(`(?m)^chf\s+0\.91234567$`).MatchString(out) || !regexp.MustCompile(`(?m)^eur\s+1\.0825$`).MatchString(out) {
		t.Fatalf("fx set --merge:\n%s", out)
	}
	raw := mustCtl(t, a("--json", "fx", "get")...)
	if !strings.Contains(raw, `"chf": 0.91234567`) || !strings.Contains(raw, `"eur": 1.0825`) {
		t.Fatalf("fx get --json:\n%s", raw)
	}
	wantFail(t, 2, []string{"at most 8 decimals"}, a("fx", "set", "eur=1.000000001")...)
	wantFail(t, 1, []string{"invalid_request", "HTTP 400", "field: eur"}, a("fx", "set", "eur=0")...)
	wantFail(t, 1, []string{"invalid_request", "field: usd"}, a("fx", "set", "usd=1")...)
	if got := mustCtl(t, a("fx", "get")...); strings.Count(got, "\n") != 5 {
		t.Fatalf("a refused fx set changed the table:\n%s", got)
	}

	// A top-up in EUR is credited at the committed rate.
	org := s.MustOrg(t, "FX", 0)
	out = mustCtl(t, "--url", s.URL, "--api-key", org.Key, "topup", "--amount", "1000", "--currency", "eur",
		"--success-url", "https://example.com/ok", "--cancel-url", "https://example.com/no")
	if !regexp.MustCompile(`Credit:\s+\$10\.8250 \(10825000 micros\)`).MatchString(out) || !strings.Contains(out, "1000 eur (minor units)") {
		t.Fatalf("topup in eur:\n%s", out)
	}

	if out := mustCtl(t, a("fx", "set", "--clear")...); !strings.Contains(out, "empty FX table") {
		t.Fatalf("fx set --clear:\n%s", out)
	}
	if out := mustCtl(t, a("fx", "get")...); !strings.Contains(out, "No FX rates") {
		t.Fatalf("fx get after --clear:\n%s", out)
	}
}

// payCheckout completes a development checkout without following its
// redirect.
func payCheckout(t *testing.T, checkoutURL string) {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Post(checkoutURL+"/pay", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "https://example.com/ok" {
		t.Fatalf("pay: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func testTopupCLI(t *testing.T, s *testserver.Server) {
	org := s.MustOrg(t, "Topup", 0)
	o := func(args ...string) []string { return append([]string{"--url", s.URL, "--api-key", org.Key}, args...) }
	flags := []string{"--success-url", "https://example.com/ok", "--cancel-url", "https://example.com/no"}
	out := mustCtl(t, o(append([]string{"topup", "--amount", "2500"}, flags...)...)...)
	checkout := match(t, `Checkout URL:\s+(\S+)`, out)
	key := match(t, `Idempotency-Key:\s+(\S+)`, out)
	id := match(t, `Top-up:\s+(tu_\S+)`, out)
	if checkout != s.URL+"/dev/checkout/"+id || !strings.HasPrefix(key, "idem_") || !regexp.MustCompile(`Status:\s+pending`).MatchString(out) ||
		!regexp.MustCompile(`Credit:\s+\$25\.0000 \(25000000 micros\)`).MatchString(out) || !strings.Contains(out, "Top-up created") {
		t.Fatalf("topup:\n%s", out)
	}
	again := mustCtl(t, o(append([]string{"topup", "--amount", "2500", "--idempotency-key", key}, flags...)...)...)
	if !strings.Contains(again, "Replayed") || match(t, `Checkout URL:\s+(\S+)`, again) != checkout {
		t.Fatalf("topup replay:\n%s", again)
	}
	wantFail(t, 1, []string{"idempotency_conflict", "HTTP 409"}, o(append([]string{"topup", "--amount", "2600", "--idempotency-key", key}, flags...)...)...)
	wantFail(t, 1, []string{"invalid_request", "field: amount"}, o(append([]string{"topup", "--amount", "100"}, flags...)...)...)
	readKey := s.MustKey(t, org.ID, "read")
	wantFail(t, 1, []string{"forbidden", "HTTP 403"}, append([]string{"--url", s.URL, "--api-key", readKey, "topup", "--amount", "2500"}, flags...)...)

	if out := mustCtl(t, o("balance")...); !strings.Contains(out, "$0.0000 (0 micros)") {
		t.Fatalf("balance before paying:\n%s", out)
	}
	payCheckout(t, checkout)
	payCheckout(t, checkout)
	if out := mustCtl(t, o("balance")...); !regexp.MustCompile(`Balance:\s+\$25\.0000 \(25000000 micros\)`).MatchString(out) {
		t.Fatalf("balance after paying twice:\n%s", out)
	}
	paid := mustCtl(t, o(append([]string{"topup", "--amount", "2500", "--idempotency-key", key}, flags...)...)...)
	if !strings.Contains(paid, "Replayed") || !regexp.MustCompile(`Status:\s+paid`).MatchString(paid) {
		t.Fatalf("topup replay after paying:\n%s", paid)
	}
	raw := mustCtl(t, o(append([]string{"--json", "topup", "--amount", "600"}, flags...)...)...)
	var env struct {
		Data struct {
			CheckoutURL string `json:"checkoutUrl"`
			Status      string `json:"status"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(raw), &env); err != nil || !strings.HasPrefix(env.Data.CheckoutURL, s.URL+"/dev/checkout/tu_") || env.Data.Status != "pending" {
		t.Fatalf("topup --json: %v\n%s", err, raw)
	}
}

func testReservationsCLI(t *testing.T, s *testserver.Server) {
	org := s.MustOrg(t, "Reservations", 1_000_000)
	o := func(args ...string) []string {
		return append([]string{"--url", s.URL, "--api-key", s.MustKey(t, org.ID, "charge")}, args...)
	}
	out := mustCtl(t, o("reservations", "create", "--channel", "llm", "--amount-micros", "30000", "--reference", "r1", "--ttl-seconds", "120")...)
	id := match(t, `Reservation:\s+(rsv_\S+)`, out)
	if !strings.Contains(out, "Held $0.0300 (30000 micros) on llm.") || !regexp.MustCompile(`Available:\s+\$0\.9700 \(970000 micros\)`).MatchString(out) ||
		!regexp.MustCompile(`Status:\s+open`).MatchString(out) {
		t.Fatalf("reservations create:\n%s", out)
	}
	if out := mustCtl(t, o("reservations", "create", "--reference", "r1", "--channel", "llm", "--amount-micros", "30000", "--ttl-seconds", "120")...); !strings.Contains(out, "Replayed") || !strings.Contains(out, id) {
		t.Fatalf("reservations create replay:\n%s", out)
	}
	wantFail(t, 1, []string{"idempotency_conflict", "HTTP 409"}, o("reservations", "create", "--reference", "r1", "--channel", "llm", "--amount-micros", "1")...)
	wantFail(t, 1, []string{"insufficient_funds", "HTTP 402", "available_micros: 970000"}, o("reservations", "create", "--channel", "llm", "--amount-micros", "980000")...)
	wantFail(t, 1, []string{"no_rate", "HTTP 422"}, o("reservations", "create", "--channel", "fax", "--destination", "1", "--units", "1")...)

	out = mustCtl(t, o("reservations", "extend", id, "--amount-micros", "10000", "--idempotency-key", "ext-key-0001")...)
	if !strings.Contains(out, "Held $0.0100 (10000 micros) more; the hold is $0.0400 (40000 micros).") {
		t.Fatalf("reservations extend:\n%s", out)
	}
	out = mustCtl(t, o("reservations", "extend", id, "--amount-micros", "10000", "--idempotency-key", "ext-key-0001")...)
	if !strings.Contains(out, "Replayed") || !regexp.MustCompile(`Held:\s+\$0\.0400 \(40000 micros\)`).MatchString(out) {
		t.Fatalf("reservations extend replay:\n%s", out)
	}
	out = mustCtl(t, o("reservations", "extend", id, "--amount-micros", "10000", "--ttl-seconds", "300")...)
	if !regexp.MustCompile(`Idempotency-Key:\s+idem_[0-9a-f]{32}\n`).MatchString(out) || !regexp.MustCompile(`Held:\s+\$0\.0500 \(50000 micros\)`).MatchString(out) {
		t.Fatalf("reservations extend with a generated key:\n%s", out)
	}
	out = mustCtl(t, o("reservations", "get", id)...)
	if !regexp.MustCompile(`Held:\s+\$0\.0500 \(50000 micros\)`).MatchString(out) || !regexp.MustCompile(`Closed:\s+-\n`).MatchString(out) {
		t.Fatalf("reservations get:\n%s", out)
	}

	out = mustCtl(t, o("reservations", "commit", id, "--amount-micros", "45000")...)
	if !strings.Contains(out, "Charged $0.0450 (45000 micros); the rest of the hold is free.") || !regexp.MustCompile(`Spend:\s+ct_\S+`).MatchString(out) ||
		!regexp.MustCompile(`Status:\s+committed`).MatchString(out) || !regexp.MustCompile(`Balance:\s+\$0\.9550 \(955000 micros\)`).MatchString(out) ||
		!regexp.MustCompile(`Available:\s+\$0\.9550 \(955000 micros\)`).MatchString(out) || !regexp.MustCompile(`Spend reference:\s+reservation:r1\n`).MatchString(out) {
		t.Fatalf("reservations commit:\n%s", out)
	}
	if out := mustCtl(t, o("reservations", "commit", "--amount-micros", "45000", id)...); !strings.Contains(out, "Replayed") {
		t.Fatalf("reservations commit replay:\n%s", out)
	}
	wantFail(t, 1, []string{"reservation_closed", "HTTP 409"}, o("reservations", "commit", id, "--amount-micros", "1")...)
	wantFail(t, 1, []string{"reservation_closed", "HTTP 409"}, o("reservations", "release", id)...)
	wantFail(t, 1, []string{"reservation_closed", "HTTP 409"}, o("reservations", "extend", id, "--amount-micros", "1")...)
	raw := mustCtl(t, o("--json", "reservations", "get", id)...)
	if !strings.Contains(raw, `"status": "committed"`) || !strings.Contains(raw, `"captured_micros": 45000`) {
		t.Fatalf("reservations get --json:\n%s", raw)
	}

	// Release, twice; then a commit is refused.
	out = mustCtl(t, o("reservations", "create", "--channel", "voice", "--amount-micros", "5000")...)
	id2 := match(t, `Reservation:\s+(rsv_\S+)`, out)
	if !regexp.MustCompile(`Reference:\s+hold_[0-9a-f]{32}\n`).MatchString(out) {
		t.Fatalf("generated reference:\n%s", out)
	}
	for i := 0; i < 2; i++ {
		out = mustCtl(t, o("reservations", "release", id2)...)
		if !strings.Contains(out, "Hold "+id2+" is released.") || !regexp.MustCompile(`Available:\s+\$0\.9550 \(955000 micros\)`).MatchString(out) {
			t.Fatalf("reservations release #%d:\n%s", i+1, out)
		}
	}
	wantFail(t, 1, []string{"reservation_closed"}, o("reservations", "commit", id2, "--amount-micros", "1")...)
	wantFail(t, 1, []string{"not_found", "HTTP 404"}, o("reservations", "get", "rsv_doesnotexist")...)
}

func testClusterCLI(t *testing.T, s *testserver.Server) {
	admin := []string{"--url", s.URL, "--admin-token", s.AdminToken}
	a := func(args ...string) []string { return append(append([]string(nil), admin...), args...) }
	out := mustCtl(t, a("cluster", "join", "--node-id", "node1", "--raft-addr", s.RaftAddr, "--http-addr", s.HTTPAddr)...)
	if !strings.Contains(out, "Node node1 is a member") || strings.Count(out, "voter") != 1 {
		t.Fatalf("cluster join of itself:\n%s", out)
	}
	wantFail(t, 1, []string{"invalid_request", "field: raft_addr"}, a("cluster", "join", "--node-id", "node9", "--raft-addr", "nope", "--http-addr", "127.0.0.1:1")...)
	wantFail(t, 1, []string{"not_found", "HTTP 404"}, a("cluster", "remove", "node9")...)
	wantFail(t, 1, []string{"invalid_request", "HTTP 400"}, a("cluster", "remove", "node1")...)

	// A real second node, whose --join goes through 'orbitctl cluster join'.
	var mu sync.Mutex
	var joinOut string
	joinCode := -1
	relay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ NodeID, RaftAddr, HTTPAddr string }
		body, _ := io.ReadAll(r.Body)
		var raw map[string]string
		if err := json.Unmarshal(body, &raw); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		req.NodeID, req.RaftAddr, req.HTTPAddr = raw["node_id"], raw["raft_addr"], raw["http_addr"]
		var o, e bytes.Buffer
		code := run(a("cluster", "join", "--node-id", req.NodeID, "--raft-addr", req.RaftAddr, "--http-addr", req.HTTPAddr), &o, &e)
		mu.Lock()
		joinCode, joinOut = code, o.String()+e.String()
		mu.Unlock()
		if code != 0 {
			w.WriteHeader(503)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"data":{},"meta":{"request_id":"req_relay","timestamp":"2026-05-16T12:00:00.000Z"}}`)
	}))
	defer relay.Close()
	n2 := testserver.New(t)
	n2.ExtraArgs = []string{"--node-id", "node2", "--join", relay.URL}
	n2.Start()
	testserver.WaitFor(t, 30*time.Second, "orbitctl cluster join to finish", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return joinCode == 0
	})
	mu.Lock()
	if !strings.Contains(joinOut, "Node node2 is a member") || !regexp.MustCompile(`(?m)^node2\s+`+regexp.QuoteMeta(n2.RaftAddr)+`\s+`+regexp.QuoteMeta(n2.HTTPAddr)+`\s+voter\s`).MatchString(joinOut) {
		t.Fatalf("cluster join of node2:\n%s", joinOut)
	}
	mu.Unlock()
	out = mustCtl(t, a("cluster", "remove", "node2")...)
	if !strings.Contains(out, "Removed node node2.") || strings.Contains(out, "\nnode2 ") || !regexp.MustCompile(`(?m)^node1\s+.*voter\s+leader`).MatchString(out) {
		t.Fatalf("cluster remove:\n%s", out)
	}
	n2.Kill()
}
