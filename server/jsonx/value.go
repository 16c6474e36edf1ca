package jsonx

import (
	"errors"
	"strconv"
)

// Kind is the type of a JSON value. The zero Kind is Null, so the zero
// Value is a JSON null.
type Kind uint8

// The kinds of JSON values.
const (
	Null Kind = iota
	Bool
	Number
	String
	Array
	Object
)

var kindNames = [...]string{
	Null:   "null",
	Bool:   "bool",
	Number: "number",
	String: "string",
	Array:  "array",
	Object: "object",
}

// String returns the lower-case name of k, e.g. "number".
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is a parsed JSON value.
//
// Only the fields that belong to Kind are meaningful:
//   - Bool: Bool.
//   - Number: Str holds the raw number text exactly as it appeared in the
//     input (e.g. "4200", "-0", "1.50", "1E+3"); no precision is lost.
//   - String: Str holds the decoded string (always valid UTF-8).
//   - Array: Items holds the elements (nil when empty).
//   - Object: Fields holds the members in source order (nil when empty);
//     keys are unique.
//
// Strings in a Value returned by Parse may share memory with a single copy
// of the whole input, so keeping any of them alive keeps that copy alive.
type Value struct {
	Kind   Kind
	Bool   bool
	Str    string
	Items  []Value
	Fields []Field
}

// Field is one member of a JSON object.
type Field struct {
	Key   string
	Value Value
}

// Get returns the value of the member named key if v is an object that has
// one. It scans linearly; request objects are small.
func (v Value) Get(key string) (Value, bool) {
	if v.Kind != Object {
		return Value{}, false
	}
	for i := range v.Fields {
		if v.Fields[i].Key == key {
			return v.Fields[i].Value, true
		}
	}
	return Value{}, false
}

// Errors returned by Value.Int64 and Value.Float64. Their messages are meant
// to follow a field name in a client-facing message, e.g.
// "amount_micros: must be an integer".
var (
	ErrNotNumber  = errors.New("must be a number")
	ErrNotInteger = errors.New("must be an integer")
	ErrOutOfRange = errors.New("out of range")
)

// Int64 returns the value of v if it is an integer literal in int64 range.
// Only plain integer text is accepted: "1.0", "1.5" and "1e3" fail with
// ErrNotInteger even when mathematically integral, values outside int64
// fail with ErrOutOfRange, and non-numbers fail with ErrNotNumber. "-0" is 0.
func (v Value) Int64() (int64, error) {
	if v.Kind != Number || !validNumber(v.Str) {
		return 0, ErrNotNumber
	}
	for i := 0; i < len(v.Str); i++ {
		if c := v.Str[i]; c == '.' || c == 'e' || c == 'E' {
			return 0, ErrNotInteger
		}
	}
	n, err := strconv.ParseInt(v.Str, 10, 64)
	if err != nil {
		// The text is a valid integer literal, so the only possible
		// failure is range.
		return 0, ErrOutOfRange
	}
	return n, nil
}

// Float64 returns the value of the number v, rounded to the nearest
// float64. Magnitudes too large for a float64 fail with ErrOutOfRange (the
// result is never infinite or NaN); magnitudes too small round to zero, as
// strconv.ParseFloat does. Non-numbers fail with ErrNotNumber.
func (v Value) Float64() (float64, error) {
	if v.Kind != Number || !validNumber(v.Str) {
		return 0, ErrNotNumber
	}
	f, err := strconv.ParseFloat(v.Str, 64)
	if err != nil {
		return 0, ErrOutOfRange
	}
	return f, nil
}

// validNumber reports whether s is an RFC 8259 number. Values from Parse
// always pass; this guards hand-built Values, whose text strconv would
// otherwise interpret more liberally ("+1", "Inf", "0x1p3", ...).
func validNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i++; i < len(s) && isDigit(s[i]); i++ {
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || !isDigit(s[i]) {
			return false
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || !isDigit(s[i]) {
			return false
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	return i == len(s)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
