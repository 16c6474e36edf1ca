package testserver

import (
	"net"
	"testing"
	"time"
)

// A port taken between FreePort and orbitd's bind does not fail the test:
// before the first start, Start moves to fresh ports; on a restart, it
// waits for the same ones to free up.
func TestStartSurvivesATakenPort(t *testing.T) {
	s := New(t)
	taken := hold(t, s.HTTPAddr)
	defer taken.Close()
	first := s.HTTPAddr
	s.Start()
	if s.HTTPAddr == first {
		t.Fatalf("started on %s, which another listener holds", first)
	}
	if resp := s.Admin().Do("GET", "/readyz", nil); resp.Status != 200 {
		t.Fatalf("/readyz on the fresh port = %d", resp.Status)
	}

	// A restart keeps its ports (the test knows them): it waits until the
	// port is free again.
	s.Stop()
	again := hold(t, s.HTTPAddr)
	go func() {
		time.Sleep(500 * time.Millisecond)
		again.Close()
	}()
	addr := s.HTTPAddr
	s.Start()
	if s.HTTPAddr != addr {
		t.Fatalf("the restart moved from %s to %s", addr, s.HTTPAddr)
	}
}

// hold listens on addr and closes every connection it accepts, so that a
// readiness probe sent there fails at once instead of waiting in the
// listener's backlog.
func hold(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln
}
