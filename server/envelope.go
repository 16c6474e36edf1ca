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

// bufPool recycles response buffers: fasthttp copies the body, so a buffer
// is free again as soon as finish returns.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// respond writes {"data": <data>, "meta": ...} with status.
func respond(ctx *fasthttp.RequestCtx, rs *reqState, status int, data func(w *jw)) {
	bp := bufPool.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 64<<10 { // do not keep huge buffers around
			bufPool.Put(bp)
		}
	}()
	w := jw{b: (*bp)[:0], comma: make([]bool, 0, 8)}
	defer func() { *bp = w.b }()
	w.objStart()
	w.key("data")
	data(&w)
	writeMeta(&w, rs)
	w.objEnd()
	finish(ctx, rs, status, w.b)
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
	ctx.Response.Header.SetContentType("application/json")
	ctx.Response.Header.Set("X-Request-Id", rs.requestID)
	ctx.SetStatusCode(status)
	ctx.SetBody(body)
}
