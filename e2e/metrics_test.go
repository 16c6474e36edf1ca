package e2e

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

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
		"orbit_raft_batch_commands", "orbit_raft_commit_seconds", "orbit_applied_commands_total", "orbit_wallets",
		"orbit_storage_disk_bytes", "orbit_storage_block_cache_bytes", "orbit_storage_block_cache_hits_total",
		"orbit_storage_block_cache_misses_total", "orbit_storage_memtable_bytes", "orbit_storage_l0_sublevels",
		"orbit_storage_compactions_total", "orbit_storage_flushes_total", "orbit_storage_wal_fsync_seconds"} {
		if !bytes.Contains(body.Bytes(), []byte("# TYPE "+family+" ")) {
			t.Errorf("metric family %s missing", family)
		}
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(body.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	// Both databases are there and hold data.
	for _, db := range []string{"raft-log", "state"} {
		if v := metricValue(fams["orbit_storage_disk_bytes"], "db", db); v <= 0 {
			t.Errorf("orbit_storage_disk_bytes{db=%q} = %v, want > 0", db, v)
		}
	}
	// The charge waited for a sync of the raft log, which the histogram
	// counts; its buckets are cumulative and end with every sync.
	if h := histogramOf(fams["orbit_storage_wal_fsync_seconds"], "db", "raft-log"); h == nil || h.GetSampleCount() == 0 {
		t.Errorf("orbit_storage_wal_fsync_seconds{db=\"raft-log\"} counts no sync after a charge: %v", h)
	} else {
		var prev uint64
		for _, b := range h.GetBucket() {
			if b.GetCumulativeCount() < prev || b.GetCumulativeCount() > h.GetSampleCount() {
				t.Errorf("fsync bucket le=%v holds %d after %d, of %d syncs", b.GetUpperBound(), b.GetCumulativeCount(), prev, h.GetSampleCount())
			}
			prev = b.GetCumulativeCount()
		}
		if n := len(h.GetBucket()); n < 10 || n > 20 {
			t.Errorf("fsync histogram has %d buckets, want about one per doubling from 100 us to 10 s", n)
		}
	}
	// orbit_wallets counts the orgs the operator API lists.
	orgs := len(oaList(t, s.Admin().Do("GET", "/admin/v1/orgs?limit=1000", nil)))
	if v := metricValue(fams["orbit_wallets"], "", ""); orgs == 0 || v != float64(orgs) {
		t.Errorf("orbit_wallets = %v, the operator API lists %d orgs", v, orgs)
	}
	problems, err := promlint.New(bytes.NewReader(body.Bytes())).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// metricValue is the value of the family's sample whose label has value (the
// first sample when label is empty); -1 when there is none.
func metricValue(f *dto.MetricFamily, label, value string) float64 {
	m := sampleOf(f, label, value)
	if m == nil {
		return -1
	}
	if g := m.GetGauge(); g != nil {
		return g.GetValue()
	}
	return m.GetCounter().GetValue()
}

// histogramOf is the histogram of the family's sample whose label has value.
func histogramOf(f *dto.MetricFamily, label, value string) *dto.Histogram {
	return sampleOf(f, label, value).GetHistogram()
}

// sampleOf is the family's sample whose label has value (the first sample
// when label is empty), or nil.
func sampleOf(f *dto.MetricFamily, label, value string) *dto.Metric {
	for _, m := range f.GetMetric() {
		if label == "" {
			return m
		}
		for _, l := range m.GetLabel() {
			if l.GetName() == label && l.GetValue() == value {
				return m
			}
		}
	}
	return nil
}
