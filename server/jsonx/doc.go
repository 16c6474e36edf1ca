// Package jsonx is the strict JSON parser for the request bodies of the
// billing HTTP API: it owns the decision of which bytes count as an
// acceptable JSON document and turns every violation into a *SyntaxError
// with a byte offset and a human message, suitable for a 400 response. It
// exists because encoding/json is too lenient for a money API: it accepts
// duplicate object keys (the last one silently wins, so
// {"amount":1,"amount":100000} means different things to different
// parsers along the request path), silently replaces invalid UTF-8 and lone
// surrogate escapes with U+FFFD, and decodes numbers into float64 by
// default. jsonx instead accepts exactly one RFC 8259 value and rejects
// invalid UTF-8, duplicate keys, control characters in strings (raw or
// escaped), lone surrogates, NaN/Infinity, leading zeros, nesting deeper
// than MaxDepth and more than MaxValues values; it keeps numbers as their
// raw text so amounts convert exactly through Value.Int64, and AppendValue
// and AppendString re-encode client-supplied metadata compactly,
// deterministically and HTML-safely for storage. Request size limits are
// the HTTP layer's job; jsonx runs in time linear in the input.
package jsonx
