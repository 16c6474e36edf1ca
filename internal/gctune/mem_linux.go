package gctune

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// availableMemory is the process's cgroup memory limit (v2, then v1), or
// the machine's RAM when there is none; 0 if neither can be read.
func availableMemory() int64 {
	var ram int64
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) == nil {
		ram = int64(si.Totalram) * int64(si.Unit)
	}
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		if b, err := os.ReadFile(f); err == nil {
			if limit := parseCgroupLimit(string(b)); limit > 0 && (ram == 0 || limit < ram) {
				return limit
			}
		}
	}
	return ram
}

// parseCgroupLimit reads a cgroup memory limit file: bytes, or "max" (v2)
// for none; 0 for none or unreadable. cgroup v1 writes a huge number for
// none, which the caller's comparison with the RAM discards.
func parseCgroupLimit(s string) int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 {
		return 0
	}
	return n
}
