package raftstore

import (
	"bytes"
	"io"
)

// memSink is a raft.SnapshotSink in memory.
type memSink struct{ bytes.Buffer }

func (m *memSink) ID() string    { return "mem" }
func (m *memSink) Cancel() error { return nil }
func (m *memSink) Close() error  { return nil }

func (m *memSink) reader() io.ReadCloser { return io.NopCloser(bytes.NewReader(m.Bytes())) }
