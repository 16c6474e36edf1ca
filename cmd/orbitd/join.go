package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// joinCluster asks a member (any node: followers forward to the leader) to
// add this node as a voter, retrying until it succeeds or the deadline
// passes. Joining again as the same node at the same address is a no-op.
//
// With TLS on (t set) a bare host:port is reached over HTTPS, verified as
// loadTLS describes. With --admin-addr on the member, --join must name the
// member's admin address: the public one does not serve /admin/v1.
func joinCluster(member, adminToken, nodeID, raftAddr, httpAddr string, t *tlsSetup, logger *slog.Logger) error {
	base := member
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		base = t.scheme() + "://" + base
	}
	body, _ := json.Marshal(map[string]string{"node_id": nodeID, "raft_addr": raftAddr, "http_addr": httpAddr})
	client := &http.Client{Timeout: 30 * time.Second}
	if t != nil {
		client.Transport = &http.Transport{TLSClientConfig: t.clientConfig()}
	}
	deadline := time.Now().Add(2 * time.Minute)
	backoff := 200 * time.Millisecond
	for {
		req, err := http.NewRequest("POST", strings.TrimRight(base, "/")+"/admin/v1/cluster/join", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := client.Do(req)
		if err == nil {
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			switch {
			case resp.StatusCode == 200:
				return nil
			case resp.StatusCode == 401:
				return fmt.Errorf("join %s: the admin token is not the cluster's (every node needs the same --admin-token)", member)
			case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != 429: // 429: the member's --rate-limit-ip; retry
				return fmt.Errorf("join %s: %d %s", member, resp.StatusCode, msg)
			}
			err = fmt.Errorf("%d %s", resp.StatusCode, msg)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("join %s: %w", member, err)
		}
		logger.Info("join not done yet; retrying", "member", member, "err", err)
		time.Sleep(backoff)
		backoff = min(backoff*2, 3*time.Second)
	}
}
