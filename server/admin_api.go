package server

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/orbit/orbit/engine"
	"github.com/orbit/orbit/server/jsonx"
)

type adminRoute struct {
	pattern string
	method  string
	handle  func(s *Server, ctx *fasthttp.RequestCtx, rs *reqState, args []string)
}

var adminRoutes = []adminRoute{
	{"orgs", "POST", (*Server).adminCreateOrg},
	{"orgs", "GET", (*Server).adminListOrgs},
	{"orgs/{}", "GET", (*Server).adminGetOrg},
	{"orgs/{}", "PATCH", (*Server).adminPatchOrg},
	{"orgs/{}/keys", "POST", (*Server).adminCreateKey},
	{"orgs/{}/keys", "GET", (*Server).adminListKeys},
	{"orgs/{}/keys/{}", "DELETE", (*Server).adminRevokeKey},
	{"orgs/{}/adjustments", "POST", (*Server).adminAdjust},
	{"orgs/{}/grants", "POST", (*Server).adminGrant},
	{"orgs/{}/rates", "PUT", (*Server).adminPutOrgRates},
	{"orgs/{}/rates", "GET", (*Server).adminGetOrgRates},
	{"rates", "PUT", (*Server).adminPutRates},
	{"rates", "GET", (*Server).adminGetRates},
	{"fx-rates", "PUT", (*Server).adminPutFxRates},
	{"fx-rates", "GET", (*Server).adminGetFxRates},
	{"orgs/{}/pause", "POST", (*Server).adminPause},
	{"orgs/{}/unpause", "POST", (*Server).adminUnpause},
	{"audit", "GET", (*Server).adminAudit},
	{"cluster", "GET", (*Server).adminCluster},
	{"cluster/join", "POST", (*Server).adminClusterJoin},
	{"cluster/nodes/{}", "DELETE", (*Server).adminClusterRemove},
}

func (s *Server) adminAPI(ctx *fasthttp.RequestCtx, rs *reqState, path string) {
	rs.route = "/admin/v1/unknown"
	if err := s.authAdmin(ctx); err != nil {
		respondError(ctx, rs, err)
		return
	}
	method := string(ctx.Method())
	mismatch := false
	for i := range adminRoutes {
		r := &adminRoutes[i]
		args, ok := matchPattern(r.pattern, path, nil)
		if !ok {
			continue
		}
		if r.method != method {
			mismatch = true
			continue
		}
		rs.route = "/admin/v1/" + r.pattern
		r.handle(s, ctx, rs, args)
		return
	}
	if mismatch {
		respondError(ctx, rs, newError(errMethodNotAllowed, "method not allowed on this route"))
		return
	}
	respondError(ctx, rs, newError(errNotFound, "no such route"))
}

// orgOr404 answers 404 for an unknown org.
func (s *Server) orgOr404(ctx *fasthttp.RequestCtx, rs *reqState, id string) (engine.OrgRecord, engine.WalletView, bool) {
	o, ok := s.store.OrgRecord(id)
	if !ok {
		respondError(ctx, rs, newError(errNotFound, "org not found"))
		return o, engine.WalletView{}, false
	}
	v, _ := s.store.Wallet(id)
	return o, v, true
}

func (s *Server) respondOrg(ctx *fasthttp.RequestCtx, rs *reqState, status int, id string) {
	o, v, ok := s.orgOr404(ctx, rs, id)
	if ok {
		respond(ctx, rs, status, func(w *jw) { writeOrg(w, o, v) })
	}
}

func (s *Server) adminCreateOrg(ctx *fasthttp.RequestCtx, rs *reqState, _ []string) {
	v, err := jsonBody(ctx, bodyBytesMax)
	if err == nil {
		err = onlyFields(v, "name")
	}
	var name string
	if err == nil {
		name, err = requiredStr(v, "name")
	}
	if err == nil && (strings.TrimSpace(name) == "" || len(name) > nameLenMax) {
		err = invalidField("name", "must be 1-200 characters")
	}
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	r, err := s.submitOne(ctx, engine.Command{Kind: engine.CmdCreateOrg, Name: name})
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	s.respondOrg(ctx, rs, fasthttp.StatusCreated, r.ID)
}

func (s *Server) adminListOrgs(ctx *fasthttp.RequestCtx, rs *reqState, _ []string) {
	orgs := s.store.Orgs()
	respond(ctx, rs, 200, func(w *jw) {
		w.arrStart()
		for _, o := range orgs {
			v, _ := s.store.Wallet(o.ID)
			writeOrg(w, o, v)
		}
		w.arrEnd()
	})
}

func (s *Server) adminGetOrg(ctx *fasthttp.RequestCtx, rs *reqState, args []string) {
	s.respondOrg(ctx, rs, 200, args[0])
}

func (s *Server) adminPatchOrg(ctx *fasthttp.RequestCtx, rs *reqState, args []string) {
	if _, _, ok := s.orgOr404(ctx, rs, args[0]); !ok {
		return
	}
	v, err := jsonBody(ctx, bodyBytesMax)
	if err == nil {
		err = onlyFields(v, "name", "pause_threshold_micros")
	}
	cmd := engine.Command{Kind: engine.CmdUpdateOrg, OrgID: args[0]}
	if err == nil {
		cmd.Name, cmd.SetName, err = str(v, "name")
		if err == nil && cmd.SetName && (strings.TrimSpace(cmd.Name) == "" || len(cmd.Name) > nameLenMax) {
			err = invalidField("name", "must be 1-200 characters")
		}
	}
	if err == nil {
		cmd.ThresholdMicros, cmd.SetThreshold, err = integer(v, "pause_threshold_micros")
		if err == nil && cmd.SetThreshold && (cmd.ThresholdMicros < 0 || cmd.ThresholdMicros > engine.MaxAmountMicros) {
			err = invalidField("pause_threshold_micros", "must be an integer from 0 to 1000000000000000")
		}
	}
	if err == nil && !cmd.SetName && !cmd.SetThreshold {
		err = invalid("nothing to change: send name or pause_threshold_micros")
	}
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	s.submitAndRespondOrg(ctx, rs, cmd)
}

func (s *Server) submitAndRespondOrg(ctx *fasthttp.RequestCtx, rs *reqState, cmd engine.Command) {
	r, err := s.submitOne(ctx, cmd)
	if err == nil {
		err = resultError(&r)
	}
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	s.respondOrg(ctx, rs, 200, cmd.OrgID)
}

func (s *Server) adminCreateKey(ctx *fasthttp.RequestCtx, rs *reqState, args []string) {
	if _, _, ok := s.orgOr404(ctx, rs, args[0]); !ok {
		return
	}
	v, err := optionalJSONBody(ctx)
	if err == nil {
		err = onlyFields(v, "role")
	}
	role := engine.RoleAdmin
	if err == nil {
		var present bool
		if r, p, e := str(v, "role"); e != nil {
			err = e
		} else if present = p; present {
			role = r
		}
	}
	if err == nil && role != engine.RoleAdmin && role != engine.RoleCharge && role != engine.RoleRead {
		err = invalidField("role", `must be "admin", "charge" or "read"`)
	}
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	var raw [24]byte
	if _, rerr := rand.Read(raw[:]); rerr != nil {
		respondError(ctx, rs, newError(errUnavailable, "no randomness available"))
		return
	}
	secret := apiKeyPrefix + hex.EncodeToString(raw[:])
	prefix := secret[:len(apiKeyPrefix)+6]
	r, err := s.submitOne(ctx, engine.Command{Kind: engine.CmdCreateKey, OrgID: args[0], Role: role, KeyHash: hashKey([]byte(secret)), KeyPrefix: prefix})
	if err == nil {
		err = resultError(&r)
	}
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	if k, ok := s.store.KeyByID(args[0], r.ID); ok {
		respond(ctx, rs, fasthttp.StatusCreated, func(w *jw) { writeKey(w, k, secret) })
		return
	}
	respondError(ctx, rs, newError(errUnavailable, "key not readable yet"))
}

func (s *Server) adminListKeys(ctx *fasthttp.RequestCtx, rs *reqState, args []string) {
	if _, _, ok := s.orgOr404(ctx, rs, args[0]); !ok {
		return
	}
	keys := s.store.Keys(args[0])
	respond(ctx, rs, 200, func(w *jw) {
		w.arrStart()
		for _, k := range keys {
			writeKey(w, k, "")
		}
		w.arrEnd()
	})
}

func (s *Server) adminRevokeKey(ctx *fasthttp.RequestCtx, rs *reqState, args []string) {
	if _, _, ok := s.orgOr404(ctx, rs, args[0]); !ok {
		return
	}
	r, err := s.submitOne(ctx, engine.Command{Kind: engine.CmdRevokeKey, OrgID: args[0], KeyID: args[1]})
	if err == nil {
		err = resultError(&r)
	}
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	if k, ok := s.store.KeyByID(args[0], args[1]); ok {
		respond(ctx, rs, 200, func(w *jw) { writeKey(w, k, "") })
		return
	}
	respondError(ctx, rs, newError(errNotFound, "key not found"))
}

func (s *Server) adminAdjust(ctx *fasthttp.RequestCtx, rs *reqState, args []string) {
	if _, _, ok := s.orgOr404(ctx, rs, args[0]); !ok {
		return
	}
	v, err := jsonBody(ctx, bodyBytesMax)
	if err == nil {
		err = onlyFields(v, "amount_micros", "reason", "reference")
	}
	var amount int64
	var present bool
	if err == nil {
		amount, present, err = integer(v, "amount_micros")
		if err == nil && (!present || amount == 0 || amount > engine.MaxAmountMicros || amount < -engine.MaxAmountMicros) {
			err = invalidField("amount_micros", "must be a nonzero integer with absolute value at most 1000000000000000")
		}
	}
	var ref, reason string
	if err == nil {
		ref, reason, err = referenceAndReason(v)
	}
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	r, err := s.submitOne(ctx, engine.Command{
		Kind: engine.CmdAdjustment, OrgID: args[0], Reference: ref, AmountMicros: amount, Reason: reason,
		BodyHash: bodyHash("adjustment", ref, strconv.FormatInt(amount, 10), reason),
	})
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	s.answerWrite(ctx, rs, args[0], &r)
}

func (s *Server) adminPause(ctx *fasthttp.RequestCtx, rs *reqState, args []string) {
	if _, _, ok := s.orgOr404(ctx, rs, args[0]); !ok {
		return
	}
	v, err := optionalJSONBody(ctx)
	if err == nil {
		err = onlyFields(v, "reason")
	}
	var reason string
	if err == nil {
		reason, _, err = str(v, "reason")
	}
	if err == nil {
		err = checkText("reason", reason, reasonLenMax)
	}
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	s.submitAndRespondOrg(ctx, rs, engine.Command{Kind: engine.CmdPause, OrgID: args[0], Reason: reason})
}

func (s *Server) adminUnpause(ctx *fasthttp.RequestCtx, rs *reqState, args []string) {
	if _, _, ok := s.orgOr404(ctx, rs, args[0]); !ok {
		return
	}
	v, err := optionalJSONBody(ctx)
	if err == nil {
		err = onlyFields(v)
	}
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	s.submitAndRespondOrg(ctx, rs, engine.Command{Kind: engine.CmdUnpause, OrgID: args[0]})
}

func (s *Server) adminAudit(ctx *fasthttp.RequestCtx, rs *reqState, _ []string) {
	n, mismatches, err := s.store.Audit()
	if err != nil {
		respondError(ctx, rs, newError(errUnavailable, "audit failed: "+err.Error()))
		return
	}
	respond(ctx, rs, 200, func(w *jw) {
		w.objStart()
		w.kInt("orgs_checked", int64(n))
		w.key("mismatches")
		w.arrStart()
		for _, m := range mismatches {
			w.objStart()
			w.kStr("org_id", m.OrgID)
			w.kStr("problem", string(m.Problem))
			if m.EntryID != "" {
				w.kStr("entry_id", m.EntryID)
			}
			w.kInt("balance_micros", m.BalanceMicros)
			w.kInt("ledger_sum_micros", m.LedgerSumMicros)
			w.objEnd()
		}
		w.arrEnd()
		w.objEnd()
	})
}

func (s *Server) adminCluster(ctx *fasthttp.RequestCtx, rs *reqState, _ []string) {
	c := s.store.Cluster()
	respond(ctx, rs, 200, func(w *jw) {
		w.objStart()
		w.kStr("node_id", c.NodeID)
		w.kStrOrNull("leader", c.Leader)
		w.kInt("term", int64(c.Term))
		w.kInt("commit_index", int64(c.CommitIndex))
		w.kInt("applied_index", int64(c.AppliedIndex))
		w.kInt("snapshot_index", int64(c.SnapshotIndex))
		w.kStr("digest", c.Digest)
		w.key("nodes")
		w.arrStart()
		for _, n := range c.Nodes {
			w.objStart()
			w.kStr("id", n.ID)
			w.kStr("raft_addr", n.RaftAddr)
			w.kStrOrNull("http_addr", n.HTTPAddr)
			w.kStr("suffrage", n.Suffrage)
			w.kStr("state", n.State)
			w.objEnd()
		}
		w.arrEnd()
		w.objEnd()
	})
}

func (s *Server) adminGrant(ctx *fasthttp.RequestCtx, rs *reqState, args []string) {
	if _, _, ok := s.orgOr404(ctx, rs, args[0]); !ok {
		return
	}
	v, err := jsonBody(ctx, bodyBytesMax)
	if err == nil {
		err = onlyFields(v, "amount_micros", "expires_at", "reason", "reference")
	}
	var amount, expiresMs int64
	var present bool
	if err == nil {
		amount, present, err = amountMicros(v, "amount_micros")
		if err == nil && !present {
			err = invalidField("amount_micros", "is required")
		}
	}
	var ref, reason, expires string
	if err == nil {
		expires, err = requiredStr(v, "expires_at")
	}
	if err == nil {
		var perr error
		if expiresMs, perr = parseTimeParam(expires); perr != nil || expiresMs <= 0 {
			err = invalidField("expires_at", "must be an RFC 3339 timestamp")
		} else if expiresMs <= time.Now().UnixMilli() {
			err = invalidField("expires_at", "must be in the future")
		}
	}
	if err == nil {
		ref, reason, err = referenceAndReason(v)
	}
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	r, err := s.submitOne(ctx, engine.Command{
		Kind: engine.CmdGrant, OrgID: args[0], Reference: ref, AmountMicros: amount, ExpiresAtMs: expiresMs, Reason: reason,
		BodyHash: bodyHash("grant", ref, strconv.FormatInt(amount, 10), strconv.FormatInt(expiresMs, 10), reason),
	})
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	s.answerWrite(ctx, rs, args[0], &r)
}

func (s *Server) adminPutRates(ctx *fasthttp.RequestCtx, rs *reqState, _ []string) {
	s.putRates(ctx, rs, "")
}

func (s *Server) adminPutOrgRates(ctx *fasthttp.RequestCtx, rs *reqState, args []string) {
	if _, _, ok := s.orgOr404(ctx, rs, args[0]); !ok {
		return
	}
	s.putRates(ctx, rs, args[0])
}

// putRates commits a rate card through the log: the default (org "") or an
// org's override. It applies to charges from the moment it is committed.
func (s *Server) putRates(ctx *fasthttp.RequestCtx, rs *reqState, org string) {
	v, err := jsonBody(ctx, bodyBytesMax)
	var card engine.RateCard
	if err == nil {
		card, err = decodeRateCard(v)
	}
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	r, err := s.submitOne(ctx, engine.Command{Kind: engine.CmdSetRates, OrgID: org, Card: &card})
	if err == nil {
		err = resultError(&r)
	}
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	version, _ := strconv.ParseInt(r.ID, 10, 64)
	respond(ctx, rs, 200, func(w *jw) {
		w.objStart()
		w.kInt("version", version)
		w.kStrOrNull("org_id", org)
		w.key("channels")
		writeRateCard(w, &card)
		w.objEnd()
	})
}

// adminClusterJoin adds a node as a voter (on the leader; followers forward).
func (s *Server) adminClusterJoin(ctx *fasthttp.RequestCtx, rs *reqState, _ []string) {
	v, err := jsonBody(ctx, bodyBytesMax)
	if err == nil {
		err = onlyFields(v, "node_id", "raft_addr", "http_addr")
	}
	var id, raftAddr, httpAddr string
	if err == nil {
		id, err = requiredStr(v, "node_id")
	}
	if err == nil {
		raftAddr, err = requiredStr(v, "raft_addr")
	}
	if err == nil {
		httpAddr, err = requiredStr(v, "http_addr")
	}
	if err == nil {
		for _, f := range []struct{ name, val string }{{"node_id", id}, {"raft_addr", raftAddr}, {"http_addr", httpAddr}} {
			if len(f.val) < 1 || len(f.val) > 255 || !visibleASCIIString(f.val) {
				err = invalidField(f.name, "must be 1-255 visible ASCII characters")
				break
			}
		}
	}
	if err == nil {
		for _, a := range []struct{ name, val string }{{"raft_addr", raftAddr}, {"http_addr", httpAddr}} {
			if _, _, e := net.SplitHostPort(a.val); e != nil {
				err = invalidField(a.name, "must be host:port")
				break
			}
		}
	}
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	if jerr := s.store.Join(id, raftAddr, httpAddr); jerr != nil {
		respondError(ctx, rs, clusterError(jerr))
		return
	}
	s.adminCluster(ctx, rs, nil)
}

func (s *Server) adminClusterRemove(ctx *fasthttp.RequestCtx, rs *reqState, args []string) {
	if err := s.store.Remove(args[0]); err != nil {
		respondError(ctx, rs, clusterError(err))
		return
	}
	s.adminCluster(ctx, rs, nil)
}

// clusterError maps a membership failure: a refused change is 400 (or 404
// for an unknown node), anything else 503 (retry).
func clusterError(err error) *apiError {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "not a member"):
		return newError(errNotFound, msg)
	case strings.Contains(msg, "bad membership change"):
		return invalid(msg)
	}
	return newError(errUnavailable, "membership change failed: "+msg)
}

// adminGetRates returns the default rate card and its version.
func (s *Server) adminGetRates(ctx *fasthttp.RequestCtx, rs *reqState, _ []string) {
	card, version := s.store.DefaultRates()
	respond(ctx, rs, 200, func(w *jw) {
		w.objStart()
		w.kInt("version", version)
		w.kNull("org_id")
		w.key("channels")
		writeRateCard(w, &card)
		w.objEnd()
	})
}

// adminGetOrgRates returns an org's effective card (the default with its
// override applied).
func (s *Server) adminGetOrgRates(ctx *fasthttp.RequestCtx, rs *reqState, args []string) {
	card, version, ok := s.store.Rates(args[0])
	if !ok {
		respondError(ctx, rs, newError(errNotFound, "org not found"))
		return
	}
	respond(ctx, rs, 200, func(w *jw) {
		w.objStart()
		w.kInt("version", version)
		w.kStr("org_id", args[0])
		w.key("channels")
		writeRateCard(w, &card)
		w.objEnd()
	})
}

// referenceAndReason reads the required reference and the optional reason
// of an operator credit or debit (adjustments, grants).
func referenceAndReason(v jsonx.Value) (ref, reason string, err *apiError) {
	if ref, err = requiredStr(v, "reference"); err != nil {
		return "", "", err
	}
	if err = checkReference("reference", ref); err != nil {
		return "", "", err
	}
	if reason, _, err = str(v, "reason"); err != nil {
		return "", "", err
	}
	return ref, reason, checkText("reason", reason, reasonLenMax)
}
