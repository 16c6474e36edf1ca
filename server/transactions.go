package server

import (
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/orbit/orbit/engine"
)

func (s *Server) listTransactions(ctx *fasthttp.RequestCtx, rs *reqState, k *engine.APIKey, _ string) {
	q, err := parseTxQuery(ctx.QueryArgs())
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	items, hasMore, rerr := s.store.Transactions(k.OrgID, q)
	if rerr != nil {
		s.log.Error("list transactions", "err", rerr)
		respondError(ctx, rs, newError(errUnavailable, "ledger read failed; retry"))
		return
	}
	respond(ctx, rs, 200, func(w *jw) {
		w.objStart()
		w.key("transactions")
		w.arrStart()
		for i := range items {
			writeEntry(w, &items[i])
		}
		w.arrEnd()
		w.key("next_cursor")
		if hasMore && len(items) > 0 {
			last := items[len(items)-1]
			w.objStart()
			w.kTime("cursor_ts", last.CreatedAtMs)
			w.kStr("cursor_id", last.ID)
			w.objEnd()
		} else {
			w.null()
		}
		w.kBool("has_more", hasMore)
		w.objEnd()
	})
}

// parseTxQuery reads limit, cursor_ts + cursor_id, type, channel, from, to.
func parseTxQuery(args *fasthttp.Args) (engine.TxQuery, *apiError) {
	q := engine.TxQuery{Limit: transactionsLimitDflt}
	if args.Has("limit") {
		n, err := strconv.Atoi(string(args.Peek("limit")))
		if err != nil || n < 1 || n > transactionsLimitMax {
			return q, invalidField("limit", "must be an integer from 1 to 100")
		}
		q.Limit = n
	}
	hasTS, hasID := args.Has("cursor_ts"), args.Has("cursor_id")
	if hasTS != hasID {
		return q, invalid("cursor_ts and cursor_id must be sent together")
	}
	if hasTS {
		ts, err := parseTimeParam(string(args.Peek("cursor_ts")))
		if err != nil {
			return q, invalidField("cursor_ts", "must be an RFC 3339 timestamp")
		}
		id := string(args.Peek("cursor_id"))
		idMs, ok := engine.IDTimeMs(id, engine.PrefixTransaction)
		if !ok {
			return q, invalidField("cursor_id", "must be a transaction id")
		}
		if idMs != ts {
			return q, invalid("cursor_ts does not match cursor_id: pass back next_cursor unchanged")
		}
		q.BeforeID = id
	}
	if args.Has("type") {
		t, ok := engine.ParseEntryType(string(args.Peek("type")))
		if !ok {
			return q, invalidField("type", "unknown transaction type")
		}
		q.Type = t
	}
	if args.Has("channel") {
		ch := string(args.Peek("channel"))
		if err := checkChannel(ch); err != nil {
			return q, err
		}
		q.Channel = ch
	}
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"from", &q.FromMs}, {"to", &q.ToMs}} {
		if !args.Has(p.name) {
			continue
		}
		ms, err := parseTimeParam(string(args.Peek(p.name)))
		if err != nil || ms <= 0 {
			return q, invalidField(p.name, "must be an RFC 3339 timestamp")
		}
		*p.dst = ms
	}
	if q.FromMs > 0 && q.ToMs > 0 && q.FromMs >= q.ToMs {
		return q, invalid("from must be before to")
	}
	return q, nil
}

// parseTimeParam parses an RFC 3339 time to unix ms; sub-millisecond
// precision is truncated.
func parseTimeParam(s string) (int64, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, err
	}
	if t.Year() < 1970 || t.Year() > 9999 {
		return 0, strconv.ErrRange
	}
	return t.UnixMilli(), nil
}

func (s *Server) getTransaction(ctx *fasthttp.RequestCtx, rs *reqState, k *engine.APIKey, id string) {
	if _, ok := engine.IDTimeMs(id, engine.PrefixTransaction); !ok {
		respondError(ctx, rs, newError(errNotFound, "transaction not found"))
		return
	}
	ev, ok, err := s.store.Transaction(k.OrgID, id)
	if err != nil {
		respondError(ctx, rs, newError(errUnavailable, "ledger read failed; retry"))
		return
	}
	if !ok {
		respondError(ctx, rs, newError(errNotFound, "transaction not found"))
		return
	}
	respond(ctx, rs, 200, func(w *jw) { writeEntry(w, &ev) })
}
