//go:build !linux || !cgo

package memtrim

// Trim does nothing: without cgo Pebble allocates from the Go heap, which
// debug.FreeOSMemory returns.
func Trim() {}
