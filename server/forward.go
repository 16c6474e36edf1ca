package server

import (
	"crypto/tls"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// Any node answers any request: a follower forwards requests that need the
// leader (every write, and reads, which must reflect every acknowledged
// write) to the leader's HTTP address, and relays its answer unchanged. A
// request is forwarded at most once: one that arrives forwarded at a node
// that is not the leader (leadership moved) is answered 503, safe to retry.

const (
	forwardedHeader = "X-Orbit-Forwarded-By"
	forwardTimeout  = 20 * time.Second
)

type forwarder struct {
	clients sync.Map    // leader http addr -> *fasthttp.HostClient
	tls     *tls.Config // nil: plain HTTP between nodes
}

func (f *forwarder) client(addr string) *fasthttp.HostClient {
	if c, ok := f.clients.Load(addr); ok {
		return c.(*fasthttp.HostClient)
	}
	c := &fasthttp.HostClient{
		Addr:                          addr,
		Name:                          "orbit-forwarder",
		MaxConns:                      1024,
		ReadTimeout:                   forwardTimeout,
		WriteTimeout:                  forwardTimeout,
		MaxIdleConnDuration:           30 * time.Second,
		MaxResponseBodySize:           64 << 20,
		DisableHeaderNamesNormalizing: false,
		IsTLS:                         f.tls != nil,
		TLSConfig:                     f.tls,
	}
	actual, _ := f.clients.LoadOrStore(addr, c)
	return actual.(*fasthttp.HostClient)
}

// forward relays the request to the leader; it reports false when there is
// no leader to forward to (the caller answers 503).
func (s *Server) forward(ctx *fasthttp.RequestCtx, rs *reqState) {
	rs.route = "forwarded"
	if len(ctx.Request.Header.Peek(forwardedHeader)) > 0 {
		respondError(ctx, rs, newError(errUnavailable, "leadership changed while forwarding; retry"))
		return
	}
	addr := s.store.LeaderHTTPAddr()
	if addr == "" {
		respondError(ctx, rs, newError(errUnavailable, "no leader; retry"))
		return
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	ctx.Request.CopyTo(req)
	req.Header.Set(forwardedHeader, s.store.NodeID())
	req.Header.Set("X-Request-Id", rs.requestID)
	req.SetHost(addr)
	if s.forwarder.tls != nil {
		req.URI().SetScheme("https")
	} else {
		req.URI().SetScheme("http")
	}
	if err := s.forwarder.client(addr).DoTimeout(req, resp, forwardTimeout); err != nil {
		s.log.Warn("forward to leader failed", "leader", addr, "err", err)
		respondError(ctx, rs, newError(errUnavailable, "the leader did not answer; retry with the same reference"))
		return
	}
	resp.CopyTo(&ctx.Response)
}

// needsLeader tells which requests a follower forwards: everything under
// the org and operator APIs and the development checkout, except the
// node-local cluster view.
func needsLeader(method, path string) bool {
	if path == "/admin/v1/cluster" && method == fasthttp.MethodGet {
		return false
	}
	return hasPrefix(path, "/api/") || hasPrefix(path, "/admin/") || hasPrefix(path, "/dev/")
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }
