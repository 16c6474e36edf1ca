package raftstore

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orbit/orbit/engine"
)

// BenchmarkDurableCharges measures the whole in-process write path
// (admission, proposer, raft with the fsynced Pebble log, FSM, engine,
// state write) with many concurrent submitters, so the proposer groups
// their charges into shared log entries.
func BenchmarkDurableCharges(b *testing.B) {
	for _, clients := range []int{1, 64, 512} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) { benchDurable(b, clients, 1) })
	}
}

// BenchmarkDurableChargeBatches submits requests of 100 charges each, as
// /charges/batch does.
func BenchmarkDurableChargeBatches(b *testing.B) {
	benchDurable(b, 16, 100)
}

func benchDurable(b *testing.B, clients, perRequest int) {
	n := mustOpen(b, b.TempDir(), freeAddr(b))
	defer n.Close()
	benchDurableOn(b, n, clients, perRequest)
}

func benchDurableOn(b *testing.B, n *Node, clients, perRequest int) {
	const orgs = 100
	var ids []string
	for i := 0; i < orgs; i++ {
		ids = append(ids, mustFundedOrg(b, n, engine.MaxAmountMicros))
	}
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmds := make([]engine.Command, perRequest)
			for {
				base := next.Add(int64(perRequest)) - int64(perRequest)
				if base >= int64(b.N) {
					return
				}
				for j := range cmds {
					i := base + int64(j)
					cmds[j] = charge(ids[i%orgs], fmt.Sprint("c", i), 1000)
				}
				res, err := n.Submit(context.Background(), cmds)
				if err != nil {
					b.Error(err)
					return
				}
				if res[0].Code != engine.CodeOK {
					b.Errorf("charge: %v", res[0].Code)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "charges/s")
}
