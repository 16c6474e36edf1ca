package jsonx

import (
	"bytes"
	"strconv"
	"sync"
	"unicode/utf8"
)

// Limits enforced by Parse.
const (
	// MaxDepth is the deepest nesting of arrays and objects Parse accepts;
	// a top-level array or object is depth 1.
	MaxDepth = 32
	// MaxValues is the most values (scalars, arrays and objects; object
	// keys are not counted) one document may contain.
	MaxValues = 100_000
)

// smallObject is the member count up to which duplicate keys are found by
// a linear scan; larger objects use a map so that hostile bodies with many
// keys cannot make Parse quadratic.
const smallObject = 16

// SyntaxError describes why an input was rejected. Offset is the byte
// offset in the input of the offending byte or token (len(input) when the
// input ended early) and Msg is a human-readable description without the
// offset, e.g. `duplicate key "amount"`.
type SyntaxError struct {
	Offset int
	Msg    string
}

// Error returns Msg followed by the offset, e.g.
// `duplicate key "amount" at offset 17`.
func (e *SyntaxError) Error() string {
	return e.Msg + " at offset " + strconv.Itoa(e.Offset)
}

type parser struct {
	data    []byte
	s       string  // string(data): unescaped strings and numbers are substrings of it
	i       int     // current offset
	count   int     // values seen so far
	scratch []byte  // decode buffer for strings with escapes
	items   []Value // stack of elements of the arrays being parsed
	fields  []Field // stack of members of the objects being parsed
	// itemsHi and fieldsHi are the high-water marks of items and fields,
	// the extent release must clear.
	itemsHi, fieldsHi int
	// objects holds the members of every object this parse closed, each
	// object a capacity-capped window of it: one allocation for many small
	// objects (a /charges/batch body has two per charge). It belongs to the
	// returned Value, so it is never reused across parses.
	objects []Field
}

var parserPool = sync.Pool{New: func() any { return new(parser) }}

// Parse parses data as exactly one JSON value (RFC 8259), optionally
// surrounded by whitespace, under the strict rules described in the package
// documentation. Every error is a *SyntaxError.
func Parse(data []byte) (Value, error) {
	p := parserPool.Get().(*parser)
	p.data, p.s, p.i, p.count = data, string(data), 0, 0
	v, err := p.value(0)
	if err == nil {
		p.skipWS()
		if p.i < len(p.data) {
			err = p.unexpected("after top-level value")
		}
	}
	if err != nil {
		v = Value{}
	}
	p.release()
	return v, err
}

// objectChunkMax bounds the members of one chunk of parser.objects: 256
// Fields are about 22 KiB, under Go's 32 KiB large-object threshold.
const objectChunkMax = 256

// closeObject moves the members above base off the stack into p.objects
// and returns them. The window's capacity ends at its length, so a caller
// appending to one object's Fields cannot overwrite the next object's.
func (p *parser) closeObject(base int) []Field {
	n := len(p.fields) - base
	if cap(p.objects)-len(p.objects) < n {
		// Chunks are sized from the input (a member takes at least 6
		// bytes, typically 20-30), so a small body needs one, and capped
		// below Go's large-object size, so a big one is many small
		// allocations rather than a few large ones to zero.
		chunk := min(max(len(p.data)/24, 8), objectChunkMax)
		p.objects = make([]Field, 0, max(n, chunk))
	}
	start := len(p.objects)
	p.objects = append(p.objects, p.fields[base:]...)
	return p.objects[start:len(p.objects):len(p.objects)]
}

// release drops references into the input and returns p to the pool,
// keeping only modestly sized buffers.
func (p *parser) release() {
	p.data, p.s, p.objects = nil, "", nil
	if cap(p.items) > 1024 {
		p.items = nil
	} else {
		clear(p.items[:max(p.itemsHi, len(p.items))])
		p.items = p.items[:0]
	}
	if cap(p.fields) > 1024 {
		p.fields = nil
	} else {
		clear(p.fields[:max(p.fieldsHi, len(p.fields))])
		p.fields = p.fields[:0]
	}
	p.itemsHi, p.fieldsHi = 0, 0
	if cap(p.scratch) > 64<<10 {
		p.scratch = nil
	}
	parserPool.Put(p)
}

func (p *parser) errAt(off int, msg string) error {
	return &SyntaxError{Offset: off, Msg: msg}
}

// unexpected reports the byte at p.i (or the end of input) as out of place.
func (p *parser) unexpected(context string) error {
	if p.i >= len(p.data) {
		return p.errAt(p.i, "unexpected end of input")
	}
	c := p.data[p.i]
	if c >= utf8.RuneSelf {
		r, size := utf8.DecodeRune(p.data[p.i:])
		if size == 1 {
			return p.errAt(p.i, "invalid UTF-8")
		}
		if r == '\uFEFF' {
			return p.errAt(p.i, "unexpected byte order mark")
		}
		return p.errAt(p.i, "invalid character "+strconv.QuoteRune(r)+" "+context)
	}
	return p.errAt(p.i, "invalid character "+strconv.QuoteRune(rune(c))+" "+context)
}

func (p *parser) skipWS() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// value parses one value starting at or after p.i (leading whitespace is
// skipped). depth is the nesting depth of the enclosing container.
func (p *parser) value(depth int) (Value, error) {
	p.skipWS()
	if p.i >= len(p.data) {
		return Value{}, p.errAt(p.i, "unexpected end of input")
	}
	p.count++
	if p.count > MaxValues {
		return Value{}, p.errAt(p.i, "too many values (limit "+strconv.Itoa(MaxValues)+")")
	}
	switch c := p.data[p.i]; c {
	case '{':
		return p.object(depth + 1)
	case '[':
		return p.array(depth + 1)
	case '"':
		s, err := p.str()
		return Value{Kind: String, Str: s}, err
	case 't':
		return Value{Kind: Bool, Bool: true}, p.literal("true")
	case 'f':
		return Value{Kind: Bool}, p.literal("false")
	case 'n':
		return Value{}, p.literal("null")
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return p.number()
	case 'N', 'I':
		if rest := p.data[p.i:]; bytes.HasPrefix(rest, []byte("NaN")) || bytes.HasPrefix(rest, []byte("Infinity")) {
			return Value{}, p.errAt(p.i, "NaN and Infinity are not valid JSON numbers")
		}
		return Value{}, p.unexpected("looking for beginning of value")
	case '+':
		return Value{}, p.errAt(p.i, "numbers must not start with '+'")
	case '.':
		return Value{}, p.errAt(p.i, "numbers must start with a digit")
	default:
		return Value{}, p.unexpected("looking for beginning of value")
	}
}

func (p *parser) literal(lit string) error {
	start := p.i
	for j := 0; j < len(lit); j++ {
		if p.i >= len(p.data) {
			return p.errAt(p.i, "unexpected end of input")
		}
		if p.data[p.i] != lit[j] {
			return p.errAt(start, "invalid literal (expected "+lit+")")
		}
		p.i++
	}
	return nil
}

func (p *parser) number() (Value, error) {
	data := p.data
	start := p.i
	i := p.i
	if data[i] == '-' {
		i++
		if bytes.HasPrefix(data[i:], []byte("Infinity")) {
			return Value{}, p.errAt(start, "NaN and Infinity are not valid JSON numbers")
		}
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
		if i < len(data) && isDigit(data[i]) {
			return Value{}, p.errAt(start, "leading zeros are not allowed in numbers")
		}
	case i < len(data) && isDigit(data[i]):
		for i++; i < len(data) && isDigit(data[i]); i++ {
		}
	default:
		return Value{}, p.errAt(i, "invalid number: expected digit after '-'")
	}
	if i < len(data) && data[i] == '.' {
		i++
		if i >= len(data) || !isDigit(data[i]) {
			return Value{}, p.errAt(i, "invalid number: expected digit after decimal point")
		}
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) || !isDigit(data[i]) {
			return Value{}, p.errAt(i, "invalid number: expected digit in exponent")
		}
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	}
	p.i = i
	return Value{Kind: Number, Str: p.s[start:i]}, nil
}

func (p *parser) array(depth int) (Value, error) {
	if depth > MaxDepth {
		return Value{}, p.errAt(p.i, "nesting deeper than "+strconv.Itoa(MaxDepth)+" levels")
	}
	p.i++ // '['
	p.skipWS()
	if p.i < len(p.data) && p.data[p.i] == ']' {
		p.i++
		return Value{Kind: Array}, nil
	}
	base := len(p.items)
	for {
		v, err := p.value(depth)
		if err != nil {
			return Value{}, err
		}
		p.items = append(p.items, v)
		p.skipWS()
		if p.i >= len(p.data) {
			return Value{}, p.errAt(p.i, "unexpected end of input")
		}
		switch p.data[p.i] {
		case ',':
			p.i++
			p.skipWS()
			if p.i < len(p.data) && p.data[p.i] == ']' {
				return Value{}, p.errAt(p.i, "trailing comma in array")
			}
		case ']':
			p.i++
			items := make([]Value, len(p.items)-base)
			copy(items, p.items[base:])
			p.itemsHi = max(p.itemsHi, len(p.items))
			p.items = p.items[:base]
			return Value{Kind: Array, Items: items}, nil
		default:
			return Value{}, p.unexpected("after array element (expected ',' or ']')")
		}
	}
}

func (p *parser) object(depth int) (Value, error) {
	if depth > MaxDepth {
		return Value{}, p.errAt(p.i, "nesting deeper than "+strconv.Itoa(MaxDepth)+" levels")
	}
	p.i++ // '{'
	p.skipWS()
	if p.i < len(p.data) && p.data[p.i] == '}' {
		p.i++
		return Value{Kind: Object}, nil
	}
	base := len(p.fields)
	var seen map[string]struct{} // only for objects with more than smallObject members
	for {
		if p.i >= len(p.data) {
			return Value{}, p.errAt(p.i, "unexpected end of input")
		}
		if p.data[p.i] != '"' {
			if p.data[p.i] == '}' && len(p.fields) > base {
				return Value{}, p.errAt(p.i, "trailing comma in object")
			}
			return Value{}, p.unexpected("looking for beginning of object key string")
		}
		keyOff := p.i
		key, err := p.str()
		if err != nil {
			return Value{}, err
		}
		if n := len(p.fields) - base; n < smallObject {
			for i := base; i < len(p.fields); i++ {
				if p.fields[i].Key == key {
					return Value{}, p.errAt(keyOff, "duplicate key "+quoteForMsg(key))
				}
			}
		} else {
			if seen == nil {
				seen = make(map[string]struct{}, 2*n)
				for i := base; i < len(p.fields); i++ {
					seen[p.fields[i].Key] = struct{}{}
				}
			}
			if _, dup := seen[key]; dup {
				return Value{}, p.errAt(keyOff, "duplicate key "+quoteForMsg(key))
			}
			seen[key] = struct{}{}
		}
		p.skipWS()
		if p.i >= len(p.data) || p.data[p.i] != ':' {
			return Value{}, p.unexpected("after object key (expected ':')")
		}
		p.i++
		v, err := p.value(depth)
		if err != nil {
			return Value{}, err
		}
		p.fields = append(p.fields, Field{Key: key, Value: v})
		p.skipWS()
		if p.i >= len(p.data) {
			return Value{}, p.errAt(p.i, "unexpected end of input")
		}
		switch p.data[p.i] {
		case ',':
			p.i++
			p.skipWS()
		case '}':
			p.i++
			fields := p.closeObject(base)
			p.fieldsHi = max(p.fieldsHi, len(p.fields))
			p.fields = p.fields[:base]
			return Value{Kind: Object, Fields: fields}, nil
		default:
			return Value{}, p.unexpected("after object value (expected ',' or '}')")
		}
	}
}

// quoteForMsg quotes a client-supplied string for an error message,
// truncating long ones.
func quoteForMsg(s string) string {
	const max = 64
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "..."
	}
	return strconv.Quote(s)
}

// strSafe[c] is true for bytes that can appear unescaped in a JSON string
// and need no further checking: ASCII other than control characters, '"'
// and '\\'.
var strSafe = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str parses the string starting at the opening quote at p.i and returns
// its decoded contents. Strings without escapes are returned as substrings
// of p.s, without allocating.
func (p *parser) str() (string, error) {
	data := p.data
	start := p.i + 1
	i := start
	for i < len(data) {
		c := data[i]
		if strSafe[c] {
			i++
			continue
		}
		switch {
		case c == '"':
			p.i = i + 1
			return p.s[start:i], nil
		case c == '\\':
			return p.strEscaped(start, i)
		case c < 0x20:
			return "", p.errAt(i, "control character "+hexRune(rune(c))+" in string")
		}
		if _, size := utf8.DecodeRune(data[i:]); size == 1 {
			return "", p.errAt(i, "invalid UTF-8 in string")
		} else {
			i += size
		}
	}
	return "", p.errAt(p.i, "unterminated string")
}

// strEscaped continues str from the first backslash at i, decoding into
// p.scratch.
//
// The API forbids control characters (U+0000 to U+001F) in strings, so
// besides raw control bytes the escapes that produce them are rejected
// too: \b, \f, \n, \r, \t and \u0000 to \u001F. Only \" \\ \/ and \uXXXX
// for other code points are accepted; surrogate escapes must form a valid
// high-low pair.
func (p *parser) strEscaped(start, i int) (string, error) {
	data := p.data
	buf := append(p.scratch[:0], data[start:i]...)
	for i < len(data) {
		c := data[i]
		if strSafe[c] {
			j := i + 1
			for j < len(data) && strSafe[data[j]] {
				j++
			}
			buf = append(buf, data[i:j]...)
			i = j
			continue
		}
		switch {
		case c == '"':
			p.i = i + 1
			p.scratch = buf
			return string(buf), nil
		case c < 0x20:
			return "", p.errAt(i, "control character "+hexRune(rune(c))+" in string")
		case c >= utf8.RuneSelf:
			_, size := utf8.DecodeRune(data[i:])
			if size == 1 {
				return "", p.errAt(i, "invalid UTF-8 in string")
			}
			buf = append(buf, data[i:i+size]...)
			i += size
			continue
		}
		// c == '\\'
		if i+1 >= len(data) {
			return "", p.errAt(p.i, "unterminated string")
		}
		switch e := data[i+1]; e {
		case '"', '\\', '/':
			buf = append(buf, e)
			i += 2
		case 'b', 'f', 'n', 'r', 't':
			return "", p.errAt(i, `escaped control character \`+string(rune(e))+" in string is not allowed")
		case 'u':
			r, ok := hex4(data, i+2)
			if !ok {
				return "", p.errAt(i, `invalid \u escape in string`)
			}
			switch {
			case r < 0x20:
				return "", p.errAt(i, "escaped control character "+hexRune(r)+" in string is not allowed")
			case r >= 0xDC00 && r <= 0xDFFF:
				return "", p.errAt(i, "unpaired surrogate "+escRune(r)+" in string")
			case r >= 0xD800 && r <= 0xDBFF:
				if i+7 >= len(data) || data[i+6] != '\\' || data[i+7] != 'u' {
					return "", p.errAt(i, "unpaired surrogate "+escRune(r)+" in string")
				}
				lo, ok := hex4(data, i+8)
				if !ok {
					return "", p.errAt(i+6, `invalid \u escape in string`)
				}
				if lo < 0xDC00 || lo > 0xDFFF {
					return "", p.errAt(i, "unpaired surrogate "+escRune(r)+" in string")
				}
				r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
				i += 6
			}
			buf = utf8.AppendRune(buf, r)
			i += 6
		default:
			if e >= utf8.RuneSelf || e < 0x20 {
				return "", p.errAt(i, "invalid escape in string")
			}
			return "", p.errAt(i, `invalid escape \`+string(rune(e))+" in string")
		}
	}
	return "", p.errAt(p.i, "unterminated string")
}

// hex4 decodes the four hex digits at data[i:i+4].
func hex4(data []byte, i int) (rune, bool) {
	if i+4 > len(data) {
		return 0, false
	}
	var r rune
	for _, c := range data[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// hexRune formats r as U+XXXX.
func hexRune(r rune) string {
	s := strconv.FormatInt(int64(r), 16)
	for len(s) < 4 {
		s = "0" + s
	}
	return "U+" + upper(s)
}

// escRune formats r as \uXXXX.
func escRune(r rune) string {
	return `\u` + hexRune(r)[2:]
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'f' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
