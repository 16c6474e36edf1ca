package jsonx

import "unicode/utf8"

const hexDigits = "0123456789abcdef"

// htmlSafe[c] is true for ASCII bytes AppendString copies unescaped.
var htmlSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		switch c {
		case '"', '\\', '<', '>', '&':
		default:
			t[c] = true
		}
	}
	return t
}()

// AppendString appends s to dst as a quoted JSON string literal and returns
// the extended buffer. It escapes '"' and '\\' with a backslash, and control
// characters, '<', '>', '&', U+2028 and U+2029 as \u00XX-style escapes, so
// the output is safe to embed in HTML and in JavaScript source. Invalid
// UTF-8 in s is replaced by \ufffd, so the output is always valid JSON.
//
// Note that Parse rejects strings containing control characters; AppendString
// still encodes them, for use outside request bodies.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if htmlSafe[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			if c == '"' || c == '\\' {
				dst = append(dst, '\\', c)
			} else {
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// AppendValue appends the compact JSON encoding of v to dst and returns the
// extended buffer: no insignificant whitespace, object members in their
// stored order, strings encoded by AppendString and numbers written as
// their raw text. For a Value produced by Parse the output is valid JSON,
// and parsing it yields an equal Value, so it serves as the canonical
// stored form of client-supplied data. A hand-built Value must hold valid
// number text in Str for Number kinds; a Value with an unknown Kind is
// written as null.
func AppendValue(dst []byte, v Value) []byte {
	switch v.Kind {
	case Bool:
		if v.Bool {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case Number:
		return append(dst, v.Str...)
	case String:
		return AppendString(dst, v.Str)
	case Array:
		dst = append(dst, '[')
		for i := range v.Items {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendValue(dst, v.Items[i])
		}
		return append(dst, ']')
	case Object:
		dst = append(dst, '{')
		for i := range v.Fields {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendString(dst, v.Fields[i].Key)
			dst = append(dst, ':')
			dst = AppendValue(dst, v.Fields[i].Value)
		}
		return append(dst, '}')
	default:
		return append(dst, "null"...)
	}
}
