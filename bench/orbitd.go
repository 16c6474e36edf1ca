package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Orbitd is an orbitd process the harness started on loopback ports with a
// temp data directory, and stops at the end.
type Orbitd struct {
	NodeID   string
	DataDir  string
	HTTPAddr string
	RaftAddr string
	URL      string
	// Token is the admin token: the one passed, or the one the server
	// wrote to <data-dir>/admin-token on first start.
	Token string

	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
}

const (
	readyTimeout = 60 * time.Second
	stopTimeout  = 30 * time.Second
)

func lookPath(name string) (string, error) { return exec.LookPath(name) }

// FreeAddr returns a 127.0.0.1 address whose port was free just now.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// OrbitdOptions configures StartOrbitd.
type OrbitdOptions struct {
	NodeID string
	// DataDir is created when missing.
	DataDir string
	// Token: "" lets the server generate one (read back from the data
	// directory).
	Token string
	// Join is the HTTP address of a member to join; "" bootstraps.
	Join string
}

// StartOrbitd starts bin on free loopback ports and waits until /readyz
// answers 200. Its output goes to <data-dir>/orbitd.log.
func StartOrbitd(ctx context.Context, bin string, o OrbitdOptions) (*Orbitd, error) {
	httpAddr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	raftAddr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	if o.NodeID == "" {
		o.NodeID = "node1"
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, err
	}
	s := &Orbitd{NodeID: o.NodeID, DataDir: o.DataDir, HTTPAddr: httpAddr, RaftAddr: raftAddr,
		URL: "http://" + httpAddr, logPath: filepath.Join(o.DataDir, "orbitd.log"), exited: make(chan struct{})}
	args := []string{"--data-dir", o.DataDir, "--http-addr", httpAddr, "--raft-addr", raftAddr,
		"--node-id", o.NodeID, "--log-level", "warn"}
	if o.Token != "" {
		args = append(args, "--admin-token", o.Token)
	}
	if o.Join != "" {
		args = append(args, "--join", o.Join)
	}
	logFile, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(bin, args...)
	// The token travels as a flag; keep any ORBIT_* of the caller's
	// environment from overriding what the harness chose.
	s.cmd.Env = withoutOrbitEnv(os.Environ())
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	if err := s.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { _ = s.cmd.Wait(); logFile.Close(); close(s.exited) }()
	if err := s.waitReady(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	s.Token = o.Token
	if s.Token == "" {
		b, err := os.ReadFile(filepath.Join(o.DataDir, "admin-token"))
		if err != nil {
			s.Stop()
			return nil, fmt.Errorf("read the generated admin token: %w", err)
		}
		s.Token = strings.TrimSpace(string(b))
	}
	return s, nil
}

func withoutOrbitEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "ORBIT_") && !strings.HasPrefix(kv, "STRIPE_") {
			out = append(out, kv)
		}
	}
	return out
}

func (s *Orbitd) waitReady(ctx context.Context) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("orbitd %s exited during start:\n%s", s.NodeID, s.LogTail())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		resp, err := hc.Get(s.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("orbitd %s not ready within %s:\n%s", s.NodeID, readyTimeout, s.LogTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// PID is the process id.
func (s *Orbitd) PID() int { return s.cmd.Process.Pid }

// LogTail returns the last lines the process wrote.
func (s *Orbitd) LogTail() string {
	b, _ := os.ReadFile(s.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

// Stop sends SIGTERM, waits for a clean exit, and kills the process if it
// has not exited within stopTimeout. It reports an unclean exit.
func (s *Orbitd) Stop() error {
	select {
	case <-s.exited:
		return nil
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(stopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("orbitd %s did not stop within %s of SIGTERM; killed", s.NodeID, stopTimeout)
	}
	if st := s.cmd.ProcessState; st != nil && !st.Success() {
		if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			return nil
		}
		return fmt.Errorf("orbitd %s exited with %s:\n%s", s.NodeID, st, s.LogTail())
	}
	return nil
}

// servers is the set of orbitd processes of one run (none for --url).
type servers struct {
	procs []*Orbitd
	dir   string // the temp directory holding their data
	keep  bool
}

// startServers starts n orbitd nodes under a new temp directory: the first
// bootstraps and generates the admin token, the others join it with it.
func startServers(ctx context.Context, cfg *Config, n int) (*servers, error) {
	bin, err := FindOrbitd(cfg.OrbitdBin)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "orbit-bench-")
	if err != nil {
		return nil, err
	}
	ss := &servers{dir: dir, keep: cfg.KeepData}
	for i := 1; i <= n; i++ {
		o := OrbitdOptions{NodeID: fmt.Sprintf("node%d", i), DataDir: filepath.Join(dir, fmt.Sprintf("node%d", i))}
		if i > 1 {
			o.Token, o.Join = ss.procs[0].Token, ss.procs[0].HTTPAddr
		}
		cfg.logf("starting %s %s (data %s)", bin, o.NodeID, o.DataDir)
		p, err := StartOrbitd(ctx, bin, o)
		if err != nil {
			ss.stop()
			return nil, err
		}
		ss.procs = append(ss.procs, p)
	}
	return ss, nil
}

func (ss *servers) pids() []int {
	var out []int
	for _, p := range ss.procs {
		out = append(out, p.PID())
	}
	return out
}

// stop stops every process (followers first) and removes the data unless
// asked to keep it.
func (ss *servers) stop() error {
	if ss == nil {
		return nil
	}
	var errs []error
	for i := len(ss.procs) - 1; i >= 0; i-- {
		if err := ss.procs[i].Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if ss.keep {
		return errors.Join(errs...)
	}
	if err := os.RemoveAll(ss.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
