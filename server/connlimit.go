package server

import (
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// connLimitListener enforces Config.ConnsMax and Config.ConnsPerIPMax on
// the public listener. fasthttp has both limits built in, but it refuses
// with a plain-text body; a client of this API must get the error envelope
// on every refusal, so the limits live here and fasthttp's are off.
//
// A connection beyond a limit is answered once, before any request is
// read: 503 unavailable beyond ConnsMax, 429 rate_limited beyond
// ConnsPerIPMax, both with Retry-After. The refusal runs off the accept
// loop, bounded in time and in number (refusalsInFlightMax); beyond that a
// refused connection is closed without an answer, which costs the least
// when the listener is flooded.
type connLimitListener struct {
	net.Listener
	max, perIPMax int

	open atomic.Int64
	mu   sync.Mutex
	byIP map[netip.Addr]int // open connections per client address; only with perIPMax

	refusing atomic.Int64
}

const (
	// refusalsInFlightMax bounds the goroutines answering refused
	// connections at once.
	refusalsInFlightMax = 64
	// refusalTimeout bounds one refusal: the write of the answer and the
	// drain of what the client sent before it reads the answer.
	refusalTimeout = time.Second
)

// limitConns wraps ln with the connection limits; ln itself when both are 0.
func limitConns(ln net.Listener, maxConns, perIPMax int) net.Listener {
	if maxConns <= 0 && perIPMax <= 0 {
		return ln
	}
	l := &connLimitListener{Listener: ln, max: maxConns, perIPMax: perIPMax}
	if perIPMax > 0 {
		l.byIP = make(map[netip.Addr]int)
	}
	return l
}

// Accept returns the next connection within the limits, answering and
// closing the ones beyond them.
func (l *connLimitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if n := l.open.Add(1); l.max > 0 && n > int64(l.max) {
			l.open.Add(-1)
			l.refuse(c, newError(errUnavailable, "too many open connections to this server; retry shortly"))
			continue
		}
		ip, ok := l.takeIP(c)
		if !ok {
			l.open.Add(-1)
			l.refuse(c, newError(errRateLimited, "too many open connections from this address; retry shortly"))
			continue
		}
		return &limitedConn{Conn: c, l: l, ip: ip}, nil
	}
}

// takeIP counts c against its address's limit; false when it is full.
func (l *connLimitListener) takeIP(c net.Conn) (netip.Addr, bool) {
	if l.perIPMax <= 0 {
		return netip.Addr{}, true
	}
	ip := remoteIP(c)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byIP[ip] >= l.perIPMax {
		return netip.Addr{}, false
	}
	l.byIP[ip]++
	return ip, true
}

func (l *connLimitListener) release(ip netip.Addr) {
	l.open.Add(-1)
	if l.perIPMax <= 0 {
		return
	}
	l.mu.Lock()
	if n := l.byIP[ip] - 1; n > 0 {
		l.byIP[ip] = n
	} else {
		delete(l.byIP, ip)
	}
	l.mu.Unlock()
}

// refuse answers c with e in the envelope and closes it. Closing a socket
// with unread input makes the kernel send a reset, which can destroy the
// answer before the client reads it; so the refusal half-closes, then
// drains what the client sent, within refusalTimeout.
func (l *connLimitListener) refuse(c net.Conn, e *apiError) {
	if l.refusing.Add(1) > refusalsInFlightMax {
		l.refusing.Add(-1)
		_ = c.Close()
		return
	}
	go func() {
		defer l.refusing.Add(-1)
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(refusalTimeout))
		if _, err := c.Write(refusalResponse(e)); err != nil {
			return
		}
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		var sink [4096]byte
		for {
			if _, err := c.Read(sink[:]); err != nil {
				return
			}
		}
	}()
}

// refusalResponse is the whole HTTP/1.1 answer to a refused connection.
func refusalResponse(e *apiError) []byte {
	rs := &reqState{requestID: newRequestID()}
	body := errorBody(rs, e)
	status := e.status()
	b := make([]byte, 0, 256+len(body))
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, statusText(status)...)
	b = append(b, "\r\nContent-Type: application/json\r\nX-Request-Id: "...)
	b = append(b, rs.requestID...)
	b = append(b, "\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	return append(b, body...)
}

func statusText(status int) string {
	if status == 429 {
		return "Too Many Requests"
	}
	return "Service Unavailable"
}

// remoteIP is c's client address; the zero address when it has none (all
// such connections then share one count).
func remoteIP(c net.Conn) netip.Addr {
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// limitedConn gives its slot back when it is closed, once.
type limitedConn struct {
	net.Conn
	l      *connLimitListener
	ip     netip.Addr
	closed atomic.Bool
}

func (c *limitedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.l.release(c.ip)
	}
	return c.Conn.Close()
}
