package raftstore

import (
	"fmt"
	"testing"
	"time"
)

// TestRestartEmptiesRecoveryCache: recovery reads every org record and key
// once, through the state database's block cache; once raft has replayed
// its log the node empties that cache (an idle node has no use for those
// blocks), and the node still serves every org it recovered.
func TestRestartEmptiesRecoveryCache(t *testing.T) {
	dir := t.TempDir()
	n := mustOpen(t, dir, freeAddr(t))
	orgs := make([]string, 0, 200)
	for range 200 {
		orgs = append(orgs, mustFundedOrg(t, n, 1_000_000))
	}
	for i, org := range orgs[:50] {
		mustSubmit(t, n, charge(org, fmt.Sprint("c", i), 1_000))
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	n = mustOpen(t, dir, freeAddr(t))
	defer n.Close()
	select {
	case <-n.memoryReleased:
	case <-time.After(30 * time.Second):
		t.Fatal("start-up memory not released 30 s after open")
	}
	if size := n.stateCache.Size(); size != 0 {
		t.Fatalf("state block cache holds %d bytes after start-up, want 0", size)
	}
	for i, org := range orgs {
		w, ok := n.engine.Wallet(org)
		want := int64(1_000_000)
		if i < 50 {
			want -= 1_000
		}
		if !ok || w.BalanceMicros != want {
			t.Fatalf("org %d after restart: %+v %v, want balance %d", i, w, ok, want)
		}
	}
	mustAuditClean(t, n)
}

// TestStorageStats: the figures of both databases are read while the node
// is open (the log has been written and synced), and none after Close.
func TestStorageStats(t *testing.T) {
	n := mustOpen(t, t.TempDir(), freeAddr(t))
	mustFundedOrg(t, n, 1_000)
	stats := n.StorageStats()
	for _, db := range []string{"raft-log", "state"} {
		if s, ok := stats[db]; !ok || s.DiskBytes <= 0 {
			t.Fatalf("%s: %+v %v, want a database that takes disk", db, s, ok)
		}
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if stats := n.StorageStats(); stats != nil {
		t.Fatalf("stats after Close: %v", stats)
	}
}
