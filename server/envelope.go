package server

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// reqState is what a handler knows about the request it serves.
type reqState struct {
	requestID string
	start     time.Time
	route     string // for metrics and logs: a pattern, never a raw path
	orgID     string
}

// requestID is the client's X-Request-Id when it is sane, else a new one.
func requestID(ctx *fasthttp.RequestCtx) string {
	if v := ctx.Request.Header.Peek("X-Request-Id"); len(v) > 0 && len(v) <= 128 && visibleASCII(v) {
		return string(v)
	}
	return newRequestID()
}

// newRequestID is a fresh random request id, req_ and 24 hex digits.
func newRequestID() string {
	var raw [12]byte
	_, _ = rand.Read(raw[:])
	var id [4 + 24]byte
	copy(id[:], "req_")
	hex.Encode(id[4:], raw[:])
	return string(id[:])
}

func visibleASCII(b []byte) bool {
	for _, c := range b {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

func visibleASCIIString(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// writeMeta closes an envelope with its meta object.
func writeMeta(w *jw, rs *reqState) {
	w.key("meta")
	w.objStart()
	w.kStr("request_id", rs.requestID)
	w.key("timestamp")
	w.sep()
	w.b = append(w.b, '"')
	w.b = time.Now().UTC().AppendFormat(w.b, timeLayout)
	w.b = append(w.b, '"')
	w.objEnd()
}

// writerPool recycles response writers: fasthttp copies the body, so a
// writer's buffer is free again as soon as finish returns.
var writerPool = sync.Pool{New: func() any { return &jw{b: make([]byte, 0, 2048), comma: make([]bool, 0, 8)} }}

// pooledWriterMax bounds the buffers writerPool keeps: a larger response
// (a batch's results) gets a buffer of its own, sized up front.
const pooledWriterMax = 64 << 10

// respond writes {"data": <data>, "meta": ...} with status.
func respond(ctx *fasthttp.RequestCtx, rs *reqState, status int, data func(w *jw)) {
	respondSized(ctx, rs, status, 0, data)
}

// respondSized is respond for a body of about sizeHint bytes. Beyond what a
// pooled buffer holds, the body is built in one buffer of that size, which
// the response then owns: no regrowing, no copy.
func respondSized(ctx *fasthttp.RequestCtx, rs *reqState, status, sizeHint int, data func(w *jw)) {
	if sizeHint > pooledWriterMax {
		w := &jw{b: make([]byte, 0, sizeHint), comma: make([]bool, 0, 8)}
		writeEnvelope(w, rs, data)
		finishRaw(ctx, rs, status, w.b)
		return
	}
	w := writerPool.Get().(*jw)
	defer func() {
		if cap(w.b) <= pooledWriterMax { // do not keep huge buffers around
			writerPool.Put(w)
		}
	}()
	w.b, w.comma = w.b[:0], w.comma[:0]
	writeEnvelope(w, rs, data)
	finish(ctx, rs, status, w.b)
}

func writeEnvelope(w *jw, rs *reqState, data func(w *jw)) {
	w.objStart()
	w.key("data")
	data(w)
	writeMeta(w, rs)
	w.objEnd()
}

// respondError writes {"error": {...}, "meta": ...}.
func respondError(ctx *fasthttp.RequestCtx, rs *reqState, e *apiError) {
	if e.code == errUnavailable || e.code == errRateLimited {
		ctx.Response.Header.Set("Retry-After", "1")
	}
	finish(ctx, rs, e.status(), errorBody(rs, e))
}

// errorBody is the error envelope of e.
func errorBody(rs *reqState, e *apiError) []byte {
	w := jw{b: make([]byte, 0, 256)}
	w.objStart()
	w.key("error")
	w.objStart()
	w.kStr("code", e.code)
	w.kStr("message", e.message)
	if e.details != nil {
		w.key("details")
		w.objStart()
		e.details(&w)
		w.objEnd()
	}
	w.objEnd()
	writeMeta(&w, rs)
	w.objEnd()
	return w.b
}

func finish(ctx *fasthttp.RequestCtx, rs *reqState, status int, body []byte) {
	setHeaders(ctx, rs, status)
	ctx.SetBody(body)
}

// finishRaw is finish for a body nothing else will touch: the response
// keeps it instead of a copy.
func finishRaw(ctx *fasthttp.RequestCtx, rs *reqState, status int, body []byte) {
	setHeaders(ctx, rs, status)
	ctx.Response.SetBodyRaw(body)
}

func setHeaders(ctx *fasthttp.RequestCtx, rs *reqState, status int) {
	ctx.Response.Header.SetContentType("application/json")
	ctx.Response.Header.Set("X-Request-Id", rs.requestID)
	ctx.SetStatusCode(status)
}
