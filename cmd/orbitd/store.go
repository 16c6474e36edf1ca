package main

import (
	"github.com/orbit/orbit/raftstore"
	"github.com/orbit/orbit/server"
)

// storeAdapter satisfies server.Store with a raftstore node.
type storeAdapter struct {
	*raftstore.Node
}

func (a storeAdapter) Cluster() server.ClusterInfo {
	st := a.Stats()
	c := server.ClusterInfo{
		NodeID: st.NodeID, Leader: st.Leader, Term: st.Term,
		CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex, Digest: st.Digest, SnapshotIndex: st.SnapshotIndex,
	}
	httpAddrs := map[string]string{}
	for _, n := range a.Engine().Nodes() {
		httpAddrs[n.ID] = n.HTTPAddr
	}
	for _, s := range st.Servers {
		state := "follower"
		switch {
		case string(s.ID) == st.Leader:
			state = "leader"
		case s.Suffrage.String() != "Voter":
			state = "nonvoter"
		}
		c.Nodes = append(c.Nodes, server.ClusterNode{
			ID: string(s.ID), RaftAddr: string(s.Address), HTTPAddr: httpAddrs[string(s.ID)],
			Suffrage: suffrage(s.Suffrage.String()), State: state,
		})
	}
	return c
}

func suffrage(s string) string {
	switch s {
	case "Voter":
		return "voter"
	case "Nonvoter":
		return "nonvoter"
	}
	return "staging"
}
