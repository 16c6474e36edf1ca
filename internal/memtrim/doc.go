// Package memtrim returns memory the C allocator holds free to the
// operating system. Pebble allocates its block cache and memtables with C
// malloc (when built with cgo); glibc keeps freed blocks of that size in its
// heap, so emptying the cache alone does not lower the resident set.
package memtrim
