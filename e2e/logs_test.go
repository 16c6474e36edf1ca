package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/orbit/orbit/internal/testserver"
)

// TestAccessLogsNeverHoldSecrets runs requests that carry an API key, the
// admin token and a top-up, with debug logging on, and checks that every
// request left a structured line and that no secret reached the log.
func TestAccessLogsNeverHoldSecrets(t *testing.T) {
	s := testserver.New(t)
	s.ExtraArgs = []string{"--log-level", "debug"}
	s.Start()
	org := s.MustOrg(t, "Logs", 1_000_000)
	c := s.Key(org.Key)
	c.With("X-Request-Id", "req_log_check_1").Do("POST", "/api/v1/billing/charges", chargeBody("log-1", 100)).Expect(t, 201)
	c.Do("GET", "/api/v1/billing/balance", nil).Expect(t, 200)
	s.Anon().With("X-API-Key", org.Key+"x").Do("GET", "/api/v1/billing/balance", nil).Expect(t, 401)
	c.With("Idempotency-Key", "log-topup-1").Do("POST", "/api/v1/billing/balance/top-up", map[string]any{
		"amount": 1000, "currency": "usd", "successUrl": "https://example.com/ok", "cancelUrl": "https://example.com/no"}).Expect(t, 201)
	var logs string
	testserver.WaitFor(t, 5*time.Second, "the access log line", func() bool {
		logs = s.Logs()
		return strings.Contains(logs, "req_log_check_1")
	})
	for _, want := range []string{"request_id=req_log_check_1", "route=/api/v1/billing/charges", "status=201", "org=" + org.ID, "status=401"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log has no %q:\n%s", want, logs)
		}
	}
	for _, secret := range []string{org.Key, org.Key[len("dv_live_sk_"):], s.AdminToken} {
		if strings.Contains(logs, secret) {
			t.Fatalf("a secret reached the log")
		}
	}
}
