package jsonx_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/orbit/orbit/server/jsonx"
)

const chargeBody = `{"reference":"sms_msg_01J9KP3R5W8YEQ4DXG6N7H2VKZ","channel":"sms","amount_micros":4200,"metadata":{"campaign":"spring"}}`

// nestedArrays returns n nested arrays: depth n, n values.
func nestedArrays(n int) string {
	return strings.Repeat("[", n) + strings.Repeat("]", n)
}

// nestedObjects returns n nested objects around a 1: depth n, n+1 values.
func nestedObjects(n int) string {
	return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n)
}

// flatArray returns an array holding n-1 zeros: n values in total.
func flatArray(n int) string {
	return "[" + strings.Repeat("0,", n-2) + "0]"
}

// wideObject returns an object with keys k0..k(n-1), followed by extra
// members (e.g. `,"k3":0`).
func wideObject(n int, extra string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"k` + strconv.Itoa(i) + `":` + strconv.Itoa(i))
	}
	b.WriteString(extra)
	b.WriteByte('}')
	return b.String()
}

type parseCase struct {
	name string
	in   string
	// For valid inputs: want is the expected AppendValue output and err is "".
	want string
	// For invalid inputs: err is a substring of SyntaxError.Msg and off the
	// expected SyntaxError.Offset (-1: not checked).
	err string
	off int
}

func ok(name, in, want string) parseCase { return parseCase{name: name, in: in, want: want} }
func bad(name, in, err string, off int) parseCase {
	return parseCase{name: name, in: in, err: err, off: off}
}

var parseCases = []parseCase{
	// Valid: scalars.
	ok("null", `null`, `null`),
	ok("true", `true`, `true`),
	ok("false", `false`, `false`),
	ok("zero", `0`, `0`),
	ok("negative zero kept raw", `-0`, `-0`),
	ok("negative int", `-1`, `-1`),
	ok("fraction", `1.5`, `1.5`),
	ok("trailing fraction zeros kept", `1.50`, `1.50`),
	ok("exponent", `1e3`, `1e3`),
	ok("exponent upper plus", `1E+3`, `1E+3`),
	ok("negative exponent", `-1.25e-10`, `-1.25e-10`),
	ok("zero fraction", `0.000`, `0.000`),
	ok("big integer kept raw", `123456789012345678901234567890`, `123456789012345678901234567890`),
	ok("huge exponent kept raw", `1e999999`, `1e999999`),
	ok("precise decimal kept raw", `0.1000000000000000055511151231257827`, `0.1000000000000000055511151231257827`),
	ok("empty string", `""`, `""`),
	ok("plain string", `"hello"`, `"hello"`),
	ok("raw utf8", `"héllo 世界"`, `"héllo 世界"`),
	ok("raw 4-byte utf8", `"😀"`, `"😀"`),
	ok("unicode escape", `"\u00e9"`, `"é"`),
	ok("unicode escape upper hex", `"\u00C9"`, `"É"`),
	ok("surrogate pair", `"\ud83d\ude00"`, `"😀"`),
	ok("surrogate pair upper hex", `"\uD83D\uDE00x"`, `"😀x"`),
	ok("max code point", `"\udbff\udfff"`, "\"\U0010FFFF\""),
	ok("escaped quote backslash slash", `"\"\\\/"`, `"\"\\/"`),
	ok("escaped space", `"\u0020"`, `" "`),
	ok("DEL is not a C0 control", "\"\x7f\\u007f\"", "\"\x7f\x7f\""),
	ok("noncharacter", `"\uffff"`, "\"\uffff\""),
	ok("html chars escaped on output", `"<a&b>"`, `"\u003ca\u0026b\u003e"`),
	ok("line separator escaped on output", "\"a\u2028b\\u2029\"", `"a\u2028b\u2029"`),
	ok("mixed escapes and raw", `"a\"b\u00e9c"`, `"a\"béc"`),

	// Valid: containers.
	ok("empty object", `{}`, `{}`),
	ok("empty array", `[]`, `[]`),
	ok("empty with inner space", `{ }`, `{}`),
	ok("whitespace everywhere", " \t\r\n{ \"a\" : [ 1 , 2 ] ,\n\"b\"\t:\r{ } } \n", `{"a":[1,2],"b":{}}`),
	ok("nested", `{"a":[1,{"b":null}],"c":{"d":{}},"e":[[],[[]]]}`, `{"a":[1,{"b":null}],"c":{"d":{}},"e":[[],[[]]]}`),
	ok("source order kept", `{"b":1,"a":2}`, `{"b":1,"a":2}`),
	ok("keys are case sensitive", `{"a":1,"A":2}`, `{"a":1,"A":2}`),
	ok("escaped key", `{"\u0061":1,"b":2}`, `{"a":1,"b":2}`),
	ok("empty key", `{"":1}`, `{"":1}`),
	ok("same key in sibling objects", `[{"a":1},{"a":2}]`, `[{"a":1},{"a":2}]`),
	ok("same key at different levels", `{"a":{"a":{"a":1}}}`, `{"a":{"a":{"a":1}}}`),
	ok("charge body", chargeBody, chargeBody),
	ok("depth 32 arrays", nestedArrays(32), nestedArrays(32)),
	ok("depth 32 objects", nestedObjects(32), nestedObjects(32)),
	ok("100000 values", flatArray(100_000), flatArray(100_000)),
	ok("wide object without duplicates", wideObject(40, ""), wideObject(40, "")),

	// Invalid: structure.
	bad("empty input", ``, "unexpected end of input", 0),
	bad("only whitespace", "  \n", "unexpected end of input", 3),
	bad("two values", `1 2`, "after top-level value", 2),
	bad("two objects", `{}{}`, "after top-level value", 2),
	bad("trailing garbage", `{"a":1} x`, "after top-level value", 8),
	bad("trailing comma array", `[1,]`, "trailing comma in array", 3),
	bad("trailing comma object", `{"a":1,}`, "trailing comma in object", 7),
	bad("leading comma array", `[,1]`, "looking for beginning of value", 1),
	bad("lone comma object", `{,}`, "looking for beginning of object key string", 1),
	bad("missing comma array", `[1 2]`, "after array element", 3),
	bad("missing comma object", `{"a":1 "b":2}`, "after object value", 7),
	bad("missing colon", `{"a" 1}`, "after object key", 5),
	bad("unquoted key", `{a:1}`, "looking for beginning of object key string", 1),
	bad("number key", `{1:2}`, "looking for beginning of object key string", 1),
	bad("single quotes", `{'a':1}`, "looking for beginning of object key string", 1),
	bad("single quoted string", `'a'`, "looking for beginning of value", 0),
	bad("unclosed array", `[1`, "unexpected end of input", 2),
	bad("unclosed object", `{"a":1`, "unexpected end of input", 6),
	bad("missing value", `{"a":`, "unexpected end of input", 5),
	bad("missing value before brace", `{"a":}`, "looking for beginning of value", 5),
	bad("stray close", `]`, "looking for beginning of value", 0),
	bad("comment", `/*c*/1`, "looking for beginning of value", 0),
	bad("truncated literal", `tru`, "unexpected end of input", 3),
	bad("misspelled literal", `trUe`, "invalid literal", 0),
	bad("python None", `None`, "looking for beginning of value", 0),
	bad("Inf", `Inf`, "looking for beginning of value", 0),
	bad("null prefix", `nullx`, "after top-level value", 4),
	bad("byte order mark", "\xef\xbb\xbf{}", "byte order mark", 0),
	bad("form feed whitespace", "\f1", "looking for beginning of value", 0),
	bad("nbsp whitespace", "\u00a01", "looking for beginning of value", 0),

	// Invalid: numbers.
	bad("NaN", `NaN`, "NaN and Infinity", 0),
	bad("Infinity", `Infinity`, "NaN and Infinity", 0),
	bad("-Infinity", `-Infinity`, "NaN and Infinity", 0),
	bad("NaN in object", `{"amount":NaN}`, "NaN and Infinity", 10),
	bad("lowercase nan", `nan`, "invalid literal", 0),
	bad("leading zero", `01`, "leading zeros", 0),
	bad("negative leading zero", `-01`, "leading zeros", 0),
	bad("double zero", `00`, "leading zeros", 0),
	bad("leading zeros in array", `[1,007]`, "leading zeros", 3),
	bad("leading plus", `+1`, "must not start with '+'", 0),
	bad("leading dot", `.5`, "must start with a digit", 0),
	bad("trailing dot", `1.`, "expected digit after decimal point", 2),
	bad("dot before exponent", `1.e3`, "expected digit after decimal point", 2),
	bad("empty exponent", `1e`, "expected digit in exponent", 2),
	bad("signed empty exponent", `1e+`, "expected digit in exponent", 3),
	bad("lone minus", `-`, "expected digit after '-'", 1),
	bad("double minus", `--1`, "expected digit after '-'", 1),
	bad("hex", `0x10`, "after top-level value", 1),
	bad("underscore", `1_000`, "after top-level value", 1),

	// Invalid: strings.
	bad("unterminated string", `"abc`, "unterminated string", 0),
	bad("unterminated after escape", `"abc\`, "unterminated string", 0),
	bad("unterminated escaped string", `"a\"b`, "unterminated string", 0),
	bad("raw newline", "\"a\nb\"", "control character U+000A in string", 2),
	bad("raw tab", "\"a\tb\"", "control character U+0009 in string", 2),
	bad("raw NUL", "\"\x00\"", "control character U+0000 in string", 1),
	bad("raw unit separator", "\"\x1f\"", "control character U+001F in string", 1),
	bad("raw control after escape", "\"\\\"\x01\"", "control character U+0001 in string", 3),
	bad("raw control in key", "{\"a\rb\":1}", "control character U+000D in string", 3),
	bad("escaped newline", `"a\nb"`, `escaped control character \n`, 2),
	bad("escaped tab", `"\t"`, `escaped control character \t`, 1),
	bad("escaped backspace", `"\b"`, `escaped control character \b`, 1),
	bad("escaped form feed", `"\f"`, `escaped control character \f`, 1),
	bad("escaped carriage return", `"\r"`, `escaped control character \r`, 1),
	bad("escaped NUL", `"\u0000"`, "escaped control character U+0000", 1),
	bad("escaped unit separator", `"ok\u001F"`, "escaped control character U+001F", 3),
	bad("escaped control in key", `{"a\u000a":1}`, "escaped control character U+000A", 3),
	bad("invalid escape", `"\x41"`, `invalid escape \x`, 1),
	bad("invalid escape quote", `"\'"`, `invalid escape \'`, 1),
	bad("upper U escape", `"\U0041"`, `invalid escape \U`, 1),
	bad("short unicode escape", `"\u12"`, `invalid \u escape`, 1),
	bad("bad hex in escape", `"\u12G4"`, `invalid \u escape`, 1),
	bad("lone high surrogate", `"\ud800"`, `unpaired surrogate \uD800`, 1),
	bad("lone low surrogate", `"\udc00"`, `unpaired surrogate \uDC00`, 1),
	bad("high surrogate then text", `"\ud83dx"`, `unpaired surrogate \uD83D`, 1),
	bad("high surrogate then BMP escape", `"\ud800\u0041"`, `unpaired surrogate \uD800`, 1),
	bad("two high surrogates", `"\ud800\ud800"`, `unpaired surrogate \uD800`, 1),
	bad("reversed surrogates", `"\ude00\ud83d"`, `unpaired surrogate \uDE00`, 1),
	bad("high surrogate then bad escape", `"\ud800\u12"`, `invalid \u escape`, 7),

	// Invalid: UTF-8.
	bad("invalid byte in string", "\"\xff\"", "invalid UTF-8", 1),
	bad("invalid byte in key", "{\"\xfe\":1}", "invalid UTF-8", 2),
	bad("invalid byte outside string", "\xff", "invalid UTF-8", 0),
	bad("invalid byte in array", "[1,\xc3]", "invalid UTF-8", 3),
	bad("overlong encoding", "\"\xc0\xaf\"", "invalid UTF-8", 1),
	bad("encoded surrogate", "\"\xed\xa0\x80\"", "invalid UTF-8", 1),
	bad("truncated sequence", "\"\xe2\x82\"", "invalid UTF-8", 1),
	bad("invalid byte after escape", "\"\\n\xff\"", `escaped control character \n`, 1),
	bad("invalid byte after valid escape", "\"\\/\xff\"", "invalid UTF-8", 3),
	bad("beyond max code point", "\"\xf4\x90\x80\x80\"", "invalid UTF-8", 1),
	bad("invalid byte after value", "1\xff", "invalid UTF-8", 1),

	// Invalid: duplicate keys.
	bad("duplicate key", `{"amount":1,"amount":2}`, `duplicate key "amount"`, 12),
	bad("duplicate key with whitespace", `{ "a" : 1 , "a" : 1 }`, `duplicate key "a"`, 12),
	bad("duplicate nested key", `{"a":{"x":1,"x":2}}`, `duplicate key "x"`, 12),
	bad("duplicate via escape", `{"a":1,"\u0061":2}`, `duplicate key "a"`, 7),
	bad("duplicate empty key", `{"":1,"":2}`, `duplicate key ""`, 6),
	bad("duplicate in wide object", wideObject(40, `,"k3":0`), `duplicate key "k3"`, -1),
	bad("duplicate at map threshold", wideObject(16, `,"k15":0`), `duplicate key "k15"`, -1),
	bad("duplicate below map threshold", wideObject(15, `,"k0":0`), `duplicate key "k0"`, -1),

	// Invalid: limits.
	bad("depth 33 arrays", nestedArrays(33), "nesting deeper than 32 levels", 32),
	bad("depth 33 objects", nestedObjects(33), "nesting deeper than 32 levels", 32*5),
	bad("depth 33 mixed", strings.Repeat(`[{"a":`, 16)+"[1]"+strings.Repeat("}]", 16), "nesting deeper than 32", 16*6),
	bad("100001 values", flatArray(100_001), "too many values", -1),
	bad("100001 values in objects", wideObject(100_000, ""), "too many values", -1),
}

func TestParse(t *testing.T) {
	if len(parseCases) < 60 {
		t.Fatalf("only %d cases", len(parseCases))
	}
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := jsonx.Parse([]byte(tc.in))
			if tc.err == "" {
				if err != nil {
					t.Fatalf("Parse(%.80q): %v", tc.in, err)
				}
				if got := string(jsonx.AppendValue(nil, v)); got != tc.want {
					t.Fatalf("AppendValue = %.80q, want %.80q", got, tc.want)
				}
				checkRoundTrip(t, v)
				return
			}
			if err == nil {
				t.Fatalf("Parse(%.80q) succeeded, want error containing %q", tc.in, tc.err)
			}
			var se *jsonx.SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is %T, want *jsonx.SyntaxError", err, err)
			}
			if !strings.Contains(se.Msg, tc.err) {
				t.Errorf("Msg = %q, want it to contain %q", se.Msg, tc.err)
			}
			if tc.off >= 0 && se.Offset != tc.off {
				t.Errorf("Offset = %d, want %d (%v)", se.Offset, tc.off, err)
			}
			if se.Offset < 0 || se.Offset > len(tc.in) {
				t.Errorf("Offset %d outside input of length %d", se.Offset, len(tc.in))
			}
			if !reflect.DeepEqual(v, jsonx.Value{}) {
				t.Errorf("Parse returned non-zero Value %+v with error", v)
			}
		})
	}
}

func TestSyntaxErrorMessage(t *testing.T) {
	_, err := jsonx.Parse([]byte(`{"currency":"EUR","amount":1,"amount":100000}`))
	const want = `duplicate key "amount" at offset 29`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
	long := `{"` + strings.Repeat("é", 100) + `":1,"` + strings.Repeat("é", 100) + `":2}`
	_, err = jsonx.Parse([]byte(long))
	var se *jsonx.SyntaxError
	if !errors.As(err, &se) || !strings.HasSuffix(se.Msg, `"...`) {
		t.Fatalf("long duplicate key error = %v, want truncated key", err)
	}
	if len(se.Msg) > 200 || !utf8.ValidString(se.Msg) {
		t.Fatalf("long key message not truncated cleanly: %q", se.Msg)
	}
}

func TestValueShape(t *testing.T) {
	v, err := jsonx.Parse([]byte(chargeBody))
	if err != nil {
		t.Fatal(err)
	}
	if v.Kind != jsonx.Object || len(v.Fields) != 4 {
		t.Fatalf("got %+v", v)
	}
	keys := []string{"reference", "channel", "amount_micros", "metadata"}
	for i, f := range v.Fields {
		if f.Key != keys[i] {
			t.Errorf("field %d = %q, want %q", i, f.Key, keys[i])
		}
	}
	if ref, ok := v.Get("reference"); !ok || ref.Kind != jsonx.String || ref.Str != "sms_msg_01J9KP3R5W8YEQ4DXG6N7H2VKZ" {
		t.Errorf("reference = %+v, %v", ref, ok)
	}
	amt, ok := v.Get("amount_micros")
	if n, err := amt.Int64(); !ok || err != nil || n != 4200 {
		t.Errorf("amount_micros = %d, %v, %v", n, ok, err)
	}
	md, _ := v.Get("metadata")
	if c, ok := md.Get("campaign"); !ok || c.Str != "spring" {
		t.Errorf("metadata.campaign = %+v, %v", c, ok)
	}
	if _, ok := v.Get("missing"); ok {
		t.Error("Get(missing) found something")
	}
	if _, ok := amt.Get("x"); ok {
		t.Error("Get on a number found something")
	}
	if _, ok := (jsonx.Value{}).Get(""); ok {
		t.Error("Get on null found something")
	}

	v, err = jsonx.Parse([]byte(`[null,true,false,"s",-2.5,[],{}]`))
	if err != nil {
		t.Fatal(err)
	}
	want := []jsonx.Value{
		{Kind: jsonx.Null},
		{Kind: jsonx.Bool, Bool: true},
		{Kind: jsonx.Bool},
		{Kind: jsonx.String, Str: "s"},
		{Kind: jsonx.Number, Str: "-2.5"},
		{Kind: jsonx.Array},
		{Kind: jsonx.Object},
	}
	if !reflect.DeepEqual(v.Items, want) {
		t.Errorf("items = %+v\nwant %+v", v.Items, want)
	}
}

// TestResultIndependentOfInput checks that results neither alias the input
// buffer nor the parser's pooled buffers.
func TestResultIndependentOfInput(t *testing.T) {
	buf := []byte(`{"plain":"abc","esc":"a\u00e9\"","n":12}`)
	v, err := jsonx.Parse(buf)
	if err != nil {
		t.Fatal(err)
	}
	before := string(jsonx.AppendValue(nil, v))
	for i := range buf {
		buf[i] = 'x'
	}
	for range 10 {
		if _, err := jsonx.Parse([]byte(`{"esc":"zz\u00e9\"zzzzzzzz","plain":"zzz","n":99}`)); err != nil {
			t.Fatal(err)
		}
	}
	if after := string(jsonx.AppendValue(nil, v)); after != before {
		t.Fatalf("value changed from %s to %s", before, after)
	}
}

func TestInt64(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		err  error
	}{
		{`0`, 0, nil},
		{`-0`, 0, nil},
		{`-1`, -1, nil},
		{`4200`, 4200, nil},
		{`9223372036854775807`, math.MaxInt64, nil},
		{`-9223372036854775808`, math.MinInt64, nil},
		{`9223372036854775808`, 0, jsonx.ErrOutOfRange},
		{`-9223372036854775809`, 0, jsonx.ErrOutOfRange},
		{`123456789012345678901234567890`, 0, jsonx.ErrOutOfRange},
		{`1.0`, 0, jsonx.ErrNotInteger},
		{`1.5`, 0, jsonx.ErrNotInteger},
		{`1e2`, 0, jsonx.ErrNotInteger},
		{`1E2`, 0, jsonx.ErrNotInteger},
		{`-0.0`, 0, jsonx.ErrNotInteger},
		{`"5"`, 0, jsonx.ErrNotNumber},
		{`true`, 0, jsonx.ErrNotNumber},
		{`null`, 0, jsonx.ErrNotNumber},
		{`[1]`, 0, jsonx.ErrNotNumber},
	}
	for _, tc := range cases {
		v, err := jsonx.Parse([]byte(tc.in))
		if err != nil {
			t.Fatalf("Parse(%s): %v", tc.in, err)
		}
		got, err := v.Int64()
		if err != tc.err || got != tc.want {
			t.Errorf("Int64(%s) = %d, %v; want %d, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
	if jsonx.ErrNotInteger.Error() != "must be an integer" || jsonx.ErrOutOfRange.Error() != "out of range" {
		t.Error("unexpected error messages")
	}
	// Hand-built values with text strconv would accept but JSON does not.
	for _, s := range []string{"", "+1", "01", " 1", "1 ", "0x10", "1_0", "-", "Inf"} {
		v := jsonx.Value{Kind: jsonx.Number, Str: s}
		if _, err := v.Int64(); err != jsonx.ErrNotNumber {
			t.Errorf("Int64(hand-built %q) err = %v, want ErrNotNumber", s, err)
		}
		if _, err := v.Float64(); err != jsonx.ErrNotNumber {
			t.Errorf("Float64(hand-built %q) err = %v, want ErrNotNumber", s, err)
		}
	}
}

func TestFloat64(t *testing.T) {
	cases := []struct {
		in   string
		want float64
		err  error
	}{
		{`0`, 0, nil},
		{`-1`, -1, nil},
		{`1.5`, 1.5, nil},
		{`1e3`, 1000, nil},
		{`-2.5E-3`, -0.0025, nil},
		{`1.7976931348623157e308`, math.MaxFloat64, nil},
		{`9007199254740993`, 9007199254740992, nil},
		{`1e-400`, 0, nil},
		{`1e309`, 0, jsonx.ErrOutOfRange},
		{`-1e400`, 0, jsonx.ErrOutOfRange},
		{`1e999999`, 0, jsonx.ErrOutOfRange},
		{`"1.5"`, 0, jsonx.ErrNotNumber},
		{`{}`, 0, jsonx.ErrNotNumber},
	}
	for _, tc := range cases {
		v, err := jsonx.Parse([]byte(tc.in))
		if err != nil {
			t.Fatalf("Parse(%s): %v", tc.in, err)
		}
		got, err := v.Float64()
		if err != tc.err || got != tc.want {
			t.Errorf("Float64(%s) = %v, %v; want %v, %v", tc.in, got, err, tc.want, tc.err)
		}
		if math.IsInf(got, 0) || math.IsNaN(got) {
			t.Errorf("Float64(%s) returned non-finite %v", tc.in, got)
		}
	}
}

func TestAppendString(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", `""`},
		{"plain", `"plain"`},
		{`a"b\c`, `"a\"b\\c"`},
		{"/", `"/"`},
		{"<script>&</script>", `"\u003cscript\u003e\u0026\u003c/script\u003e"`},
		{"\x00\x01\n\r\t\x1f", `"\u0000\u0001\u000a\u000d\u0009\u001f"`},
		{"\x7f", "\"\x7f\""},
		{"a\u2028b\u2029c", `"a\u2028b\u2029c"`},
		{"\u2027\u202a", "\"\u2027\u202a\""},
		{"héllo 世界 😀", `"héllo 世界 😀"`},
		{"a\xffb", `"a\ufffdb"`},
		{"\xed\xa0\x80", `"\ufffd\ufffd\ufffd"`},
		{"\xe2\x82", `"\ufffd\ufffd"`},
	}
	for _, tc := range cases {
		got := string(jsonx.AppendString([]byte("x"), tc.in))
		if got != "x"+tc.want {
			t.Errorf("AppendString(%q) = %s, want %s", tc.in, got[1:], tc.want)
		}
		if !json.Valid([]byte(got[1:])) {
			t.Errorf("AppendString(%q) = %s is not valid JSON", tc.in, got[1:])
		}
		var back string
		if err := json.Unmarshal([]byte(got[1:]), &back); err != nil || (utf8.ValidString(tc.in) && back != tc.in) {
			t.Errorf("AppendString(%q) decodes to %q, %v", tc.in, back, err)
		}
	}
}

func TestAppendValueHandBuilt(t *testing.T) {
	v := jsonx.Value{Kind: jsonx.Object, Fields: []jsonx.Field{
		{Key: "a<b", Value: jsonx.Value{Kind: jsonx.Array, Items: []jsonx.Value{
			{}, {Kind: jsonx.Bool, Bool: true}, {Kind: jsonx.Number, Str: "1.50"},
		}}},
		{Key: "s", Value: jsonx.Value{Kind: jsonx.String, Str: "x\ny"}},
		{Key: "weird", Value: jsonx.Value{Kind: jsonx.Kind(99)}},
	}}
	const want = `{"a\u003cb":[null,true,1.50],"s":"x\u000ay","weird":null}`
	if got := string(jsonx.AppendValue(nil, v)); got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestKindString(t *testing.T) {
	want := map[jsonx.Kind]string{
		jsonx.Null: "null", jsonx.Bool: "bool", jsonx.Number: "number",
		jsonx.String: "string", jsonx.Array: "array", jsonx.Object: "object",
		jsonx.Kind(42): "Kind(42)",
	}
	for k, s := range want {
		if k.String() != s {
			t.Errorf("Kind(%d).String() = %q, want %q", k, k.String(), s)
		}
	}
}

// extraStdlibInputs are accepted or rejected by encoding/json for reasons
// worth cross-checking beyond the table above.
var extraStdlibInputs = []string{
	`{"a":[1,2,{"b":"c"}],"d":-0.5e+7}`,
	`[1E400, -1e-400, 0.0e0]`,
	`"\ufffd"`,
	`{"a":"\ud800"}`,
	`{"a":1,"a":1}`,
	`[` + nestedObjects(31) + `]`,
	`{"k":` + nestedArrays(31) + `}`,
	"\"\x7f\"",
	`"\u007f\u0080\u07ff\u0800\uffff"`,
	"[\"\xf0\x9f\x98\x80\"]",
	`{"a":{"b":{"c":[true,false,null]}}}`,
	"\t\n\r 1 \t\n\r",
	`1.0E-0`,
	`-`,
	`[01]`,
}

// TestAgainstEncodingJSON checks Parse against a verdict computed from
// encoding/json alone: every input encoding/json accepts that has no
// duplicate keys, control characters, invalid UTF-8 or excess depth or
// size is accepted, with the same meaning; every input it rejects, or that
// breaks those rules, is rejected.
func TestAgainstEncodingJSON(t *testing.T) {
	inputs := extraStdlibInputs
	for _, tc := range parseCases {
		inputs = append(inputs, tc.in)
	}
	var accepted int
	for _, in := range inputs {
		data := []byte(in)
		v, err := jsonx.Parse(data)
		accept, known := strictVerdict(data)
		if known && accept != (err == nil) {
			t.Errorf("input %.80q: Parse error = %v, but encoding/json verdict accept=%v", in, err, accept)
			continue
		}
		if err == nil {
			accepted++
			checkSameAsStdlib(t, data, v)
		}
	}
	if accepted < 50 {
		t.Errorf("only %d inputs accepted; cross-check is too weak", accepted)
	}
}

// strictVerdict decides, from encoding/json and unicode/utf8 alone, whether
// Parse should accept data. known is false when encoding/json cannot tell:
// it decodes lone surrogate escapes to U+FFFD, which looks like a literal
// U+FFFD afterwards.
func strictVerdict(data []byte) (accept, known bool) {
	if !json.Valid(data) || !utf8.Valid(data) {
		return false, true
	}
	type frame struct {
		obj, wantKey bool
		keys         map[string]bool
	}
	var stack []*frame
	values, sawFFFD := 0, false
	badString := func(s string) bool {
		for _, r := range s {
			if r < 0x20 {
				return true
			}
			if r == utf8.RuneError {
				sawFFFD = true
			}
		}
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return false, false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			continue
		}
		if top != nil && top.obj && top.wantKey {
			k := tok.(string)
			if top.keys[k] || badString(k) {
				return false, true
			}
			top.keys[k] = true
			top.wantKey = false
			continue
		}
		values++
		if values > jsonx.MaxValues {
			return false, true
		}
		if top != nil && top.obj {
			top.wantKey = true
		}
		switch tok := tok.(type) {
		case json.Delim:
			stack = append(stack, &frame{obj: tok == '{', wantKey: tok == '{', keys: map[string]bool{}})
			if len(stack) > jsonx.MaxDepth {
				return false, true
			}
		case string:
			if badString(tok) {
				return false, true
			}
		}
	}
	if sawFFFD {
		return false, false
	}
	return true, true
}

// toAny converts v to the shape encoding/json decodes into with UseNumber.
func toAny(v jsonx.Value) any {
	switch v.Kind {
	case jsonx.Bool:
		return v.Bool
	case jsonx.Number:
		return json.Number(v.Str)
	case jsonx.String:
		return v.Str
	case jsonx.Array:
		a := make([]any, len(v.Items))
		for i, it := range v.Items {
			a[i] = toAny(it)
		}
		return a
	case jsonx.Object:
		m := make(map[string]any, len(v.Fields))
		for _, f := range v.Fields {
			m[f.Key] = toAny(f.Value)
		}
		return m
	}
	return nil
}

// checkSameAsStdlib checks that encoding/json decodes data to the same
// thing Parse did.
func checkSameAsStdlib(t *testing.T, data []byte, v jsonx.Value) {
	t.Helper()
	if !json.Valid(data) {
		t.Fatalf("Parse accepted %.80q but json.Valid rejects it", data)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var std any
	if err := dec.Decode(&std); err != nil {
		t.Fatalf("encoding/json cannot decode %.80q: %v", data, err)
	}
	if got := toAny(v); !reflect.DeepEqual(got, std) {
		t.Fatalf("input %.80q: Parse gives %v, encoding/json gives %v", data, got, std)
	}
}

// checkRoundTrip checks that AppendValue(v) is valid JSON that parses back
// to v and is a fixed point of AppendValue∘Parse.
func checkRoundTrip(t *testing.T, v jsonx.Value) {
	t.Helper()
	enc := jsonx.AppendValue(nil, v)
	if !json.Valid(enc) {
		t.Fatalf("AppendValue output %.80q is not valid JSON", enc)
	}
	v2, err := jsonx.Parse(enc)
	if err != nil {
		t.Fatalf("Parse(AppendValue(v)) = %v for %.80q", err, enc)
	}
	if !reflect.DeepEqual(v, v2) {
		t.Fatalf("round trip changed value: %+v -> %+v", v, v2)
	}
	if enc2 := jsonx.AppendValue(nil, v2); !bytes.Equal(enc, enc2) {
		t.Fatalf("AppendValue not canonical: %q then %q", enc, enc2)
	}
}

func BenchmarkParseCharge(b *testing.B) {
	body := []byte(chargeBody)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := jsonx.Parse(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendValueCharge(b *testing.B) {
	v, err := jsonx.Parse([]byte(chargeBody))
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = jsonx.AppendValue(buf[:0], v)
	}
}

// BenchmarkStdlibUnmarshalCharge is a reference point for BenchmarkParseCharge.
func BenchmarkStdlibUnmarshalCharge(b *testing.B) {
	body := []byte(chargeBody)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		var v map[string]any
		if err := json.Unmarshal(body, &v); err != nil {
			b.Fatal(err)
		}
	}
}

// Objects share chunks of members: appending to one object's Fields must
// not overwrite another's, and a later parse must not change an earlier
// result. The body has more members than one chunk holds.
func TestObjectMembersAreIndependent(t *testing.T) {
	var b strings.Builder
	b.WriteString(`[`)
	for i := range 600 {
		if i > 0 {
			b.WriteString(`,`)
		}
		fmt.Fprintf(&b, `{"i":%d,"m":{"k":"v%d"}}`, i, i)
	}
	b.WriteString(`]`)
	v, err := jsonx.Parse([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	before := string(jsonx.AppendValue(nil, v))
	for i := range v.Items {
		o := &v.Items[i]
		if cap(o.Fields) != len(o.Fields) {
			t.Fatalf("object %d: %d members with capacity %d", i, len(o.Fields), cap(o.Fields))
		}
		o.Fields = append(o.Fields, jsonx.Field{Key: "extra", Value: jsonx.Value{Kind: jsonx.Null}})
		o.Fields = o.Fields[:len(o.Fields)-1]
	}
	if _, err := jsonx.Parse([]byte(`{"a":{"b":1},"c":2}`)); err != nil {
		t.Fatal(err)
	}
	if after := string(jsonx.AppendValue(nil, v)); after != before {
		t.Fatal("appending to one object's members, or a later parse, changed other objects")
	}
}
