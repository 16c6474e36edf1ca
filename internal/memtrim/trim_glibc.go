//go:build linux && cgo

package memtrim

/*
#include <features.h>
#ifdef __GLIBC__
#include <malloc.h>
static void orbit_malloc_trim(void) { malloc_trim(0); }
#else
static void orbit_malloc_trim(void) {}
#endif
*/
import "C"

// Trim asks the C allocator to give its free pages back to the system.
func Trim() { C.orbit_malloc_trim() }
