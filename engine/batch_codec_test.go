package engine

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"reflect"
	"testing"
)

// randomCommand sets a random subset of every field of a Command, with
// values at the edges (empty, long, negative, extreme) as often as not.
func randomCommand(rng *rand.Rand) Command {
	str := func() string {
		switch rng.Intn(5) {
		case 0:
			return ""
		case 1:
			return "ref-\x00\xff\"\\é"
		case 2:
			b := make([]byte, rng.Intn(300))
			rng.Read(b)
			return string(b)
		default:
			return fmt.Sprintf("v%d", rng.Int63())
		}
	}
	num := func() int64 {
		switch rng.Intn(5) {
		case 0:
			return 0
		case 1:
			return math.MinInt64
		case 2:
			return math.MaxInt64
		case 3:
			return -rng.Int63n(1000)
		}
		return rng.Int63()
	}
	c := Command{
		Kind: CommandKind(rng.Intn(30)), OrgID: str(), Reference: str(), Channel: str(), AmountMicros: num(),
		BodyHash: str(), TxID: str(), KeyID: str(), Status: Delivery(rng.Intn(3)), Name: str(), Reason: str(),
		Role: str(), KeyHash: str(), KeyPrefix: str(), AmountMinor: num(), Currency: str(), SuccessURL: str(),
		CancelURL: str(), Provider: str(), TopupID: str(), SessionID: str(), PaymentIntent: str(),
		TTLSeconds: num(), ExpiresAtMs: num(), CheckoutURL: str(), RefundEntryID: str(), NodeID: str(),
		RaftAddr: str(), HTTPAddr: str(), SetName: rng.Intn(2) == 0, SetThreshold: rng.Intn(2) == 0,
		ThresholdMicros: num(),
	}
	for i := rng.Intn(4); i > 0; i-- {
		c.Metadata = append(c.Metadata, KV{Key: str(), Value: str()})
	}
	if rng.Intn(2) == 0 {
		c.Usage = &Usage{Destination: str(), Units: num(), Seconds: num(), Model: str(), InputTokens: num(),
			OutputTokens: num(), HasUnits: rng.Intn(2) == 0, HasSeconds: rng.Intn(2) == 0}
	}
	if rng.Intn(4) == 0 {
		c.Card = &RateCard{Channels: map[string]ChannelRate{"voice": {Per: "minute", Increment: []int64{60, 6}, Prices: map[string]int64{"1": 5000}}}}
	}
	if rng.Intn(4) == 0 {
		c.Invoice = &InvoiceRecord{ID: "in_1", OrgID: "org", Number: "INV-2026-001", AmountMinor: 500, Currency: "usd", CreatedAtMs: 1}
	}
	if rng.Intn(4) == 0 {
		c.FxRates = map[string]int64{"eur": 108_000_000}
	}
	return c
}

func TestBatchCodecRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 2000; i++ {
		in := Batch{TimeMs: rng.Int63() - rng.Int63()}
		for j := rng.Intn(8); j > 0; j-- {
			in.Commands = append(in.Commands, randomCommand(rng))
		}
		data, err := AppendBatch(nil, &in)
		if err != nil {
			t.Fatal(err)
		}
		var out Batch
		if err := DecodeBatch(data, &out); err != nil {
			t.Fatalf("case %d: decode: %v", i, err)
		}
		if len(in.Commands) == 0 {
			in.Commands = []Command{} // decoded as empty, not nil
		}
		if !reflect.DeepEqual(in, out) {
			t.Fatalf("case %d: round trip differs:\n in %+v\nout %+v", i, in, out)
		}
	}
}

// The log may hold batches written as JSON by an earlier version.
func TestDecodeBatchReadsJSON(t *testing.T) {
	in := Batch{TimeMs: 42, Commands: []Command{{Kind: CmdCharge, OrgID: "org_1", Reference: "r", AmountMicros: 7,
		Metadata: Metadata{{Key: "channel", Value: `"sms"`}}, Usage: &Usage{Destination: "1415", Units: 1, HasUnits: true}}}}
	data, err := json.Marshal(&in)
	if err != nil {
		t.Fatal(err)
	}
	var out Batch
	if err := DecodeBatch(data, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("JSON batch decoded as %+v", out)
	}
}

func TestDecodeBatchRefusesCorruptBytes(t *testing.T) {
	good, err := AppendBatch(nil, &Batch{TimeMs: 1, Commands: []Command{{Kind: CmdCharge, OrgID: "o", Reference: "r", AmountMicros: 5}}})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"empty":          nil,
		"unknown format": append([]byte{0x02}, good[1:]...),
		"truncated":      good[:len(good)-1],
		"trailing byte":  append(append([]byte(nil), good...), 0),
		"unknown tag":    {formatV1, 2, 1, byte(CmdCharge), 63, 0},
		"tag past table": {formatV1, 2, 1, byte(CmdCharge), 200, 0},
		"long string":    {formatV1, 2, 1, byte(CmdCharge), 1, 100, 'o', 0},
		"huge count":     {formatV1, 2, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"varint overflow": {formatV1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
			0},
	}
	for name, data := range cases {
		var b Batch
		if err := DecodeBatch(data, &b); err == nil {
			t.Errorf("%s: decoded %+v, want an error", name, b)
		}
	}
}

func FuzzDecodeBatch(f *testing.F) {
	rng := rand.New(rand.NewSource(2))
	for i := 0; i < 8; i++ {
		b := Batch{TimeMs: int64(i), Commands: []Command{randomCommand(rng)}}
		data, err := AppendBatch(nil, &b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"t":1,"c":[{"k":5,"o":"org","a":3}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var b Batch
		if DecodeBatch(data, &b) != nil {
			return
		}
		// Whatever decodes must encode and decode to the same batch.
		again, err := AppendBatch(nil, &b)
		if err != nil {
			return // a JSON payload that decoded but does not re-encode (e.g. NaN-free maps always do)
		}
		var b2 Batch
		if err := DecodeBatch(again, &b2); err != nil {
			t.Fatalf("re-encoded batch does not decode: %v", err)
		}
		if len(b.Commands) == 0 {
			b.Commands = []Command{}
		}
		if !reflect.DeepEqual(b, b2) {
			t.Fatalf("round trip differs:\n%+v\n%+v", b, b2)
		}
	})
}

func BenchmarkBatchCodec(b *testing.B) {
	// 1,000 commands: one /charges/batch request; 4,096: a full log entry.
	for _, n := range []int{1000, 4096} {
		batch := Batch{TimeMs: 1_700_000_000_000}
		for i := 0; i < n; i++ {
			batch.Commands = append(batch.Commands, Command{Kind: CmdCharge, OrgID: "org_01JABCDEFGHJKMNPQRSTVWXYZ0",
				Reference: fmt.Sprintf("msg-%d", i), AmountMicros: 7500, BodyHash: "0123456789abcdef0123456789abcdef",
				Metadata: Metadata{{Key: "channel", Value: `"sms"`}, {Key: "destination", Value: `"+14155550100"`}}})
		}
		b.Run(fmt.Sprintf("binary/commands=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for i := 0; i < b.N; i++ {
				buf, _ = AppendBatch(buf[:0], &batch)
				var out Batch
				if err := DecodeBatch(buf, &out); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(batch.Commands))/b.Elapsed().Seconds(), "commands/s")
		})
		b.Run(fmt.Sprintf("json/commands=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				buf, _ := json.Marshal(&batch)
				var out Batch
				if err := json.Unmarshal(buf, &out); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(batch.Commands))/b.Elapsed().Seconds(), "commands/s")
		})
	}
}
