package e2e

import (
	"testing"

	"github.com/orbit/orbit/internal/testserver"
)

// oaExerciseDashboard covers the dashboard's routes (TestEveryRoute).
func oaExerciseDashboard(t *testing.T, s *testserver.Server) {
	anon := s.Anon()
	if r := anon.Do("GET", "/", nil); r.Status != 200 {
		t.Errorf("GET /: %d", r.Status)
	}
	r := anon.Do("GET", "/dashboard/app.js", nil)
	if r.Status != 200 || r.Header.Get("ETag") == "" {
		t.Errorf("GET /dashboard/app.js: %d etag %q", r.Status, r.Header.Get("ETag"))
	}
	if r2 := anon.With("If-None-Match", r.Header.Get("ETag")).Do("GET", "/dashboard/app.js", nil); r2.Status != 304 {
		t.Errorf("conditional GET: %d", r2.Status)
	}
	if r := anon.Do("GET", "/dashboard/nope.txt", nil); r.Status != 404 {
		t.Errorf("unknown dashboard file: %d", r.Status)
	}
}
