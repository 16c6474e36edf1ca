// Package gctune sets the Go garbage collector for orbitd's workload: a
// larger GOGC than Go's default, bounded by a soft memory limit derived
// from the memory the process may use. orbitd applies it at start, and
// orbit-bench while it runs the in-process scenarios, so they measure the
// pipeline as orbitd runs it.
package gctune
