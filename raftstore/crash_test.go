package raftstore

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orbit/orbit/engine"
)

// The crash test runs the pipeline in a child process (this test binary,
// re-executed), which writes charges from many goroutines and prints every
// acknowledged one; the parent kills it with SIGKILL mid-load, reopens the
// same directory, and requires every acknowledged charge exactly once and
// every balance equal to its ledger.

const crashDirEnv = "ORBIT_CRASH_CHILD_DIR"

func TestCrashRecoveryKill9(t *testing.T) {
	for round := 1; round <= 3; round++ {
		t.Run(fmt.Sprint("round", round), func(t *testing.T) { crashRound(t) })
	}
}

func crashRound(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, "ORBIT_CRASH_CHILD_RAFT="+addr)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	type ack struct{ org, ref string }
	var acks []ack
	orgs := map[string]int64{}
	lines := bufio.NewScanner(out)
	deadline := time.Now().Add(20 * time.Second)
	killed := false
	for lines.Scan() {
		f := strings.Fields(lines.Text())
		switch {
		case len(f) == 3 && f[0] == "org":
			var fund int64
			fmt.Sscan(f[2], &fund)
			orgs[f[1]] = fund
		case len(f) == 3 && f[0] == "ack":
			acks = append(acks, ack{f[1], f[2]})
		}
		if !killed && (len(acks) >= 400 || time.Now().After(deadline)) {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			killed = true
		}
	}
	_ = cmd.Wait()
	if !killed {
		t.Fatalf("child ended before it was killed (acks: %d)", len(acks))
	}
	if len(acks) == 0 {
		t.Fatal("child acknowledged nothing before the kill")
	}

	n := mustOpen(t, dir, addr)
	defer n.Close()
	mustAuditClean(t, n)
	for org := range orgs {
		seen := map[string]int{}
		q := engine.TxQuery{Limit: 100}
		for {
			page, more, err := n.Transactions(org, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page {
				seen[e.Reference]++
				q.BeforeID = e.ID
			}
			if !more {
				break
			}
		}
		for ref, c := range seen {
			if c != 1 {
				t.Fatalf("reference %s applied %d times", ref, c)
			}
		}
		for _, a := range acks {
			if a.org == org && seen["charge:"+a.ref] != 1 {
				t.Fatalf("acknowledged charge %s of %s lost after kill -9", a.ref, org)
			}
		}
		if w, _ := n.Wallet(org); w.BalanceMicros < 0 {
			t.Fatalf("negative balance %d", w.BalanceMicros)
		}
	}
	t.Logf("%d acknowledged charges survived kill -9", len(acks))
}

// TestMain runs the crash child instead of the tests when re-executed by
// the crash test.
func TestMain(m *testing.M) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		crashChild(dir)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashChild is the child side: it ends by being killed, or after a bounded
// load.
func crashChild(dir string) {
	t := &childT{}
	n := mustOpen(t, dir, os.Getenv("ORBIT_CRASH_CHILD_RAFT"))
	const orgCount, fund = 3, 50_000_000
	var orgs []string
	for i := 0; i < orgCount; i++ {
		org := mustFundedOrg(t, n, fund)
		orgs = append(orgs, org)
		fmt.Printf("org %s %d\n", org, fund)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 5000; i++ {
				org := orgs[(w+i)%orgCount]
				ref := fmt.Sprintf("w%d-%d", w, i)
				c := charge(org, ref, 1000+int64(i%7))
				// Send each charge twice: the retry must replay, never charge again.
				for try := 0; try < 2; try++ {
					res, err := n.Submit(context.Background(), []engine.Command{c})
					if err != nil {
						continue
					}
					if res[0].Code == engine.CodeOK || res[0].Code == engine.CodeReplayed {
						mu.Lock()
						fmt.Printf("ack %s %s\n", org, ref)
						mu.Unlock()
					}
				}
			}
		}(w)
	}
	wg.Wait()
}

// childT lets the test helpers run in the child, where any failure ends the
// process (the parent then sees it end before the kill and fails).
type childT struct{ testing.TB }

func (c *childT) Helper() {}
func (c *childT) Fatal(args ...any) {
	fmt.Fprintln(os.Stderr, args...)
	os.Exit(3)
}
func (c *childT) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(3)
}
func (c *childT) Error(args ...any) { c.Fatal(args...) }
