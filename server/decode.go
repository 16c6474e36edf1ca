package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/orbit/orbit/engine"
	"github.com/orbit/orbit/server/jsonx"
)

// Limits of request decoding (SPEC.md section 3).
const (
	bodyBytesMax          = 1 << 20
	batchBodyBytesMax     = 8 << 20
	referenceLenMax       = 255
	idempotencyKeyLenMin  = 8
	idempotencyKeyLenMax  = 255
	metadataKeysMax       = 20
	metadataKeyLenMax     = 40
	metadataStringLenMax  = 500
	reasonLenMax          = 500
	nameLenMax            = 200
	channelLenMax         = 32
	batchChargesMax       = 1000
	transactionsLimitMax  = 100
	transactionsLimitDflt = 30
)

// The server's fasthttp limit must admit the largest body a route accepts.
var _ [batchBodyBytesMax - bodyBytesMax]struct{}

// systemMetadataKeys are written by the system and cannot be sent.
var systemMetadataKeys = map[string]bool{
	"channel": true, "country": true, "rate_version": true, "destination": true, "units": true,
	"seconds": true, "model": true, "input_tokens": true, "output_tokens": true,
}

// jsonBody checks the content type and size of a request body and parses it
// as a JSON object.
func jsonBody(ctx *fasthttp.RequestCtx, limit int) (jsonx.Value, *apiError) {
	body := ctx.PostBody()
	if len(body) > limit {
		return jsonx.Value{}, newError(errPayloadTooLarge, "request body exceeds "+strconv.Itoa(limit)+" bytes")
	}
	if err := checkContentType(ctx); err != nil {
		return jsonx.Value{}, err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return jsonx.Value{}, invalid("request body must be a JSON object")
	}
	v, err := jsonx.Parse(body)
	if err != nil {
		return jsonx.Value{}, invalid("malformed JSON: " + err.Error())
	}
	if v.Kind != jsonx.Object {
		return jsonx.Value{}, invalid("request body must be a JSON object")
	}
	return v, nil
}

// optionalJSONBody is jsonBody for routes whose body may be empty (an empty
// body reads as {}).
func optionalJSONBody(ctx *fasthttp.RequestCtx) (jsonx.Value, *apiError) {
	if len(bytes.TrimSpace(ctx.PostBody())) == 0 {
		return jsonx.Value{Kind: jsonx.Object}, nil
	}
	return jsonBody(ctx, bodyBytesMax)
}

func checkContentType(ctx *fasthttp.RequestCtx) *apiError {
	ct := ctx.Request.Header.ContentType()
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = bytes.TrimSpace(ct)
	if !bytes.EqualFold(ct, []byte("application/json")) {
		return newError(errUnsupportedMediaType, "Content-Type must be application/json")
	}
	return nil
}

// onlyFields refuses members other than allowed.
func onlyFields(v jsonx.Value, allowed ...string) *apiError {
	for _, f := range v.Fields {
		ok := false
		for _, a := range allowed {
			if f.Key == a {
				ok = true
				break
			}
		}
		if !ok {
			return invalidField(f.Key, "unknown field")
		}
	}
	return nil
}

// str returns a string member; absent reports present=false.
func str(v jsonx.Value, key string) (s string, present bool, err *apiError) {
	f, ok := v.Get(key)
	if !ok {
		return "", false, nil
	}
	if f.Kind != jsonx.String {
		return "", true, invalidField(key, "must be a string")
	}
	return f.Str, true, nil
}

// requiredStr returns a string member that must be present.
func requiredStr(v jsonx.Value, key string) (string, *apiError) {
	s, present, err := str(v, key)
	if err != nil {
		return "", err
	}
	if !present {
		return "", invalidField(key, "is required")
	}
	return s, nil
}

// integer returns an integer member.
func integer(v jsonx.Value, key string) (n int64, present bool, err *apiError) {
	f, ok := v.Get(key)
	if !ok {
		return 0, false, nil
	}
	if f.Kind != jsonx.Number {
		return 0, true, invalidField(key, "must be an integer")
	}
	n, e := f.Int64()
	if e != nil {
		if errors.Is(e, jsonx.ErrOutOfRange) {
			return 0, true, invalidField(key, "out of range")
		}
		return 0, true, invalidField(key, "must be an integer")
	}
	return n, true, nil
}

// amountMicros returns a positive amount from 1 to 10^15.
func amountMicros(v jsonx.Value, key string) (int64, bool, *apiError) {
	n, present, err := integer(v, key)
	if err != nil || !present {
		return 0, present, err
	}
	if n < 1 || n > engine.MaxAmountMicros {
		return 0, true, invalidField(key, "must be an integer from 1 to 1000000000000000")
	}
	return n, true, nil
}

func checkReference(field, s string) *apiError {
	if len(s) < 1 || len(s) > referenceLenMax {
		return invalidField(field, "must be 1-255 characters")
	}
	if !visibleASCIIString(s) {
		return invalidField(field, "must be visible ASCII (0x21-0x7E)")
	}
	return nil
}

func checkChannel(s string) *apiError {
	if len(s) < 1 || len(s) > channelLenMax {
		return invalidField("channel", "must match [a-z0-9_]{1,32}")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return invalidField("channel", "must match [a-z0-9_]{1,32}")
		}
	}
	return nil
}

// checkText validates free text (a reason, a name).
func checkText(field, s string, maxLen int) *apiError {
	if utf8.RuneCountInString(s) > maxLen {
		return invalidField(field, "must be at most "+strconv.Itoa(maxLen)+" characters")
	}
	return nil
}

// metadata validates a client's metadata object and returns it canonical.
func metadata(v jsonx.Value) (engine.Metadata, *apiError) {
	f, ok := v.Get("metadata")
	if !ok || f.Kind == jsonx.Null {
		return nil, nil
	}
	if f.Kind != jsonx.Object {
		return nil, invalidField("metadata", "must be an object")
	}
	if len(f.Fields) > metadataKeysMax {
		return nil, invalidField("metadata", "at most 20 keys")
	}
	md := make(engine.Metadata, 0, len(f.Fields))
	for _, kv := range f.Fields {
		if n := utf8.RuneCountInString(kv.Key); n < 1 || n > metadataKeyLenMax {
			return nil, invalidField("metadata", "keys must be 1-40 characters")
		}
		if systemMetadataKeys[kv.Key] {
			return nil, invalidField("metadata", "key "+strconv.Quote(kv.Key)+" is written by the system")
		}
		switch kv.Value.Kind {
		case jsonx.String:
			if utf8.RuneCountInString(kv.Value.Str) > metadataStringLenMax {
				return nil, invalidField("metadata", "string values must be at most 500 characters")
			}
		case jsonx.Number:
			if _, err := kv.Value.Float64(); err != nil {
				return nil, invalidField("metadata", "number out of range")
			}
		case jsonx.Bool:
		default:
			return nil, invalidField("metadata", "values must be strings, numbers or booleans")
		}
		md = append(md, engine.KV{Key: kv.Key, Value: string(jsonx.AppendValue(nil, kv.Value))})
	}
	sort.Slice(md, func(i, j int) bool { return md[i].Key < md[j].Key })
	return md, nil
}

// bodyHash identifies a request's meaning: the same fields with the same
// values hash the same whatever their order or spacing.
func bodyHash(parts ...string) string {
	var buf [hashBufSize]byte
	b := buf[:0]
	for _, p := range parts {
		b = appendHashPart(b, p)
	}
	return hashSum(b)
}

// What a body hash hashes is built by the appendHash functions (each part
// as its length, 8 bytes little-endian, then its bytes) into one buffer on
// the caller's stack, so a charge's hash costs no allocation but the final
// string. The encoding is part of the stored references: a retry is a
// replay only if it hashes the same.
const hashBufSize = 512

func appendHashPart[T string | []byte](b []byte, p T) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(len(p)))
	return append(b, p...)
}

// appendHashInt hashes n's decimal digits as one part.
func appendHashInt(b []byte, n int64) []byte {
	var digits [20]byte
	return appendHashPart(b, strconv.AppendInt(digits[:0], n, 10))
}

// appendHashMetadata hashes md as one part: each key and value followed by
// a zero byte, in key order.
func appendHashMetadata(b []byte, md engine.Metadata) []byte {
	n := 0
	for _, kv := range md {
		n += len(kv.Key) + len(kv.Value) + 2
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(n))
	for _, kv := range md {
		b = append(append(append(append(b, kv.Key...), 0), kv.Value...), 0)
	}
	return b
}

// hashSum returns the hex of the first 16 bytes of b's SHA-256.
func hashSum(b []byte) string {
	full := sha256.Sum256(b)
	var out [32]byte
	hex.Encode(out[:], full[:16])
	return string(out[:])
}

// canonical re-encodes a value with object keys sorted, for hashing.
func canonical(v jsonx.Value) string {
	if v.Kind == jsonx.Object {
		fields := append([]jsonx.Field(nil), v.Fields...)
		sort.Slice(fields, func(i, j int) bool { return fields[i].Key < fields[j].Key })
		var b []byte
		b = append(b, '{')
		for i, f := range fields {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonx.AppendString(b, f.Key)
			b = append(b, ':')
			b = append(b, canonical(f.Value)...)
		}
		return string(append(b, '}'))
	}
	if v.Kind == jsonx.Array {
		b := []byte{'['}
		for i, it := range v.Items {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, canonical(it)...)
		}
		return string(append(b, ']'))
	}
	return string(jsonx.AppendValue(nil, v))
}
