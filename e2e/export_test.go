package e2e

import (
	"encoding/csv"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/orbit/orbit/internal/testserver"
)

func TestTransactionsExportCSV(t *testing.T) {
	s := testserver.Start(t)
	org := s.MustOrg(t, "Export", 1_000_000)
	c := s.Key(org.Key)
	for i := 0; i < 5; i++ {
		c.Do("POST", "/api/v1/billing/charges", map[string]any{"reference": fmt.Sprint("e", i), "channel": "sms", "amount_micros": 4200,
			"metadata": map[string]any{"note": `has, comma and "quote"`, "formula": "=SUM(A1)"}}).Expect(t, 201)
	}
	r := c.Do("GET", "/api/v1/billing/transactions/export", nil).Expect(t, 200)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Fatalf("content type %q", ct)
	}
	rows, err := csv.NewReader(strings.NewReader(string(r.Body))).ReadAll()
	if err != nil {
		t.Fatalf("not CSV: %v\n%s", err, r.Body)
	}
	if len(rows) != 7 || rows[0][0] != "id" || rows[0][3] != "amount_micros" {
		t.Fatalf("%d rows, header %v", len(rows), rows[0])
	}
	if rows[1][2] != "spend" || rows[1][3] != "-4200" || rows[1][7] != "sms" || rows[6][2] != "adjustment" {
		t.Fatalf("rows: %v", rows)
	}
	if !strings.Contains(rows[1][9], `has, comma and \"quote\"`) || !strings.Contains(rows[1][9], `'=SUM`) && !strings.Contains(rows[1][9], `"=SUM`) {
		t.Fatalf("metadata column: %q", rows[1][9])
	}
	// A time window: nothing before the org existed, everything up to now.
	future := url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	r = c.Do("GET", "/api/v1/billing/transactions/export?to="+future+"&type=spend", nil).Expect(t, 200)
	if n := strings.Count(string(r.Body), "\n"); n != 6 {
		t.Fatalf("%d lines for spends, want header + 5", n)
	}
	if r := c.Do("GET", "/api/v1/billing/transactions/export?from=yesterday", nil); r.Status != 400 || r.ErrorCode() != "invalid_request" {
		t.Fatalf("bad from: %d %s", r.Status, r.Body)
	}
	if r := s.Key(s.MustKey(t, org.ID, "charge")).Do("GET", "/api/v1/billing/transactions/export", nil); r.Status != 403 {
		t.Fatalf("charge key exporting: %d", r.Status)
	}
}

func TestUsageDailySeries(t *testing.T) {
	s := testserver.Start(t)
	org := s.MustOrg(t, "Series", 1_000_000)
	c := s.Key(org.Key)
	for i := 0; i < 3; i++ {
		c.Do("POST", "/api/v1/billing/charges", chargeBody(fmt.Sprint("u", i), 4200)).Expect(t, 201)
	}
	d := c.Do("GET", "/api/v1/billing/usage?days=7&granularity=day", nil).Expect(t, 200).Data()
	chs := d["channels"].([]any)
	if len(chs) != 1 {
		t.Fatalf("channels: %v", chs)
	}
	pts := chs[0].(map[string]any)["points"].([]any)
	if len(pts) != 7 {
		t.Fatalf("%d points, want 7", len(pts))
	}
	last := pts[6].(map[string]any)
	if last["date"] != time.Now().UTC().Format("2006-01-02") || num(t, last, "total_messages") != 3 || num(t, last, "total_cost_micros") != 12_600 {
		t.Fatalf("today's point: %v", last)
	}
	if num(t, pts[0].(map[string]any), "total_messages") != 0 {
		t.Fatalf("first day: %v", pts[0])
	}
	if r := c.Do("GET", "/api/v1/billing/usage?granularity=hour", nil); r.Status != 400 {
		t.Fatalf("granularity=hour: %d", r.Status)
	}
}

// oaExerciseExports covers the export and series routes (TestEveryRoute).
func oaExerciseExports(t *testing.T, s *testserver.Server) {
	org := s.MustOrg(t, "ExportRoutes", 1_000)
	c := s.Key(org.Key)
	charge := s.Key(s.MustKey(t, org.ID, "charge"))
	for _, path := range []string{"/api/v1/billing/transactions/export", "/api/v1/billing/usage"} {
		c.Do("GET", path, nil).Expect(t, 200)
		if r := c.Do("GET", path+"?days=0&from=x", nil); r.Status != 400 {
			t.Errorf("%s with bad parameters: %d", path, r.Status)
		}
		if r := s.Anon().Do("GET", path, nil); r.Status != 401 {
			t.Errorf("%s without a key: %d", path, r.Status)
		}
		if r := charge.Do("GET", path, nil); r.Status != 403 {
			t.Errorf("%s with a charge key: %d", path, r.Status)
		}
	}
}
