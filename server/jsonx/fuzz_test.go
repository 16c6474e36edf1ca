package jsonx_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/orbit/orbit/server/jsonx"
)

// FuzzParse checks that Parse never panics, that every error is a
// *SyntaxError with an offset inside the input, that Parse never accepts
// what encoding/json rejects and agrees with the strict verdict derived
// from encoding/json (see strictVerdict), that accepted inputs mean the same
// to both parsers, and that AppendValue round-trips.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		chargeBody,
		`{}`,
		`[]`,
		`null`,
		` [true, false, null, -0, 1.5e-3, "x"] `,
		`{"a":{"b":[1,{"c":"\u00e9\ud83d\ude00"}]}}`,
		`{"amount":1,"amount":2}`,
		`"\ud800"`,
		`"\n"`,
		"\"\t\"",
		"\"\xff\"",
		`01`,
		`NaN`,
		`[1,]`,
		`"<&>\u2028\/\"\\"`,
		`123456789012345678901234567890`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := jsonx.Parse(data)
		if err != nil {
			var se *jsonx.SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is %T, want *jsonx.SyntaxError", err, err)
			}
			if se.Offset < 0 || se.Offset > len(data) || se.Msg == "" {
				t.Fatalf("bad SyntaxError %+v for input of length %d", se, len(data))
			}
		}
		if accept, known := strictVerdict(data); known && accept != (err == nil) {
			t.Fatalf("Parse error = %v, but verdict from encoding/json is accept=%v", err, accept)
		}
		if err != nil {
			return
		}
		if !json.Valid(data) {
			t.Fatalf("Parse accepted input that json.Valid rejects")
		}
		checkSameAsStdlib(t, data, v)
		checkRoundTrip(t, v)
		// The numeric accessors must never panic and never return
		// non-finite floats.
		walk(v, func(v jsonx.Value) {
			if v.Kind != jsonx.Number {
				return
			}
			_, _ = v.Int64()
			if f, err := v.Float64(); err == nil && f-f != 0 {
				t.Fatalf("Float64(%s) = %v", v.Str, f)
			}
		})
	})
}

func walk(v jsonx.Value, fn func(jsonx.Value)) {
	fn(v)
	for _, it := range v.Items {
		walk(it, fn)
	}
	for _, f := range v.Fields {
		walk(f.Value, fn)
	}
}
