package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestParseFlagsLimits: the overload and listener flags' defaults, and the
// combinations refused at start.
func TestParseFlagsLimits(t *testing.T) {
	for _, env := range []string{"ORBIT_HTTP_ADDR", "ORBIT_PUBLIC_URL", "ORBIT_RATE_LIMIT_IP", "ORBIT_MAX_PENDING_WRITES",
		"ORBIT_MAX_CONNS", "ORBIT_MAX_CONNS_PER_IP", "ORBIT_READ_TIMEOUT", "ORBIT_TLS_CERT", "ORBIT_TLS_KEY", "ORBIT_ADMIN_ADDR"} {
		t.Setenv(env, "") // restored after the test
		os.Unsetenv(env)
	}
	c, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.maxPendingWrites != 256 || c.maxConns != 10000 || c.maxConnsPerIP != 0 || c.readTimeout != 30*time.Second ||
		c.rateLimitIP != "0" || c.adminAddr != "" || c.publicURL != "http://127.0.0.1:8080" {
		t.Fatalf("defaults: %+v", c)
	}
	c, err = parseFlags([]string{"--tls-cert", "c.pem", "--tls-key", "k.pem", "--http-addr", "127.0.0.1:8443"})
	if err != nil || c.publicURL != "https://127.0.0.1:8443" {
		t.Fatalf("with TLS: public URL %q, %v", c.publicURL, err)
	}
	for _, ok := range []string{"127.0.0.1:6060", "[::1]:6060", "localhost:6060"} {
		if c, err := parseFlags([]string{"--debug-addr", ok}); err != nil || c.debugAddr != ok {
			t.Errorf("--debug-addr %s refused: %v", ok, err)
		}
	}
	t.Setenv("ORBIT_MAX_PENDING_WRITES", "64")
	t.Setenv("ORBIT_READ_TIMEOUT", "5s")
	t.Setenv("ORBIT_RAFT_SNAPSHOT_THRESHOLD", "500")
	t.Setenv("ORBIT_RAFT_TRAILING_LOGS", "100")
	if c, err = parseFlags(nil); err != nil || c.maxPendingWrites != 64 || c.readTimeout != 5*time.Second ||
		c.snapshotThreshold != 500 || c.trailingLogs != 100 {
		t.Fatalf("from the environment: %+v %v", c, err)
	}
	for _, bad := range [][]string{
		{"--tls-cert", "c.pem"},
		{"--tls-key", "k.pem"},
		{"--admin-addr", "127.0.0.1:8080"},
		{"--max-conns", "-1"},
		{"--max-pending-writes", "-5"},
		{"--read-timeout", "0s"},
		{"--rate-limit-ip", "lots"},
		{"--rate-limit-ip", "-1"},
		{"--debug-addr", "0.0.0.0:6060"},
		{"--debug-addr", ":6060"},
		{"--debug-addr", "10.1.2.3:6060"},
		{"--debug-addr", "6060"},
	} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// TestLoadTLS: missing or mismatched files fail at start, not at the first
// handshake; no flags means no TLS.
func TestLoadTLS(t *testing.T) {
	if s, err := loadTLS("", ""); s != nil || err != nil {
		t.Fatalf("no flags: %v %v", s, err)
	}
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadTLS(junk, junk); err == nil {
		t.Fatalf("junk PEM accepted")
	}
	if _, err := loadTLS(filepath.Join(dir, "missing.pem"), junk); err == nil {
		t.Fatalf("a missing certificate accepted")
	}
	if _, err := loadTLS(junk, ""); err == nil {
		t.Fatalf("a certificate without a key accepted")
	}
}
