package client

import (
	"context"
	"errors"
)

// adminBase is the operator API's base path.
const adminBase = "/admin/v1"

func adminReq(method, path string, body any) *request {
	return &request{method: method, path: adminBase + path, body: body, auth: authAdmin, idempotent: method == "GET"}
}

func (c *Client) org(ctx context.Context, r *request) (*Org, error) {
	var o Org
	if _, err := c.do(ctx, r, &o); err != nil {
		return nil, err
	}
	return &o, nil
}

// CreateOrg creates an org with an empty wallet (POST /admin/v1/orgs). Not
// retried: a repeat would create a second org.
func (c *Client) CreateOrg(ctx context.Context, name string) (*Org, error) {
	body := struct {
		Name string `json:"name"`
	}{name}
	return c.org(ctx, adminReq("POST", "/orgs", body))
}

// GetOrg returns an org with its wallet (GET /admin/v1/orgs/{org}).
func (c *Client) GetOrg(ctx context.Context, orgID string) (*Org, error) {
	if orgID == "" {
		return nil, errMissing("org id")
	}
	return c.org(ctx, adminReq("GET", "/orgs/"+seg(orgID), nil))
}

// ListOrgs returns every org with its wallet (GET /admin/v1/orgs).
func (c *Client) ListOrgs(ctx context.Context) ([]Org, error) {
	var orgs []Org
	if _, err := c.do(ctx, adminReq("GET", "/orgs", nil), &orgs); err != nil {
		return nil, err
	}
	return orgs, nil
}

// UpdateOrg renames an org or sets its pause threshold (PATCH
// /admin/v1/orgs/{org}); at least one field must be set.
func (c *Client) UpdateOrg(ctx context.Context, orgID string, req UpdateOrgRequest) (*Org, error) {
	if orgID == "" {
		return nil, errMissing("org id")
	}
	if req.Name == nil && req.PauseThresholdMicros == nil {
		return nil, errors.New("orbit: UpdateOrg needs Name or PauseThresholdMicros")
	}
	return c.org(ctx, adminReq("PATCH", "/orgs/"+seg(orgID), req))
}

// CreateKey creates an API key with a role (RoleAdmin, RoleCharge, RoleRead;
// "" means admin) for an org (POST /admin/v1/orgs/{org}/keys). The secret is
// in the result's Key, shown this once. Not retried.
func (c *Client) CreateKey(ctx context.Context, orgID, role string) (*APIKey, error) {
	if orgID == "" {
		return nil, errMissing("org id")
	}
	body := struct {
		Role string `json:"role,omitempty"`
	}{role}
	var k APIKey
	if _, err := c.do(ctx, adminReq("POST", "/orgs/"+seg(orgID)+"/keys", body), &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// ListKeys returns an org's keys, revoked ones included, never their
// secrets (GET /admin/v1/orgs/{org}/keys).
func (c *Client) ListKeys(ctx context.Context, orgID string) ([]APIKey, error) {
	if orgID == "" {
		return nil, errMissing("org id")
	}
	var keys []APIKey
	if _, err := c.do(ctx, adminReq("GET", "/orgs/"+seg(orgID)+"/keys", nil), &keys); err != nil {
		return nil, err
	}
	return keys, nil
}

// RevokeKey revokes a key (DELETE /admin/v1/orgs/{org}/keys/{key}); it
// fails with 401 from then on. Returns the key with RevokedAt set.
func (c *Client) RevokeKey(ctx context.Context, orgID, keyID string) (*APIKey, error) {
	if orgID == "" || keyID == "" {
		return nil, errMissing("org id and key id")
	}
	var k APIKey
	if _, err := c.do(ctx, adminReq("DELETE", "/orgs/"+seg(orgID)+"/keys/"+seg(keyID), nil), &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// Adjust writes a signed adjustment entry (POST
// /admin/v1/orgs/{org}/adjustments): a credit, or a debit that must fit in
// available funds (else CodeInsufficientFunds). The reference makes it
// exactly-once, so the call is retried safely; an empty reference is
// replaced by a random one, reported in the result.
func (c *Client) Adjust(ctx context.Context, orgID string, req AdjustmentRequest) (*AdjustmentResult, error) {
	if orgID == "" {
		return nil, errMissing("org id")
	}
	if req.Reference == "" {
		req.Reference = newKey("adj_")
	}
	r := adminReq("POST", "/orgs/"+seg(orgID)+"/adjustments", req)
	r.idempotent = true
	var res AdjustmentResult
	m, err := c.do(ctx, r, &res)
	if err != nil {
		return nil, err
	}
	res.Replayed, res.RequestID, res.Reference = m.replayed, m.requestID, req.Reference
	return &res, nil
}

// Pause puts an operator hold on an org's outbound traffic (POST
// /admin/v1/orgs/{org}/pause); reason is shown as outbound_block_details.
func (c *Client) Pause(ctx context.Context, orgID, reason string) (*Org, error) {
	if orgID == "" {
		return nil, errMissing("org id")
	}
	body := struct {
		Reason string `json:"reason,omitempty"`
	}{reason}
	return c.org(ctx, adminReq("POST", "/orgs/"+seg(orgID)+"/pause", body))
}

// Unpause lifts an operator hold or a dispute pause (POST
// /admin/v1/orgs/{org}/unpause).
func (c *Client) Unpause(ctx context.Context, orgID string) (*Org, error) {
	if orgID == "" {
		return nil, errMissing("org id")
	}
	return c.org(ctx, adminReq("POST", "/orgs/"+seg(orgID)+"/unpause", nil))
}

// Audit recomputes every balance from the durable ledger and compares it
// with memory (GET /admin/v1/audit).
func (c *Client) Audit(ctx context.Context) (*AuditReport, error) {
	var a AuditReport
	if _, err := c.do(ctx, adminReq("GET", "/audit", nil), &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// Cluster returns the answering node's view of the Raft cluster (GET
// /admin/v1/cluster).
func (c *Client) Cluster(ctx context.Context) (*ClusterInfo, error) {
	var ci ClusterInfo
	if _, err := c.do(ctx, adminReq("GET", "/cluster", nil), &ci); err != nil {
		return nil, err
	}
	return &ci, nil
}

// Grant credits an org with money that expires (POST
// /admin/v1/orgs/{org}/grants): a grant entry whose unused remainder leaves
// the wallet at ExpiresAt as an expiry entry. Spends and holds draw on the
// earliest-expiring credit first. The reference makes it exactly-once, so
// the call is retried safely; an empty reference is replaced by a random
// one, reported in the result.
func (c *Client) Grant(ctx context.Context, orgID string, req GrantRequest) (*GrantResult, error) {
	if orgID == "" {
		return nil, errMissing("org id")
	}
	if req.ExpiresAt.IsZero() {
		return nil, errMissing("grant expires_at")
	}
	if req.Reference == "" {
		req.Reference = newKey("grant_")
	}
	r := adminReq("POST", "/orgs/"+seg(orgID)+"/grants", req)
	r.idempotent = true
	var res GrantResult
	m, err := c.do(ctx, r, &res)
	if err != nil {
		return nil, err
	}
	res.Replayed, res.RequestID, res.Reference = m.replayed, m.requestID, req.Reference
	return &res, nil
}

// cardBody is a rate card as PUT sends it: the channels only (the server
// assigns the version).
type cardBody struct {
	Channels map[string]ChannelRate `json:"channels"`
}

func (c *Client) putRates(ctx context.Context, path string, card RateCard) (*RatesSet, error) {
	if card.Channels == nil {
		card.Channels = map[string]ChannelRate{}
	}
	r := adminReq("PUT", path, cardBody{card.Channels})
	r.idempotent = true // PUT: a repeat commits the same card again
	var rs RatesSet
	if _, err := c.do(ctx, r, &rs); err != nil {
		return nil, err
	}
	return &rs, nil
}

// SetRates commits the default rate card (PUT /admin/v1/rates); card.Version
// is ignored: the server assigns the next version, in the answer. The card
// prices charges from the moment it is committed. A PUT is retried: a
// repeat commits the same card again (possibly under a newer version).
func (c *Client) SetRates(ctx context.Context, card RateCard) (*RatesSet, error) {
	return c.putRates(ctx, "/rates", card)
}

// SetOrgRates commits an org's override card (PUT
// /admin/v1/orgs/{org}/rates): it replaces the default card for the
// channels it names. Otherwise as SetRates.
func (c *Client) SetOrgRates(ctx context.Context, orgID string, card RateCard) (*RatesSet, error) {
	if orgID == "" {
		return nil, errMissing("org id")
	}
	return c.putRates(ctx, "/orgs/"+seg(orgID)+"/rates", card)
}

// FxRates returns the committed FX table (GET /admin/v1/fx-rates).
func (c *Client) FxRates(ctx context.Context) (FxRates, error) {
	rates := FxRates{}
	if _, err := c.do(ctx, adminReq("GET", "/fx-rates", nil), &rates); err != nil {
		return nil, err
	}
	return rates, nil
}

// SetFxRates replaces the whole FX table (PUT /admin/v1/fx-rates) and
// returns the committed one: currencies not in rates are removed (an empty
// or nil table removes every rate). Top-ups in a currency of the table are
// credited at the rate in force when they are created. Retried like every
// PUT.
func (c *Client) SetFxRates(ctx context.Context, rates FxRates) (FxRates, error) {
	if rates == nil {
		rates = FxRates{}
	}
	r := adminReq("PUT", "/fx-rates", rates)
	r.idempotent = true
	out := FxRates{}
	if _, err := c.do(ctx, r, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// ClusterJoin adds a node to the cluster as a voter and records its HTTP
// address (POST /admin/v1/cluster/join; a follower forwards it to the
// leader), and returns the cluster after the change. Joining again with
// the same id and addresses is a no-op, so the call is retried safely; the
// same id at a new address replaces the old entry.
func (c *Client) ClusterJoin(ctx context.Context, req ClusterJoinRequest) (*ClusterInfo, error) {
	if req.NodeID == "" {
		return nil, errMissing("node id")
	}
	r := adminReq("POST", "/cluster/join", req)
	r.idempotent = true
	var ci ClusterInfo
	if _, err := c.do(ctx, r, &ci); err != nil {
		return nil, err
	}
	return &ci, nil
}

// ClusterRemove takes a node out of the cluster (DELETE
// /admin/v1/cluster/nodes/{id}) and returns the cluster after the change.
// An unknown node is CodeNotFound; the leader cannot remove itself
// (CodeInvalidRequest). Not retried: a repeat of a removal that took effect
// answers not_found, so on a transport error check Cluster instead.
func (c *Client) ClusterRemove(ctx context.Context, nodeID string) (*ClusterInfo, error) {
	if nodeID == "" {
		return nil, errMissing("node id")
	}
	var ci ClusterInfo
	if _, err := c.do(ctx, adminReq("DELETE", "/cluster/nodes/"+seg(nodeID), nil), &ci); err != nil {
		return nil, err
	}
	return &ci, nil
}
