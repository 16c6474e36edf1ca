package server

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// acceptInto accepts on ln until it closes, sending each connection on out.
func acceptInto(ln net.Listener, out chan<- net.Conn) {
	for {
		c, err := ln.Accept()
		if err != nil {
			close(out)
			return
		}
		out <- c
	}
}

func dialLoopback(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// readRefusal reads a refused connection's answer and checks its envelope.
func readRefusal(t *testing.T, c net.Conn, status int, code string) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the refusal: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		Error struct{ Code, Message string }
		Meta  struct {
			RequestID string `json:"request_id"`
			Timestamp string
		}
	}
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("refusal body %q: %v", body, err)
	}
	if resp.StatusCode != status || env.Error.Code != code || env.Error.Message == "" ||
		env.Meta.RequestID == "" || env.Meta.Timestamp == "" {
		t.Fatalf("refusal %d %s, want %d with code %q", resp.StatusCode, body, status, code)
	}
	if resp.Header.Get("Retry-After") != "1" || resp.Header.Get("X-Request-Id") != env.Meta.RequestID ||
		!resp.Close {
		t.Fatalf("refusal headers %v: want Retry-After 1, the request id, Connection: close", resp.Header)
	}
}

func mustAccept(t *testing.T, accepted <-chan net.Conn) net.Conn {
	t.Helper()
	select {
	case c := <-accepted:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted")
		return nil
	}
}

func newLimitedListener(t *testing.T, maxConns, perIP int) (net.Listener, <-chan net.Conn) {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := limitConns(raw, maxConns, perIP)
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 16)
	go acceptInto(ln, accepted)
	return ln, accepted
}

func TestConnLimitRefusesBeyondMaxInTheEnvelope(t *testing.T) {
	ln, accepted := newLimitedListener(t, 2, 0)
	addr := ln.Addr().String()
	dialLoopback(t, addr)
	dialLoopback(t, addr)
	first := mustAccept(t, accepted)
	mustAccept(t, accepted)

	// The refused client has already sent a request with a body it never
	// gets to deliver: the answer must still arrive, not a reset.
	c := dialLoopback(t, addr)
	if _, err := io.WriteString(c, "POST /api/v1/billing/charges HTTP/1.1\r\nHost: x\r\nContent-Length: 65536\r\n\r\n"+
		strings.Repeat("x", 65536)); err != nil {
		t.Fatal(err)
	}
	readRefusal(t, c, 503, errUnavailable)

	first.Close()
	first.Close() // a second Close must not give back a second slot
	dialLoopback(t, addr)
	mustAccept(t, accepted)
	readRefusal(t, dialLoopback(t, addr), 503, errUnavailable)
	select {
	case c := <-accepted:
		t.Fatalf("accepted %v beyond the limit", c.RemoteAddr())
	default:
	}
}

func TestConnLimitPerAddress(t *testing.T) {
	ln, accepted := newLimitedListener(t, 0, 1)
	addr := ln.Addr().String()
	dialLoopback(t, addr)
	held := mustAccept(t, accepted)
	readRefusal(t, dialLoopback(t, addr), 429, errRateLimited)
	held.Close()
	dialLoopback(t, addr)
	mustAccept(t, accepted)
	if n := ln.(*connLimitListener).open.Load(); n != 1 {
		t.Fatalf("%d connections counted open, want 1", n)
	}
}

func TestConnLimitOffIsThePlainListener(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if ln := limitConns(raw, 0, 0); ln != raw {
		t.Fatalf("limitConns(0, 0) wrapped the listener: %T", ln)
	}
}
