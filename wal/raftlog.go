package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
)

// RaftStore is the raft.LogStore and raft.StableStore of one Raft group,
// kept in the group's slice of the raft keyspace of a shared Pebble DB.
//
// Every write (StoreLog, StoreLogs, DeleteRange, Set, SetUint64) is committed
// with pebble.Sync: once it returns nil the data survives a crash.
//
// It is safe for concurrent use. The DB is owned by the caller, who closes
// it after the raft.Raft using this store has shut down.
type RaftStore struct {
	db    *pebble.DB
	group uint16

	logLower []byte // r/<group>/l/, inclusive lower bound of log keys
	logUpper []byte // exclusive upper bound of log keys

	// writeMu serialises log writes with the maintenance of first/last, so
	// that a DeleteRange (raft's snapshot goroutine) and a StoreLogs (raft's
	// main goroutine) cannot leave the cached bounds stale.
	writeMu sync.Mutex
	first   atomic.Uint64 // smallest stored index, 0 if empty
	last    atomic.Uint64 // largest stored index, 0 if empty

	// initErr is set if the bounds could not be read at construction; every
	// method then fails with it rather than report an empty log.
	initErr error
}

var (
	_ raft.LogStore    = (*RaftStore)(nil)
	_ raft.StableStore = (*RaftStore)(nil)
)

// NewRaftStore returns the store of Raft group group in db. It seeks the
// first and last stored log index once; if that fails, every method of the
// returned store returns the error.
func NewRaftStore(db *pebble.DB, group uint16) *RaftStore {
	lower := raftLogPrefix(group)
	s := &RaftStore{
		db:       db,
		group:    group,
		logLower: lower,
		logUpper: keyPrefixEnd(lower),
	}
	first, err := s.seekIndex(false)
	if err == nil {
		var last uint64
		last, err = s.seekIndex(true)
		s.first.Store(first)
		s.last.Store(last)
	}
	if err != nil {
		s.initErr = fmt.Errorf("wal: raft group %d: reading log bounds: %w", group, err)
	}
	return s
}

// FirstIndex returns the first index written, 0 for no entries.
func (s *RaftStore) FirstIndex() (uint64, error) {
	if s.initErr != nil {
		return 0, s.initErr
	}
	return s.first.Load(), nil
}

// LastIndex returns the last index written, 0 for no entries.
func (s *RaftStore) LastIndex() (uint64, error) {
	if s.initErr != nil {
		return 0, s.initErr
	}
	return s.last.Load(), nil
}

// GetLog gets the log entry at index; raft.ErrLogNotFound if there is none.
func (s *RaftStore) GetLog(index uint64, log *raft.Log) error {
	if s.initErr != nil {
		return s.initErr
	}
	val, closer, err := s.db.Get(raftLogKey(s.group, index))
	if errors.Is(err, pebble.ErrNotFound) {
		return raft.ErrLogNotFound
	}
	if err != nil {
		return fmt.Errorf("wal: raft group %d: get log %d: %w", s.group, index, err)
	}
	// decodeLog copies: val is only valid until closer.Close.
	err = decodeLog(val, log)
	if cerr := closer.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("wal: raft group %d: log %d: %w", s.group, index, err)
	}
	if log.Index != index {
		return fmt.Errorf("wal: raft group %d: log key %d holds entry with index %d", s.group, index, log.Index)
	}
	return nil
}

// StoreLog stores a log entry, durably.
func (s *RaftStore) StoreLog(log *raft.Log) error {
	return s.StoreLogs([]*raft.Log{log})
}

// StoreLogs stores log entries in one batch, committed with pebble.Sync:
// either all of them are durable when it returns nil, or none is visible.
func (s *RaftStore) StoreLogs(logs []*raft.Log) (err error) {
	// A failed WAL write or sync surfaces as a *FatalError panic when the DB
	// was opened with Options.OnFatal: return it, so raft fails the waiting
	// requests instead of acknowledging them.
	defer CatchFatal(&err)
	if s.initErr != nil {
		return s.initErr
	}
	if len(logs) == 0 {
		return nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	var buf []byte
	lo, hi := uint64(math.MaxUint64), uint64(0)
	for _, l := range logs {
		buf = appendLog(buf[:0], l)
		// Batch.Set copies key and value into the batch.
		if err := b.Set(raftLogKey(s.group, l.Index), buf, nil); err != nil {
			return fmt.Errorf("wal: raft group %d: batch log %d: %w", s.group, l.Index, err)
		}
		lo, hi = min(lo, l.Index), max(hi, l.Index)
	}

	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("wal: raft group %d: commit logs %d..%d: %w", s.group, lo, hi, err)
	}
	// Stores only add keys, so the new bounds are exact.
	if f := s.first.Load(); f == 0 || lo < f {
		s.first.Store(lo)
	}
	if hi > s.last.Load() {
		s.last.Store(hi)
	}
	return nil
}

// DeleteRange deletes the log entries with minIdx <= index <= maxIdx, durably.
func (s *RaftStore) DeleteRange(minIdx, maxIdx uint64) (err error) {
	defer CatchFatal(&err)
	if s.initErr != nil {
		return s.initErr
	}
	if minIdx > maxIdx {
		return nil
	}
	start := raftLogKey(s.group, minIdx)
	end := s.logUpper
	if maxIdx < math.MaxUint64 {
		end = raftLogKey(s.group, maxIdx+1)
	}

	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.db.DeleteRange(start, end, pebble.Sync); err != nil {
		return fmt.Errorf("wal: raft group %d: delete logs %d..%d: %w", s.group, minIdx, maxIdx, err)
	}
	first, last := s.first.Load(), s.last.Load()
	switch {
	case first == 0 || maxIdx < first || minIdx > last:
		// Nothing stored in the range.
	case minIdx <= first && maxIdx >= last:
		s.first.Store(0)
		s.last.Store(0)
	default:
		// Only re-seek the bound that was deleted; the log may have gaps, so
		// maxIdx+1 / minIdx-1 are not necessarily stored.
		if minIdx <= first {
			f, err := s.seekIndex(false)
			if err != nil {
				return err
			}
			s.first.Store(f)
		}
		if maxIdx >= last {
			l, err := s.seekIndex(true)
			if err != nil {
				return err
			}
			s.last.Store(l)
		}
	}
	return nil
}

// seekIndex returns the first (or last) stored log index, 0 if none.
func (s *RaftStore) seekIndex(last bool) (idx uint64, err error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: s.logLower, UpperBound: s.logUpper})
	if err != nil {
		return 0, err
	}
	defer func() {
		if cerr := it.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	var ok bool
	if last {
		ok = it.Last()
	} else {
		ok = it.First()
	}
	if !ok {
		return 0, it.Error()
	}
	idx, valid := raftLogIndex(it.Key())
	if !valid {
		return 0, fmt.Errorf("wal: raft group %d: malformed log key %x", s.group, it.Key())
	}
	return idx, nil
}

// Set stores key=val in the group's stable store, durably.
func (s *RaftStore) Set(key []byte, val []byte) (err error) {
	defer CatchFatal(&err)
	if s.initErr != nil {
		return s.initErr
	}
	if err := s.db.Set(raftStableKey(s.group, key), val, pebble.Sync); err != nil {
		return fmt.Errorf("wal: raft group %d: set %q: %w", s.group, key, err)
	}
	return nil
}

// Get returns the value of key, or (nil, nil) if it is not set. (Raft
// accepts nil+nil or an error reading exactly "not found"; pebble's
// ErrNotFound reads "pebble: not found" and would break raft.NewRaft.)
// A key set to an empty value returns a non-nil empty slice.
func (s *RaftStore) Get(key []byte) ([]byte, error) {
	if s.initErr != nil {
		return nil, s.initErr
	}
	val, closer, err := s.db.Get(raftStableKey(s.group, key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("wal: raft group %d: get %q: %w", s.group, key, err)
	}
	out := append(make([]byte, 0, len(val)), val...)
	if err := closer.Close(); err != nil {
		return nil, err
	}
	return out, nil
}

// SetUint64 stores key=val (8 bytes big endian), durably.
func (s *RaftStore) SetUint64(key []byte, val uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

// GetUint64 returns the value of key, or (0, nil) if it is not set.
func (s *RaftStore) GetUint64(key []byte) (uint64, error) {
	val, err := s.Get(key)
	if err != nil || val == nil {
		return 0, err
	}
	if len(val) != 8 {
		return 0, fmt.Errorf("wal: raft group %d: %q holds %d bytes, not a uint64", s.group, key, len(val))
	}
	return binary.BigEndian.Uint64(val), nil
}

// Log entry encoding, version 1:
//
//	version    byte (1)
//	index      uvarint
//	term       uvarint
//	type       byte
//	appendedAt varint unix nanos (0 = zero time)
//	data       uvarint length, bytes
//	extensions uvarint length, bytes
//
// Empty Data/Extensions decode as nil.
const logEncodingV1 byte = 1

var errCorruptLog = errors.New("corrupt raft log entry")

func appendLog(b []byte, l *raft.Log) []byte {
	var at int64
	if !l.AppendedAt.IsZero() {
		at = l.AppendedAt.UnixNano()
	}
	b = append(b, logEncodingV1)
	b = binary.AppendUvarint(b, l.Index)
	b = binary.AppendUvarint(b, l.Term)
	b = append(b, byte(l.Type))
	b = binary.AppendVarint(b, at)
	b = binary.AppendUvarint(b, uint64(len(l.Data)))
	b = append(b, l.Data...)
	b = binary.AppendUvarint(b, uint64(len(l.Extensions)))
	b = append(b, l.Extensions...)
	return b
}

// decodeLog decodes val into l. Data and Extensions are copied out of val
// (into one allocation, each capped so appends cannot overlap).
func decodeLog(val []byte, l *raft.Log) error {
	if len(val) == 0 || val[0] != logEncodingV1 {
		return fmt.Errorf("%w: unknown encoding version", errCorruptLog)
	}
	p := val[1:]
	uvarint := func() (uint64, bool) {
		v, n := binary.Uvarint(p)
		if n <= 0 {
			return 0, false
		}
		p = p[n:]
		return v, true
	}
	index, ok1 := uvarint()
	term, ok2 := uvarint()
	if !ok1 || !ok2 || len(p) == 0 {
		return errCorruptLog
	}
	typ := raft.LogType(p[0])
	p = p[1:]
	at, n := binary.Varint(p)
	if n <= 0 {
		return errCorruptLog
	}
	p = p[n:]
	dataLen, ok := uvarint()
	if !ok || dataLen > uint64(len(p)) {
		return errCorruptLog
	}
	dataRaw := p[:dataLen]
	p = p[dataLen:]
	extLen, ok := uvarint()
	if !ok || extLen != uint64(len(p)) {
		return errCorruptLog
	}
	extRaw := p

	*l = raft.Log{Index: index, Term: term, Type: typ}
	if at != 0 {
		l.AppendedAt = time.Unix(0, at)
	}
	if total := len(dataRaw) + len(extRaw); total > 0 {
		buf := make([]byte, total)
		copy(buf, dataRaw)
		copy(buf[len(dataRaw):], extRaw)
		if len(dataRaw) > 0 {
			l.Data = buf[:len(dataRaw):len(dataRaw)]
		}
		if len(extRaw) > 0 {
			l.Extensions = buf[len(dataRaw):]
		}
	}
	return nil
}
