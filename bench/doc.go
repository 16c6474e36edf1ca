// Package bench is Orbit's load harness (cmd/orbit-bench is its flags and
// wiring): it drives the charging path at every layer, measures throughput,
// latency and the server's CPU and memory, and after every run checks that
// no money was lost or counted twice.
//
// # Scenarios
//
//   - engine: engine.Apply of pre-rated charges over N orgs in batches of
//     1,024, in this process, with engine.MemStore as the cold store. No
//     log, no disk, no network: the ceiling of everything else. The store
//     forgets its references every 512 batches (memory stays bounded), as
//     engine.BenchmarkApplyCharges does.
//   - durable: raftstore in this process (Pebble, single-node raft on a temp
//     directory): admission, group commit, the fsynced log, the FSM, with
//     --connections concurrent submitters calling Node.Submit.
//   - http, http-batch, reservations, hot-org, many-orgs: a real orbitd over
//     HTTP/1.1 keep-alive with fasthttp.HostClient (or PipelineClient with
//     --pipeline): one charge per request, up to 1,000 per /charges/batch,
//     a hold then its commit, every charge on one wallet, or 100,000
//     wallets. The server is --url, or one this package starts from an
//     orbitd binary on free loopback ports with a temp data directory and
//     stops at the end.
//   - cluster: three orbitd nodes started here (the second and third with
//     --join), the load spread over all of them.
//
// # Measuring
//
// Each worker (one per connection) owns its request, response, body and
// tallies; bodies are built once with fixed-width slots for a sequence
// number rewritten in place, so every request carries a new reference and
// the loop allocates nothing of note. Latency goes into a log-bucketed
// Histogram per worker (1/128 relative precision), merged at the end. In
// closed loop (--rate 0) each worker sends as soon as it has its answer;
// in open loop each iteration has a fixed slot on a timeline and its
// latency counts from that slot, so a stall is charged to the server rather
// than hidden by the harness waiting (coordinated omission).
//
// Every loop is bounded by a count (--max-requests) and by time
// (--duration); every request has a timeout; everything listens and
// connects on 127.0.0.1 only.
//
// # Verification
//
// A request whose outcome is unknown (transport error, timeout, 5xx) is
// repeated after the load with the same reference, which the server
// answers exactly once, until its answer is definite. Then the server's
// audit (GET /admin/v1/audit: every balance recomputed from the durable
// ledger; every node of a cluster) must find no mismatch, and every org the
// run used must hold exactly its funding less the charges the harness saw
// acknowledged, with nothing left reserved, read through every node. A
// run that fails any of it has Verification.OK false: orbit-bench says so
// and exits 1, and its figures do not count.
//
// Setup and verification use the Go SDK (package client); only the
// measured load uses fasthttp directly.
package bench
