package server

import (
	"bufio"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/orbit/orbit/engine"
)

// exportPageSize is how many entries the CSV export reads per page.
const exportPageSize = 1000

// exportTransactions streams an org's ledger entries between from
// (inclusive) and to (exclusive) as CSV, newest first, for accountants. It
// pages through the ledger so memory stays flat however long the range.
func (s *Server) exportTransactions(ctx *fasthttp.RequestCtx, rs *reqState, k *engine.APIKey, _ string) {
	q, err := parseTxQuery(ctx.QueryArgs())
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	if q.BeforeID != "" {
		respondError(ctx, rs, invalid("the export takes from and to, not a cursor"))
		return
	}
	q.Limit = exportPageSize
	org := k.OrgID
	ctx.Response.Header.SetContentType("text/csv; charset=utf-8")
	ctx.Response.Header.Set("Content-Disposition", `attachment; filename="transactions-`+org+`.csv"`)
	ctx.Response.Header.Set("X-Request-Id", rs.requestID)
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		var line []byte
		w.WriteString("id,created_at,type,amount_micros,amount_minor,balance_after_micros,reference,channel,refunded_at,metadata\n")
		for {
			page, more, err := s.store.Transactions(org, q)
			if err != nil {
				s.log.Error("export read failed", "org", org, "err", err)
				return // the client sees a truncated file and can retry
			}
			for i := range page {
				line = appendCSVRow(line[:0], &page[i])
				if _, err := w.Write(line); err != nil {
					return
				}
			}
			if !more || len(page) == 0 {
				return
			}
			q.BeforeID = page[len(page)-1].ID
			if err := w.Flush(); err != nil {
				return
			}
		}
	})
}

func appendCSVRow(b []byte, e *engine.EntryView) []byte {
	b = appendCSVField(b, e.ID)
	b = append(b, ',')
	b = appendTime(b, e.CreatedAtMs)
	b = append(b, ',')
	b = appendCSVField(b, e.Type.String())
	b = append(b, ',')
	b = strconv.AppendInt(b, e.AmountMicros, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, cents(e.AmountMicros), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, e.BalanceAfterMicros, 10)
	b = append(b, ',')
	b = appendCSVField(b, e.Reference)
	b = append(b, ',')
	if v, ok := e.Metadata.Get("channel"); ok && len(v) >= 2 {
		b = appendCSVField(b, v[1:len(v)-1])
	}
	b = append(b, ',')
	if e.RefundedAtMs != 0 {
		b = appendTime(b, e.RefundedAtMs)
	}
	b = append(b, ',')
	w := jw{b: nil}
	w.objStart()
	for _, kv := range e.Metadata {
		w.key(kv.Key)
		w.raw(kv.Value)
	}
	w.objEnd()
	b = appendCSVField(b, string(w.b))
	return append(b, '\n')
}

// appendCSVField quotes a field when it needs it (RFC 4180), and defuses
// spreadsheet formulas: a field starting with = + - @ is prefixed with '.
func appendCSVField(b []byte, f string) []byte {
	if f != "" && (f[0] == '=' || f[0] == '+' || f[0] == '@' || (f[0] == '-' && len(f) > 1 && (f[1] < '0' || f[1] > '9'))) {
		f = "'" + f
	}
	needs := false
	for i := 0; i < len(f); i++ {
		if c := f[i]; c == ',' || c == '"' || c == '\n' || c == '\r' {
			needs = true
			break
		}
	}
	if !needs {
		return append(b, f...)
	}
	b = append(b, '"')
	for i := 0; i < len(f); i++ {
		if f[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, f[i])
	}
	return append(b, '"')
}

// usageSeries answers GET /usage?days=&granularity=day: per channel, one
// point per day of the window (zero days included), for charts.
func (s *Server) usageSeries(ctx *fasthttp.RequestCtx, rs *reqState, k *engine.APIKey, _ string) {
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
	if args.Has("granularity") && string(args.Peek("granularity")) != "day" {
		respondError(ctx, rs, invalidField("granularity", `must be "day"`))
		return
	}
	today := engine.UnixDay(time.Now().UnixMilli())
	first := today - int64(days) + 1
	rows, err := s.store.Usage(k.OrgID, first, today)
	if err != nil {
		respondError(ctx, rs, newError(errUnavailable, "usage read failed; retry"))
		return
	}
	type point struct{ messages, delivered, failed, cost int64 }
	series := map[string][]point{}
	var channels []string
	for _, r := range rows {
		p, ok := series[r.Channel]
		if !ok {
			p = make([]point, days)
			series[r.Channel] = p
			channels = append(channels, r.Channel)
		}
		i := r.Day - first
		p[i].messages += r.Messages
		p[i].delivered += r.Delivered
		p[i].failed += r.Failed
		p[i].cost += r.CostMicros
	}
	sortStrings(channels)
	respond(ctx, rs, 200, func(w *jw) {
		w.objStart()
		w.kStr("granularity", "day")
		w.kInt("days", int64(days))
		w.key("channels")
		w.arrStart()
		for _, ch := range channels {
			w.objStart()
			w.kStr("channel", ch)
			w.key("points")
			w.arrStart()
			for i, p := range series[ch] {
				w.objStart()
				w.key("date")
				w.str(time.UnixMilli((first + int64(i)) * 86_400_000).UTC().Format("2006-01-02"))
				w.kInt("total_messages", p.messages)
				w.kInt("delivered", p.delivered)
				w.kInt("failed", p.failed)
				w.kInt("total_cost_micros", p.cost)
				w.kInt("total_cost_minor", cents(p.cost))
				w.objEnd()
			}
			w.arrEnd()
			w.objEnd()
		}
		w.arrEnd()
		w.objEnd()
	})
}
