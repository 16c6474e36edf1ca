package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/orbit/orbit/engine"
	"github.com/orbit/orbit/server/dashboard"
)

// Store is what the server needs of the replicated state. cmd/orbitd
// satisfies it with raftstore.
type Store interface {
	// Submit proposes commands as one unit and returns one result each. An
	// error means the outcome is unknown and a retry is safe (503).
	Submit(ctx context.Context, cmds []engine.Command) ([]engine.Result, error)
	Wallet(org string) (engine.WalletView, bool)
	OrgRecord(org string) (engine.OrgRecord, bool)
	Orgs() []engine.OrgRecord
	OrgCount() int // len(Orgs()) without copying them (the orbit_wallets gauge)
	KeyByHash(hash string) (*engine.APIKey, bool)
	Keys(org string) []engine.APIKey
	KeyByID(org, id string) (engine.APIKey, bool)
	Transactions(org string, q engine.TxQuery) ([]engine.EntryView, bool, error)
	Transaction(org, id string) (engine.EntryView, bool, error)
	Usage(org string, fromDay, toDay int64) ([]engine.UsageRow, error)
	Invoices(org string, limit int) ([]engine.InvoiceRecord, error)
	Invoice(org, id string) (engine.InvoiceRecord, bool, error)
	Topup(id string) (engine.TopupRecord, bool, error)
	// Estimate prices usage with the cards in force now (for admission).
	Estimate(org, channel string, u *engine.Usage) (int64, string, bool)
	// Rates is the org's effective rate card and its newest version;
	// DefaultRates the default card and its version.
	Rates(org string) (engine.RateCard, int64, bool)
	DefaultRates() (engine.RateCard, int64)
	// Hold returns a reservation.
	Hold(org, id string) (engine.Hold, bool, error)
	Audit() (orgsChecked int, mismatches []engine.AuditMismatch, err error)
	// Ready reports whether recovery is done and a leader is known.
	Ready() bool
	// Fault is the storage fault that stopped the node, or nil.
	Fault() error
	Cluster() ClusterInfo
	// IsLeader reports whether this node orders writes; LeaderHTTPAddr is
	// where a follower forwards requests ("" when unknown).
	IsLeader() bool
	LeaderHTTPAddr() string
	NodeID() string
	// ReadBarrier returns once a read beginning now reflects every write
	// acknowledged before it (an error means retry, 503).
	ReadBarrier() error
	// Join adds a node to the cluster; Remove takes one out (leader only).
	Join(id, raftAddr, httpAddr string) error
	Remove(id string) error
	// TopupByPaymentIntent finds the top-up a payment intent paid (Stripe
	// refund and dispute events name the payment, not the top-up).
	TopupByPaymentIntent(pi string) (engine.TopupRecord, bool, error)
	// FxRates is the committed FX table: USD per unit x 10^8.
	FxRates() map[string]int64
}

// ClusterInfo is the Raft state shown by GET /admin/v1/cluster.
type ClusterInfo struct {
	NodeID        string
	Leader        string
	Term          uint64
	CommitIndex   uint64
	AppliedIndex  uint64
	SnapshotIndex uint64
	Digest        string
	Nodes         []ClusterNode
}

// ClusterNode is one member of the cluster.
type ClusterNode struct {
	ID, RaftAddr, HTTPAddr, Suffrage, State string
}

// Config configures a Server.
type Config struct {
	Store      Store
	AdminToken string
	PublicURL  string
	Logger     *slog.Logger
	Metrics    *Metrics
	// StripeSecretKey selects the Stripe payment provider; empty keeps the
	// development provider. StripeWebhookSecret verifies webhook events.
	// StripeAPIBase replaces Stripe's API URL (stripe-mock in tests).
	// RateLimitPerSecond limits each org API key to this many requests per
	// second, in bursts of as many; 0 turns it off. The operator API is not
	// limited.
	RateLimitPerSecond  float64
	StripeSecretKey     string
	StripeWebhookSecret string
	StripeAPIBase       string

	// Overload protection (see overload.go); zero values turn each off.
	// RateLimitPerIP limits each client address to this many requests per
	// second on the API routes, in bursts of as many. WritesWaitingMax caps
	// the write requests waiting for the log; beyond it a write is 503 at
	// once. ConnsMax caps the open connections of the public listener,
	// ConnsPerIPMax those from one address (connlimit.go); the admin
	// listener has no cap, so operators reach a flooded node.
	RateLimitPerIP   float64
	WritesWaitingMax int
	ConnsMax         int
	ConnsPerIPMax    int
	// ReadTimeout bounds reading one request (headers and body),
	// WriteTimeout writing one answer, IdleTimeout a keep-alive wait; zero
	// picks 30 s, 30 s and 120 s.
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// AdminListener: the operator API is served only by ServeAdmin's
	// listener, which serves nothing else but health and metrics.
	AdminListener bool
	// ForwardTLS, when set, makes a follower forward to the leader over
	// HTTPS with this configuration (the cluster serves TLS).
	ForwardTLS *tls.Config
}

// Server serves the HTTP API.
type Server struct {
	cfg       Config
	store     Store
	log       *slog.Logger
	metrics   *Metrics
	payments  Payments
	http      *fasthttp.Server
	forwarder forwarder
	limiter   *rateLimiter // nil: no rate limit
	ipLimiter *rateLimiter // nil: no per-IP limit
	writes    writeGate
	peers     atomic.Pointer[peerSet]
	adminHTTP *fasthttp.Server // serves --admin-addr when AdminListener
}

// New returns a server over cfg.Store.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	s := &Server{cfg: cfg, store: cfg.Store, log: cfg.Logger, metrics: cfg.Metrics, payments: devPayments{publicURL: cfg.PublicURL}}
	s.limiter = newRateLimiter(cfg.RateLimitPerSecond)
	s.ipLimiter = newRateLimiter(cfg.RateLimitPerIP)
	s.writes.max = int64(cfg.WritesWaitingMax)
	s.forwarder.tls = cfg.ForwardTLS
	if cfg.StripeSecretKey != "" {
		s.payments = newStripePayments(cfg.StripeSecretKey, cfg.StripeAPIBase)
		if cfg.StripeWebhookSecret == "" {
			s.log.Warn("Stripe is configured without a webhook secret: no payment is credited until STRIPE_WEBHOOK_SECRET is set")
		}
	}
	cfg.Metrics.setWallets(func() float64 { return float64(cfg.Store.OrgCount()) })
	s.http = s.newHTTPServer(s.Handle)
	if cfg.AdminListener {
		s.adminHTTP = s.newHTTPServer(s.HandleAdmin)
	}
	return s
}

// newHTTPServer is one listener's fasthttp server with the limits of cfg.
func (s *Server) newHTTPServer(h fasthttp.RequestHandler) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:               h,
		Name:                  "orbit",
		NoDefaultServerHeader: true,
		// Read bodies up to twice the largest route limit, so a client that
		// sends a little too much gets the 413 envelope from the route
		// rather than a reset connection; beyond that fasthttp stops
		// reading (transportError still answers 413).
		MaxRequestBodySize: 2 * batchBodyBytesMax,
		ReadTimeout:        orDefault(s.cfg.ReadTimeout, readTimeoutDefault),
		WriteTimeout:       orDefault(s.cfg.WriteTimeout, writeTimeoutDefault),
		IdleTimeout:        orDefault(s.cfg.IdleTimeout, idleTimeoutDefault),
		ReadBufferSize:     16 << 10,
		ErrorHandler:       s.transportError,
		Logger:             fasthttpLogger{s.log},
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Serve serves on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	return s.http.Serve(limitConns(ln, s.cfg.ConnsMax, s.cfg.ConnsPerIPMax))
}

// ServeAdmin serves the operator API on ln until Shutdown (only with
// Config.AdminListener).
func (s *Server) ServeAdmin(ln net.Listener) error {
	if s.adminHTTP == nil {
		return errors.New("server: ServeAdmin without Config.AdminListener")
	}
	return s.adminHTTP.Serve(ln)
}

// Shutdown stops accepting connections and waits for in-flight requests.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.ShutdownWithContext(ctx)
	if s.adminHTTP != nil {
		err = errors.Join(err, s.adminHTTP.ShutdownWithContext(ctx))
	}
	return err
}

// transportError answers requests fasthttp could not parse, in the envelope.
func (s *Server) transportError(ctx *fasthttp.RequestCtx, err error) {
	rs := &reqState{requestID: requestID(ctx), start: time.Now(), route: "transport"}
	var e *apiError
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		e = newError(errPayloadTooLarge, "request body too large")
	} else {
		e = invalid("malformed HTTP request")
	}
	respondError(ctx, rs, e)
	ctx.SetConnectionClose()
}

type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Debug("fasthttp", "msg", strings.TrimSpace(format), "args", args)
}

// Handle is the fasthttp handler of the public listener.
func (s *Server) Handle(ctx *fasthttp.RequestCtx) { s.handle(ctx, rolePublic) }

// HandleAdmin is the fasthttp handler of the admin listener.
func (s *Server) HandleAdmin(ctx *fasthttp.RequestCtx) { s.handle(ctx, roleAdmin) }

func (s *Server) handle(ctx *fasthttp.RequestCtx, role listenerRole) {
	rs := reqState{requestID: requestID(ctx), start: time.Now()}
	defer s.accessLog(ctx, &rs)
	path := string(ctx.Path())
	if !s.servedOn(role, ctx, path) {
		rs.route = "unknown"
		respondError(ctx, &rs, newError(errNotFound, "no such route on this listener"))
		s.metrics.observe(rs.route, ctx.Response.StatusCode(), time.Since(rs.start))
		return
	}
	if s.ipLimited(ctx, &rs, path) {
		s.metrics.observe(rs.route, ctx.Response.StatusCode(), time.Since(rs.start))
		return
	}
	if s.writes.full() && isWrite(ctx, path) {
		// Shed before authenticating and decoding: under overload every
		// refusal must cost as little as possible. submit checks again.
		rs.route = "overloaded"
		markShed(ctx)
		respondError(ctx, &rs, errOverloaded())
		s.metrics.observe(rs.route, ctx.Response.StatusCode(), time.Since(rs.start))
		return
	}
	if needsLeader(string(ctx.Method()), path) {
		leader := s.store.IsLeader()
		// A follower forwards as soon as it knows where the leader is, even
		// while its own recovery is under way (a restarted former leader
		// waits for the leader's commit index, which hashicorp/raft may
		// send only after a backoff of seconds): the answer comes from the
		// leader's state, not from this node's. /readyz still waits. A node
		// stopped on a storage fault forwards nothing.
		canForward := !leader && s.store.Fault() == nil && s.store.LeaderHTTPAddr() != ""
		if !canForward && !s.store.Ready() {
			rs.route = "not_ready"
			respondError(ctx, &rs, newError(errUnavailable, "not ready: recovering or no leader; retry"))
			s.metrics.observe(rs.route, ctx.Response.StatusCode(), time.Since(rs.start))
			return
		}
		if !leader {
			s.forward(ctx, &rs)
			s.metrics.observe(rs.route, ctx.Response.StatusCode(), time.Since(rs.start))
			return
		}
		if ctx.IsGet() || ctx.IsHead() {
			if err := s.store.ReadBarrier(); err != nil {
				rs.route = "read_barrier"
				respondError(ctx, &rs, newError(errUnavailable, "leadership is changing; retry"))
				s.metrics.observe(rs.route, ctx.Response.StatusCode(), time.Since(rs.start))
				return
			}
		}
	}
	switch {
	case path == stripeWebhookPath: // authenticated by its signature, not a key
		s.stripeWebhook(ctx, &rs, nil, "")
	case strings.HasPrefix(path, "/api/v1/billing/"):
		s.orgAPI(ctx, &rs, strings.TrimPrefix(path, "/api/v1/billing/"))
	case strings.HasPrefix(path, "/admin/v1/"):
		s.adminAPI(ctx, &rs, strings.TrimPrefix(path, "/admin/v1/"))
	case isSystemRoute(path) && !ctx.IsGet() && !ctx.IsHead():
		// Read-only routes: GET (and HEAD, for probes), nothing else.
		rs.route = path
		methodNotAllowed(ctx, &rs, "GET, HEAD")
	case path == "/healthz":
		rs.route = "/healthz"
		respond(ctx, &rs, 200, func(w *jw) { w.objStart(); w.kStr("status", "ok"); w.objEnd() })
	case path == "/readyz":
		rs.route = "/readyz"
		if !s.store.Ready() {
			respondError(ctx, &rs, newError(errUnavailable, "not ready: recovering or no leader"))
		} else {
			respond(ctx, &rs, 200, func(w *jw) { w.objStart(); w.kStr("status", "ready"); w.objEnd() })
		}
	case path == "/metrics":
		rs.route = "/metrics"
		s.metrics.serve(ctx)
	case strings.HasPrefix(path, "/dev/"):
		s.devProvider(ctx, &rs, strings.TrimPrefix(path, "/dev/"))
	case path == "/openapi.json":
		rs.route = "/openapi.json"
		serveOpenAPI(ctx, &rs)
	case dashboard.Has(path): // "/" and "/dashboard/...": the billing dashboard
		rs.route = "/dashboard"
		if !ctx.IsGet() && !ctx.IsHead() {
			methodNotAllowed(ctx, &rs, "GET, HEAD")
			break
		}
		dashboard.Serve(ctx)
	default:
		rs.route = "unknown"
		respondError(ctx, &rs, newError(errNotFound, "no such route"))
	}
	s.metrics.observe(rs.route, ctx.Response.StatusCode(), time.Since(rs.start))
}

// isSystemRoute reports whether path is one of the read-only routes outside
// the APIs: health, readiness, metrics and the OpenAPI document.
func isSystemRoute(path string) bool {
	switch path {
	case "/healthz", "/readyz", "/metrics", "/openapi.json":
		return true
	}
	return false
}

// methodNotAllowed answers 405 method_not_allowed with the Allow header
// naming the methods the route takes.
func methodNotAllowed(ctx *fasthttp.RequestCtx, rs *reqState, allow string) {
	ctx.Response.Header.Set("Allow", allow)
	respondError(ctx, rs, newError(errMethodNotAllowed, "method not allowed on this route"))
}

// authKey authenticates an org API key from X-API-Key or Authorization: Bearer.
func (s *Server) authKey(ctx *fasthttp.RequestCtx) (*engine.APIKey, *apiError) {
	raw := ctx.Request.Header.Peek("X-API-Key")
	if len(raw) == 0 {
		raw = bearer(ctx)
	}
	if len(raw) == 0 {
		return nil, newError(errUnauthenticated, "missing API key: send X-API-Key or Authorization: Bearer")
	}
	if !strings.HasPrefix(string(raw), apiKeyPrefix) {
		return nil, newError(errUnauthenticated, "invalid API key")
	}
	k, ok := s.store.KeyByHash(hashKey(raw))
	if !ok || k.RevokedAtMs != 0 {
		return nil, newError(errUnauthenticated, "invalid or revoked API key")
	}
	return k, nil
}

func bearer(ctx *fasthttp.RequestCtx) []byte {
	h := ctx.Request.Header.Peek("Authorization")
	if len(h) > 7 && strings.EqualFold(string(h[:7]), "bearer ") {
		return []byte(strings.TrimSpace(string(h[7:])))
	}
	return nil
}

// authAdmin checks the admin token in constant time.
func (s *Server) authAdmin(ctx *fasthttp.RequestCtx) *apiError {
	tok := bearer(ctx)
	if len(tok) == 0 || s.cfg.AdminToken == "" || subtle.ConstantTimeCompare(tok, []byte(s.cfg.AdminToken)) != 1 {
		return newError(errUnauthenticated, "admin token required: Authorization: Bearer <admin token>")
	}
	return nil
}

// apiKeyPrefix starts every org API key.
const apiKeyPrefix = "dv_live_sk_"

// hashKey is how keys are stored: the hex SHA-256 of the whole key. Keys are
// 256-bit random secrets, so a fast hash is as strong as a slow one here.
func hashKey(raw []byte) string {
	sum := sha256.Sum256(raw)
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], sum[:])
	return string(out[:]) // one allocation, where EncodeToString makes two
}

// submit runs commands through the store and maps infrastructure failures to
// 503 (safe to retry with the same reference).
func (s *Server) submit(ctx *fasthttp.RequestCtx, cmds ...engine.Command) ([]engine.Result, *apiError) {
	if !s.writes.enter() {
		markShed(ctx)
		return nil, errOverloaded()
	}
	defer s.writes.leave()
	res, err := s.store.Submit(context.Background(), cmds)
	if err != nil {
		s.log.Warn("submit failed", "err", err)
		return nil, newError(errUnavailable, "the ledger is unavailable; retry with the same reference")
	}
	return res, nil
}

func (s *Server) submitOne(ctx *fasthttp.RequestCtx, cmd engine.Command) (engine.Result, *apiError) {
	res, err := s.submit(ctx, cmd)
	if err != nil {
		return engine.Result{}, err
	}
	return res[0], nil
}

// accessLog writes one structured line per request: request id, org,
// method, route pattern, status and latency. It never logs headers or
// bodies, so keys, tokens and card data cannot reach the log. Successes are
// logged at debug level (the charge path is too hot for an info line per
// request), client errors and shed writes at info (a warning per refused
// request would add work exactly when the node has none to spare), server
// errors at warn.
func (s *Server) accessLog(ctx *fasthttp.RequestCtx, rs *reqState) {
	status := ctx.Response.StatusCode()
	level := slog.LevelDebug
	switch {
	case status >= 500 && !isShed(ctx):
		level = slog.LevelWarn
	case status >= 400:
		level = slog.LevelInfo
	}
	if !s.log.Enabled(context.Background(), level) {
		return
	}
	s.log.LogAttrs(context.Background(), level, "request",
		slog.String("request_id", rs.requestID),
		slog.String("org", rs.orgID),
		slog.String("method", string(ctx.Method())),
		slog.String("route", rs.route),
		slog.Int("status", status),
		slog.Duration("latency", time.Since(rs.start)),
	)
}

// rateLimited answers 429 when the caller (an API key id) is over
// its rate; it reports whether it did.
func (s *Server) rateLimited(ctx *fasthttp.RequestCtx, rs *reqState, caller string) bool {
	if s.limiter == nil {
		return false
	}
	ok, wait := s.limiter.allow(caller, time.Now())
	if ok {
		return false
	}
	e := newError(errRateLimited, "rate limit exceeded; retry after the Retry-After seconds")
	respondError(ctx, rs, e)
	ctx.Response.Header.Set("Retry-After", retryAfterSeconds(wait))
	return true
}
