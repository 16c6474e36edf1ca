//go:build !linux

package gctune

// availableMemory is not looked up outside Linux: no memory limit is set
// there unless GOMEMLIMIT says so.
func availableMemory() int64 { return 0 }
