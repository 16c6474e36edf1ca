//go:build !linux

package wal

// lowerBackgroundPriority is Linux-only (per-thread nice values); elsewhere
// flushes and compactions run at normal priority.
func lowerBackgroundPriority() (lowered bool, err error) { return false, nil }
