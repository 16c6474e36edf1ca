package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/orbit/orbit/internal/gctune"
)

// Scenarios, in the order `orbit-bench --scenario all` runs them.
var Scenarios = []string{"engine", "durable", "http", "http-batch", "reservations", "hot-org", "many-orgs", "cluster"}

// Limits of the harness: every loop is bounded in count and in time.
const (
	durationMax       = time.Hour
	connectionsMax    = 4096
	pipelineMax       = 64
	orgsMax           = 1_000_000
	batchMax          = 1000 // /charges/batch takes up to 1,000 charges
	engineBatchMax    = 65536
	requestTimeout    = 10 * time.Second
	resolveAttempts   = 10
	setupParallelMax  = 512
	defaultMaxRequest = 100_000_000
	// amountMicros is what one charge costs; holdMicros what a reservation
	// holds before its commit charges amountMicros.
	amountMicros = 4200
	holdMicros   = 10_000
	// fundingMicros funds each org ($1M: 238 million charges of 4,200);
	// the hot org gets the most an adjustment allows.
	fundingMicros    = 1_000_000_000_000
	hotFundingMicros = 1_000_000_000_000_000
)

// Config is one scenario's run.
type Config struct {
	Scenario string
	// Duration of the measured phase; MaxRequests bounds the requests sent
	// in it (for the engine: batches applied).
	Duration    time.Duration
	MaxRequests int64
	// Connections is the HTTP connections (in-process: the concurrent
	// submitters); Pipeline the requests in flight on each connection
	// (1: fasthttp.HostClient; more: fasthttp.PipelineClient).
	Connections int
	Pipeline    int
	// Orgs to spread the load over (0: the scenario's default); Batch the
	// charges per request or per Apply batch (0: the scenario's default).
	Orgs  int
	Batch int
	// Rate is the target requests/s in open loop (0: closed loop).
	Rate float64
	// Nodes the cluster scenario starts (0: 3).
	Nodes int

	// URL of a running orbitd (http scenarios); empty: start OrbitdBin.
	URL        string
	OrbitdBin  string
	AdminToken string
	// ServerPID is the process of the orbitd at URL, for its CPU and RSS.
	ServerPID int
	// SetupParallel is how many admin requests run at once during setup.
	SetupParallel int
	// KeepData keeps the temp data directories of servers the harness
	// started.
	KeepData bool
	// Log receives progress lines (nil: discarded).
	Log io.Writer
}

// ParseScenario splits "name" or "name=N" (N: the batch size for that
// scenario).
func ParseScenario(spec string) (name string, batch int, err error) {
	name, n, ok := strings.Cut(strings.TrimSpace(spec), "=")
	if ok {
		batch, err = strconv.Atoi(n)
		if err != nil || batch < 1 {
			return "", 0, fmt.Errorf("scenario %q: batch must be a positive integer", spec)
		}
	}
	for _, s := range Scenarios {
		if s == name {
			return name, batch, nil
		}
	}
	return "", 0, fmt.Errorf("unknown scenario %q (one of %s)", name, strings.Join(Scenarios, ", "))
}

// withDefaults checks c and fills the scenario's defaults.
func (c Config) withDefaults() (Config, error) {
	if _, _, err := ParseScenario(c.Scenario); err != nil {
		return c, err
	}
	if c.Duration <= 0 || c.Duration > durationMax {
		return c, fmt.Errorf("duration must be in (0, %s]", durationMax)
	}
	if c.MaxRequests <= 0 {
		c.MaxRequests = defaultMaxRequest
	}
	if c.Connections <= 0 {
		c.Connections = 64
	}
	if c.Pipeline <= 0 {
		c.Pipeline = 1
	}
	if c.Connections > connectionsMax || c.Pipeline > pipelineMax {
		return c, fmt.Errorf("connections at most %d, pipeline at most %d", connectionsMax, pipelineMax)
	}
	if c.Rate < 0 {
		return c, errors.New("rate must be >= 0")
	}
	if c.Orgs <= 0 {
		switch c.Scenario {
		case "hot-org":
			c.Orgs = 1
		case "many-orgs":
			c.Orgs = 100_000
		case "durable":
			c.Orgs = 100
		default:
			c.Orgs = 1000
		}
	}
	if c.Orgs > orgsMax {
		return c, fmt.Errorf("orgs at most %d", orgsMax)
	}
	if c.Batch <= 0 {
		switch c.Scenario {
		case "engine":
			c.Batch = 1024
		case "http-batch":
			c.Batch = 100
		default:
			c.Batch = 1
		}
	}
	switch {
	case c.Scenario == "engine" && c.Batch > engineBatchMax:
		return c, fmt.Errorf("engine batch at most %d", engineBatchMax)
	case c.Scenario != "engine" && c.Batch > batchMax:
		return c, fmt.Errorf("batch at most %d (the API's limit)", batchMax)
	case c.Scenario == "reservations" && c.Batch != 1:
		return c, errors.New("reservations has no batch: each iteration is one hold and one commit")
	}
	if c.SetupParallel <= 0 {
		c.SetupParallel = 64
	}
	c.SetupParallel = min(c.SetupParallel, setupParallelMax)
	if c.Log == nil {
		c.Log = io.Discard
	}
	if c.URL != "" && c.Scenario == "cluster" {
		return c, errors.New("cluster starts its own nodes: --url does not apply")
	}
	if c.URL != "" && !strings.HasPrefix(c.URL, "http://") {
		return c, errors.New("url must be http://127.0.0.1:<port> (loopback only)")
	}
	return c, nil
}

func (c *Config) logf(format string, args ...any) {
	fmt.Fprintf(c.Log, "orbit-bench: "+format+"\n", args...)
}

// Run runs one scenario: setup, the measured load, then verification. An
// error means the run could not be made; a run whose money does not add up
// returns a Result with Verification.OK false.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	switch cfg.Scenario {
	case "engine":
		defer asOrbitdGC()()
		return runEngine(ctx, &cfg)
	case "durable":
		defer asOrbitdGC()()
		return runDurable(ctx, &cfg)
	default:
		return runHTTP(ctx, &cfg)
	}
}

// asOrbitdGC sets this process's garbage collector as orbitd sets its own
// (gctune), for the in-process scenarios, which measure the pipeline as
// orbitd runs it; the function it returns restores the harness's settings.
func asOrbitdGC() (restore func()) {
	percent, limit := gctune.Current()
	gctune.Apply()
	return func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	}
}

// FindOrbitd returns the orbitd binary to start: bin if given, else
// bin/orbitd under the working directory, else orbitd next to this
// executable, else orbitd on PATH.
func FindOrbitd(bin string) (string, error) {
	if bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("--orbitd %s: %w", bin, err)
		}
		return bin, nil
	}
	candidates := []string{"bin/orbitd"}
	if exe, err := os.Executable(); err == nil {
		candidates = append(candidates, filepath.Join(filepath.Dir(exe), "orbitd"))
	}
	for _, c := range candidates {
		if st, err := os.Stat(c); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return c, nil
		}
	}
	if p, err := lookPath("orbitd"); err == nil {
		return p, nil
	}
	return "", errors.New("no orbitd to start: give --orbitd BIN (make build puts it in bin/) or --url of a running one")
}
