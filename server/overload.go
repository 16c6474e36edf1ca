package server

import (
	"net"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Overload protection, in the order a request meets it:
//
//  1. Connections: the public listener refuses a connection beyond
//     Config.ConnsMax (503 unavailable) or beyond Config.ConnsPerIPMax from
//     one address (429 rate_limited) before reading a request, in the
//     error envelope with Retry-After (connlimit.go).
//  2. Slow clients: ReadTimeout bounds how long one request may take to
//     arrive (a client trickling its headers byte by byte holds only its own
//     connection, and only that long); WriteTimeout and IdleTimeout bound
//     the rest.
//  3. Per-IP rate: Config.RateLimitPerIP, a token bucket per client address
//     on the API routes (429 rate_limited with Retry-After).
//  4. Waiting writes: Config.WritesWaitingMax caps the write requests
//     waiting for the log on this node; the next one is answered 503
//     unavailable with Retry-After at once, so latency stays bounded instead
//     of growing with the queue. Nothing was proposed: a retry is safe.
//
// Health, readiness and metrics pass none of 3 and 4.

// Defaults of the HTTP timeouts (Config fields left zero).
const (
	readTimeoutDefault  = 30 * time.Second
	writeTimeoutDefault = 30 * time.Second
	idleTimeoutDefault  = 120 * time.Second
)

// listenerRole says which listener a request arrived on.
type listenerRole uint8

const (
	rolePublic listenerRole = iota // --http-addr
	roleAdmin                      // --admin-addr
)

// isHealthPath reports the routes no limit ever applies to: a load balancer
// or an orchestrator must see a live node as live while it sheds load.
func isHealthPath(path string) bool {
	return path == "/healthz" || path == "/readyz" || path == "/metrics"
}

// isIPLimitedPath reports the routes the per-IP limit covers: everything
// that reaches the ledger (org API, operator API, development checkout),
// except Stripe's webhook, whose few shared sender addresses must not be
// throttled (it is authenticated by its signature). Static pages
// (dashboard, /openapi.json) are not limited.
func isIPLimitedPath(path string) bool {
	if path == stripeWebhookPath {
		return false
	}
	return hasPrefix(path, "/api/") || hasPrefix(path, "/admin/") || hasPrefix(path, "/dev/")
}

// servedOn reports whether path is served on the listener. Without a
// separate admin listener everything is served on the public one. With it,
// the public listener does not serve /admin/ (except requests a cluster
// peer forwards to this leader: followers only know the leader's public
// address), and the admin listener serves /admin/ and the health routes only.
func (s *Server) servedOn(role listenerRole, ctx *fasthttp.RequestCtx, path string) bool {
	if !s.cfg.AdminListener {
		return true
	}
	isAdmin := hasPrefix(path, "/admin/")
	if role == roleAdmin {
		return isAdmin || isHealthPath(path)
	}
	return !isAdmin || s.forwardedByPeer(ctx)
}

// ipLimited answers 429 when the client address is over its rate; it
// reports whether it did. A request a cluster peer forwarded was counted
// against the client's own address on the node that received it.
func (s *Server) ipLimited(ctx *fasthttp.RequestCtx, rs *reqState, path string) bool {
	if s.ipLimiter == nil || !isIPLimitedPath(path) || s.forwardedByPeer(ctx) {
		return false
	}
	ok, wait := s.ipLimiter.allow(ctx.RemoteIP().String(), time.Now())
	if ok {
		return false
	}
	rs.route = "ip_rate_limited"
	respondError(ctx, rs, newError(errRateLimited, "too many requests from this address; retry after the Retry-After seconds"))
	ctx.Response.Header.Set("Retry-After", retryAfterSeconds(wait))
	return true
}

// writeGate counts the write requests waiting for the log on this node.
type writeGate struct {
	max     int64 // 0: no cap here (the store's own queue bound still holds)
	waiting atomic.Int64
}

// enter reports whether one more write may wait; a true answer must be
// paired with leave.
func (g *writeGate) enter() bool {
	if g.max <= 0 {
		return true
	}
	if g.waiting.Add(1) > g.max {
		g.waiting.Add(-1)
		return false
	}
	return true
}

// full reports whether a write would be refused now (a cheap early check;
// enter decides).
func (g *writeGate) full() bool { return g.max > 0 && g.waiting.Load() >= g.max }

// isWrite reports requests that may propose to the log: every method but
// GET and HEAD on the routes that reach the ledger. Stripe's webhook is
// not shed early (Stripe retries, but a paid top-up should not wait on
// charge traffic); it still meets the gate in submit.
func isWrite(ctx *fasthttp.RequestCtx, path string) bool {
	if ctx.IsGet() || ctx.IsHead() || path == stripeWebhookPath {
		return false
	}
	return hasPrefix(path, "/api/") || hasPrefix(path, "/admin/") || hasPrefix(path, "/dev/")
}

func (g *writeGate) leave() {
	if g.max > 0 {
		g.waiting.Add(-1)
	}
}

// shedKey marks a request refused by the write gate (a fasthttp user value,
// reset with the request).
const shedKey = "orbit.shed"

func markShed(ctx *fasthttp.RequestCtx) {
	if ctx != nil {
		ctx.SetUserValue(shedKey, true)
	}
}

func isShed(ctx *fasthttp.RequestCtx) bool { return ctx != nil && ctx.UserValue(shedKey) != nil }

// errOverloaded is the answer to a write over the cap.
func errOverloaded() *apiError {
	return newError(errUnavailable, "overloaded: too many writes waiting; retry after the Retry-After seconds with the same reference")
}

// peerSet is the cluster members' hosts, as named in their HTTP and Raft
// addresses, refreshed at most once per peerRefresh.
type peerSet struct {
	hosts map[string]bool
	at    time.Time
}

const peerRefresh = time.Second

// forwardedByPeer reports whether the request carries the forwarding
// header and comes from the address of a cluster member. The header alone
// proves nothing (any client can send it); the source address must be a
// member's. A member is known by the host in its --http-addr and
// --raft-addr, so those should be the addresses members reach each other
// from.
func (s *Server) forwardedByPeer(ctx *fasthttp.RequestCtx) bool {
	if len(ctx.Request.Header.Peek(forwardedHeader)) == 0 {
		return false
	}
	ps := s.peers.Load()
	if ps == nil || time.Since(ps.at) > peerRefresh {
		ps = &peerSet{hosts: map[string]bool{}, at: time.Now()}
		for _, n := range s.store.Cluster().Nodes {
			for _, addr := range []string{n.HTTPAddr, n.RaftAddr} {
				addPeerHost(ps.hosts, addr)
			}
		}
		s.peers.Store(ps)
	}
	return ps.hosts[ctx.RemoteIP().String()]
}

func addPeerHost(hosts map[string]bool, addr string) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return
	}
	if host == "localhost" {
		hosts["127.0.0.1"], hosts["::1"] = true, true
		return
	}
	if ip := net.ParseIP(host); ip != nil {
		hosts[ip.String()] = true
	}
}
