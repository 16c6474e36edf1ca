package e2e

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/orbit/orbit/internal/testserver"
)

// TestMetricsPassPromlint lints /metrics with the same checks as
// `promtool check metrics`, after traffic has touched every metric family.
func TestMetricsPassPromlint(t *testing.T) {
	s := testserver.Start(t)
	org := s.MustOrg(t, "Metrics", 1_000_000)
	s.Key(org.Key).Do("POST", "/api/v1/billing/charges", chargeBody("m1", 100)).Expect(t, 201)
	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	if _, err := body.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	for _, family := range []string{"orbit_http_requests_total", "orbit_http_request_duration_seconds", "orbit_charges_total",
		"orbit_raft_batch_commands", "orbit_raft_commit_seconds", "orbit_applied_commands_total", "orbit_wallets"} {
		if !bytes.Contains(body.Bytes(), []byte("# TYPE "+family+" ")) {
			t.Errorf("metric family %s missing", family)
		}
	}
	problems, err := promlint.New(bytes.NewReader(body.Bytes())).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}
