package wal

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/cockroachdb/pebble/v2"
)

// A state snapshot is every key outside the raft keyspace, streamed as
// (uvarint key length, key, uvarint value length, value) records after a
// magic header. Raft snapshots of Orbit carry the whole ledger, so they are
// taken rarely (see raftstore's SnapshotThreshold).

const snapshotMagic = "orbit-state-v1\n"

// StateSnapshot is an immutable view of the state at one moment.
type StateSnapshot struct {
	snap *pebble.Snapshot
}

// Snapshot makes every write so far durable, then takes an immutable view
// that Persist can stream while Apply goes on.
func (s *State) Snapshot() (*StateSnapshot, error) {
	if err := s.Sync(); err != nil {
		return nil, fmt.Errorf("wal: sync before snapshot: %w", err)
	}
	return &StateSnapshot{snap: s.db.NewSnapshot()}, nil
}

// WriteTo streams the snapshot's state keys to w.
func (ss *StateSnapshot) WriteTo(w io.Writer) (int64, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	var n int64
	if _, err := bw.WriteString(snapshotMagic); err != nil {
		return n, err
	}
	n += int64(len(snapshotMagic))
	write := func(lower, upper []byte) error {
		it, err := ss.snap.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
		if err != nil {
			return err
		}
		defer it.Close()
		var hdr [binary.MaxVarintLen64]byte
		for it.First(); it.Valid(); it.Next() {
			v, err := it.ValueAndErr()
			if err != nil {
				return err
			}
			for _, b := range [][]byte{it.Key(), v} {
				m := binary.PutUvarint(hdr[:], uint64(len(b)))
				if _, err := bw.Write(hdr[:m]); err != nil {
					return err
				}
				if _, err := bw.Write(b); err != nil {
					return err
				}
				n += int64(m + len(b))
			}
		}
		return it.Error()
	}
	if err := write(nil, []byte{prefixRaft}); err != nil {
		return n, err
	}
	if err := write([]byte{prefixRaft + 1}, nil); err != nil {
		return n, err
	}
	return n, bw.Flush()
}

// Close releases the snapshot.
func (ss *StateSnapshot) Close() error { return ss.snap.Close() }

// Restore replaces every state key with the snapshot read from r, durably.
// The raft keyspace is left alone.
func (s *State) Restore(r io.Reader) error {
	s.usage.reset() // every stored row is about to be replaced
	br := bufio.NewReaderSize(r, 1<<20)
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != snapshotMagic {
		return fmt.Errorf("wal: not an orbit state snapshot")
	}
	b := s.db.NewBatch()
	if err := b.DeleteRange([]byte{0}, []byte{prefixRaft}, nil); err != nil {
		return err
	}
	if err := b.DeleteRange([]byte{prefixRaft + 1}, []byte{0xff, 0xff, 0xff, 0xff}, nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return err
	}
	b.Close()
	b = s.db.NewBatch()
	readBytes := func() ([]byte, error) {
		l, err := binary.ReadUvarint(br)
		if err != nil {
			return nil, err
		}
		if l > 64<<20 {
			return nil, fmt.Errorf("wal: snapshot record of %d bytes", l)
		}
		buf := make([]byte, l)
		_, err = io.ReadFull(br, buf)
		return buf, err
	}
	for {
		k, err := readBytes()
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Close()
			return fmt.Errorf("wal: read snapshot: %w", err)
		}
		v, err := readBytes()
		if err != nil {
			b.Close()
			return fmt.Errorf("wal: read snapshot: %w", err)
		}
		if err := b.Set(k, v, nil); err != nil {
			b.Close()
			return err
		}
		if b.Len() > 16<<20 {
			if err := b.Commit(pebble.NoSync); err != nil {
				b.Close()
				return err
			}
			b.Close()
			b = s.db.NewBatch()
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		b.Close()
		return err
	}
	if err := b.Close(); err != nil {
		return err
	}
	return s.startRefFilter()
}
