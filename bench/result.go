package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Result is one scenario's outcome: what the harness did, how fast, what the
// server used, and whether the money adds up. It is the JSON the --json
// flag writes.
type Result struct {
	Scenario    string    `json:"scenario"`
	StartedAt   time.Time `json:"started_at"`
	Target      string    `json:"target"` // "in-process", or the server URL(s)
	Connections int       `json:"connections"`
	Pipeline    int       `json:"pipeline,omitempty"`
	Orgs        int       `json:"orgs"`
	Batch       int       `json:"batch"`
	// TargetRate is the open-loop request rate asked for (0: closed loop).
	TargetRate float64 `json:"target_rate"`

	// DurationSeconds is the measured phase's wall time (setup and
	// verification excluded).
	DurationSeconds float64 `json:"duration_seconds"`
	// Requests sent in the measured phase (HTTP requests, Submit calls, or
	// Apply batches for the engine); Charges acknowledged as applied (a
	// reservation commit counts as one charge).
	Requests       uint64  `json:"requests"`
	Charges        uint64  `json:"charges"`
	RequestsPerSec float64 `json:"requests_per_sec"`
	ChargesPerSec  float64 `json:"charges_per_sec"`
	// Latency of one request (from its scheduled time in open loop).
	Latency Latency `json:"latency"`
	// Errors counts failed requests (HTTP status, "transport", "timeout")
	// and refused charges inside batches ("item_402", ...).
	Errors map[string]uint64 `json:"errors"`
	// InDoubt counts requests whose outcome was unknown after the load
	// (transport errors, 5xx); each was resolved by repeating it with the
	// same reference before verification.
	InDoubt uint64 `json:"in_doubt"`

	// Server is what the server process(es) used; for in-process scenarios
	// the harness process itself. Harness is orbit-bench's own use.
	Server  *ProcUsage `json:"server,omitempty"`
	Harness *ProcUsage `json:"harness,omitempty"`

	Verification Verification `json:"verification"`

	SetupSeconds float64 `json:"setup_seconds"`
	GoVersion    string  `json:"go_version"`
	NumCPU       int     `json:"num_cpu"`
	Notes        string  `json:"notes,omitempty"`
}

// Latency is a summary of a Histogram, in microseconds.
type Latency struct {
	Count  uint64  `json:"count"`
	MeanUs float64 `json:"mean_us"`
	P50Us  float64 `json:"p50_us"`
	P90Us  float64 `json:"p90_us"`
	P99Us  float64 `json:"p99_us"`
	P999Us float64 `json:"p999_us"`
	MaxUs  float64 `json:"max_us"`
}

func summarize(h *Histogram) Latency {
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	return Latency{
		Count:  h.Count(),
		MeanUs: us(h.Mean()),
		P50Us:  us(h.Quantile(0.50)),
		P90Us:  us(h.Quantile(0.90)),
		P99Us:  us(h.Quantile(0.99)),
		P999Us: us(h.Quantile(0.999)),
		MaxUs:  us(h.Max()),
	}
}

// ErrorCount is the total of Errors.
func (r *Result) ErrorCount() uint64 {
	var n uint64
	for _, c := range r.Errors {
		n += c
	}
	return n
}

func newResult(cfg *Config) *Result {
	return &Result{
		Scenario:    cfg.Scenario,
		StartedAt:   time.Now().UTC(),
		Connections: cfg.Connections,
		Pipeline:    cfg.Pipeline,
		Orgs:        cfg.Orgs,
		Batch:       cfg.Batch,
		TargetRate:  cfg.Rate,
		Errors:      map[string]uint64{},
		GoVersion:   runtime.Version(),
		NumCPU:      runtime.NumCPU(),
	}
}

// finish fills the rates from the counts and the measured wall time.
func (r *Result) finish(wall time.Duration, h *Histogram) {
	r.DurationSeconds = wall.Seconds()
	if wall > 0 {
		r.RequestsPerSec = float64(r.Requests) / wall.Seconds()
		r.ChargesPerSec = float64(r.Charges) / wall.Seconds()
	}
	r.Latency = summarize(h)
}

// WriteJSON writes results (one, or a list) to path, indented.
func WriteJSON(path string, results []*Result) error {
	var v any = results
	if len(results) == 1 {
		v = results[0]
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// PrintTable writes results as a human table, then one verification line
// per result.
func PrintTable(w io.Writer, results []*Result) {
	header := []string{"scenario", "conns", "orgs", "batch", "charges/s", "requests/s", "p50", "p99", "p99.9", "max", "errors", "server CPU", "server RSS", "verified"}
	rows := [][]string{header}
	for _, r := range results {
		cpu, rss := "-", "-"
		if r.Server != nil {
			cpu = fmt.Sprintf("%.2f cores", r.Server.CPUCores)
			rss = fmtBytes(r.Server.RSSBytes)
		}
		verified := "yes"
		if !r.Verification.OK {
			verified = "NO"
		}
		rows = append(rows, []string{
			r.Scenario, strconv.Itoa(r.Connections), strconv.Itoa(r.Orgs), strconv.Itoa(r.Batch),
			fmtCount(r.ChargesPerSec), fmtCount(r.RequestsPerSec),
			fmtUs(r.Latency.P50Us), fmtUs(r.Latency.P99Us), fmtUs(r.Latency.P999Us), fmtUs(r.Latency.MaxUs),
			fmtErrors(r.Errors), cpu, rss, verified,
		})
	}
	widths := make([]int, len(header))
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], len(c))
		}
	}
	for _, row := range rows {
		var b strings.Builder
		for i, c := range row {
			if i > 0 {
				b.WriteString("  ")
			}
			if i == 0 || i == len(row)-1 || i == 10 {
				fmt.Fprintf(&b, "%-*s", widths[i], c)
			} else {
				fmt.Fprintf(&b, "%*s", widths[i], c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	for _, r := range results {
		fmt.Fprintf(w, "%s: %s\n", r.Scenario, r.Verification.Summary())
		if r.Harness != nil {
			fmt.Fprintf(w, "%s: %d requests, %d charges in %.1fs; harness CPU %.2f cores; in-doubt %d; setup %.1fs",
				r.Scenario, r.Requests, r.Charges, r.DurationSeconds, r.Harness.CPUCores, r.InDoubt, r.SetupSeconds)
			if r.Notes != "" {
				fmt.Fprintf(w, "; %s", r.Notes)
			}
			fmt.Fprintln(w)
		}
	}
}

func fmtCount(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func fmtUs(us float64) string {
	switch {
	case us == 0:
		return "-"
	case us < 1000:
		return fmt.Sprintf("%.0fµs", us)
	case us < 1e6:
		return fmt.Sprintf("%.2fms", us/1e3)
	default:
		return fmt.Sprintf("%.2fs", us/1e6)
	}
}

func fmtBytes(n int64) string {
	if n <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
}

func fmtErrors(m map[string]uint64) string {
	if len(m) == 0 {
		return "0"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s:%d", k, m[k])
	}
	return strings.Join(parts, ",")
}
