// Package testserver starts real orbitd processes for end-to-end tests: the
// binary built once per test binary, free loopback ports, a temp data
// directory, and helpers to create orgs, keys and funds through the real
// HTTP API. Tests use it instead of fakes.
package testserver

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// Binary returns the path of an orbitd built from this checkout, building it
// once per test process.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "orbitd-bin-")
		if buildErr != nil {
			return
		}
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		cmd := exec.Command("go", "build", "-o", filepath.Join(buildDir, "orbitd"), "./cmd/orbitd")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build orbitd: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "orbitd")
}

// Main runs a package's tests, removes the orbitd that Binary built (a
// 45 MB file per test process otherwise left in the temp directory), and
// exits with the tests' code. Packages that use Binary or New call it from
// TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// FreePort returns a loopback address with a port that was free just now.
func FreePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Server is one orbitd process.
type Server struct {
	t          testing.TB
	DataDir    string
	HTTPAddr   string
	RaftAddr   string
	AdminToken string
	URL        string
	ExtraArgs  []string
	ExtraEnv   []string
	// CPUs, when set, pins the process to these CPUs (a taskset list such
	// as "0"); Go sizes GOMAXPROCS to them. A load test uses it to give the
	// server less than the machine, so that a client on the same machine
	// can offer more than the server sustains.
	CPUs string
	// AdminURL is where the operator API is served: URL, or the separate
	// admin listener after EnableAdminListener.
	AdminURL  string
	adminAddr string
	// tls is set by EnableTLS: the certificate files and a client that
	// trusts the certificate.
	tlsCert, tlsKey string
	hc              *http.Client

	cmd    *exec.Cmd
	logBuf *lockedBuffer
	exited chan struct{}
	// started is set once the server has been ready: its addresses are
	// known to the test from then on.
	started bool
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// New prepares a server on a fresh temp data directory and free ports; call
// Start. The server is killed when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, DataDir: t.TempDir(), HTTPAddr: FreePort(t), RaftAddr: FreePort(t), AdminToken: "test-admin-token-0123456789"}
	s.URL = "http://" + s.HTTPAddr
	s.AdminURL = s.URL
	t.Cleanup(func() { s.Kill() })
	return s
}

// EnableAdminListener makes the server serve the operator API only on a
// separate free loopback port (--admin-addr); Admin clients go there. Call
// before Start.
func (s *Server) EnableAdminListener() {
	s.adminAddr = FreePort(s.t)
	s.AdminURL = s.scheme() + s.adminAddr
}

// EnableTLS makes the server serve HTTPS with the PEM files; roots must
// trust the certificate (the suite's clients use them). Call before Start
// and before EnableAdminListener.
func (s *Server) EnableTLS(certFile, keyFile string, roots *x509.CertPool) {
	s.tlsCert, s.tlsKey = certFile, keyFile
	s.hc = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	s.URL = s.scheme() + s.HTTPAddr
	s.AdminURL = s.URL
}

func (s *Server) scheme() string {
	if s.tlsCert != "" {
		return "https://"
	}
	return "http://"
}

// HTTPClient is the client the suite's requests to this server use.
func (s *Server) HTTPClient() *http.Client {
	if s.hc != nil {
		return s.hc
	}
	return httpClient
}

// Start runs orbitd and waits until /readyz answers 200.
func Start(t testing.TB) *Server {
	s := New(t)
	s.Start()
	return s
}

// Start starts the process (again, after a Kill or Stop) on the same data
// directory and ports, and waits until it is ready.
//
// A port can be taken between FreePort (or the previous run) and orbitd's
// bind, most often as the source port of an outgoing connection, since
// FreePort's ports come from the same ephemeral range. If orbitd exits
// with "address already in use", Start tries again for up to 15 s: on
// the same ports, or, before the first successful start and when no extra
// argument names them, on fresh ones.
func (s *Server) Start() {
	s.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !s.startOnce() {
		if !strings.Contains(s.Logs(), "address already in use") || time.Now().After(deadline) {
			s.t.Fatalf("orbitd exited during start:\n%s", s.Logs())
		}
		if !s.started && !s.argsNameAddrs() {
			s.HTTPAddr, s.RaftAddr = FreePort(s.t), FreePort(s.t)
			s.URL = s.scheme() + s.HTTPAddr
			s.AdminURL = s.URL
			if s.adminAddr != "" {
				s.adminAddr = FreePort(s.t)
				s.AdminURL = s.scheme() + s.adminAddr
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.started = true
}

// argsNameAddrs reports whether an extra argument names one of the
// server's addresses (which then must not change).
func (s *Server) argsNameAddrs() bool {
	for _, a := range append(append([]string(nil), s.ExtraArgs...), s.ExtraEnv...) {
		for _, addr := range []string{s.HTTPAddr, s.RaftAddr, s.adminAddr} {
			if addr != "" && strings.Contains(a, addr) {
				return true
			}
		}
	}
	return false
}

// startOnce runs orbitd and waits until it is ready (true) or has exited
// (false).
func (s *Server) startOnce() bool {
	s.t.Helper()
	args := append([]string{
		"--data-dir", s.DataDir, "--http-addr", s.HTTPAddr, "--raft-addr", s.RaftAddr,
		"--admin-token", s.AdminToken, "--log-level", "warn",
	}, s.ExtraArgs...)
	if s.adminAddr != "" {
		args = append(args, "--admin-addr", s.adminAddr)
	}
	if s.tlsCert != "" {
		args = append(args, "--tls-cert", s.tlsCert, "--tls-key", s.tlsKey)
	}
	if s.CPUs != "" {
		// taskset sets the affinity and execs orbitd in its place (same
		// pid), so every thread of the server inherits it.
		s.cmd = exec.Command("taskset", append([]string{"-c", s.CPUs, Binary(s.t)}, args...)...)
	} else {
		s.cmd = exec.Command(Binary(s.t), args...)
	}
	s.cmd.Env = append(os.Environ(), s.ExtraEnv...)
	// If the test process dies without its cleanups (a panic, a signal),
	// the kernel kills the server too: no orphans listening on loopback.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	s.logBuf = &lockedBuffer{}
	s.cmd.Stdout = s.logBuf
	s.cmd.Stderr = s.logBuf
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.exited = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { _ = c.Wait(); close(done) }(s.cmd, s.exited)
	return s.waitReady(30 * time.Second)
}

// WaitReady polls /readyz until 200.
func (s *Server) WaitReady(timeout time.Duration) {
	s.t.Helper()
	if !s.waitReady(timeout) {
		s.t.Fatalf("orbitd exited during start:\n%s", s.Logs())
	}
}

// waitReady polls /readyz until 200 (true) or until the process exits
// (false).
func (s *Server) waitReady(timeout time.Duration) bool {
	s.t.Helper()
	exited := false
	WaitFor(s.t, timeout, "orbitd ready", func() bool {
		select {
		case <-s.exited:
			exited = true
			return true
		default:
		}
		resp, err := s.HTTPClient().Get(s.URL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return !exited
}

// PID is the process id of the running orbitd.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// KeyWithTimeout is Key with a client that gives up after timeout.
func (s *Server) KeyWithTimeout(key string, timeout time.Duration) *Client {
	c := s.Key(key)
	c.http = &http.Client{Timeout: timeout, Transport: s.HTTPClient().Transport}
	return c
}

// Exited is closed once the process has exited and everything it wrote is
// in Logs (the process is reaped only after its output pipes are drained:
// polling the pid alone can see it gone before its last lines are read).
func (s *Server) Exited() <-chan struct{} { return s.exited }

// Logs returns what the process wrote so far.
func (s *Server) Logs() string {
	if s.logBuf == nil {
		return ""
	}
	return s.logBuf.String()
}

// Kill sends SIGKILL and waits for the process to die.
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
	s.cmd = nil
}

// Stop sends SIGTERM and waits for a clean exit.
func (s *Server) Stop() {
	s.t.Helper()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		s.t.Errorf("orbitd did not stop within 30s of SIGTERM")
		s.Kill()
	}
	s.cmd = nil
}

// WaitFor polls cond every 10 ms until it holds or timeout passes.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Response is an HTTP response with its decoded JSON body.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	JSON   map[string]any
}

// Data returns the envelope's data as an object.
func (r *Response) Data() map[string]any {
	d, _ := r.JSON["data"].(map[string]any)
	return d
}

// ErrorCode returns the envelope's error code, or "".
func (r *Response) ErrorCode() string {
	e, _ := r.JSON["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// ErrorMessage returns the envelope's error message, or "".
func (r *Response) ErrorMessage() string {
	e, _ := r.JSON["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

// Client sends requests with fixed headers.
type Client struct {
	t       testing.TB
	base    string
	headers map[string]string
	http    *http.Client // nil: the shared client
	// OnResponse, when set, sees every request and response (for example to
	// validate them against the OpenAPI document).
	OnResponse func(req *http.Request, resp *Response)
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

// DefaultOnResponse, when set (for example in a TestMain), becomes the
// OnResponse of every client made afterwards: the e2e suite uses it to
// validate every response against the OpenAPI document.
var DefaultOnResponse func(t testing.TB, req *http.Request, resp *Response)

func (s *Server) client(headers map[string]string) *Client {
	c := &Client{t: s.t, base: s.URL, headers: headers, http: s.hc}
	if hook := DefaultOnResponse; hook != nil {
		t := s.t
		c.OnResponse = func(req *http.Request, resp *Response) { hook(t, req, resp) }
	}
	return c
}

// Admin returns a client that authenticates with the admin token.
func (s *Server) Admin() *Client {
	return s.client(map[string]string{"Authorization": "Bearer " + s.AdminToken}).At(s.AdminURL)
}

// Key returns a client that authenticates with an org API key.
func (s *Server) Key(key string) *Client {
	return s.client(map[string]string{"X-API-Key": key})
}

// Anon returns a client with no credentials.
func (s *Server) Anon() *Client { return s.client(map[string]string{}) }

// With returns a copy of c with an extra header.
func (c *Client) With(name, value string) *Client {
	h := make(map[string]string, len(c.headers)+1)
	for k, v := range c.headers {
		h[k] = v
	}
	h[name] = value
	return &Client{t: c.t, base: c.base, headers: h, OnResponse: c.OnResponse, http: c.http}
}

// At returns a copy of c that sends to another base URL (for example the
// public listener when c is an Admin client).
func (c *Client) At(base string) *Client {
	h := make(map[string]string, len(c.headers))
	for k, v := range c.headers {
		h[k] = v
	}
	return &Client{t: c.t, base: base, headers: h, OnResponse: c.OnResponse, http: c.http}
}

// Do sends a request; body may be nil, a string/[]byte (sent as is) or any
// value (sent as JSON). JSON bodies get Content-Type application/json unless
// the client sets one.
func (c *Client) Do(method, path string, body any) *Response {
	c.t.Helper()
	resp, err := c.TryDo(method, path, body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

// TryDo is Do returning transport errors instead of failing the test.
func (c *Client) TryDo(method, path string, body any) (*Response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	hc := httpClient
	if c.http != nil {
		hc = c.http
	}
	hr, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer hr.Body.Close()
	raw, err := io.ReadAll(hr.Body)
	if err != nil {
		return nil, err
	}
	r := &Response{Status: hr.StatusCode, Header: hr.Header, Body: raw}
	_ = json.Unmarshal(raw, &r.JSON)
	if c.OnResponse != nil {
		c.OnResponse(req, r)
	}
	return r, nil
}

// Expect fails the test unless the response has the status.
func (r *Response) Expect(t testing.TB, status int) *Response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body: %s", r.Status, status, r.Body)
	}
	return r
}

// Org is an org made for a test: its id and an admin key.
type Org struct {
	ID  string
	Key string
}

// MustOrg creates an org with an admin key and, when fundMicros > 0, funds
// it with an adjustment.
func (s *Server) MustOrg(t testing.TB, name string, fundMicros int64) Org {
	t.Helper()
	a := s.Admin()
	org := a.Do("POST", "/admin/v1/orgs", map[string]any{"name": name}).Expect(t, 201).Data()["id"].(string)
	key := s.MustKey(t, org, "admin")
	if fundMicros > 0 {
		a.Do("POST", "/admin/v1/orgs/"+org+"/adjustments", map[string]any{
			"amount_micros": fundMicros, "reason": "test funds", "reference": "fund-" + org,
		}).Expect(t, 201)
	}
	return Org{ID: org, Key: key}
}

// MustKey creates an API key with a role for an org and returns its secret.
func (s *Server) MustKey(t testing.TB, org, role string) string {
	t.Helper()
	return s.Admin().Do("POST", "/admin/v1/orgs/"+org+"/keys", map[string]any{"role": role}).Expect(t, 201).Data()["key"].(string)
}
