//go:build !linux

package wal

import "github.com/cockroachdb/pebble/v2/vfs"

// writebackFS is Linux-only (sync_file_range); elsewhere the state DB's
// WAL is written back when the operating system decides.
func writebackFS(fs vfs.FS) vfs.FS { return fs }
