package e2e

import (
	"testing"
	"time"

	"github.com/orbit/orbit/internal/testserver"
)

// TestAdminListener: with --admin-addr the operator API is served only
// there: the public listener answers 404 not_found for /admin/v1 (and
// changes nothing), the admin listener answers 404 for the org API and
// everything else but health and metrics, which both listeners serve.
func TestAdminListener(t *testing.T) {
	s := testserver.New(t)
	s.EnableAdminListener()
	s.Start()
	if s.AdminURL == s.URL {
		t.Fatalf("no separate admin URL")
	}
	admin := s.Admin() // on the admin listener
	org := s.MustOrg(t, "Split", 1_000_000)
	orgsBefore := len(oaList(t, admin.Do("GET", "/admin/v1/orgs", nil).Expect(t, 200)))

	// The operator API on the public listener: 404, nothing done.
	pubAdmin := admin.At(s.URL)
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"GET", "/admin/v1/orgs", nil},
		{"POST", "/admin/v1/orgs", map[string]any{"name": "Sneaky"}},
		{"GET", "/admin/v1/orgs/" + org.ID, nil},
		{"POST", "/admin/v1/orgs/" + org.ID + "/adjustments", map[string]any{"amount_micros": 5, "reference": "pub-adj"}},
		{"GET", "/admin/v1/audit", nil},
		{"GET", "/admin/v1/cluster", nil},
		{"GET", "/admin/v1/rates", nil},
		{"PUT", "/admin/v1/rates", map[string]any{}},
		{"GET", "/admin/v1/fx-rates", nil},
		{"PUT", "/admin/v1/fx-rates", map[string]any{"eur": 1.1}},
		{"POST", "/admin/v1/cluster/join", map[string]any{"node_id": "x", "raft_addr": "127.0.0.1:1", "http_addr": "127.0.0.1:2"}},
	} {
		oaExpectErr(t, pubAdmin.Do(c.method, c.path, c.body), 404, "not_found")
	}
	if n := len(oaList(t, admin.Do("GET", "/admin/v1/orgs", nil).Expect(t, 200))); n != orgsBefore {
		t.Fatalf("%d orgs after refused creations, want %d", n, orgsBefore)
	}

	// The org API on the admin listener: 404, nothing charged.
	adminKey := s.Key(org.Key).At(s.AdminURL)
	oaExpectErr(t, adminKey.Do("POST", "/api/v1/billing/charges", chargeBody("on-admin", 1000)), 404, "not_found")
	oaExpectErr(t, adminKey.Do("POST", "/api/v1/billing/charges/batch", map[string]any{"charges": []any{chargeBody("on-admin-b", 1000)}}), 404, "not_found")
	oaExpectErr(t, adminKey.Do("GET", "/api/v1/billing/balance", nil), 404, "not_found")
	oaExpectErr(t, adminKey.Do("GET", "/api/v1/billing/transactions", nil), 404, "not_found")
	oaExpectErr(t, s.Anon().At(s.AdminURL).Do("GET", "/openapi.json", nil), 404, "not_found")
	bal := s.Key(org.Key).Do("GET", "/api/v1/billing/balance", nil).Expect(t, 200).Data()
	if num(t, bal, "balance_micros") != 1_000_000 {
		t.Fatalf("balance %v after charges refused on the admin listener, want 1000000", bal["balance_micros"])
	}
	// The org API works on the public listener.
	s.Key(org.Key).Do("POST", "/api/v1/billing/charges", chargeBody("on-public", 1000)).Expect(t, 201)

	// Health and metrics on both.
	for _, base := range []string{s.URL, s.AdminURL} {
		anon := s.Anon().At(base)
		anon.Do("GET", "/healthz", nil).Expect(t, 200)
		anon.Do("GET", "/readyz", nil).Expect(t, 200)
		anon.Do("GET", "/metrics", nil).Expect(t, 200)
	}
}

// TestAdminListenerCluster: nodes with admin listeners form a cluster
// (--join names the member's admin address), and an operator request sent
// to a follower's admin listener is forwarded to the leader, whose public
// listener serves it because a cluster member forwarded it.
func TestAdminListenerCluster(t *testing.T) {
	n1 := testserver.New(t)
	n1.ExtraArgs = []string{"--node-id", "node1"}
	n1.EnableAdminListener()
	n1.Start()
	n2 := testserver.New(t)
	n2.ExtraArgs = []string{"--node-id", "node2", "--join", n1.AdminURL}
	n2.EnableAdminListener()
	n2.Start()
	testserver.WaitFor(t, 30*time.Second, "node2 a voter, knowing the leader", func() bool {
		r, err := n2.Admin().TryDo("GET", "/admin/v1/cluster", nil)
		return err == nil && r.Status == 200 && len(r.Data()["nodes"].([]any)) == 2 && r.Data()["leader"] == "node1"
	})
	// The follower forwards once it has applied the leader's HTTP address.
	testserver.WaitFor(t, 30*time.Second, "node2 forwarding to the leader", func() bool {
		r, err := n2.Admin().TryDo("GET", "/admin/v1/orgs", nil)
		return err == nil && r.Status == 200
	})
	org := n2.MustOrg(t, "Forwarded admin", 1_000_000) // created and funded through the follower
	n2.Key(org.Key).Do("POST", "/api/v1/billing/charges", chargeBody("fa-1", 1000)).Expect(t, 201)
	bal := n1.Key(org.Key).Do("GET", "/api/v1/billing/balance", nil).Expect(t, 200).Data()
	if num(t, bal, "balance_micros") != 999_000 {
		t.Fatalf("balance on the leader %v, want 999000", bal["balance_micros"])
	}
	// The follower's public listener still refuses the operator API.
	oaExpectErr(t, n2.Admin().At(n2.URL).Do("GET", "/admin/v1/orgs", nil), 404, "not_found")
}
