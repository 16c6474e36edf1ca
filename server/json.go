package server

import (
	"strconv"
	"time"

	"github.com/orbit/orbit/engine"
	"github.com/orbit/orbit/server/jsonx"
)

// jw appends a JSON document to a byte slice, handling commas: the
// allocation-light way to write responses.
type jw struct {
	b     []byte
	comma []bool // per open container: a value was written, next needs a comma
}

func (w *jw) sep() {
	if n := len(w.comma); n > 0 {
		if w.comma[n-1] {
			w.b = append(w.b, ',')
		}
		w.comma[n-1] = true
	}
}

func (w *jw) objStart()      { w.sep(); w.b = append(w.b, '{'); w.comma = append(w.comma, false) }
func (w *jw) objEnd()        { w.b = append(w.b, '}'); w.comma = w.comma[:len(w.comma)-1] }
func (w *jw) arrStart()      { w.sep(); w.b = append(w.b, '['); w.comma = append(w.comma, false) }
func (w *jw) arrEnd()        { w.b = append(w.b, ']'); w.comma = w.comma[:len(w.comma)-1] }
func (w *jw) str(s string)   { w.sep(); w.b = jsonx.AppendString(w.b, s) }
func (w *jw) int(n int64)    { w.sep(); w.b = strconv.AppendInt(w.b, n, 10) }
func (w *jw) boolean(v bool) { w.sep(); w.b = strconv.AppendBool(w.b, v) }
func (w *jw) null()          { w.sep(); w.b = append(w.b, "null"...) }
func (w *jw) raw(s string)   { w.sep(); w.b = append(w.b, s...) }

// key writes an object key; the value written next follows it.
func (w *jw) key(k string) {
	w.sep()
	w.b = jsonx.AppendString(w.b, k)
	w.b = append(w.b, ':')
	w.comma[len(w.comma)-1] = false
}

func (w *jw) kStr(k, v string)       { w.key(k); w.str(v) }
func (w *jw) kInt(k string, v int64) { w.key(k); w.int(v) }
func (w *jw) kBool(k string, v bool) { w.key(k); w.boolean(v) }
func (w *jw) kNull(k string)         { w.key(k); w.null() }

// kStrOrNull writes v, or null when v is empty.
func (w *jw) kStrOrNull(k, v string) {
	w.key(k)
	if v == "" {
		w.null()
	} else {
		w.str(v)
	}
}

// kTime writes a unix-ms time as RFC 3339 UTC with milliseconds, or null for 0.
func (w *jw) kTime(k string, ms int64) {
	w.key(k)
	if ms == 0 {
		w.null()
		return
	}
	w.sep()
	w.b = append(w.b, '"')
	w.b = appendTime(w.b, ms)
	w.b = append(w.b, '"')
}

// kUSD writes micros as a JSON number of USD truncated toward zero at 4
// decimals (SPEC.md section 2).
func (w *jw) kUSD(k string, micros int64) {
	w.key(k)
	w.sep()
	w.b = appendUSD(w.b, micros)
}

const timeLayout = "2006-01-02T15:04:05.000Z"

func appendTime(b []byte, ms int64) []byte {
	return time.UnixMilli(ms).UTC().AppendFormat(b, timeLayout)
}

func formatTime(ms int64) string { return string(appendTime(nil, ms)) }

// appendUSD appends micros / 10^6 truncated toward zero at 4 decimals.
func appendUSD(b []byte, micros int64) []byte {
	q := micros / 100 // units of 0.0001 USD, truncated toward zero
	if q < 0 {
		b = append(b, '-')
		q = -q
	}
	b = strconv.AppendInt(b, q/10000, 10)
	b = append(b, '.')
	frac := q % 10000
	for d := int64(1000); d > 0; d /= 10 {
		b = append(b, byte('0'+frac/d%10))
	}
	return b
}

// cents truncates micros toward zero to cents.
func cents(micros int64) int64 { return micros / engine.MicrosPerCent }
