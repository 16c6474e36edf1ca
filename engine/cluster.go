package engine

import "sort"

// NodeInfo is one cluster member's addresses.
type NodeInfo struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
}

// setNodeAddr records (or, with an empty RaftAddr, forgets) a member's
// addresses in the replicated settings.
func (a *applier) setNodeAddr(c *Command) Result {
	if c.NodeID == "" {
		return Result{Code: CodeInvalid, Message: "node id required"}
	}
	s := &a.e.settings
	nodes := make([]NodeInfo, 0, len(s.Nodes)+1)
	for _, n := range s.Nodes {
		if n.ID != c.NodeID {
			nodes = append(nodes, n)
		}
	}
	if c.RaftAddr != "" {
		nodes = append(nodes, NodeInfo{ID: c.NodeID, RaftAddr: c.RaftAddr, HTTPAddr: c.HTTPAddr})
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].ID < nodes[j].ID })
	s.Nodes = nodes
	copied := *s
	a.out.Settings = &copied
	return Result{Code: CodeOK, ID: c.NodeID}
}

// Nodes returns the members' addresses as last applied.
func (e *Engine) Nodes() []NodeInfo {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return append([]NodeInfo(nil), e.settings.Nodes...)
}
