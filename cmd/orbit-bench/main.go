// Command orbit-bench is Orbit's load harness: flags and wiring only (the
// scenarios, measurement and verification live in package bench).
//
//	orbit-bench --scenario http --duration 10s --connections 64
//	orbit-bench --scenario engine,durable,http,http-batch=1000 --duration 5s --json out.json
//
// Every run ends with a verification of the money (the server's audit, and
// each org's balance against its funding less the charges the harness saw
// acknowledged); a run that fails it exits 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/orbit/orbit/bench"
)

const usage = `usage: orbit-bench [flags]

Scenarios (--scenario, comma-separated; name=N sets that scenario's batch):
  engine        in-process engine.Apply of pre-rated charges, batches of 1,024
  durable       in-process raftstore pipeline (Pebble, single-node raft), concurrent submitters
  http          POST /charges, one charge per request, keep-alive connections
  http-batch    POST /charges/batch, --batch charges per request (default 100)
  reservations  POST /reservations then its commit, per iteration
  hot-org       http with every charge on one wallet
  many-orgs     http over --orgs wallets (default 100,000)
  cluster       http spread over 3 (--nodes 5: five) local orbitd nodes (--join), started and stopped here
  all           every scenario above, in that order

The HTTP scenarios load --url (a running orbitd on 127.0.0.1) or start one
from --orbitd BIN (default bin/orbitd) on free loopback ports with a temp
data directory, and stop it at the end.

Flags:
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("orbit-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	var (
		scenarios   = fs.String("scenario", "http", "scenario(s) to run, comma-separated (see above)")
		duration    = fs.Duration("duration", 10*time.Second, "measured load time per scenario")
		connections = fs.Int("connections", 64, "HTTP connections (in-process: concurrent submitters)")
		pipeline    = fs.Int("pipeline", 1, "requests in flight per connection (>1 uses fasthttp.PipelineClient)")
		orgs        = fs.Int("orgs", 0, "orgs to spread the load over (0: the scenario's default)")
		batch       = fs.Int("batch", 0, "charges per request or per engine batch (0: the scenario's default)")
		rate        = fs.Float64("rate", 0, "target requests/s, open loop with latency from the scheduled send (0: closed loop)")
		url         = fs.String("url", "", "base URL of a running orbitd on 127.0.0.1 (empty: start --orbitd)")
		orbitd      = fs.String("orbitd", "", "orbitd binary to start (default bin/orbitd, then next to orbit-bench, then PATH)")
		adminToken  = fs.String("admin-token", "", "admin token of the --url server (default $ORBIT_ADMIN_TOKEN, then ./data/admin-token)")
		serverPID   = fs.Int("server-pid", 0, "pid of the --url server, to report its CPU and RSS")
		jsonPath    = fs.String("json", "", "write the result(s) as JSON to this file")
		maxRequests = fs.Int64("max-requests", 0, "bound on requests per scenario (engine: batches; 0: 100,000,000)")
		setupPar    = fs.Int("setup-parallel", 64, "admin API calls in flight during setup and verification")
		keepData    = fs.Bool("keep-data", false, "keep the data directories of servers the harness started")
		quiet       = fs.Bool("quiet", false, "no progress lines on stderr")
		nodes       = fs.Int("nodes", 3, "nodes the cluster scenario starts (3 or 5)")
		cpuProfile  = fs.String("cpuprofile", "", "write this process's CPU profile to this file (the in-process scenarios' server; for orbitd use its --debug-addr)")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "orbit-bench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	specs := strings.Split(*scenarios, ",")
	if *scenarios == "all" {
		specs = bench.Scenarios
	}
	var cfgs []bench.Config
	for _, spec := range specs {
		name, specBatch, err := bench.ParseScenario(spec)
		if err != nil {
			fmt.Fprintln(stderr, "orbit-bench:", err)
			return 2
		}
		cfg := bench.Config{
			Scenario: name, Duration: *duration, MaxRequests: *maxRequests, Connections: *connections, Nodes: *nodes,
			Pipeline: *pipeline, Orgs: *orgs, Batch: *batch, Rate: *rate, URL: *url, OrbitdBin: *orbitd,
			AdminToken: *adminToken, ServerPID: *serverPID, SetupParallel: *setupPar, KeepData: *keepData,
			Log: stderr,
		}
		if specBatch > 0 {
			cfg.Batch = specBatch
		}
		if *quiet {
			cfg.Log = io.Discard
		}
		cfgs = append(cfgs, cfg)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *cpuProfile != "" {
		stopProfile, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "orbit-bench:", err)
			return 2
		}
		defer stopProfile()
	}
	var results []*bench.Result
	status := 0
	for _, cfg := range cfgs {
		r, err := bench.Run(ctx, cfg)
		if err != nil {
			fmt.Fprintf(stderr, "orbit-bench: %s: %v\n", cfg.Scenario, err)
			status = 1
			if ctx.Err() != nil {
				break
			}
			continue
		}
		results = append(results, r)
		if !r.Verification.OK {
			status = 1
		}
	}
	if len(results) > 0 {
		fmt.Fprintln(stdout)
		bench.PrintTable(stdout, results)
	}
	if *jsonPath != "" && len(results) > 0 {
		if err := bench.WriteJSON(*jsonPath, results); err != nil {
			fmt.Fprintln(stderr, "orbit-bench:", err)
			status = 1
		}
	}
	for _, r := range results {
		if err := bench.Check(r); err != nil {
			fmt.Fprintf(stderr, "orbit-bench: %v\n", err)
		}
	}
	if status != 0 {
		fmt.Fprintln(stderr, "orbit-bench: FAILED: a run could not be made or its money did not add up; its figures do not count")
	}
	return status
}

// startCPUProfile profiles this process into path until the returned
// function is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
