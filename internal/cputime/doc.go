// Package cputime reads the CPU time this process has used. It is shared by
// the benchmark harness (bench) and the storage benchmarks (wal), which
// report CPU per charge next to wall time.
package cputime
