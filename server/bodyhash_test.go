package server

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"testing"

	"github.com/orbit/orbit/engine"
)

// referenceBodyHash is the body hash as first written (parts joined with
// length prefixes, SHA-256, first 16 bytes in hex). Stored references keep
// these hashes, so the allocation-free hasher must give exactly the same.
func referenceBodyHash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		var n [8]byte
		for i := range n {
			n[i] = byte(len(p) >> (8 * i))
		}
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func TestBodyHashIsStable(t *testing.T) {
	md := engine.Metadata{{Key: "campaign", Value: `"spring"`}, {Key: "n", Value: "3"}}
	canon := func(md engine.Metadata) string {
		var b []byte
		for _, kv := range md {
			b = append(append(append(append(b, kv.Key...), 0), kv.Value...), 0)
		}
		return string(b)
	}
	long := string(make([]byte, 2000)) // beyond the hasher's stack buffer
	cases := []debitBody{
		{reference: "r1", channel: "sms", amountMicros: 4200, metadata: md},
		{reference: "r2", channel: "voice", amountMicros: -1, usage: &engine.Usage{Seconds: 3}, usageCanon: `{"seconds":3}`},
		{reference: long, channel: "", amountMicros: 0},
		{reference: "r3", channel: "llm", amountMicros: 9_000_000_000_000_000_000, metadata: engine.Metadata{{Key: long, Value: long}}},
	}
	for i, d := range cases {
		amount := ""
		if d.usage == nil {
			amount = strconv.FormatInt(d.amountMicros, 10)
		}
		want := referenceBodyHash("charge", d.reference, d.channel, amount, d.usageCanon, canon(d.metadata))
		if got := d.bodyHash("charge"); got != want {
			t.Errorf("case %d: charge hash %s, want %s", i, got, want)
		}
		want = referenceBodyHash("hold", "60", d.reference, d.channel, amount, d.usageCanon, canon(d.metadata))
		if got := d.bodyHash("hold", "60"); got != want {
			t.Errorf("case %d: hold hash %s, want %s", i, got, want)
		}
	}
	if got, want := bodyHash("refund", "ct_1", "5", ""), referenceBodyHash("refund", "ct_1", "5", ""); got != want {
		t.Errorf("bodyHash %s, want %s", got, want)
	}
}
