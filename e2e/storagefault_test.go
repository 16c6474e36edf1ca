package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/orbit/orbit/engine"
	"github.com/orbit/orbit/internal/testserver"
	"github.com/orbit/orbit/raftstore"
	"github.com/orbit/orbit/server"
)

// TestStorageFaultOverHTTP runs the server and a raftstore node in this
// process (the only way to reach its file system without a test hook in
// orbitd), with the raft log's WAL on an errorfs that fails writes while
// switched on (a full disk). Through HTTP: charges answer 503 in the error
// envelope during the fault, /readyz 503, /healthz 200; after the disk heals
// and the node restarts, retries of the failed charges are charged once,
// acknowledged ones replay, and the balance equals the ledger. Every
// response is validated against api/openapi.yaml.
func TestStorageFaultOverHTTP(t *testing.T) {
	full := &fullDisk{}
	cfg := raftstore.Config{NodeID: "n1", RaftAddr: testserver.FreePort(t), DataDir: t.TempDir(), Bootstrap: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), LogFS: errorfs.Wrap(vfs.Default, full)}
	h := startInProcess(t, cfg)
	org := h.mustDo(t, "POST", "/admin/v1/orgs", "", map[string]any{"name": "disk"}, 201).Data()["id"].(string)
	key := h.mustDo(t, "POST", "/admin/v1/orgs/"+org+"/keys", "", map[string]any{"role": "admin"}, 201).Data()["key"].(string)
	const fund = 10_000_000
	h.mustDo(t, "POST", "/admin/v1/orgs/"+org+"/adjustments", "", map[string]any{"amount_micros": fund, "reason": "funds", "reference": "fund"}, 201)
	acked := map[string]string{}
	for i := range 5 {
		ref := fmt.Sprint("ok", i)
		r := h.mustDo(t, "POST", "/api/v1/billing/charges", key, chargeBody(ref, 1000), 201)
		acked[ref] = obj(t, r.Data(), "transaction")["id"].(string)
	}

	full.on.Store(true)
	var failed []string
	for i := range 5 {
		ref := fmt.Sprint("fail", i)
		r := h.mustDo(t, "POST", "/api/v1/billing/charges", key, chargeBody(ref, 1000), 503)
		if r.ErrorCode() != "unavailable" {
			t.Fatalf("charge during the fault: code %q, want unavailable", r.ErrorCode())
		}
		failed = append(failed, ref)
	}
	h.mustDo(t, "GET", "/readyz", "", nil, 503)
	h.mustDo(t, "GET", "/healthz", "", nil, 200)
	select {
	case <-h.node.Faulted():
	default:
		t.Fatal("node not faulted after failed log writes")
	}

	full.on.Store(false)
	h.stop(t)
	h = startInProcess(t, cfg)
	defer h.stop(t)
	h.mustDo(t, "GET", "/readyz", "", nil, 200)
	for ref, tx := range acked {
		r := h.mustDo(t, "POST", "/api/v1/billing/charges", key, chargeBody(ref, 1000), 200)
		if got := obj(t, r.Data(), "transaction")["id"]; got != tx || r.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replay of %s: %v (replayed %q), want %s", ref, got, r.Header.Get("Idempotent-Replayed"), tx)
		}
	}
	for _, ref := range failed {
		// A failed write may have reached the log before the fault: 200
		// replays it, 201 charges it now; either way exactly once.
		r := h.do(t, "POST", "/api/v1/billing/charges", key, chargeBody(ref, 1000))
		if r.Status != 201 && r.Status != 200 {
			t.Fatalf("retry of %s after recovery: %d %s", ref, r.Status, r.Body)
		}
	}
	bal := h.mustDo(t, "GET", "/api/v1/billing/balance", key, nil, 200).Data()
	if want := int64(fund - 1000*(len(acked)+len(failed))); num(t, bal, "balance_micros") != want {
		t.Fatalf("balance %d after recovery, want %d", num(t, bal, "balance_micros"), want)
	}
	if _, mismatches, err := h.node.Audit(); err != nil || len(mismatches) > 0 {
		t.Fatalf("audit after recovery: %v %+v", err, mismatches)
	}
	entries, _, err := h.node.Transactions(org, engine.TxQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1+len(acked)+len(failed) {
		t.Fatalf("ledger holds %d entries, want the funding and %d charges", len(entries), len(acked)+len(failed))
	}
}

// fullDisk fails every WAL write while on.
type fullDisk struct{ on atomic.Bool }

func (d *fullDisk) String() string { return "fullDisk" }

func (d *fullDisk) MaybeError(op errorfs.Op) error {
	if d.on.Load() && strings.HasSuffix(op.Path, ".log") && (op.Kind == errorfs.OpFileWrite || op.Kind == errorfs.OpFileWriteAt) {
		return fmt.Errorf("injected: %w", syscall.ENOSPC)
	}
	return nil
}

// inProcess is a node and its HTTP server in this process.
type inProcess struct {
	node *raftstore.Node
	srv  *server.Server
	url  string
	done chan error
}

const inProcessToken = "orbit_admin_storagefault"

func startInProcess(t *testing.T, cfg raftstore.Config) *inProcess {
	t.Helper()
	n, err := raftstore.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.WaitLeader(ctx); err != nil {
		n.Close()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		n.Close()
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	srv := server.New(server.Config{Store: inProcessStore{n}, AdminToken: inProcessToken, PublicURL: url,
		Logger: cfg.Logger, Metrics: server.NewMetrics()})
	h := &inProcess{node: n, srv: srv, url: url, done: make(chan error, 1)}
	go func() { h.done <- srv.Serve(ln) }()
	testserver.WaitFor(t, 10*time.Second, "ready", func() bool { return n.Ready() })
	return h
}

// stop drains the server and closes the node (a faulted node may report
// its fault from Close).
func (h *inProcess) stop(t *testing.T) {
	t.Helper()
	if h.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Error(err)
	}
	<-h.done
	if err := h.node.Close(); err != nil && h.node.Fault() == nil {
		t.Error(err)
	}
	h.srv = nil
}

// do sends one request (key "" = the admin token) and validates the answer
// against the OpenAPI document.
func (h *inProcess) do(t *testing.T, method, path, key string, body any) *testserver.Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, h.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key == "" {
		req.Header.Set("Authorization", "Bearer "+inProcessToken)
	} else {
		req.Header.Set("X-API-Key", key)
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	hr, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer hr.Body.Close()
	raw, err := io.ReadAll(hr.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := &testserver.Response{Status: hr.StatusCode, Header: hr.Header, Body: raw}
	_ = json.Unmarshal(raw, &r.JSON)
	if err := oaValidate(req, r); err != nil {
		t.Errorf("response does not match api/openapi.yaml: %s %s -> %d: %v\nbody: %s", method, path, r.Status, err, oaClip(r.Body))
	}
	return r
}

func (h *inProcess) mustDo(t *testing.T, method, path, key string, body any, status int) *testserver.Response {
	t.Helper()
	r := h.do(t, method, path, key, body)
	if r.Status != status {
		t.Fatalf("%s %s: %d %s, want %d", method, path, r.Status, r.Body, status)
	}
	return r
}

// inProcessStore is cmd/orbitd's store adapter, reduced to what a single
// node reports.
type inProcessStore struct{ *raftstore.Node }

func (s inProcessStore) Cluster() server.ClusterInfo {
	st := s.Stats()
	return server.ClusterInfo{NodeID: st.NodeID, Leader: st.Leader, Term: st.Term,
		CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex, Digest: st.Digest}
}

// TestFullDiskStopsOrbitd fills the disk of a real orbitd process without
// any hook in it: prlimit lowers the process's file-size limit
// (RLIMIT_FSIZE) to one byte, so every append to its Pebble files fails
// with EFBIG, as on a full disk. Charges must get 503 (or no answer once it
// has exited), never 201; orbitd must stop by itself and exit with an error;
// restarted with the limit gone, it holds every acknowledged charge exactly
// once and a retry of each failed one charges it at most once.
func TestFullDiskStopsOrbitd(t *testing.T) {
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("prlimit (util-linux) not installed")
	}
	s := testserver.Start(t)
	org := s.MustOrg(t, "Full disk", 10_000_000)
	c := s.Key(org.Key)
	acked := map[string]string{}
	for i := range 10 {
		ref := fmt.Sprint("before", i)
		acked[ref] = obj(t, c.Do("POST", "/api/v1/billing/charges", chargeBody(ref, 1000)).Expect(t, 201).Data(), "transaction")["id"].(string)
	}

	if out, err := exec.Command(prlimit, "--pid", fmt.Sprint(s.PID()), "--fsize=1").CombinedOutput(); err != nil {
		t.Skipf("prlimit refused: %v %s", err, out)
	}
	var failed []string
	for i := range 10 {
		ref := fmt.Sprint("during", i)
		r, err := c.TryDo("POST", "/api/v1/billing/charges", chargeBody(ref, 1000))
		switch {
		case i == 0 && (err != nil || r.Status != 503):
			// The first write meets the fault while the process is up.
			t.Fatalf("first charge on a full disk: %v %v, want 503", r, err)
		case err != nil: // the process has stopped
		case r.Status == 503:
		default:
			t.Fatalf("charge on a full disk: %d %s, want 503", r.Status, r.Body)
		}
		failed = append(failed, ref)
	}
	stopStart := time.Now()
	select {
	case <-s.Exited():
	case <-time.After(30 * time.Second):
		t.Fatalf("orbitd did not stop within 30 s of the storage fault; logs:\n%s", s.Logs())
	}
	t.Logf("orbitd stopped %v after the charges failed", time.Since(stopStart).Round(time.Millisecond))
	if logs := s.Logs(); !strings.Contains(logs, "orbitd: wal: storage fault") {
		t.Fatalf("orbitd did not exit with the storage fault; logs:\n%s", logs)
	}

	s.Kill() // reaped already; forget the old process
	s.Start()
	c = s.Key(org.Key)
	for ref, tx := range acked {
		r := c.Do("POST", "/api/v1/billing/charges", chargeBody(ref, 1000)).Expect(t, 200)
		if got := obj(t, r.Data(), "transaction")["id"]; got != tx {
			t.Fatalf("replay of %s after the restart: %v, want %s", ref, got, tx)
		}
	}
	for _, ref := range failed {
		if r := c.Do("POST", "/api/v1/billing/charges", chargeBody(ref, 1000)); r.Status != 201 && r.Status != 200 {
			t.Fatalf("retry of %s: %d %s", ref, r.Status, r.Body)
		}
	}
	l := readSpends(t, c)
	for ref, n := range l.refs {
		if n != 1 {
			t.Fatalf("%s charged %d times", ref, n)
		}
	}
	if len(l.refs) != len(acked)+len(failed) || l.spent != int64(1000*(len(acked)+len(failed))) {
		t.Fatalf("ledger: %d charges, %d spent; want %d charges", len(l.refs), l.spent, len(acked)+len(failed))
	}
	bal := c.Do("GET", "/api/v1/billing/balance", nil).Expect(t, 200).Data()
	if got := num(t, bal, "balance_micros"); got != 10_000_000-l.spent {
		t.Fatalf("balance %d, ledger says %d", got, 10_000_000-l.spent)
	}
}
