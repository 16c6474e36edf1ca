package server

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/orbit/orbit/engine"
)

// usageRow is one row of usage-by-channel.
type usageRow struct {
	key, channel                         string
	messages, delivered, failed, costMic int64
}

// usageByChannel sums the daily aggregates of the last `days` days (today
// included): a read of ~days x channels rows, never of the ledger.
func (s *Server) usageByChannel(ctx *fasthttp.RequestCtx, rs *reqState, k *engine.APIKey, _ string) {
	args := ctx.QueryArgs()
	days := 30
	if args.Has("days") {
		n, err := strconv.Atoi(string(args.Peek("days")))
		if err != nil || n < 1 || n > 366 {
			respondError(ctx, rs, invalidField("days", "must be an integer from 1 to 366"))
			return
		}
		days = n
	}
	groupBy := ""
	if args.Has("group_by") {
		groupBy = string(args.Peek("group_by"))
		if groupBy != "destination" && groupBy != "model" {
			respondError(ctx, rs, invalidField("group_by", `must be "destination" or "model"`))
			return
		}
	}
	today := engine.UnixDay(time.Now().UnixMilli())
	rows, err := s.store.Usage(k.OrgID, today-int64(days)+1, today)
	if err != nil {
		respondError(ctx, rs, newError(errUnavailable, "usage read failed; retry"))
		return
	}
	byKey := map[string]*usageRow{}
	for _, r := range rows {
		key := r.Channel
		if groupBy != "" {
			key = r.Channel + ":" + groupFor(groupBy, r.Group)
		}
		u := byKey[key]
		if u == nil {
			u = &usageRow{key: key, channel: r.Channel}
			byKey[key] = u
		}
		u.messages += r.Messages
		u.delivered += r.Delivered
		u.failed += r.Failed
		u.costMic += r.CostMicros
	}
	out := make([]*usageRow, 0, len(byKey))
	for _, u := range byKey {
		if u.messages > 0 {
			out = append(out, u)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].costMic != out[j].costMic {
			return out[i].costMic > out[j].costMic
		}
		return out[i].key < out[j].key
	})
	respond(ctx, rs, 200, func(w *jw) {
		w.arrStart()
		for _, u := range out {
			w.objStart()
			w.kStr("key", u.key)
			w.kStr("channel", u.channel)
			w.kInt("total_messages", u.messages)
			w.kInt("delivered", u.delivered)
			w.kInt("failed", u.failed)
			w.kInt("total_cost_minor", cents(u.costMic))
			w.kUSD("total_cost", u.costMic)
			w.kInt("total_cost_micros", u.costMic)
			w.objEnd()
		}
		w.arrEnd()
	})
}

// groupFor shows a stored usage group for the dimension asked for: a spend
// grouped by the other dimension (or by none) shows as "-".
func groupFor(groupBy, group string) string {
	prefix := engine.GroupDestination
	if groupBy == "model" {
		prefix = engine.GroupModel
	}
	if strings.HasPrefix(group, prefix) {
		return group[len(prefix):]
	}
	return "-"
}

func sortStrings(s []string) { sort.Strings(s) }
