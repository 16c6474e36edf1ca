package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/orbit/orbit/internal/testserver"
)

// ctl runs the CLI in-process and returns its exit status and output.
func ctl(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// mustCtl runs the CLI and fails unless it exits 0.
func mustCtl(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := ctl(t, args...)
	if code != 0 {
		t.Fatalf("orbitctl %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// wantFail runs the CLI and fails unless it exits with code and stderr
// holds every want.
func wantFail(t *testing.T, code int, want []string, args ...string) {
	t.Helper()
	got, out, errOut := ctl(t, args...)
	if got != code {
		t.Fatalf("orbitctl %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), got, code, out, errOut)
	}
	for _, w := range want {
		if !strings.Contains(errOut, w) {
			t.Fatalf("orbitctl %s: stderr lacks %q:\n%s", strings.Join(args, " "), w, errOut)
		}
	}
}

// clearEnv keeps the caller's environment out of the CLI under test.
func clearEnv(t *testing.T) {
	for _, k := range []string{"ORBIT_URL", "ORBIT_ADMIN_TOKEN", "ORBIT_API_KEY", "ORBIT_DATA_DIR"} {
		t.Setenv(k, "")
	}
}

func match(t *testing.T, re, s string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no match for %s in:\n%s", re, s)
	}
	return m[1]
}

func TestCLI(t *testing.T) {
	clearEnv(t)
	s := testserver.Start(t)
	t.Run("DemoBalanceRevoke", func(t *testing.T) { testDemo(t, s) })
	t.Run("Operator", func(t *testing.T) { testOperator(t, s) })
	t.Run("Rates", func(t *testing.T) { testRatesCLI(t, s) })
	t.Run("Grant", func(t *testing.T) { testGrantCLI(t, s) })
	t.Run("Fx", func(t *testing.T) { testFxCLI(t, s) })
	t.Run("Topup", func(t *testing.T) { testTopupCLI(t, s) })
	t.Run("Reservations", func(t *testing.T) { testReservationsCLI(t, s) })
	t.Run("Cluster", func(t *testing.T) { testClusterCLI(t, s) })
	t.Run("AdminTokenSources", func(t *testing.T) { testAdminTokenSources(t, s) })
}

func testDemo(t *testing.T, s *testserver.Server) {
	out := mustCtl(t, "--url", s.URL, "--admin-token", s.AdminToken, "demo")
	org := match(t, `Org:\s+(org_\S+) \(Demo\)`, out)
	key := match(t, `API key:\s+(dv_live_sk_[0-9a-f]+)`, out)
	if !strings.Contains(out, "$150.0000 (150000000 micros)") {
		t.Fatalf("demo output lacks the funds:\n%s", out)
	}
	wantCurl := fmt.Sprintf(`curl -X GET "%s/api/v1/billing/balance" -H "X-API-Key: %s"`, s.URL, key)
	if !strings.Contains("\n"+out+"\n", "\n"+wantCurl+"\n") {
		t.Fatalf("demo output lacks the line\n%s\nin:\n%s", wantCurl, out)
	}

	// The key works, and the balance is $150.
	bal := mustCtl(t, "--url", s.URL, "balance", "--api-key", key)
	if !strings.Contains(bal, "Balance:") || !strings.Contains(bal, "$150.0000 (150000000 micros)") || !strings.Contains(bal, "active") {
		t.Fatalf("balance:\n%s", bal)
	}
	raw := mustCtl(t, "--json", "--url", s.URL, "--api-key", key, "balance")
	if !strings.Contains(raw, `"balance_usd": 150.0000`) || !strings.Contains(raw, `"balance_micros": 150000000`) {
		t.Fatalf("balance --json:\n%s", raw)
	}
	var env map[string]any
	if err := json.Unmarshal([]byte(raw), &env); err != nil || env["data"] == nil {
		t.Fatalf("balance --json is not the envelope: %v\n%s", err, raw)
	}

	// The demo's charge curl works as printed: send what it says.
	cl := match(t, `(?m)^(curl -X POST .*)$`, out)
	u := match(t, `-X POST "([^"]+)"`, cl)
	body := match(t, `-d '([^']+)'`, cl)
	req, _ := http.NewRequest("POST", u, strings.NewReader(body))
	for _, h := range regexp.MustCompile(`-H "([^:]+): ([^"]+)"`).FindAllStringSubmatch(cl, -1) {
		req.Header.Set(h[1], h[2])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	respBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("demo charge curl: %d %s", resp.StatusCode, respBody)
	}
	bal = mustCtl(t, "--url", s.URL, "balance", "--api-key", key)
	if !strings.Contains(bal, "$149.9958 (149995800 micros)") {
		t.Fatalf("balance after the demo charge:\n%s", bal)
	}

	// Revoking the key makes it fail with 401.
	keys := mustCtl(t, "--url", s.URL, "--admin-token", s.AdminToken, "keys", "list", org)
	keyID := match(t, `(?m)^(key_\S+)\s+admin\s+`+regexp.QuoteMeta(key[:17])+`\s`, keys)
	rev := mustCtl(t, "--url", s.URL, "--admin-token", s.AdminToken, "keys", "revoke", org, keyID)
	if !strings.Contains(rev, "Revoked key "+keyID) {
		t.Fatalf("keys revoke:\n%s", rev)
	}
	keys = mustCtl(t, "--url", s.URL, "--admin-token", s.AdminToken, "keys", "list", org)
	if line := match(t, `(?m)^(`+keyID+`.*)$`, keys); strings.HasSuffix(strings.TrimSpace(line), " -") {
		t.Fatalf("revoked key not shown revoked:\n%s", keys)
	}
	wantFail(t, 1, []string{"unauthenticated", "HTTP 401"}, "--url", s.URL, "--api-key", key, "balance")
}

func testOperator(t *testing.T, s *testserver.Server) {
	admin := []string{"--url", s.URL, "--admin-token", s.AdminToken}
	a := func(args ...string) []string { return append(append([]string(nil), admin...), args...) }

	raw := mustCtl(t, a("--json", "orgs", "create", "Acme", "Inc")...)
	var created struct {
		Data struct{ ID, Name string } `json:"data"`
	}
	if err := json.Unmarshal([]byte(raw), &created); err != nil || created.Data.Name != "Acme Inc" {
		t.Fatalf("orgs create --json: %v\n%s", err, raw)
	}
	org := created.Data.ID
	if out := mustCtl(t, a("orgs", "list")...); !strings.Contains(out, org) || !strings.Contains(out, "Acme Inc") || !strings.HasPrefix(out, "ID ") {
		t.Fatalf("orgs list:\n%s", out)
	}
	if out := mustCtl(t, a("orgs", "get", org)...); !strings.Contains(out, "Acme Inc") || !strings.Contains(out, "$0.0000 (0 micros)") {
		t.Fatalf("orgs get:\n%s", out)
	}
	out := mustCtl(t, a("orgs", "update", org, "--name", "Acme 2", "--pause-threshold-micros", "5000")...)
	if !strings.Contains(out, "Acme 2") || !regexp.MustCompile(`Pause threshold:\s+\$0\.0050 \(5000 micros\)`).MatchString(out) {
		t.Fatalf("orgs update:\n%s", out)
	}
	wantFail(t, 1, []string{"not_found", "HTTP 404"}, a("orgs", "get", "org_doesnotexist")...)

	// Funds: exactly once per reference; a debit beyond the wallet is 402.
	out = mustCtl(t, a("adjust", org, "2000000", "--reason", "top up", "--reference", "adj-1")...)
	if !strings.Contains(out, "Credited $2.0000 (2000000 micros)") || !regexp.MustCompile(`Balance:\s+\$2\.0000`).MatchString(out) {
		t.Fatalf("adjust:\n%s", out)
	}
	if out := mustCtl(t, a("adjust", "--reason", "top up", org, "2000000", "--reference", "adj-1")...); !strings.Contains(out, "Replayed") {
		t.Fatalf("adjust replay:\n%s", out)
	}
	wantFail(t, 1, []string{"insufficient_funds", "HTTP 402", "available_micros: 2000000"}, a("adjust", org, "-99000000", "--reason", "too much")...)
	if out := mustCtl(t, a("adjust", org, "-500000", "--reason", "correction")...); !strings.Contains(out, "Debited $0.5000 (500000 micros)") || !strings.Contains(out, "Reference:") {
		t.Fatalf("adjust debit:\n%s", out)
	}

	// Keys and the org commands.
	out = mustCtl(t, a("keys", "create", org, "--role", "charge")...)
	chargeKey := match(t, `API key:\s+(dv_live_sk_[0-9a-f]+)`, out)
	if !regexp.MustCompile(`Role:\s+charge`).MatchString(out) {
		t.Fatalf("keys create:\n%s", out)
	}
	readKey := match(t, `API key:\s+(dv_live_sk_[0-9a-f]+)`, mustCtl(t, a("keys", "create", org, "--role", "read")...))
	if out := mustCtl(t, a("keys", "list", org)...); strings.Count(out, "key_") != 2 || strings.Contains(out, chargeKey) {
		t.Fatalf("keys list:\n%s", out)
	}

	o := func(key string, args ...string) []string {
		return append([]string{"--url", s.URL, "--api-key", key}, args...)
	}
	out = mustCtl(t, o(chargeKey, "charge", "--reference", "c1", "--channel", "sms", "--amount-micros", "42000")...)
	if !strings.Contains(out, "Charged $0.0420 (42000 micros) on sms") || !regexp.MustCompile(`Balance:\s+\$1\.4580 \(1458000 micros\)`).MatchString(out) {
		t.Fatalf("charge:\n%s", out)
	}
	if out := mustCtl(t, o(chargeKey, "charge", "--reference", "c1", "--channel", "sms", "--amount-micros", "42000")...); !strings.Contains(out, "Replayed") {
		t.Fatalf("charge replay:\n%s", out)
	}
	wantFail(t, 1, []string{"idempotency_conflict", "HTTP 409"}, o(chargeKey, "charge", "--reference", "c1", "--channel", "sms", "--amount-micros", "1")...)
	wantFail(t, 1, []string{"insufficient_funds", "HTTP 402"}, o(chargeKey, "charge", "--reference", "c2", "--channel", "sms", "--amount-micros", "5000000")...)
	wantFail(t, 1, []string{"forbidden", "HTTP 403"}, o(chargeKey, "transactions")...)
	wantFail(t, 1, []string{"forbidden", "HTTP 403"}, o(readKey, "charge", "--reference", "c3", "--channel", "sms", "--amount-micros", "1")...)

	out = mustCtl(t, o(readKey, "transactions", "--limit", "2")...)
	if !strings.HasPrefix(out, "ID ") || strings.Count(out, "\nct_") != 2 || !strings.Contains(out, "More: orbitctl transactions --limit 2 --cursor-ts") ||
		!strings.Contains(out, "-$0.0420 (-42000 micros)") || !strings.Contains(out, "charge:c1") {
		t.Fatalf("transactions --limit 2:\n%s", out)
	}
	cur := regexp.MustCompile(`--cursor-ts (\S+) --cursor-id (\S+)`).FindStringSubmatch(out)
	out = mustCtl(t, o(readKey, "transactions", "--limit", "2", "--cursor-ts", cur[1], "--cursor-id", cur[2])...)
	if strings.Count(out, "\nct_") != 1 || strings.Contains(out, "More:") || !strings.Contains(out, "adj-1") {
		t.Fatalf("transactions, second page:\n%s", out)
	}
	out = mustCtl(t, o(readKey, "transactions", "--all", "--limit", "1")...)
	if strings.Count(out, "\nct_") != 3 {
		t.Fatalf("transactions --all:\n%s", out)
	}
	var all []map[string]any
	raw = mustCtl(t, o(readKey, "--json", "transactions", "--all", "--limit", "1")...)
	if err := json.Unmarshal([]byte(raw), &all); err != nil || len(all) != 3 || all[0]["reference"] != "charge:c1" {
		t.Fatalf("transactions --all --json: %v\n%s", err, raw)
	}
	if out := mustCtl(t, o(readKey, "transactions", "--type", "spend")...); strings.Count(out, "\nct_") != 1 {
		t.Fatalf("transactions --type spend:\n%s", out)
	}

	// Pause and unpause.
	out = mustCtl(t, a("pause", org, "--reason", "fraud review")...)
	if !strings.Contains(out, "paused: operator_hold (fraud review)") {
		t.Fatalf("pause:\n%s", out)
	}
	wantFail(t, 1, []string{"outbound_paused", "HTTP 403", "operator_hold"}, o(chargeKey, "charge", "--reference", "c4", "--channel", "sms", "--amount-micros", "1")...)
	if out := mustCtl(t, a("unpause", org)...); !regexp.MustCompile(`Outbound:\s+active`).MatchString(out) {
		t.Fatalf("unpause:\n%s", out)
	}
	mustCtl(t, o(chargeKey, "charge", "--reference", "c4", "--channel", "sms", "--amount-micros", "1")...)

	// Audit and cluster.
	if out := mustCtl(t, a("audit")...); !strings.Contains(out, "Mismatches:   none") {
		t.Fatalf("audit:\n%s", out)
	}
	out = mustCtl(t, a("cluster")...)
	if !regexp.MustCompile(`Leader:\s+node1`).MatchString(out) || !regexp.MustCompile(`(?m)^node1\s+\S+\s+\S+\s+voter\s+leader`).MatchString(out) {
		t.Fatalf("cluster:\n%s", out)
	}
	raw = mustCtl(t, a("--json", "cluster")...)
	if !strings.Contains(raw, `"leader": "node1"`) {
		t.Fatalf("cluster --json:\n%s", raw)
	}
}

func testAdminTokenSources(t *testing.T, s *testserver.Server) {
	// ORBIT_URL and ORBIT_ADMIN_TOKEN.
	t.Setenv("ORBIT_URL", s.URL)
	t.Setenv("ORBIT_ADMIN_TOKEN", s.AdminToken)
	mustCtl(t, "orgs", "list")
	t.Setenv("ORBIT_ADMIN_TOKEN", "")

	// The file orbitd writes, in $ORBIT_DATA_DIR ...
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "admin-token"), []byte(s.AdminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ORBIT_DATA_DIR", dir)
	mustCtl(t, "orgs", "list")
	t.Setenv("ORBIT_DATA_DIR", "")

	// ... or in ./data.
	work := t.TempDir()
	t.Chdir(work)
	wantFail(t, 2, []string{"no admin token", "--admin-token"}, "orgs", "list")
	if err := os.Mkdir("data", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("data", "admin-token"), []byte("wrong-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wantFail(t, 1, []string{"unauthenticated", "HTTP 401"}, "orgs", "list")
	if err := os.WriteFile(filepath.Join("data", "admin-token"), []byte(s.AdminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustCtl(t, "orgs", "list")
	// The flag wins over the file.
	wantFail(t, 1, []string{"unauthenticated"}, "--admin-token", "nope", "orgs", "list")
}

func TestUsageErrors(t *testing.T) {
	clearEnv(t)
	t.Chdir(t.TempDir()) // no ./data/admin-token here
	for _, args := range [][]string{
		{},
		{"bogus"},
		{"--bogus-flag", "balance"},
		{"orgs"},
		{"orgs", "bogus"},
		{"orgs", "get"},
		{"orgs", "get", "org_a", "org_b"},
		{"orgs", "list", "extra"},
		{"orgs", "create"},
		{"orgs", "update", "org_x", "--admin-token", "t"},
		{"keys", "create", "org_x", "--role", "owner", "--admin-token", "t"},
		{"keys", "revoke", "org_x"},
		{"adjust", "org_x", "--reason", "r"},
		{"adjust", "org_x", "abc", "--reason", "r", "--admin-token", "t"},
		{"adjust", "org_x", "0", "--reason", "r", "--admin-token", "t"},
		{"adjust", "org_x", "100", "--admin-token", "t"},
		{"charge", "--channel", "sms", "--amount-micros", "1", "--api-key", "k"},
		{"charge", "--reference", "r", "--amount-micros", "1", "--api-key", "k"},
		{"charge", "--reference", "r", "--channel", "sms", "--api-key", "k"},
		{"charge", "--reference", "r", "--channel", "sms", "--amount-micros", "x"},
		{"transactions", "--limit", "0", "--api-key", "k"},
		{"transactions", "--cursor-ts", "2026-01-01T00:00:00.000Z", "--api-key", "k"},
		{"balance", "extra", "--api-key", "k"},
		{"balance"},      // no API key anywhere
		{"orgs", "list"}, // no admin token anywhere
		{"--url", "ftp://example.com", "orgs", "list", "--admin-token", "t"},
		{"help", "bogus"},
		{"rates"},
		{"rates", "bogus"},
		{"rates", "set"},
		{"rates", "set", "a.json", "b.json", "--admin-token", "t"},
		{"rates", "set", "/nonexistent/card.json", "--admin-token", "t"},
		{"rates", "get"},                   // no API key anywhere
		{"rates", "get", "--org", "org_x"}, // no API key anywhere
		{"grant", "org_x", "100", "--admin-token", "t"},
		{"grant", "org_x", "abc", "--expires-at", "2030-01-01T00:00:00Z", "--admin-token", "t"},
		{"grant", "org_x", "-5", "--expires-at", "2030-01-01T00:00:00Z", "--admin-token", "t"},
		{"grant", "org_x", "100", "--expires-at", "tomorrow", "--admin-token", "t"},
		{"grant", "org_x", "--expires-at", "2030-01-01T00:00:00Z", "--admin-token", "t"},
		{"fx"},
		{"fx", "get", "extra", "--admin-token", "t"},
		{"fx", "set", "--admin-token", "t"},
		{"fx", "set", "eur", "--admin-token", "t"},
		{"fx", "set", "eur=1e3", "--admin-token", "t"},
		{"fx", "set", "eur=-1", "--admin-token", "t"},
		{"fx", "set", "eur=1", "EUR=2", "--admin-token", "t"},
		{"fx", "set", "--clear", "eur=1", "--admin-token", "t"},
		{"cluster", "join", "--node-id", "n", "--raft-addr", "h:1", "--admin-token", "t"},
		{"cluster", "join", "extra", "--admin-token", "t"},
		{"cluster", "remove", "--admin-token", "t"},
		{"cluster", "bogus", "--admin-token", "t"},
		{"topup", "--api-key", "k"},
		{"topup", "--amount", "500", "--api-key", "k"},
		{"topup", "--amount", "500", "--success-url", "https://x/ok", "--api-key", "k"},
		{"topup", "--amount", "-5", "--success-url", "https://x/ok", "--cancel-url", "https://x/no", "--api-key", "k"},
		{"topup", "--amount", "500", "--success-url", "https://x/ok", "--cancel-url", "https://x/no"}, // no API key
		{"reservations"},
		{"reservations", "bogus"},
		{"reservations", "create", "--amount-micros", "5", "--api-key", "k"},
		{"reservations", "create", "--channel", "voice", "--api-key", "k"},
		{"reservations", "create", "--channel", "voice", "--amount-micros", "0", "--api-key", "k"},
		{"reservations", "create", "--channel", "voice", "--amount-micros", "5", "--seconds", "5", "--api-key", "k"},
		{"reservations", "get", "--api-key", "k"},
		{"reservations", "get", "rsv_a", "rsv_b", "--api-key", "k"},
		{"reservations", "extend", "rsv_x", "--api-key", "k"},
		{"reservations", "extend", "--amount-micros", "5", "--api-key", "k"},
		{"reservations", "commit", "rsv_x", "--api-key", "k"},
		{"reservations", "commit", "rsv_x", "--amount-micros", "5", "--model", "m", "--api-key", "k"},
		{"reservations", "release", "--api-key", "k"},
		{"reservations", "release", "rsv_x"}, // no API key
	} {
		code, out, errOut := ctl(t, args...)
		if code != 2 || errOut == "" || out != "" {
			t.Errorf("orbitctl %q: exit %d, want 2\nstdout: %s\nstderr: %s", args, code, out, errOut)
		}
	}
}

func TestHelp(t *testing.T) {
	out := mustCtl(t, "help")
	for _, c := range commands {
		if !strings.Contains(out, "  "+c.usage()) {
			t.Errorf("help lacks %q", c.usage())
		}
	}
	for _, w := range []string{"--url", "--admin-token", "--api-key", "--json", "ORBIT_URL", "ORBIT_ADMIN_TOKEN", "ORBIT_API_KEY", "admin-token"} {
		if !strings.Contains(out, w) {
			t.Errorf("help lacks %q", w)
		}
	}
	if out2 := mustCtl(t, "--help"); out2 != out {
		t.Errorf("--help differs from help")
	}
	if out := mustCtl(t, "help", "keys", "create"); !strings.Contains(out, "usage: orbitctl keys create ORG") || !strings.Contains(out, "-role") {
		t.Errorf("help keys create:\n%s", out)
	}
	if out := mustCtl(t, "adjust", "-h"); !strings.Contains(out, "--reference REF") {
		t.Errorf("adjust -h:\n%s", out)
	}
	for path, want := range map[string][]string{
		"rates set":           {"usage: orbitctl rates set FILE [--org ORG]", `"channels"`, "-org"},
		"rates get":           {"usage: orbitctl rates get [--org ORG]", "effective", "-org"},
		"fx set":              {"usage: orbitctl fx set CUR=RATE", "-merge", "-clear", "8 decimals"},
		"topup":               {"usage: orbitctl topup --amount CENTS", "-success-url", "-idempotency-key", "Idempotency-Key"},
		"reservations create": {"-destination", "-seconds", "-input-tokens", "-ttl-seconds"},
		"cluster join":        {"-node-id", "-raft-addr", "-http-addr"},
		"grant":               {"-expires-at", "earliest-expiring"},
	} {
		out := mustCtl(t, append([]string{"help"}, strings.Fields(path)...)...)
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("help %s lacks %q:\n%s", path, w, out)
			}
		}
	}
}

func TestMoney(t *testing.T) {
	for micros, want := range map[int64]string{
		0: "$0.0000", 150_000_000: "$150.0000", 4200: "$0.0042", -4200: "-$0.0042", 99: "$0.0000",
		-99: "$0.0000", 1_234_567: "$1.2345", -1_500_000: "-$1.5000", 1_000_000_000_000_000: "$1000000000.0000",
	} {
		if got := usd(micros); got != want {
			t.Errorf("usd(%d) = %q, want %q", micros, got, want)
		}
	}
	if got := money(-42000); got != "-$0.0420 (-42000 micros)" {
		t.Errorf("money: %q", got)
	}
}

// TestDemoWithAdminListener: with orbitd --admin-addr, demo runs against the
// operator listener, and the commands it prints reach the org API on the
// public one (the operator listener answers the org API 404).
func TestDemoWithAdminListener(t *testing.T) {
	s := testserver.New(t)
	s.EnableAdminListener()
	s.Start()
	out := mustCtl(t, "--url", s.AdminURL, "--admin-token", s.AdminToken, "demo")
	key := match(t, `API key:\s+(dv_live_sk_[0-9a-f]+)`, out)
	u := match(t, `curl -X GET "([^"]+)"`, out)
	if want := s.URL + "/api/v1/billing/balance"; u != want {
		t.Fatalf("demo's balance curl goes to %s, want the public listener's %s:\n%s", u, want, out)
	}
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("X-API-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("demo's balance curl: %d", resp.StatusCode)
	}
	if !strings.Contains(out, "balance") || !strings.Contains(out, "--url "+s.URL+" balance") {
		t.Fatalf("demo's orbitctl line does not name the public listener:\n%s", out)
	}
}
