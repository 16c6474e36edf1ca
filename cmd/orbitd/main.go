// Command orbitd is the Orbit billing server: flags and wiring only.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/orbit/orbit/internal/gctune"
	"github.com/orbit/orbit/raftstore"
	"github.com/orbit/orbit/server"
)

type config struct {
	dataDir, httpAddr, adminToken, nodeID, raftAddr, join, publicURL string
	stripeSecretKey, stripeWebhookSecret, stripeAPIBase              string
	logLevel                                                         string
	snapshotThreshold, trailingLogs                                  uint64
	debugAddr                                                        string
	rateLimit                                                        string
	rateLimitIP                                                      string
	maxPendingWrites, maxConns, maxConnsPerIP                        int
	readTimeout                                                      time.Duration
	tlsCert, tlsKey, adminAddr                                       string
}

// flagEnvInt is flagEnv for an integer flag; an environment value that is
// not an integer is reported by Parse like a bad flag.
func flagEnvInt(fs *flag.FlagSet, dst *int, name, env string, def int, usage string) {
	if v, ok := os.LookupEnv(env); ok {
		if n, err := strconv.Atoi(v); err == nil {
			def = n
		} else {
			fmt.Fprintf(os.Stderr, "orbitd: %s=%q is not an integer; using %d\n", env, v, def)
		}
	}
	fs.IntVar(dst, name, def, usage+" (env "+env+")")
}

// flagEnvUint64 is flagEnvInt for an unsigned flag.
func flagEnvUint64(fs *flag.FlagSet, dst *uint64, name, env string, def uint64, usage string) {
	if v, ok := os.LookupEnv(env); ok {
		if n, err := strconv.ParseUint(v, 10, 64); err == nil {
			def = n
		} else {
			fmt.Fprintf(os.Stderr, "orbitd: %s=%q is not an unsigned integer; using %d\n", env, v, def)
		}
	}
	fs.Uint64Var(dst, name, def, usage+" (env "+env+")")
}

// flagEnv defines a string flag whose default comes from an environment
// variable when set.
func flagEnv(fs *flag.FlagSet, dst *string, name, env, def, usage string) {
	if v, ok := os.LookupEnv(env); ok {
		def = v
	}
	fs.StringVar(dst, name, def, usage+" (env "+env+")")
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("orbitd", flag.ContinueOnError)
	flagEnv(fs, &c.dataDir, "data-dir", "ORBIT_DATA_DIR", "./data", "data directory")
	flagEnv(fs, &c.httpAddr, "http-addr", "ORBIT_HTTP_ADDR", "127.0.0.1:8080", "HTTP listen address")
	flagEnv(fs, &c.adminToken, "admin-token", "ORBIT_ADMIN_TOKEN", "", "operator API token (generated on first start when empty)")
	flagEnv(fs, &c.nodeID, "node-id", "ORBIT_NODE_ID", "node1", "this node's id in the cluster")
	flagEnv(fs, &c.raftAddr, "raft-addr", "ORBIT_RAFT_ADDR", "127.0.0.1:7000", "Raft listen address")
	flagEnv(fs, &c.join, "join", "ORBIT_JOIN", "", "HTTP address of a cluster member to join (host:port or http://host:port)")
	flagEnv(fs, &c.publicURL, "public-url", "ORBIT_PUBLIC_URL", "", "public base URL (default http://<http-addr>)")
	flagEnv(fs, &c.stripeSecretKey, "stripe-secret-key", "STRIPE_SECRET_KEY", "", "Stripe secret key (empty: development payment provider)")
	flagEnv(fs, &c.stripeWebhookSecret, "stripe-webhook-secret", "STRIPE_WEBHOOK_SECRET", "", "Stripe webhook signing secret")
	flagEnv(fs, &c.stripeAPIBase, "stripe-api-base", "STRIPE_API_BASE", "", "Stripe API base URL (stripe-mock in tests)")
	flagEnv(fs, &c.logLevel, "log-level", "ORBIT_LOG_LEVEL", "info", "log level: debug, info, warn, error")
	flagEnv(fs, &c.rateLimit, "rate-limit", "ORBIT_RATE_LIMIT", "0", "requests per second allowed per org API key, in bursts of as many; 0: off")
	flagEnv(fs, &c.debugAddr, "debug-addr", "ORBIT_DEBUG_ADDR", "", "serve Go pprof profiles on this loopback address (off when empty)")
	flagEnv(fs, &c.rateLimitIP, "rate-limit-ip", "ORBIT_RATE_LIMIT_IP", "0", "requests per second allowed per client IP on the API routes, in bursts of as many; 0: off")
	flagEnvInt(fs, &c.maxPendingWrites, "max-pending-writes", "ORBIT_MAX_PENDING_WRITES", 256, "write requests that may wait for the log on this node; beyond it 503 at once (0: only the log's own bound)")
	flagEnvInt(fs, &c.maxConns, "max-conns", "ORBIT_MAX_CONNS", 10000, "open HTTP connections served at once on the public listener; beyond it a new connection is refused with 503")
	flagEnvInt(fs, &c.maxConnsPerIP, "max-conns-per-ip", "ORBIT_MAX_CONNS_PER_IP", 0, "open HTTP connections per client IP on the public listener; beyond it 429 (0: off)")
	readTimeout := 30 * time.Second
	if v, ok := os.LookupEnv("ORBIT_READ_TIMEOUT"); ok {
		if d, err := time.ParseDuration(v); err == nil {
			readTimeout = d
		} else {
			fmt.Fprintf(os.Stderr, "orbitd: ORBIT_READ_TIMEOUT=%q is not a duration; using %s\n", v, readTimeout)
		}
	}
	fs.DurationVar(&c.readTimeout, "read-timeout", readTimeout, "time a client has to send one whole request (headers and body) (env ORBIT_READ_TIMEOUT)")
	flagEnv(fs, &c.tlsCert, "tls-cert", "ORBIT_TLS_CERT", "", "PEM certificate chain: serve HTTPS (with --tls-key)")
	flagEnv(fs, &c.tlsKey, "tls-key", "ORBIT_TLS_KEY", "", "PEM private key of --tls-cert")
	flagEnv(fs, &c.adminAddr, "admin-addr", "ORBIT_ADMIN_ADDR", "", "serve the operator API (/admin/v1) only on this address (empty: on --http-addr)")
	flagEnvUint64(fs, &c.snapshotThreshold, "raft-snapshot-threshold", "ORBIT_RAFT_SNAPSHOT_THRESHOLD", 0, "log entries between raft snapshots (0: default; tests use small values)")
	flagEnvUint64(fs, &c.trailingLogs, "raft-trailing-logs", "ORBIT_RAFT_TRAILING_LOGS", 0, "log entries kept after a snapshot (0: default)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if r, err := strconv.ParseFloat(c.rateLimit, 64); err != nil || r < 0 || r > 1e9 {
		fmt.Fprintln(os.Stderr, "orbitd: --rate-limit must be a number of requests per second (0: off)")
		return c, errors.New("bad --rate-limit")
	}
	if r, err := strconv.ParseFloat(c.rateLimitIP, 64); err != nil || r < 0 || r > 1e9 {
		fmt.Fprintln(os.Stderr, "orbitd: --rate-limit-ip must be a number of requests per second (0: off)")
		return c, errors.New("bad --rate-limit-ip")
	}
	if c.maxPendingWrites < 0 || c.maxConns < 0 || c.maxConnsPerIP < 0 || c.readTimeout <= 0 {
		fmt.Fprintln(os.Stderr, "orbitd: --max-pending-writes, --max-conns and --max-conns-per-ip must be >= 0, --read-timeout > 0")
		return c, errors.New("bad limits")
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		fmt.Fprintln(os.Stderr, "orbitd: --tls-cert and --tls-key go together")
		return c, errors.New("bad TLS flags")
	}
	if c.adminAddr != "" && c.adminAddr == c.httpAddr {
		fmt.Fprintln(os.Stderr, "orbitd: --admin-addr must differ from --http-addr")
		return c, errors.New("bad --admin-addr")
	}
	if c.debugAddr != "" && !loopbackAddr(c.debugAddr) {
		// Profiles and traces show request data and cost CPU on demand:
		// never on an address other hosts reach.
		fmt.Fprintln(os.Stderr, "orbitd: --debug-addr must be a loopback host:port (127.0.0.1, ::1 or localhost)")
		return c, errors.New("bad --debug-addr")
	}
	if c.publicURL == "" {
		scheme := "http://"
		if c.tlsCert != "" {
			scheme = "https://"
		}
		c.publicURL = scheme + c.httpAddr
	}
	c.publicURL = strings.TrimRight(c.publicURL, "/")
	return c, nil
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		os.Exit(2)
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "orbitd:", err)
		os.Exit(1)
	}
}

func run(cfg config) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	procs := oversubscribeProcs()
	gcPercent, memLimit := gctune.Apply()
	logger.Debug("runtime", "gomaxprocs", procs, "cpus", runtime.NumCPU(), "gogc", gcPercent, "gomemlimit", memLimit)
	if err := os.MkdirAll(cfg.dataDir, 0o700); err != nil {
		return err
	}
	token, tokenPath, err := adminToken(cfg)
	if err != nil {
		return err
	}

	if cfg.debugAddr != "" {
		startDebug(cfg.debugAddr, logger)
	}
	tlsCfg, err := loadTLS(cfg.tlsCert, cfg.tlsKey)
	if err != nil {
		return err
	}
	metrics := server.NewMetrics()
	node, err := raftstore.Open(raftstore.Config{
		NodeID:            cfg.nodeID,
		RaftAddr:          cfg.raftAddr,
		HTTPAddr:          cfg.httpAddr,
		DataDir:           cfg.dataDir,
		Bootstrap:         cfg.join == "",
		SnapshotThreshold: cfg.snapshotThreshold,
		TrailingLogs:      cfg.trailingLogs,
		Logger:            logger,
		OnBatch:           metrics.ObserveBatch,
		OnCommit:          metrics.ObserveCommit,
		OnApply:           metrics.ObserveApply,
	})
	if err != nil {
		return err
	}
	metrics.SetStorage(node.StorageStats)
	ln, err := listen(cfg.httpAddr, tlsCfg)
	if err != nil {
		node.Close()
		return err
	}
	var adminLn net.Listener
	if cfg.adminAddr != "" {
		if adminLn, err = listen(cfg.adminAddr, tlsCfg); err != nil {
			ln.Close()
			node.Close()
			return err
		}
	}
	srv := server.New(server.Config{
		Store:      storeAdapter{node},
		AdminToken: token,
		PublicURL:  cfg.publicURL,
		Logger:     logger,
		Metrics:    metrics,
		// Stripe when a secret key is set, else the development provider.
		StripeSecretKey:     cfg.stripeSecretKey,
		StripeWebhookSecret: cfg.stripeWebhookSecret,
		StripeAPIBase:       cfg.stripeAPIBase,
		RateLimitPerSecond:  rateLimit(cfg.rateLimit),
		RateLimitPerIP:      rateLimit(cfg.rateLimitIP),
		WritesWaitingMax:    cfg.maxPendingWrites,
		ConnsMax:            cfg.maxConns,
		ConnsPerIPMax:       cfg.maxConnsPerIP,
		ReadTimeout:         cfg.readTimeout,
		AdminListener:       adminLn != nil,
		ForwardTLS:          tlsCfg.clientConfig(),
	})
	serveErr := make(chan error, 2)
	go func() { serveErr <- srv.Serve(ln) }()
	if adminLn != nil {
		go func() { serveErr <- srv.ServeAdmin(adminLn) }()
	}

	if cfg.join != "" && !node.HasState() {
		if err := joinCluster(cfg.join, token, cfg.nodeID, cfg.raftAddr, cfg.httpAddr, tlsCfg, logger); err != nil {
			srv.Shutdown(context.Background())
			node.Close()
			return err
		}
	}
	waitCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	if err := node.WaitLeader(waitCtx); err != nil {
		logger.Warn("no leader yet; serving 503 until there is one", "err", err)
	}
	cancel()
	listen := "http://" + cfg.httpAddr
	if cfg.tlsCert != "" {
		listen = "https://" + cfg.httpAddr
	}
	if cfg.publicURL != listen {
		listen += ", public URL " + cfg.publicURL
	}
	fmt.Fprintf(os.Stderr, "orbitd: serving on %s (node %s, raft %s, data %s)\n", listen, cfg.nodeID, cfg.raftAddr, cfg.dataDir)
	if adminLn != nil {
		fmt.Fprintf(os.Stderr, "orbitd: operator API only on %s://%s\n", tlsCfg.scheme(), cfg.adminAddr)
	}
	if tokenPath != "" {
		fmt.Fprintf(os.Stderr, "orbitd: admin token is in %s\n", tokenPath)
	}
	fmt.Fprintf(os.Stderr, "orbitd: try `bin/orbitctl demo` for an org with funds and a ready-to-paste curl\n")

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	select {
	case sig := <-sigs:
		logger.Info("shutting down", "signal", sig.String())
	case err := <-serveErr:
		logger.Error("http server stopped", "err", err)
	case <-node.Faulted():
		// A failed or full disk: the node already refuses writes (503).
		// Stop and exit non-zero so the supervisor restarts the process,
		// which replays the raft log once the disk is healthy.
		logger.Error("storage fault: stopping; restart once the disk is healthy", "err", node.Fault())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		logger.Warn("http drain incomplete", "err", err)
	}
	err = closeWithin(node, nodeCloseMax)
	if fault := node.Fault(); fault != nil {
		return fault
	}
	return err
}

// nodeCloseMax bounds a clean stop. hashicorp/raft's Shutdown can wait for a
// replication pipeline whose peer vanished behind a silent partition; past
// this the process exits without it, which is as safe as kill -9: every
// acknowledged write is in the fsynced raft log, and the next start replays
// it.
const nodeCloseMax = 30 * time.Second

func closeWithin(node *raftstore.Node, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- node.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		return fmt.Errorf("the node did not stop within %v; exiting without a clean stop (the raft log is durable and is replayed at the next start)", d)
	}
}

// adminToken returns the configured token, or the one in the data
// directory, creating it (owner-only, one line) on first start.
func adminToken(cfg config) (token, path string, err error) {
	if cfg.adminToken != "" {
		return cfg.adminToken, "", nil
	}
	path = filepath.Join(cfg.dataDir, "admin-token")
	if b, err := os.ReadFile(path); err == nil {
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, path, nil
		}
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", "", err
	}
	token = "orbit_admin_" + hex.EncodeToString(raw[:])
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return "", "", fmt.Errorf("write admin token: %w", err)
	}
	return token, path, nil
}

// rateLimit parses --rate-limit (checked in parseFlags).
func rateLimit(s string) float64 {
	r, _ := strconv.ParseFloat(s, 64)
	return r
}
