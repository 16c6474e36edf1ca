package bench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/orbit/orbit/internal/cputime"
)

// clockTicksPerSecond is USER_HZ, the unit of utime and stime in
// /proc/<pid>/stat: 100 on every Linux architecture Go supports.
const clockTicksPerSecond = 100

// ProcCPU returns the user+sys CPU time a process has used so far, from
// /proc/<pid>/stat (fields 14 and 15, in clock ticks).
func ProcCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// count fields from after its closing parenthesis.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("bench: /proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("bench: /proc/%d/stat: %d fields", pid, len(f)+2)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bench: /proc/%d/stat: bad utime/stime", pid)
	}
	return time.Duration(utime+stime) * time.Second / clockTicksPerSecond, nil
}

// ProcRSS returns a process's resident set size and its peak (VmRSS and
// VmHWM of /proc/<pid>/status), in bytes.
func ProcRSS(pid int) (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(value) // "123456 kB"
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("bench: /proc/%d/status: bad %s line %q", pid, name, line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, err
		}
		if name == "VmRSS" {
			rss = kb << 10
		} else {
			peak = kb << 10
		}
	}
	if rss == 0 {
		return 0, 0, fmt.Errorf("bench: /proc/%d/status: no VmRSS", pid)
	}
	return rss, peak, nil
}

// cpuMeter measures the CPU time a set of processes spends between start
// and stop. pid 0 means this process.
type cpuMeter struct {
	pids  []int
	start []time.Duration
	wall  time.Time
}

func cpuOf(pid int) (time.Duration, error) {
	if pid == 0 {
		return cputime.Self(), nil
	}
	return ProcCPU(pid)
}

func startCPU(pids ...int) *cpuMeter {
	m := &cpuMeter{pids: pids, start: make([]time.Duration, len(pids)), wall: time.Now()}
	for i, p := range pids {
		m.start[i], _ = cpuOf(p)
	}
	return m
}

// stop returns the CPU time used since start by all the processes together
// and the wall time elapsed.
func (m *cpuMeter) stop() (cpu, wall time.Duration) {
	for i, p := range m.pids {
		end, err := cpuOf(p)
		if err == nil && end > m.start[i] {
			cpu += end - m.start[i]
		}
	}
	return cpu, time.Since(m.wall)
}

// ProcUsage is what a set of processes used during the measured phase.
type ProcUsage struct {
	PIDs []int `json:"pids,omitempty"`
	// CPUSeconds is user+sys CPU time; CPUCores that divided by wall time
	// (2.0 = two cores busy the whole time).
	CPUSeconds float64 `json:"cpu_seconds"`
	CPUCores   float64 `json:"cpu_cores"`
	// RSSBytes is the resident set at the end (summed over the processes),
	// PeakRSSBytes the sum of their peaks.
	RSSBytes     int64 `json:"rss_bytes"`
	PeakRSSBytes int64 `json:"peak_rss_bytes"`
}

// usage finishes a meter and reads the processes' memory.
func (m *cpuMeter) usage() *ProcUsage {
	cpu, wall := m.stop()
	u := &ProcUsage{CPUSeconds: cpu.Seconds()}
	if wall > 0 {
		u.CPUCores = cpu.Seconds() / wall.Seconds()
	}
	for _, p := range m.pids {
		if p != 0 {
			u.PIDs = append(u.PIDs, p)
		} else {
			p = os.Getpid()
		}
		if rss, peak, err := ProcRSS(p); err == nil {
			u.RSSBytes += rss
			u.PeakRSSBytes += peak
		}
	}
	return u
}
