package engine

import (
	"encoding/json"
	"reflect"
	"testing"
	"unsafe"
)

func sampleOrgRecords() map[string]OrgRecord {
	var chain ChainHash
	for i := range chain {
		chain[i] = byte(i*7 + 1)
	}
	return map[string]OrgRecord{
		"zero": {},
		"plain": {ID: "org_065WZSB800000000000G0001", Name: "Acme", CreatedAtMs: 1_700_000_000_000,
			BalanceMicros: 999_999_953_800, Index: 3, Chain: chain},
		"everything": {
			ID: "org_1", Name: "Ünïcode \"quoted\" name", CreatedAtMs: 1, PauseThresholdMicros: -5,
			OperatorHold: true, HoldDetails: "fraud review", Disputed: true,
			BalanceMicros: -1, ReservedMicros: 42, InvoiceSeq: 7, LastTopupID: "tu_1", StripeCustomerID: "cus_1",
			RateOverride: &RateCard{Channels: map[string]ChannelRate{
				"sms":   {Per: "unit", Prices: map[string]int64{"*": 4200, "1": 3000}},
				"voice": {Per: "minute", Increment: []int64{60, 6}, Prices: map[string]int64{"*": 10_000}},
				"llm":   {Per: "token", Models: map[string]ModelRate{"m": {InputPerMillion: 1, OutputPerMillion: 2}}},
			}},
			RateOverrideVersion: 2,
			Lots:                []Lot{{EntryID: "gr_1", ExpiresAtMs: 10, Remaining: 5, Held: 1}, {EntryID: "gr_2", Remaining: 9}},
			Index:               1 << 40, Chain: chain,
		},
	}
}

// TestOrgRecordCodec: the binary encoding round-trips every field, the
// JSON of earlier versions still decodes, and damaged bytes are an error,
// never a panic or a silently different record.
func TestOrgRecordCodec(t *testing.T) {
	for name, want := range sampleOrgRecords() {
		t.Run(name, func(t *testing.T) {
			enc := AppendOrgRecord([]byte("prefix"), &want)[len("prefix"):]
			var got OrgRecord
			if err := DecodeOrgRecord(enc, &got); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
			}
			old, err := json.Marshal(&want)
			if err != nil {
				t.Fatal(err)
			}
			got = OrgRecord{Name: "stale"}
			if err := DecodeOrgRecord(old, &got); err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("JSON of an earlier version: %v\n got %+v\nwant %+v", err, got, want)
			}
			for n := 0; n < len(enc); n++ {
				if err := DecodeOrgRecord(enc[:n], &got); err == nil {
					t.Fatalf("truncated to %d of %d bytes: decoded without error", n, len(enc))
				}
			}
			if err := DecodeOrgRecord(append(append([]byte(nil), enc...), 0), &got); err == nil {
				t.Fatal("a trailing byte decoded without error")
			}
		})
	}
	var o OrgRecord
	bad := AppendOrgRecord(nil, &OrgRecord{ID: "org_1"})
	bad[1+len("org_1")+1+3] = 0x80 // flags: an unknown bit
	if err := DecodeOrgRecord(bad, &o); err == nil {
		t.Error("unknown flag bits decoded without error")
	}
}

func TestAPIKeyCodec(t *testing.T) {
	for _, want := range []APIKey{
		{},
		{ID: "key_1", OrgID: "org_1", Role: RoleCharge, Hash: "ab12", Prefix: "orb_live_ab", CreatedAtMs: 5, RevokedAtMs: 9},
	} {
		enc := AppendAPIKey(nil, &want)
		var got APIKey
		if err := DecodeAPIKey(enc, &got); err != nil || got != want {
			t.Fatalf("round trip: %v %+v, want %+v", err, got, want)
		}
		old, _ := json.Marshal(&want)
		if err := DecodeAPIKey(old, &got); err != nil || got != want {
			t.Fatalf("JSON of an earlier version: %v %+v, want %+v", err, got, want)
		}
		for n := 0; n < len(enc); n++ {
			if err := DecodeAPIKey(enc[:n], &got); err == nil {
				t.Fatalf("truncated to %d of %d bytes: decoded without error", n, len(enc))
			}
		}
		if err := DecodeAPIKey(append(enc, 0), &got); err == nil {
			t.Fatal("a trailing byte decoded without error")
		}
	}
}

func BenchmarkOrgRecordCodec(b *testing.B) {
	o := sampleOrgRecords()["plain"]
	b.Run("binary", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		var got OrgRecord
		for range b.N {
			buf = AppendOrgRecord(buf[:0], &o)
			if err := DecodeOrgRecord(buf, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		var got OrgRecord
		for range b.N {
			buf, _ := json.Marshal(&o)
			if err := json.Unmarshal(buf, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestKeptRecordsOwnTheirStrings: org records and API keys stay in memory
// for the life of the process, decoded from buffers Pebble reuses. Their
// strings must be their own: overwriting the input after decoding changes
// nothing, and a known role is the package's constant.
func TestKeptRecordsOwnTheirStrings(t *testing.T) {
	org := OrgRecord{ID: "org_0123456789abcdef01234567", Name: "Acme", LastTopupID: "tu_1",
		Lots: []Lot{{EntryID: "ent_1", ExpiresAtMs: 5, Remaining: 7}}, Index: 9}
	data := AppendOrgRecord(nil, &org)
	var got OrgRecord
	if err := DecodeOrgRecord(data, &got); err != nil {
		t.Fatal(err)
	}
	for i := range data {
		data[i] = 'X'
	}
	if got.ID != org.ID || got.Name != org.Name || got.LastTopupID != org.LastTopupID || got.Lots[0].EntryID != "ent_1" {
		t.Fatalf("decoded org changed with its input: %+v", got)
	}

	key := APIKey{ID: "key_1", OrgID: org.ID, Role: "char" + "ge", Hash: "ab12", Prefix: "sk_live_ab"}
	data = AppendAPIKey(nil, &key)
	var gotKey APIKey
	if err := DecodeAPIKey(data, &gotKey); err != nil {
		t.Fatal(err)
	}
	for i := range data {
		data[i] = 'X'
	}
	if gotKey != key {
		t.Fatalf("decoded key changed with its input: %+v, want %+v", gotKey, key)
	}
	if unsafe.StringData(gotKey.Role) != unsafe.StringData(RoleCharge) {
		t.Fatal("a decoded role does not share the constant's bytes")
	}
}
