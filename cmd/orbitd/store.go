package main

import (
	"github.com/orbit/orbit/raftstore"
	"github.com/orbit/orbit/server"
)

// storeAdapter satisfies server.Store with a raftstore node.
type storeAdapter struct {
	*raftstore.Node
	httpAddr string
}

func (a storeAdapter) Cluster() server.ClusterInfo {
	st := a.Stats()
	c := server.ClusterInfo{
		NodeID: st.NodeID, Leader: st.Leader, Term: st.Term,
		CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex, Digest: st.Digest,
	}
	for _, s := range st.Servers {
		state := "follower"
		if string(s.ID) == st.Leader {
			state = "leader"
		}
		httpAddr := ""
		if string(s.ID) == st.NodeID {
			httpAddr = a.httpAddr
		}
		c.Nodes = append(c.Nodes, server.ClusterNode{
			ID: string(s.ID), RaftAddr: string(s.Address), HTTPAddr: httpAddr,
			Suffrage: s.Suffrage.String(), State: state,
		})
	}
	return c
}
