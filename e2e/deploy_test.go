package e2e

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestGrafanaDashboardUsesServedMetrics keeps deploy/grafana-dashboard.json
// valid JSON whose queries only name metrics the server exposes.
func TestGrafanaDashboardUsesServedMetrics(t *testing.T) {
	raw, err := os.ReadFile("../deploy/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if len(dash.Panels) < 5 {
		t.Fatalf("%d panels", len(dash.Panels))
	}
	known := []string{"orbit_charges_total", "orbit_http_requests_total", "orbit_http_request_duration_seconds",
		"orbit_raft_commit_seconds", "orbit_raft_batch_commands", "orbit_applied_commands_total", "orbit_wallets",
		"process_resident_memory_bytes", "go_goroutines", "orbit_storage_wal_fsync_seconds"}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			ok := false
			for _, m := range known {
				ok = ok || strings.Contains(tg.Expr, m)
			}
			if !ok {
				t.Errorf("panel %q queries no metric the server exposes: %s", p.Title, tg.Expr)
			}
		}
	}
}
