package wal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

func openTestDB(tb testing.TB, dir string) *pebble.DB {
	tb.Helper()
	db, err := Open(dir, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return db
}

func newTestStore(t *testing.T, group uint16) (*RaftStore, *pebble.DB) {
	t.Helper()
	db := openTestDB(t, t.TempDir())
	t.Cleanup(func() { db.Close() })
	return NewRaftStore(db, group), db
}

func mkLog(index, term uint64) *raft.Log {
	return &raft.Log{
		Index:      index,
		Term:       term,
		Type:       raft.LogCommand,
		Data:       []byte("charge-" + strconv.FormatUint(index, 10)),
		Extensions: []byte{byte(index)},
		AppendedAt: time.Unix(1700000000, int64(index)),
	}
}

func mkLogs(lo, hi, term uint64) []*raft.Log {
	var ls []*raft.Log
	for i := lo; i <= hi; i++ {
		ls = append(ls, mkLog(i, term))
	}
	return ls
}

func logsEqual(a, b *raft.Log) bool {
	return a.Index == b.Index && a.Term == b.Term && a.Type == b.Type &&
		bytes.Equal(a.Data, b.Data) && bytes.Equal(a.Extensions, b.Extensions) &&
		a.AppendedAt.Equal(b.AppendedAt)
}

func checkBounds(t *testing.T, s *RaftStore, first, last uint64) {
	t.Helper()
	f, err := s.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	if f != first || l != last {
		t.Fatalf("first/last = %d/%d, want %d/%d", f, l, first, last)
	}
}

func TestKeys(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want []byte
	}{
		{"log", raftLogKey(0x0102, 0x0a0b0c0d0e0f1011),
			[]byte{'r', '/', 1, 2, '/', 'l', '/', 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11}},
		{"log prefix", raftLogPrefix(7), []byte{'r', '/', 0, 7, '/', 'l', '/'}},
		{"stable", raftStableKey(0xffff, []byte("CurrentTerm")),
			append([]byte{'r', '/', 0xff, 0xff, '/', 's', '/'}, "CurrentTerm"...)},
		{"prefix end", keyPrefixEnd([]byte{'r', '/', 0, 7, '/', 'l', '/'}), []byte{'r', '/', 0, 7, '/', 'l', '0'}},
		{"prefix end carry", keyPrefixEnd([]byte{1, 0xff, 0xff}), []byte{2}},
		{"prefix end all ff", keyPrefixEnd([]byte{0xff}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !bytes.Equal(tt.got, tt.want) {
				t.Fatalf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
	// Index order is byte order.
	if bytes.Compare(raftLogKey(1, 255), raftLogKey(1, 256)) >= 0 {
		t.Fatal("log keys do not sort by index")
	}
	if idx, ok := raftLogIndex(raftLogKey(3, 42)); !ok || idx != 42 {
		t.Fatalf("raftLogIndex = %d, %v", idx, ok)
	}
}

func TestLogEncoding(t *testing.T) {
	tests := []struct {
		name string
		log  raft.Log
	}{
		{"zero", raft.Log{}},
		{"full", *mkLog(12345, 7)},
		{"max", raft.Log{Index: math.MaxUint64, Term: math.MaxUint64, Type: raft.LogConfiguration,
			Data: bytes.Repeat([]byte{0xab}, 70000), AppendedAt: time.Unix(0, math.MaxInt64)}},
		{"negative time", raft.Log{Index: 1, Term: 1, Type: raft.LogNoop, AppendedAt: time.Unix(-5, 3)}},
		{"extensions only", raft.Log{Index: 2, Term: 1, Extensions: []byte("x")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := appendLog(nil, &tt.log)
			if again := appendLog(nil, &tt.log); !bytes.Equal(enc, again) {
				t.Fatal("encoding not deterministic")
			}
			var got raft.Log
			if err := decodeLog(enc, &got); err != nil {
				t.Fatal(err)
			}
			if !logsEqual(&got, &tt.log) || got.AppendedAt.IsZero() != tt.log.AppendedAt.IsZero() {
				t.Fatalf("round trip: got %+v, want %+v", got, tt.log)
			}
			// Decoded slices are copies, and appending to Data must not clobber Extensions.
			clear(enc)
			if !logsEqual(&got, &tt.log) {
				t.Fatal("decoded log aliases its input")
			}
			if len(got.Data) > 0 && len(got.Extensions) > 0 {
				ext := bytes.Clone(got.Extensions)
				_ = append(got.Data, 0xee)
				if !bytes.Equal(got.Extensions, ext) {
					t.Fatal("append to Data overwrote Extensions")
				}
			}
		})
	}
	// Truncations and trailing garbage are corruption, not panics.
	enc := appendLog(nil, mkLog(9, 2))
	for i := range len(enc) {
		if err := decodeLog(enc[:i], new(raft.Log)); err == nil {
			t.Fatalf("decoding %d of %d bytes succeeded", i, len(enc))
		}
	}
	if err := decodeLog(append(enc, 0), new(raft.Log)); err == nil {
		t.Fatal("trailing byte accepted")
	}
}

func TestRaftStoreLog(t *testing.T) {
	tests := []struct {
		name        string
		ops         func(t *testing.T, s *RaftStore) error
		first, last uint64
		present     []uint64
		absent      []uint64
	}{
		{
			name:   "empty",
			ops:    func(*testing.T, *RaftStore) error { return nil },
			absent: []uint64{0, 1, math.MaxUint64},
		},
		{
			name:  "store one",
			ops:   func(_ *testing.T, s *RaftStore) error { return s.StoreLog(mkLog(1, 1)) },
			first: 1, last: 1,
			present: []uint64{1},
			absent:  []uint64{0, 2},
		},
		{
			name:  "store batch",
			ops:   func(_ *testing.T, s *RaftStore) error { return s.StoreLogs(mkLogs(1, 10, 1)) },
			first: 1, last: 10,
			present: []uint64{1, 5, 10},
			absent:  []uint64{11},
		},
		{
			name:  "store empty batch",
			ops:   func(_ *testing.T, s *RaftStore) error { return s.StoreLogs(nil) },
			first: 0, last: 0,
		},
		{
			name: "start above one",
			ops: func(_ *testing.T, s *RaftStore) error {
				return s.StoreLogs(mkLogs(1000, 1010, 3))
			},
			first: 1000, last: 1010,
			present: []uint64{1000, 1010},
			absent:  []uint64{1, 999, 1011},
		},
		{
			name: "delete head",
			ops: func(_ *testing.T, s *RaftStore) error {
				if err := s.StoreLogs(mkLogs(1, 10, 1)); err != nil {
					return err
				}
				return s.DeleteRange(1, 5)
			},
			first: 6, last: 10,
			present: []uint64{6, 10},
			absent:  []uint64{1, 5},
		},
		{
			name: "delete tail",
			ops: func(_ *testing.T, s *RaftStore) error {
				if err := s.StoreLogs(mkLogs(1, 10, 1)); err != nil {
					return err
				}
				return s.DeleteRange(6, 10)
			},
			first: 1, last: 5,
			present: []uint64{1, 5},
			absent:  []uint64{6, 10},
		},
		{
			name: "delete middle",
			ops: func(_ *testing.T, s *RaftStore) error {
				if err := s.StoreLogs(mkLogs(1, 10, 1)); err != nil {
					return err
				}
				return s.DeleteRange(3, 7)
			},
			first: 1, last: 10,
			present: []uint64{2, 8},
			absent:  []uint64{3, 5, 7},
		},
		{
			name: "delete all exactly",
			ops: func(_ *testing.T, s *RaftStore) error {
				if err := s.StoreLogs(mkLogs(1, 10, 1)); err != nil {
					return err
				}
				return s.DeleteRange(1, 10)
			},
			absent: []uint64{1, 10},
		},
		{
			name: "delete 0..max",
			ops: func(_ *testing.T, s *RaftStore) error {
				if err := s.StoreLogs(mkLogs(1, 10, 1)); err != nil {
					return err
				}
				return s.DeleteRange(0, math.MaxUint64)
			},
			absent: []uint64{1, 10},
		},
		{
			name: "delete tail to max then append",
			ops: func(_ *testing.T, s *RaftStore) error {
				if err := s.StoreLogs(mkLogs(1, 10, 1)); err != nil {
					return err
				}
				if err := s.DeleteRange(8, math.MaxUint64); err != nil {
					return err
				}
				return s.StoreLogs(mkLogs(8, 9, 2))
			},
			first: 1, last: 9,
			present: []uint64{1, 8, 9},
			absent:  []uint64{10},
		},
		{
			name: "delete outside range and inverted range",
			ops: func(_ *testing.T, s *RaftStore) error {
				if err := s.StoreLogs(mkLogs(5, 10, 1)); err != nil {
					return err
				}
				if err := s.DeleteRange(1, 4); err != nil {
					return err
				}
				if err := s.DeleteRange(11, 20); err != nil {
					return err
				}
				return s.DeleteRange(9, 6)
			},
			first: 5, last: 10,
			present: []uint64{5, 6, 9, 10},
		},
		{
			name: "gap then delete head",
			ops: func(_ *testing.T, s *RaftStore) error {
				if err := s.StoreLogs(mkLogs(1, 5, 1)); err != nil {
					return err
				}
				if err := s.StoreLogs(mkLogs(20, 22, 2)); err != nil {
					return err
				}
				return s.DeleteRange(1, 10)
			},
			first: 20, last: 22,
			present: []uint64{20, 22},
			absent:  []uint64{1, 5, 10},
		},
		{
			name: "gap then delete tail",
			ops: func(_ *testing.T, s *RaftStore) error {
				if err := s.StoreLogs(mkLogs(1, 5, 1)); err != nil {
					return err
				}
				if err := s.StoreLogs(mkLogs(20, 22, 2)); err != nil {
					return err
				}
				return s.DeleteRange(10, 30)
			},
			first: 1, last: 5,
			present: []uint64{1, 5},
			absent:  []uint64{20},
		},
		{
			name: "overwrite after truncation",
			ops: func(t *testing.T, s *RaftStore) error {
				if err := s.StoreLogs(mkLogs(1, 10, 1)); err != nil {
					return err
				}
				if err := s.DeleteRange(5, 10); err != nil {
					return err
				}
				if err := s.StoreLogs(mkLogs(5, 6, 9)); err != nil {
					return err
				}
				var l raft.Log
				if err := s.GetLog(5, &l); err != nil {
					return err
				}
				if l.Term != 9 {
					t.Errorf("term of overwritten entry = %d, want 9", l.Term)
				}
				return nil
			},
			first: 1, last: 6,
			present: []uint64{1, 5, 6},
			absent:  []uint64{7},
		},
		{
			name: "groups are isolated",
			ops: func(t *testing.T, s *RaftStore) error {
				other := NewRaftStore(s.db, s.group+1)
				if err := other.StoreLogs(mkLogs(1, 100, 1)); err != nil {
					return err
				}
				if err := s.StoreLogs(mkLogs(3, 4, 1)); err != nil {
					return err
				}
				if err := other.DeleteRange(0, math.MaxUint64); err != nil {
					return err
				}
				checkBounds(t, other, 0, 0)
				return nil
			},
			first: 3, last: 4,
			present: []uint64{3, 4},
			absent:  []uint64{1, 5},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, db := newTestStore(t, 1)
			if err := tt.ops(t, s); err != nil {
				t.Fatal(err)
			}
			check := func(t *testing.T, s *RaftStore) {
				t.Helper()
				checkBounds(t, s, tt.first, tt.last)
				for _, i := range tt.present {
					var l raft.Log
					if err := s.GetLog(i, &l); err != nil {
						t.Fatalf("GetLog(%d): %v", i, err)
					}
					if want := mkLog(i, l.Term); !logsEqual(&l, want) {
						t.Fatalf("GetLog(%d) = %+v, want %+v", i, l, want)
					}
				}
				for _, i := range tt.absent {
					if err := s.GetLog(i, new(raft.Log)); err != raft.ErrLogNotFound {
						t.Fatalf("GetLog(%d) = %v, want raft.ErrLogNotFound", i, err)
					}
				}
			}
			check(t, s)
			// The cached bounds match what a fresh seek finds.
			check(t, NewRaftStore(db, 1))
		})
	}
}

func TestStableStore(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, s *RaftStore)
	}{
		{"missing Get is nil, nil", func(t *testing.T, s *RaftStore) {
			v, err := s.Get([]byte("LastVoteCand"))
			if v != nil || err != nil {
				t.Fatalf("Get = %q, %v; want nil, nil", v, err)
			}
		}},
		{"missing GetUint64 is 0, nil", func(t *testing.T, s *RaftStore) {
			v, err := s.GetUint64([]byte("CurrentTerm"))
			if v != 0 || err != nil {
				t.Fatalf("GetUint64 = %d, %v; want 0, nil", v, err)
			}
		}},
		{"set get", func(t *testing.T, s *RaftStore) {
			if err := s.Set([]byte("k"), []byte("value")); err != nil {
				t.Fatal(err)
			}
			v, err := s.Get([]byte("k"))
			if err != nil || string(v) != "value" {
				t.Fatalf("Get = %q, %v", v, err)
			}
		}},
		{"empty value is not missing", func(t *testing.T, s *RaftStore) {
			if err := s.Set([]byte("k"), nil); err != nil {
				t.Fatal(err)
			}
			v, err := s.Get([]byte("k"))
			if err != nil || v == nil || len(v) != 0 {
				t.Fatalf("Get = %#v, %v; want empty non-nil", v, err)
			}
		}},
		{"uint64", func(t *testing.T, s *RaftStore) {
			for _, want := range []uint64{0, 1, 1 << 40, math.MaxUint64} {
				if err := s.SetUint64([]byte("CurrentTerm"), want); err != nil {
					t.Fatal(err)
				}
				got, err := s.GetUint64([]byte("CurrentTerm"))
				if err != nil || got != want {
					t.Fatalf("GetUint64 = %d, %v; want %d", got, err, want)
				}
			}
		}},
		{"GetUint64 of non-uint64 value errors", func(t *testing.T, s *RaftStore) {
			if err := s.Set([]byte("k"), []byte("abc")); err != nil {
				t.Fatal(err)
			}
			if _, err := s.GetUint64([]byte("k")); err == nil {
				t.Fatal("no error")
			}
		}},
		{"returned value is a copy", func(t *testing.T, s *RaftStore) {
			if err := s.Set([]byte("k"), []byte("value")); err != nil {
				t.Fatal(err)
			}
			v, _ := s.Get([]byte("k"))
			copy(v, "XXXXX")
			if err := s.Set([]byte("k2"), []byte("other")); err != nil {
				t.Fatal(err)
			}
			v2, _ := s.Get([]byte("k"))
			if string(v2) != "value" {
				t.Fatalf("Get after mutating earlier result = %q", v2)
			}
		}},
		{"groups and log keyspace are isolated", func(t *testing.T, s *RaftStore) {
			other := NewRaftStore(s.db, s.group+1)
			if err := other.SetUint64([]byte("CurrentTerm"), 5); err != nil {
				t.Fatal(err)
			}
			if v, err := s.GetUint64([]byte("CurrentTerm")); v != 0 || err != nil {
				t.Fatalf("GetUint64 = %d, %v", v, err)
			}
			if err := s.Set([]byte("x"), []byte("y")); err != nil {
				t.Fatal(err)
			}
			checkBounds(t, NewRaftStore(s.db, s.group), 0, 0)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestStore(t, 2)
			tt.run(t, s)
		})
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	db := openTestDB(t, dir)
	s := NewRaftStore(db, 3)
	if err := s.StoreLogs(mkLogs(1, 50, 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs(mkLogs(51, 60, 2)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(1, 20); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 2); err != nil {
		t.Fatal(err)
	}
	if err := s.Set([]byte("LastVoteCand"), []byte("node-1")); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openTestDB(t, dir)
	defer db.Close()
	s = NewRaftStore(db, 3)
	checkBounds(t, s, 21, 60)
	for i := uint64(21); i <= 60; i++ {
		var l raft.Log
		if err := s.GetLog(i, &l); err != nil {
			t.Fatalf("GetLog(%d): %v", i, err)
		}
		term := uint64(1)
		if i > 50 {
			term = 2
		}
		if want := mkLog(i, term); !logsEqual(&l, want) {
			t.Fatalf("GetLog(%d) = %+v, want %+v", i, l, want)
		}
	}
	if err := s.GetLog(20, new(raft.Log)); err != raft.ErrLogNotFound {
		t.Fatalf("GetLog(20) = %v", err)
	}
	if v, err := s.GetUint64([]byte("CurrentTerm")); v != 2 || err != nil {
		t.Fatalf("CurrentTerm = %d, %v", v, err)
	}
	if v, err := s.Get([]byte("LastVoteCand")); string(v) != "node-1" || err != nil {
		t.Fatalf("LastVoteCand = %q, %v", v, err)
	}
	checkBounds(t, NewRaftStore(db, 4), 0, 0)
}

func TestConcurrentStoreAndDelete(t *testing.T) {
	// Raft appends from its main goroutine while compacting from the snapshot
	// goroutine; the cached bounds must end up exact.
	s, db := newTestStore(t, 5)
	const n = 2000
	var wg sync.WaitGroup
	wg.Add(2)
	errc := make(chan error, 2)
	go func() {
		defer wg.Done()
		for i := uint64(1); i <= n; i += 10 {
			if err := s.StoreLogs(mkLogs(i, i+9, 1)); err != nil {
				errc <- err
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := uint64(100); i <= n-100; i += 100 {
			if err := s.DeleteRange(0, i); err != nil {
				errc <- err
				return
			}
		}
	}()
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	fresh := NewRaftStore(db, 5)
	f, _ := fresh.FirstIndex()
	l, _ := fresh.LastIndex()
	if l != n {
		t.Fatalf("last = %d, want %d", l, n)
	}
	checkBounds(t, s, f, l)
}

// countingFSM counts applied commands.
type countingFSM struct {
	mu   sync.Mutex
	n    int
	last []byte
}

func (f *countingFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	f.last = bytes.Clone(l.Data)
	return f.n
}

func (f *countingFSM) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

func (f *countingFSM) Snapshot() (raft.FSMSnapshot, error) { return noopSnapshot{}, nil }
func (f *countingFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }

type noopSnapshot struct{}

func (noopSnapshot) Persist(sink raft.SnapshotSink) error { return sink.Close() }
func (noopSnapshot) Release()                             {}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRaftIntegration(t *testing.T) {
	dir := t.TempDir()
	snapDir := t.TempDir()
	const id = raft.ServerID("node-1")

	start := func(t *testing.T, s *RaftStore, fsm raft.FSM) (*raft.Raft, *raft.InmemTransport) {
		t.Helper()
		conf := raft.DefaultConfig()
		conf.LocalID = id
		conf.HeartbeatTimeout = 50 * time.Millisecond
		conf.ElectionTimeout = 50 * time.Millisecond
		conf.LeaderLeaseTimeout = 50 * time.Millisecond
		conf.CommitTimeout = 5 * time.Millisecond
		conf.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Output: io.Discard})
		snaps, err := raft.NewFileSnapshotStore(snapDir, 1, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		addr, trans := raft.NewInmemTransport(raft.ServerAddress(id))
		r, err := raft.NewRaft(conf, fsm, s, s, snaps, trans)
		if err != nil {
			t.Fatalf("NewRaft: %v", err)
		}
		existing, err := raft.HasExistingState(s, s, snaps)
		if err != nil {
			t.Fatal(err)
		}
		if !existing {
			f := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{ID: id, Address: addr}}})
			if err := f.Error(); err != nil {
				t.Fatalf("bootstrap: %v", err)
			}
		}
		waitFor(t, "leadership", func() bool { return r.State() == raft.Leader })
		return r, trans
	}
	stop := func(t *testing.T, r *raft.Raft, trans *raft.InmemTransport) {
		t.Helper()
		if err := r.Shutdown().Error(); err != nil {
			t.Fatal(err)
		}
		trans.Close()
	}

	// First life: bootstrap, elect, apply 100 commands.
	db := openTestDB(t, dir)
	s := NewRaftStore(db, 0)
	fsm := &countingFSM{}
	r, trans := start(t, s, fsm)
	for i := range 100 {
		if err := r.Apply([]byte(fmt.Sprintf("charge-%d", i)), 5*time.Second).Error(); err != nil {
			t.Fatalf("apply %d: %v", i, err)
		}
	}
	if fsm.count() != 100 {
		t.Fatalf("fsm applied %d, want 100", fsm.count())
	}
	term, err := s.GetUint64([]byte("CurrentTerm"))
	if err != nil || term == 0 {
		t.Fatalf("CurrentTerm = %d, %v", term, err)
	}
	lastBefore, _ := s.LastIndex()
	stop(t, r, trans)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// Second life: everything is read back from Pebble.
	db = openTestDB(t, dir)
	defer db.Close()
	s = NewRaftStore(db, 0)
	last, err := s.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	if last < 100 || last != lastBefore {
		t.Fatalf("LastIndex after reopen = %d, before = %d, want >= 100", last, lastBefore)
	}
	if first, _ := s.FirstIndex(); first != 1 {
		t.Fatalf("FirstIndex after reopen = %d, want 1", first)
	}
	if got, err := s.GetUint64([]byte("CurrentTerm")); got != term || err != nil {
		t.Fatalf("CurrentTerm after reopen = %d, %v; want %d", got, err, term)
	}
	var lastLog raft.Log
	if err := s.GetLog(last, &lastLog); err != nil {
		t.Fatal(err)
	}
	if lastLog.Term != term || string(lastLog.Data) != "charge-99" {
		t.Fatalf("last log = term %d data %q, want term %d charge-99", lastLog.Term, lastLog.Data, term)
	}

	fsm = &countingFSM{}
	r, trans = start(t, s, fsm)
	defer stop(t, r, trans)
	if got := r.LastIndex(); got < last {
		t.Fatalf("raft LastIndex after restart = %d, want >= %d", got, last)
	}
	// With no snapshot, the new leader re-applies the whole committed log.
	if err := r.Barrier(5 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	if fsm.count() != 100 {
		t.Fatalf("fsm re-applied %d commands, want 100", fsm.count())
	}
	if newTerm, _ := s.GetUint64([]byte("CurrentTerm")); newTerm <= term {
		t.Fatalf("term after re-election = %d, want > %d", newTerm, term)
	}
	cf := r.GetConfiguration()
	if err := cf.Error(); err != nil {
		t.Fatal(err)
	}
	if srv := cf.Configuration().Servers; len(srv) != 1 || srv[0].ID != id {
		t.Fatalf("configuration after restart = %+v", srv)
	}
}

func TestGetLogErrorIsExact(t *testing.T) {
	s, _ := newTestStore(t, 6)
	err := s.GetLog(1, new(raft.Log))
	if err != raft.ErrLogNotFound || !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("err = %v", err)
	}
}

func BenchmarkStoreLogs(b *testing.B) {
	for _, batch := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d/entry=8KiB", batch), func(b *testing.B) {
			db := openTestDB(b, b.TempDir())
			defer db.Close()
			s := NewRaftStore(db, 1)
			data := bytes.Repeat([]byte{0x5a}, 8<<10)
			logs := make([]*raft.Log, batch)
			for i := range logs {
				logs[i] = &raft.Log{Term: 1, Type: raft.LogCommand, Data: data, AppendedAt: time.Now()}
			}
			b.SetBytes(int64(batch * len(data)))
			b.ReportAllocs()
			next := uint64(1)
			for b.Loop() {
				for _, l := range logs {
					l.Index = next
					next++
				}
				if err := s.StoreLogs(logs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(next-1)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

func TestOpenLogsThroughSlog(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	h := slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug})
	dir := t.TempDir()
	for range 2 { // the second open replays the WAL, which Pebble logs
		db, err := Open(dir, slog.New(h))
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Set([]byte("k"), []byte("v"), pebble.Sync); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !bytes.Contains(buf.Bytes(), []byte("component=pebble")) {
		t.Fatalf("no pebble log records through slog; got %q", buf.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
