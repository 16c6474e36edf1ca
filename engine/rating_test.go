package engine

import (
	"math/big"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// Tests of rating (SPEC.md section 6): the pure functions, card validation,
// and how Apply versions cards and rates charges with them.

func TestBillableSeconds(t *testing.T) {
	cases := []struct {
		s, first, next, want int64
	}{
		// [60, 6]: the whole first minute, then 6-second slices.
		{0, 60, 6, 0},
		{-5, 60, 6, 0},
		{1, 60, 6, 60},
		{59, 60, 6, 60},
		{60, 60, 6, 60},
		{61, 60, 6, 66},
		{65, 60, 6, 66},
		{66, 60, 6, 66},
		{67, 60, 6, 72},
		{120, 60, 6, 120},
		{121, 60, 6, 126},
		{3600, 60, 6, 3600},
		{1_000_000_000_000, 60, 6, 1_000_000_000_002},
		// [1, 1] (also what no increment means): per second.
		{0, 1, 1, 0},
		{1, 1, 1, 1},
		{2, 1, 1, 2},
		{61, 1, 1, 61},
		{1_000_000_000_000, 1, 1, 1_000_000_000_000},
		// [30, 30] and [60, 60].
		{29, 30, 30, 30},
		{31, 30, 30, 60},
		{60, 30, 30, 60},
		{61, 30, 30, 90},
		{61, 60, 60, 120},
		{1, 86_400, 86_400, 86_400},
		{86_401, 86_400, 86_400, 172_800},
		// next larger than first.
		{11, 10, 60, 70},
		{70, 10, 60, 70},
		{71, 10, 60, 130},
	}
	for _, tc := range cases {
		if got := BillableSeconds(tc.s, tc.first, tc.next); got != tc.want {
			t.Errorf("BillableSeconds(%d, %d, %d) = %d, want %d", tc.s, tc.first, tc.next, got, tc.want)
		}
	}
	// Against a statement of the rule in other words.
	r := rand.New(rand.NewPCG(1, 2))
	for range 20_000 {
		first, next := 1+r.Int64N(120), 1+r.Int64N(120)
		s := r.Int64N(2000)
		want := int64(0)
		if s > 0 {
			want = first
			for want < s {
				want += next
			}
		}
		if got := BillableSeconds(s, first, next); got != want {
			t.Fatalf("BillableSeconds(%d, %d, %d) = %d, want %d", s, first, next, got, want)
		}
	}
}

func TestMatchPrefix(t *testing.T) {
	prices := map[string]int64{"1": 10, "14": 20, "141": 30, "1415": 40, "44": 50, "4420": 55, "0044": 60, "*": 99}
	noStar := map[string]int64{"1": 10, "14": 20, "141": 30}
	cases := []struct {
		name        string
		prices      map[string]int64
		destination string
		prefix      string
		price       int64
		ok          bool
	}{
		{"longest of 1, 14, 141, 1415", prices, "14155550100", "1415", 40, true},
		{"141 when 1415 does not match", prices, "14165550100", "141", 30, true},
		{"14 when 141 does not match", prices, "14255550100", "14", 20, true},
		{"1 when 14 does not match", prices, "12125550100", "1", 10, true},
		{"exactly a prefix", prices, "141", "141", 30, true},
		{"shorter than the longer prefixes", prices, "14", "14", 20, true},
		{"44 vs 4420", prices, "442079460000", "4420", 55, true},
		{"44 only", prices, "447700900000", "44", 50, true},
		{"leading zeros are digits", prices, "0044123", "0044", 60, true},
		{"leading zeros do not match 44", prices, "00441", "0044", 60, true},
		{"plus, spaces, dashes, parentheses ignored", prices, "+1 (415) 555-0100", "1415", 40, true},
		{"letters ignored", prices, "tel:+44-20-7946-0000", "4420", 55, true},
		{"non-digits between prefix digits", prices, "1a4b1", "141", 30, true},
		{"unicode ignored", prices, "☎14\u00a01", "141", 30, true},
		{"no digit prefix matches: *", prices, "33123456789", "*", 99, true},
		{"no digits at all: *", prices, "sip:alice", "*", 99, true},
		{"empty: *", prices, "", "*", 99, true},
		{"no match and no *", noStar, "33123456789", "", 0, false},
		{"no digits and no *", noStar, "abc", "", 0, false},
		{"no * but prefix", noStar, "+1 415", "141", 30, true},
		{"only *", map[string]int64{"*": 7}, "14155550100", "*", 7, true},
		{"price zero matches", map[string]int64{"1": 0, "*": 5}, "1", "1", 0, true},
		{"empty prices", map[string]int64{}, "1", "", 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			prefix, price, ok := matchPrefix(tc.prices, tc.destination)
			if prefix != tc.prefix || price != tc.price || ok != tc.ok {
				t.Fatalf("matchPrefix(%q) = (%q, %d, %v), want (%q, %d, %v)", tc.destination, prefix, price, ok, tc.prefix, tc.price, tc.ok)
			}
		})
	}
}

// rtCard is the rate card of SPEC.md section 6 plus a few channels for the
// edges.
func rtCard() *RateCard {
	return &RateCard{Channels: map[string]ChannelRate{
		"sms":      {Per: PerUnit, Prices: map[string]int64{"1": 4200, "14": 4100, "141": 4000, "44": 35000, "*": 50000}},
		"whatsapp": {Per: PerUnit, Prices: map[string]int64{"1": 1, "7": 0, "9": PriceMicrosMax}},
		"voice":    {Per: PerMinute, Increment: []int64{60, 6}, Prices: map[string]int64{"1": 9000, "44": 59, "*": 30000}},
		"voice1":   {Per: PerMinute, Increment: []int64{1, 1}, Prices: map[string]int64{"1": 7, "2": 100, "9": PriceMicrosMax}},
		"voicex":   {Per: PerMinute, Prices: map[string]int64{"1": 61}},
		"llm": {Per: PerToken, Models: map[string]ModelRate{
			"gpt-4o-mini": {InputPerMillion: 150_000, OutputPerMillion: 600_000},
			"big":         {InputPerMillion: PriceMicrosMax, OutputPerMillion: PriceMicrosMax},
			"ten7":        {InputPerMillion: 10_000_001, OutputPerMillion: 10_000_001},
			"third":       {InputPerMillion: 333_333_333_333, OutputPerMillion: 0},
			"free":        {},
		}},
	}}
}

func rtMD(kv ...string) Metadata {
	var m Metadata
	for i := 0; i < len(kv); i += 2 {
		m = m.with(kv[i], kv[i+1])
	}
	return m
}

func TestRate(t *testing.T) {
	card := rtCard()
	units := func(d string, n int64) *Usage { return &Usage{Destination: d, Units: n, HasUnits: true} }
	secs := func(d string, n int64) *Usage { return &Usage{Destination: d, Seconds: n, HasSeconds: true} }
	toks := func(m string, in, out int64) *Usage { return &Usage{Model: m, InputTokens: in, OutputTokens: out} }
	cases := []struct {
		name    string
		channel string
		usage   *Usage
		cost    int64
		group   string
		md      Metadata
		errSub  string // non-empty: no_rate with a message containing it
	}{
		// Per unit.
		{"unit: longest prefix 141", "sms", units("14155550100", 1), 4000, "141",
			rtMD("country", `"141"`, "destination", `"14155550100"`, "units", "1"), ""},
		{"unit: 14", "sms", units("14255550100", 1), 4100, "14", nil, ""},
		{"unit: 1", "sms", units("12125550100", 1), 4200, "1", nil, ""},
		{"unit: 44", "sms", units("447700900000", 1), 35000, "44", nil, ""},
		{"unit: * fallback", "sms", units("33612345678", 1), 50000, "*",
			rtMD("country", `"*"`, "destination", `"33612345678"`, "units", "1"), ""},
		{"unit: non-digits ignored, kept as sent", "sms", units("+1 (415) 555-0100", 1), 4000, "141",
			rtMD("country", `"141"`, "destination", `"+1 (415) 555-0100"`, "units", "1"), ""},
		{"unit: units absent default to 1", "sms", &Usage{Destination: "447700900000"}, 35000, "44",
			rtMD("country", `"44"`, "destination", `"447700900000"`, "units", "1"), ""},
		{"unit: units 0 rate to 0", "sms", units("14155550100", 0), 0, "141",
			rtMD("country", `"141"`, "destination", `"14155550100"`, "units", "0"), ""},
		{"unit: price x units", "sms", units("14155550100", 3), 12000, "141", nil, ""},
		{"unit: price 0", "whatsapp", units("7999", 1_000_000_000_000), 0, "7", nil, ""},
		{"unit: price 1 x 10^12 units", "whatsapp", units("1", 1_000_000_000_000), 1_000_000_000_000, "1", nil, ""},
		{"unit: exactly the max amount", "whatsapp", units("9", 1000), MaxAmountMicros, "9", nil, ""},
		{"unit: one unit above the max amount", "whatsapp", units("9", 1001), 0, "", nil, "out of range"},
		{"unit: 10^12 x 10^12 out of range", "whatsapp", units("9", 1_000_000_000_000), 0, "", nil, "out of range"},
		{"unit: no match, no *", "whatsapp", units("5511999999999", 1), 0, "", nil, `no rate for destination "5511999999999" on whatsapp`},
		{"unit: destination missing", "sms", &Usage{Units: 1, HasUnits: true}, 0, "", nil, "usage.destination is required"},
		// Per minute, [60, 6].
		{"minute: 0 s", "voice", secs("14155550100", 0), 0, "1",
			rtMD("country", `"1"`, "destination", `"14155550100"`, "seconds", "0"), ""},
		{"minute: 1 s bills 60", "voice", secs("14155550100", 1), 9000, "1", nil, ""},
		{"minute: 60 s bills 60", "voice", secs("14155550100", 60), 9000, "1", nil, ""},
		{"minute: 61 s bills 66", "voice", secs("14155550100", 61), 9900, "1",
			rtMD("country", `"1"`, "destination", `"14155550100"`, "seconds", "61"), ""},
		{"minute: 66 s bills 66", "voice", secs("14155550100", 66), 9900, "1", nil, ""},
		{"minute: 67 s bills 72", "voice", secs("14155550100", 67), 10800, "1", nil, ""},
		{"minute: * fallback", "voice", secs("4915112345678", 60), 30000, "*", nil, ""},
		// 59/min: 66 s = 64.9 micros, rounded up.
		{"minute: ceil 66 x 59 / 60", "voice", secs("447700900000", 61), 65, "44", nil, ""},
		{"minute: ceil 60 x 59 / 60 exact", "voice", secs("447700900000", 1), 59, "44", nil, ""},
		// Per second ([1, 1]): 7/min.
		{"minute [1,1]: 0 s", "voice1", secs("1", 0), 0, "1", nil, ""},
		{"minute [1,1]: 1 s ceil(7/60)", "voice1", secs("1", 1), 1, "1", nil, ""},
		{"minute [1,1]: 61 s ceil(427/60)", "voice1", secs("1", 61), 8, "1", nil, ""},
		{"minute [1,1]: 60 s exact", "voice1", secs("1", 60), 7, "1", nil, ""},
		{"minute [1,1]: 6 s at 100", "voice1", secs("2", 6), 10, "2", nil, ""},
		{"minute [1,1]: 7 s at 100", "voice1", secs("2", 7), 12, "2", nil, ""},
		{"minute [1,1]: 10^12 s at 10^12 out of range", "voice1", secs("9", 1_000_000_000_000), 0, "", nil, "out of range"},
		{"minute [1,1]: 60000 s at 10^12 is 10^15", "voice1", secs("9", 60_000), MaxAmountMicros, "9", nil, ""},
		{"minute [1,1]: 60001 s at 10^12 out of range", "voice1", secs("9", 60_001), 0, "", nil, "out of range"},
		// No increment: per second.
		{"minute no increment: 1 s", "voicex", secs("1", 1), 2, "1", nil, ""},
		{"minute no increment: 61 s", "voicex", secs("1", 61), 63, "1", nil, ""},
		{"minute no increment: 60 s", "voicex", secs("1", 60), 61, "1", nil, ""},
		{"minute: seconds missing", "voice", &Usage{Destination: "1"}, 0, "", nil, "usage.destination and usage.seconds are required"},
		{"minute: destination missing", "voice", &Usage{Seconds: 5, HasSeconds: true}, 0, "", nil, "usage.destination and usage.seconds are required"},
		{"minute: no match", "voicex", secs("44", 5), 0, "", nil, `no rate for destination "44" on voicex`},
		// Per token.
		{"token: 1 input token", "llm", toks("gpt-4o-mini", 1, 0), 1, "gpt-4o-mini",
			rtMD("input_tokens", "1", "model", `"gpt-4o-mini"`, "output_tokens", "0"), ""},
		{"token: 1 output token", "llm", toks("gpt-4o-mini", 0, 1), 1, "gpt-4o-mini", nil, ""},
		{"token: exact", "llm", toks("gpt-4o-mini", 1000, 500), 450, "gpt-4o-mini",
			rtMD("input_tokens", "1000", "model", `"gpt-4o-mini"`, "output_tokens", "500"), ""},
		{"token: ceil of the sum, once", "llm", toks("gpt-4o-mini", 1, 1), 1, "gpt-4o-mini", nil, ""},
		{"token: 7 input ceil(1.05)", "llm", toks("gpt-4o-mini", 7, 0), 2, "gpt-4o-mini", nil, ""},
		{"token: 0 tokens", "llm", toks("gpt-4o-mini", 0, 0), 0, "gpt-4o-mini", nil, ""},
		{"token: free model", "llm", toks("free", 1_000_000_000_000, 1_000_000_000_000), 0, "free", nil, ""},
		{"token: 3 x 333333333333 / 10^6 rounds up", "llm", toks("third", 3, 0), 1_000_000, "third", nil, ""},
		// 10^21 overflows 64 bits; the 128-bit intermediate keeps it exact.
		{"token: 10^9 x 10^12 is 10^15", "llm", toks("big", 1_000_000_000, 0), MaxAmountMicros, "big", nil, ""},
		{"token: 10^9 in + 1 out at 10^12", "llm", toks("big", 999_999_999, 1), MaxAmountMicros, "big", nil, ""},
		{"token: one token above 10^15", "llm", toks("big", 1_000_000_000, 1), 0, "", nil, "out of range"},
		{"token: 10^12 x 10^12 out of range", "llm", toks("big", 1_000_000_000_000, 1_000_000_000_000), 0, "", nil, "out of range"},
		// (10^12-1) x (10^7+1) x 2 = 20000001999979999998, above 2^64.
		{"token: sum above 2^64 exact with ceil", "llm", toks("ten7", 999_999_999_999, 999_999_999_999), 20_000_001_999_980, "ten7", nil, ""},
		{"token: model missing", "llm", &Usage{InputTokens: 5}, 0, "", nil, "usage.model is required"},
		{"token: unknown model", "llm", toks("gpt-5", 1, 1), 0, "", nil, `no rate for model "gpt-5" on llm`},
		// Channels.
		{"unknown channel", "mms", units("1", 1), 0, "", nil, `no rate for channel "mms"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := *tc.usage
			r, msg, ok := Rate(card, tc.channel, tc.usage)
			if *tc.usage != before {
				t.Fatalf("Rate modified the usage: %+v", *tc.usage)
			}
			if tc.errSub != "" {
				if ok || !strings.Contains(msg, tc.errSub) || r.CostMicros != 0 {
					t.Fatalf("Rate = (%+v, %q, %v), want no_rate containing %q", r, msg, ok, tc.errSub)
				}
				return
			}
			if !ok || msg != "" {
				t.Fatalf("Rate = (%+v, %q, %v), want ok", r, msg, ok)
			}
			if r.CostMicros != tc.cost || r.Group != tc.group {
				t.Fatalf("cost %d group %q, want %d %q", r.CostMicros, r.Group, tc.cost, tc.group)
			}
			if tc.md != nil && !reflect.DeepEqual(r.Metadata, tc.md) {
				t.Fatalf("metadata %v, want %v", r.Metadata, tc.md)
			}
			// The rate version is added by the engine, not by Rate.
			if _, has := r.Metadata.Get("rate_version"); has {
				t.Fatalf("Rate wrote rate_version: %v", r.Metadata)
			}
		})
	}
	// A channel whose per is unknown (a card that skipped Validate) is no_rate.
	bad := &RateCard{Channels: map[string]ChannelRate{"x": {Per: "day", Prices: map[string]int64{"*": 1}}}}
	if _, msg, ok := Rate(bad, "x", &Usage{Destination: "1"}); ok || msg == "" {
		t.Fatalf("unknown per rated: %q %v", msg, ok)
	}
	// A nil card map prices nothing.
	if _, msg, ok := Rate(&RateCard{}, "sms", &Usage{Destination: "1"}); ok || !strings.Contains(msg, "no rate for channel") {
		t.Fatalf("empty card rated: %q %v", msg, ok)
	}
}

// rtRefCost prices usage the way SPEC.md section 6 states it, with big
// integers and a different prefix search: the reference for random tests.
func rtRefCost(ch ChannelRate, u Usage) (*big.Int, string, bool) {
	longest := func(dest string) (string, int64, bool) {
		var digits strings.Builder
		for _, c := range dest {
			if c >= '0' && c <= '9' {
				digits.WriteRune(c)
			}
		}
		best, found := "", false
		for p := range ch.Prices {
			if p != "*" && strings.HasPrefix(digits.String(), p) && len(p) > len(best) {
				best, found = p, true
			}
		}
		if found {
			return best, ch.Prices[best], true
		}
		if p, ok := ch.Prices["*"]; ok {
			return "*", p, true
		}
		return "", 0, false
	}
	ceilDiv := func(n *big.Int, d int64) *big.Int {
		q, m := new(big.Int).QuoRem(n, big.NewInt(d), new(big.Int))
		if m.Sign() != 0 {
			q.Add(q, big.NewInt(1))
		}
		return q
	}
	switch ch.Per {
	case PerUnit:
		prefix, price, ok := longest(u.Destination)
		if !ok || u.Destination == "" {
			return nil, "", false
		}
		n := u.Units
		if !u.HasUnits {
			n = 1
		}
		return new(big.Int).Mul(big.NewInt(price), big.NewInt(n)), prefix, true
	case PerMinute:
		prefix, price, ok := longest(u.Destination)
		if !ok || u.Destination == "" || !u.HasSeconds {
			return nil, "", false
		}
		first, next := int64(1), int64(1)
		if len(ch.Increment) == 2 {
			first, next = ch.Increment[0], ch.Increment[1]
		}
		billable := int64(0)
		if u.Seconds > 0 {
			billable = first
			if u.Seconds > first {
				slices := (u.Seconds - first + next - 1) / next
				billable = first + slices*next
			}
		}
		return ceilDiv(new(big.Int).Mul(big.NewInt(billable), big.NewInt(price)), 60), prefix, true
	case PerToken:
		m, ok := ch.Models[u.Model]
		if !ok {
			return nil, "", false
		}
		in := new(big.Int).Mul(big.NewInt(u.InputTokens), big.NewInt(m.InputPerMillion))
		out := new(big.Int).Mul(big.NewInt(u.OutputTokens), big.NewInt(m.OutputPerMillion))
		return ceilDiv(in.Add(in, out), 1_000_000), u.Model, true
	}
	return nil, "", false
}

// rtRandomChannel makes a random valid channel rate.
func rtRandomChannel(r *rand.Rand) ChannelRate {
	price := func() int64 {
		switch r.IntN(6) {
		case 0:
			return 0
		case 1:
			return PriceMicrosMax - r.Int64N(3)
		case 2:
			return 1 + r.Int64N(100)
		default:
			return r.Int64N(100_000)
		}
	}
	switch r.IntN(3) {
	case 0, 1:
		ch := ChannelRate{Per: PerUnit, Prices: map[string]int64{}}
		if r.IntN(2) == 0 {
			ch.Per = PerMinute
			if r.IntN(4) != 0 {
				ch.Increment = []int64{1 + r.Int64N(90), 1 + r.Int64N(90)}
			}
		}
		for range 1 + r.IntN(6) {
			p := strconv.Itoa(r.IntN(10))
			for r.IntN(2) == 0 && len(p) < 4 {
				p += strconv.Itoa(r.IntN(10))
			}
			ch.Prices[p] = price()
		}
		if r.IntN(3) != 0 {
			ch.Prices["*"] = price()
		}
		return ch
	default:
		ch := ChannelRate{Per: PerToken, Models: map[string]ModelRate{}}
		for i := range 1 + r.IntN(3) {
			ch.Models["m"+strconv.Itoa(i)] = ModelRate{InputPerMillion: price(), OutputPerMillion: price()}
		}
		return ch
	}
}

// rtRandomUsage makes usage for ch: sometimes with fields missing, sometimes
// huge.
func rtRandomUsage(r *rand.Rand, ch ChannelRate) Usage {
	count := func() int64 {
		switch r.IntN(5) {
		case 0:
			return 0
		case 1:
			return 1_000_000_000_000 - r.Int64N(1000)
		case 2:
			return r.Int64N(1_000_000_000)
		default:
			return r.Int64N(400)
		}
	}
	var u Usage
	if r.IntN(12) != 0 {
		var b strings.Builder
		if r.IntN(3) == 0 {
			b.WriteString("+")
		}
		for range r.IntN(8) {
			b.WriteByte("0123456789- ()x"[r.IntN(15)])
		}
		u.Destination = b.String()
	}
	if r.IntN(6) != 0 {
		u.Units, u.HasUnits = count(), true
	}
	if r.IntN(8) != 0 {
		u.Seconds, u.HasSeconds = count(), true
	}
	if r.IntN(10) != 0 {
		u.Model = "m" + strconv.Itoa(r.IntN(4))
	}
	u.InputTokens, u.OutputTokens = count(), count()
	return u
}

func TestRateAgainstReference(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	maxAmt := big.NewInt(MaxAmountMicros)
	var priced, refused, outOfRange int
	for range 50_000 {
		ch := rtRandomChannel(r)
		if msg := (&RateCard{Channels: map[string]ChannelRate{"c": ch}}).Validate(); msg != "" {
			t.Fatalf("random card invalid: %s (%+v)", msg, ch)
		}
		u := rtRandomUsage(r, ch)
		card := &RateCard{Channels: map[string]ChannelRate{"c": ch}}
		got, msg, ok := Rate(card, "c", &u)
		want, prefix, wantOK := rtRefCost(ch, u)
		switch {
		case !wantOK:
			refused++
			if ok || msg == "" {
				t.Fatalf("%+v with %+v: rated %d, reference refuses", u, ch, got.CostMicros)
			}
		case want.Cmp(maxAmt) > 0:
			outOfRange++
			if ok || msg != "cost out of range" {
				t.Fatalf("%+v with %+v: (%d, %q, %v), reference %s is out of range", u, ch, got.CostMicros, msg, ok, want)
			}
		default:
			priced++
			if !ok || got.CostMicros != want.Int64() || got.Group != prefix {
				t.Fatalf("%+v with %+v: (%d %q, %q, %v), reference %s %q", u, ch, got.CostMicros, got.Group, msg, ok, want, prefix)
			}
		}
	}
	if priced < 10_000 || refused < 1000 || outOfRange < 1000 {
		t.Fatalf("weak coverage: priced %d refused %d out of range %d", priced, refused, outOfRange)
	}
}

func TestRateCardValidate(t *testing.T) {
	unit := func(prices map[string]int64) ChannelRate { return ChannelRate{Per: PerUnit, Prices: prices} }
	one := func(name string, ch ChannelRate) RateCard {
		return RateCard{Channels: map[string]ChannelRate{name: ch}}
	}
	many := func(n int) RateCard {
		c := RateCard{Channels: map[string]ChannelRate{}}
		for i := range n {
			c.Channels["c"+strconv.Itoa(i)] = unit(map[string]int64{"*": 1})
		}
		return c
	}
	prices := func(n int) map[string]int64 {
		p := map[string]int64{}
		for i := range n {
			p[strconv.Itoa(100000+i)] = 1
		}
		return p
	}
	models := func(n int) map[string]ModelRate {
		m := map[string]ModelRate{}
		for i := range n {
			m["m"+strconv.Itoa(i)] = ModelRate{1, 1}
		}
		return m
	}
	minute := func(inc ...int64) ChannelRate {
		return ChannelRate{Per: PerMinute, Increment: inc, Prices: map[string]int64{"*": 1}}
	}
	token := func(m map[string]ModelRate) ChannelRate { return ChannelRate{Per: PerToken, Models: m} }
	cases := []struct {
		name   string
		card   RateCard
		errSub string // "" = valid
	}{
		{"spec example", *rtCard(), ""},
		{"empty card", RateCard{}, ""},
		{"empty channels", RateCard{Channels: map[string]ChannelRate{}}, ""},
		{"256 channels", many(256), ""},
		{"257 channels", many(257), "at most 256 channels"},
		{"channel name uppercase", one("SMS", unit(map[string]int64{"*": 1})), `channel "SMS" must match`},
		{"channel name empty", one("", unit(map[string]int64{"*": 1})), `channel "" must match`},
		{"channel name 32 chars", one(strings.Repeat("a", 32), unit(map[string]int64{"*": 1})), ""},
		{"channel name 33 chars", one(strings.Repeat("a", 33), unit(map[string]int64{"*": 1})), "must match [a-z0-9_]{1,32}"},
		{"channel name dash", one("sm-s", unit(map[string]int64{"*": 1})), "must match"},
		{"channel name digits and underscore", one("sms_2", unit(map[string]int64{"*": 1})), ""},
		{"per missing", one("sms", ChannelRate{Prices: map[string]int64{"*": 1}}), `per must be "unit", "minute" or "token"`},
		{"per unknown", one("sms", ChannelRate{Per: "second", Prices: map[string]int64{"*": 1}}), "per must be"},
		{"per case", one("sms", ChannelRate{Per: "Unit", Prices: map[string]int64{"*": 1}}), "per must be"},
		{"unit with models", one("sms", ChannelRate{Per: PerUnit, Prices: map[string]int64{"*": 1}, Models: models(1)}), "models apply to per token only"},
		{"minute with models", one("v", ChannelRate{Per: PerMinute, Prices: map[string]int64{"*": 1}, Models: models(1)}), "models apply to per token only"},
		{"unit without prices", one("sms", unit(nil)), "prices must hold 1 to 10000 entries"},
		{"minute without prices", one("v", ChannelRate{Per: PerMinute}), "prices must hold 1 to 10000 entries"},
		{"10000 prices", one("sms", unit(prices(10_000))), ""},
		{"10001 prices", one("sms", unit(prices(10_001))), "prices must hold 1 to 10000 entries"},
		{"price key with a letter", one("sms", unit(map[string]int64{"1a": 1})), `price keys are digit prefixes or "*"`},
		{"price key empty", one("sms", unit(map[string]int64{"": 1})), "price keys are digit prefixes"},
		{"price key **", one("sms", unit(map[string]int64{"**": 1})), "price keys are digit prefixes"},
		{"price key +1", one("sms", unit(map[string]int64{"+1": 1})), "price keys are digit prefixes"},
		{"price key 1*", one("sms", unit(map[string]int64{"1*": 1})), "price keys are digit prefixes"},
		{"price key 16 digits", one("sms", unit(map[string]int64{"1234567890123456": 1})), ""},
		{"price key 17 digits", one("sms", unit(map[string]int64{"12345678901234567": 1})), "price keys are digit prefixes"},
		{"price key space", one("sms", unit(map[string]int64{"1 ": 1})), "price keys are digit prefixes"},
		{"price 0", one("sms", unit(map[string]int64{"*": 0})), ""},
		{"price -1", one("sms", unit(map[string]int64{"*": -1})), "prices are micros from 0 to 10^12"},
		{"price 10^12", one("sms", unit(map[string]int64{"1": PriceMicrosMax})), ""},
		{"price 10^12+1", one("sms", unit(map[string]int64{"1": PriceMicrosMax + 1})), "prices are micros from 0 to 10^12"},
		{"minute price -1", one("v", ChannelRate{Per: PerMinute, Prices: map[string]int64{"1": -1}}), "prices are micros"},
		{"unit with increment", one("sms", ChannelRate{Per: PerUnit, Increment: []int64{60, 6}, Prices: map[string]int64{"*": 1}}), "increment applies to per minute only"},
		{"minute without increment", one("v", minute()), ""},
		{"minute [60,6]", one("v", minute(60, 6)), ""},
		{"minute [1,1]", one("v", minute(1, 1)), ""},
		{"minute [86400,86400]", one("v", minute(86_400, 86_400)), ""},
		{"minute increment of one", one("v", minute(60)), "increment is [first, next] seconds, each 1 to 86400"},
		{"minute increment of three", one("v", minute(60, 6, 6)), "increment is [first, next]"},
		{"minute first 0", one("v", minute(0, 6)), "increment is [first, next]"},
		{"minute next 0", one("v", minute(60, 0)), "increment is [first, next]"},
		{"minute negative", one("v", minute(-60, 6)), "increment is [first, next]"},
		{"minute first 86401", one("v", minute(86_401, 6)), "increment is [first, next]"},
		{"minute next 86401", one("v", minute(60, 86_401)), "increment is [first, next]"},
		{"token with prices", one("llm", ChannelRate{Per: PerToken, Prices: map[string]int64{"*": 1}, Models: models(1)}), "per token takes models only"},
		{"token with increment", one("llm", ChannelRate{Per: PerToken, Increment: []int64{1, 1}, Models: models(1)}), "per token takes models only"},
		{"token without models", one("llm", token(nil)), "models must hold 1 to 1000 entries"},
		{"1000 models", one("llm", token(models(1000))), ""},
		{"1001 models", one("llm", token(models(1001))), "models must hold 1 to 1000 entries"},
		{"model name empty", one("llm", token(map[string]ModelRate{"": {1, 1}})), "model names are 1-64 characters"},
		{"model name 64", one("llm", token(map[string]ModelRate{strings.Repeat("m", 64): {1, 1}})), ""},
		{"model name 65", one("llm", token(map[string]ModelRate{strings.Repeat("m", 65): {1, 1}})), "model names are 1-64 characters"},
		{"token prices 0 and 10^12", one("llm", token(map[string]ModelRate{"m": {0, PriceMicrosMax}})), ""},
		{"token input -1", one("llm", token(map[string]ModelRate{"m": {-1, 1}})), "token prices are micros from 0 to 10^12 per million"},
		{"token output -1", one("llm", token(map[string]ModelRate{"m": {1, -1}})), "token prices are micros"},
		{"token input above 10^12", one("llm", token(map[string]ModelRate{"m": {PriceMicrosMax + 1, 1}})), "token prices are micros"},
		{"token output above 10^12", one("llm", token(map[string]ModelRate{"m": {1, PriceMicrosMax + 1}})), "token prices are micros"},
		// The first bad channel in name order is the one reported.
		{"first bad channel named", RateCard{Channels: map[string]ChannelRate{
			"a": unit(map[string]int64{"*": 1}), "b": unit(nil), "c": {Per: "x"}}}, "channels.b: prices must hold"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.card.Validate()
			if tc.errSub == "" {
				if got != "" {
					t.Fatalf("Validate = %q, want valid", got)
				}
				return
			}
			if got == "" || !strings.Contains(got, tc.errSub) {
				t.Fatalf("Validate = %q, want it to contain %q", got, tc.errSub)
			}
		})
	}
}

func TestEffectiveCard(t *testing.T) {
	def := &RateCard{Channels: map[string]ChannelRate{
		"sms":   {Per: PerUnit, Prices: map[string]int64{"*": 1}},
		"voice": {Per: PerMinute, Prices: map[string]int64{"*": 2}},
	}}
	ov := &RateCard{Channels: map[string]ChannelRate{
		"sms": {Per: PerUnit, Prices: map[string]int64{"1": 3}},
		"mms": {Per: PerUnit, Prices: map[string]int64{"*": 4}},
	}}
	got := effectiveCard(def, ov)
	want := &RateCard{Channels: map[string]ChannelRate{
		"sms":   ov.Channels["sms"],
		"voice": def.Channels["voice"],
		"mms":   ov.Channels["mms"],
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("effectiveCard = %+v, want %+v", got, want)
	}
	if len(def.Channels) != 2 || len(ov.Channels) != 2 {
		t.Fatal("effectiveCard modified its inputs")
	}
	if effectiveCard(def, nil) != def || effectiveCard(def, &RateCard{}) != def || effectiveCard(nil, ov) != ov || effectiveCard(&RateCard{}, ov) != ov {
		t.Fatal("effectiveCard with an empty side")
	}
	if effectiveCard(nil, nil) != nil {
		t.Fatal("effectiveCard(nil, nil)")
	}
}

// Apply-level rating.

func rtSetRates(org string, card *RateCard) Command {
	return Command{Kind: CmdSetRates, OrgID: org, Card: card}
}

func rtCharge(org, ref, channel string, u Usage) Command {
	return Command{Kind: CmdCharge, OrgID: org, Reference: ref, Channel: channel, Usage: &u, BodyHash: "h-" + ref}
}

func TestSetRates(t *testing.T) {
	h := newHarness()
	org := h.org(t, "A", 0)

	// Refusals change nothing: no version is used up.
	for _, c := range []Command{
		rtSetRates("", nil),
		rtSetRates("", &RateCard{Channels: map[string]ChannelRate{"sms": {Per: "day"}}}),
		rtSetRates("org_missing", rtCard()),
		rtSetRates(org, &RateCard{Channels: map[string]ChannelRate{"BAD": {Per: PerUnit, Prices: map[string]int64{"*": 1}}}}),
	} {
		r := h.apply1(t, 1000, c)
		if r.Code != CodeInvalid && r.Code != CodeNotFound {
			t.Fatalf("SetRates %+v: %v", c, r.Code)
		}
		if r.Message == "" || h.last.Settings != nil || len(h.last.Orgs) != 0 {
			t.Fatalf("refused SetRates wrote %+v / %+v (%q)", h.last.Settings, h.last.Orgs, r.Message)
		}
		if s := h.e.Settings(); s.RateSeq != 0 || s.DefaultCard != nil {
			t.Fatalf("settings after refusal %+v", s)
		}
	}
	if r := h.apply1(t, 1000, rtSetRates("org_missing", rtCard())); r.Code != CodeNotFound {
		t.Fatalf("unknown org: %v", r.Code)
	}

	// The default card: version 1.
	def := rtCard()
	r := h.apply1(t, 1000, rtSetRates("", def))
	wantCode(t, r, CodeOK)
	if r.ID != "1" || h.last.Settings == nil || h.last.Settings.DefaultCardVersion != 1 || h.last.Settings.RateSeq != 1 || h.last.Settings.DefaultCard != def {
		t.Fatalf("default card: result %+v, settings %+v", r, h.last.Settings)
	}
	if h.st.Settings.DefaultCardVersion != 1 {
		t.Fatalf("stored settings %+v", h.st.Settings)
	}
	card, v, ok := h.e.Rates(org)
	if !ok || v != 1 || !reflect.DeepEqual(card, *def) {
		t.Fatalf("Rates = %+v v%d", card, v)
	}

	// An override names sms only: version 2, and the default is untouched.
	ov := &RateCard{Channels: map[string]ChannelRate{"sms": {Per: PerUnit, Prices: map[string]int64{"1": 1000}}}}
	r = h.apply1(t, 2000, rtSetRates(org, ov))
	wantCode(t, r, CodeOK)
	if r.ID != "2" || len(h.last.Orgs) != 1 || h.last.Orgs[0].RateOverride != ov || h.last.Orgs[0].RateOverrideVersion != 2 {
		t.Fatalf("override: %+v, orgs %+v", r, h.last.Orgs)
	}
	if s := h.e.Settings(); s.RateSeq != 2 || s.DefaultCardVersion != 1 || s.DefaultCard != def {
		t.Fatalf("settings after override %+v", s)
	}
	if h.st.Settings.RateSeq != 2 {
		t.Fatalf("the override's version is not persisted in settings: %+v", h.st.Settings)
	}
	card, v, _ = h.e.Rates(org)
	if v != 2 || !reflect.DeepEqual(card.Channels["sms"], ov.Channels["sms"]) || !reflect.DeepEqual(card.Channels["voice"], def.Channels["voice"]) {
		t.Fatalf("merged card %+v v%d", card, v)
	}
	if _, _, ok := h.e.Rates("org_missing"); ok {
		t.Fatal("Rates of an unknown org")
	}
	// An org without any card.
	h2 := newHarness()
	o2 := h2.org(t, "B", 0)
	if card, v, ok := h2.e.Rates(o2); !ok || v != 0 || card.Channels == nil || len(card.Channels) != 0 {
		t.Fatalf("Rates with no card = %+v v%d %v", card, v, ok)
	}
}

func TestRatedCharges(t *testing.T) {
	h := newHarness()
	a := h.org(t, "A", 10_000_000)
	b := h.org(t, "B", 10_000_000)
	wantCode(t, h.apply1(t, 1000, rtSetRates("", rtCard())), CodeOK)                                               // v1
	ov := &RateCard{Channels: map[string]ChannelRate{"sms": {Per: PerUnit, Prices: map[string]int64{"44": 1000}}}} // no "*"
	wantCode(t, h.apply1(t, 1000, rtSetRates(a, ov)), CodeOK)                                                      // v2

	sms := Usage{Destination: "+44 7700 900000", Units: 2, HasUnits: true}
	voice := Usage{Destination: "14155550100", Seconds: 61, HasSeconds: true}
	cases := []struct {
		org, ref, channel string
		usage             Usage
		cost              int64
		version, group    string
		code              Code
	}{
		{a, "a-sms", "sms", sms, 2000, "2", "44", CodeOK},                         // the override
		{b, "b-sms", "sms", sms, 70000, "1", "44", CodeOK},                        // the default
		{a, "a-voice", "voice", voice, 9900, "1", "1", CodeOK},                    // not named by the override: default
		{a, "a-sms-us", "sms", Usage{Destination: "1415"}, 0, "", "", CodeNoRate}, // the override replaced sms, "*" included
		{b, "b-sms-us", "sms", Usage{Destination: "1415"}, 4000, "1", "141", CodeOK},
		{a, "a-llm", "llm", Usage{Model: "gpt-4o-mini", InputTokens: 1000, OutputTokens: 500}, 450, "1", "gpt-4o-mini", CodeOK},
		{a, "a-zero", "voice", Usage{Destination: "1", HasSeconds: true}, 0, "1", "1", CodeOK}, // a 0-second call writes a spend of 0
		{a, "a-none", "mms", sms, 0, "", "", CodeNoRate},
		{a, "a-bad", "voice", Usage{Destination: "1"}, 0, "", "", CodeNoRate},
	}
	for _, tc := range cases {
		t.Run(tc.ref, func(t *testing.T) {
			est, msg, estOK := h.e.Estimate(tc.org, tc.channel, &tc.usage)
			before := h.wallet(t, tc.org)
			cmd := rtCharge(tc.org, tc.ref, tc.channel, tc.usage)
			cmd.Metadata = Metadata{{"campaign", `"x"`}}
			r := h.apply1(t, 3000, cmd)
			wantCode(t, r, tc.code)
			if tc.code != CodeOK {
				h.wantNothingWritten(t)
				if estOK || msg == "" || !strings.Contains(r.Message, msg) {
					t.Fatalf("Estimate (%d, %q, %v) vs refusal %q", est, msg, estOK, r.Message)
				}
				if h.wallet(t, tc.org) != before {
					t.Fatal("refused rated charge changed the wallet")
				}
				return
			}
			if !estOK || est != tc.cost {
				t.Fatalf("Estimate = (%d, %q, %v), want %d", est, msg, estOK, tc.cost)
			}
			if r.Entry.AmountMicros != -tc.cost || before.BalanceMicros-tc.cost != r.Wallet.BalanceMicros {
				t.Fatalf("entry %+v, want cost %d", r.Entry, tc.cost)
			}
			m := r.Entry.Metadata
			if v, _ := m.Get("rate_version"); v != tc.version {
				t.Fatalf("rate_version %q, want %s (%v)", v, tc.version, m)
			}
			if v, _ := m.Get("channel"); v != `"`+tc.channel+`"` {
				t.Fatalf("channel %v", m)
			}
			if v, _ := m.Get("campaign"); v != `"x"` {
				t.Fatalf("client metadata lost: %v", m)
			}
			switch tc.channel {
			case "sms":
				if v, _ := m.Get("country"); v != `"`+tc.group+`"` {
					t.Fatalf("country %v", m)
				}
				if v, _ := m.Get("destination"); v != jsonString(tc.usage.Destination) {
					t.Fatalf("destination %v", m)
				}
				if v, _ := m.Get("units"); tc.usage.HasUnits && v != strconv.FormatInt(tc.usage.Units, 10) || !tc.usage.HasUnits && v != "1" {
					t.Fatalf("units %v", m)
				}
			case "voice":
				if v, _ := m.Get("seconds"); v != strconv.FormatInt(tc.usage.Seconds, 10) {
					t.Fatalf("seconds %v", m)
				}
				if v, _ := m.Get("country"); v != `"`+tc.group+`"` {
					t.Fatalf("country %v", m)
				}
			case "llm":
				if v, _ := m.Get("model"); v != `"gpt-4o-mini"` {
					t.Fatalf("model %v", m)
				}
				if v, _ := m.Get("input_tokens"); v != "1000" {
					t.Fatalf("input_tokens %v", m)
				}
				if v, _ := m.Get("output_tokens"); v != "500" {
					t.Fatalf("output_tokens %v", m)
				}
				if _, has := m.Get("country"); has {
					t.Fatalf("country on a token spend: %v", m)
				}
			}
			txn, _ := h.st.Txn(tc.org, r.TxID)
			wantGroup := GroupDestination + tc.group // usage groups are typed by dimension
			if tc.channel == "llm" {
				wantGroup = GroupModel + tc.group
			}
			if txn.Group != wantGroup || txn.AmountMicros != tc.cost || txn.Channel != tc.channel {
				t.Fatalf("txn %+v", txn)
			}
			if u := h.last.Usage; len(u) != 1 || u[0].Group != wantGroup || u[0].CostMicros != tc.cost || u[0].Messages != 1 {
				t.Fatalf("usage %+v", u)
			}
		})
	}

	// The command's AmountMicros (admission's estimate) does not decide the
	// cost: the card does.
	cmd := rtCharge(b, "b-est", "sms", sms)
	cmd.AmountMicros = 1
	if r := h.apply1(t, 3000, cmd); r.Code != CodeOK || r.Entry.AmountMicros != -70000 {
		t.Fatalf("rated charge with an estimate: %+v", r)
	}
	// A rated charge that does not fit is 402, and leaves nothing.
	poor := h.org(t, "P", 60000)
	wantCode(t, h.apply1(t, 3000, rtCharge(poor, "p1", "sms", sms)), CodeInsufficientFunds)
	h.wantNothingWritten(t)
	// A rated cost above the max amount is no_rate.
	wantCode(t, h.apply1(t, 3000, rtCharge(b, "b-huge", "whatsapp", Usage{Destination: "9", Units: 1001, HasUnits: true})), CodeNoRate)
	h.wantNothingWritten(t)
}

func TestNewCardAppliesFromCommit(t *testing.T) {
	h := newHarness()
	org := h.org(t, "A", 10_000_000)
	v1 := &RateCard{Channels: map[string]ChannelRate{"sms": {Per: PerUnit, Prices: map[string]int64{"*": 100}}}}
	v2 := &RateCard{Channels: map[string]ChannelRate{"sms": {Per: PerUnit, Prices: map[string]int64{"*": 250}}}}
	u := Usage{Destination: "1"}
	wantCode(t, h.apply1(t, 1000, rtSetRates("", v1)), CodeOK)
	if est, _, _ := h.e.Estimate(org, "sms", &u); est != 100 {
		t.Fatalf("Estimate under v1 = %d", est)
	}
	// One batch: a charge before the new card, the card, a charge after it.
	res := h.apply(t, 2000,
		rtCharge(org, "before", "sms", u),
		rtSetRates("", v2),
		rtCharge(org, "after", "sms", u))
	wantCode(t, res[0], CodeOK)
	wantCode(t, res[1], CodeOK)
	wantCode(t, res[2], CodeOK)
	if res[0].Entry.AmountMicros != -100 || res[2].Entry.AmountMicros != -250 {
		t.Fatalf("costs %d, %d", res[0].Entry.AmountMicros, res[2].Entry.AmountMicros)
	}
	if v, _ := res[0].Entry.Metadata.Get("rate_version"); v != "1" {
		t.Fatalf("before: version %s", v)
	}
	if v, _ := res[2].Entry.Metadata.Get("rate_version"); v != "2" {
		t.Fatalf("after: version %s", v)
	}
	if est, _, _ := h.e.Estimate(org, "sms", &u); est != 250 {
		t.Fatalf("Estimate under v2 = %d", est)
	}
	// A retry of the first charge replays it: it is not rated again.
	r := h.apply1(t, 3000, rtCharge(org, "before", "sms", u))
	if r.Code != CodeReplayed || r.TxID != res[0].TxID {
		t.Fatalf("replay %+v", r)
	}
	h.wantNothingWritten(t)
	h.wantBalance(t, org, 10_000_000-350)

	// After a restart (Load + LoadSettings) the cards and the version
	// sequence continue.
	e := New(1, h.st)
	var orgs []OrgRecord
	for _, o := range h.orgs {
		orgs = append(orgs, o)
	}
	e.Load(orgs, nil, h.e.AppliedIndex(), h.e.LastTimeMs())
	e.LoadSettings(h.st.Settings)
	if e.Digest() != h.e.Digest() {
		t.Fatal("digest differs after Load + LoadSettings")
	}
	h.e = e
	if est, _, _ := h.e.Estimate(org, "sms", &u); est != 250 {
		t.Fatalf("Estimate after restart = %d", est)
	}
	r = h.apply1(t, 4000, rtSetRates(org, v1))
	if r.ID != "3" {
		t.Fatalf("version after restart = %s, want 3", r.ID)
	}
	r = h.apply1(t, 4000, rtCharge(org, "later", "sms", u))
	if v, _ := r.Entry.Metadata.Get("rate_version"); v != "3" || r.Entry.AmountMicros != -100 {
		t.Fatalf("override after restart: %+v", r.Entry)
	}
	if _, msg, ok := h.e.Estimate("org_missing", "sms", &u); ok || msg == "" {
		t.Fatal("Estimate of an unknown org")
	}
	if _, msg, ok := h.e.Estimate(org, "fax", &u); ok || !strings.Contains(msg, "no rate for channel") {
		t.Fatalf("Estimate of an unpriced channel: %q", msg)
	}
}

// TestEstimateMatchesApply: for random cards and usage, Estimate's answer is
// exactly what Apply charges (or refuses) right after.
func TestEstimateMatchesApply(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	h := newHarness()
	org := h.org(t, "A", MaxAmountMicros)
	for i := range 3000 {
		if i%50 == 0 {
			card := &RateCard{Channels: map[string]ChannelRate{"c": rtRandomChannel(r), "d": rtRandomChannel(r)}}
			target := ""
			if r.IntN(2) == 0 {
				target = org
			}
			wantCode(t, h.apply1(t, 1000, rtSetRates(target, card)), CodeOK)
		}
		ch := []string{"c", "d"}[r.IntN(2)]
		rate, _, _ := h.e.channelRate(h.e.org(org), ch)
		u := rtRandomUsage(r, rate)
		est, msg, ok := h.e.Estimate(org, ch, &u)
		res := h.apply1(t, 1000, rtCharge(org, "r"+strconv.Itoa(i), ch, u))
		switch {
		case !ok:
			if res.Code != CodeNoRate || res.Message != msg {
				t.Fatalf("%d: Estimate refused (%q), Apply %v %q", i, msg, res.Code, res.Message)
			}
		default:
			if res.Code != CodeOK || res.Entry.AmountMicros != -est {
				t.Fatalf("%d: Estimate %d, Apply %v %+v", i, est, res.Code, res.Entry)
			}
			// Keep the wallet full.
			if est > 0 {
				wantCode(t, h.apply1(t, 1000, adjust(org, "top"+strconv.Itoa(i), est)), CodeOK)
			}
		}
	}
}

// TestEstimateRefusesInputsTheRateDoesNotTake: admission refuses usage that
// names an input its channel's rate does not take (seconds on a per-unit
// channel, a destination on a per-token one), since rating would ignore it;
// usage with only the inputs of its channel is priced. Apply, which rates
// commands already in the log, is unchanged: it never sees what was sent.
func TestEstimateRefusesInputsTheRateDoesNotTake(t *testing.T) {
	h := newHarness()
	org := h.org(t, "A", 10_000_000)
	wantCode(t, h.apply1(t, 1000, rtSetRates("", rtCard())), CodeOK)
	all := []UsageInputs{InputDestination, InputUnits, InputSeconds, InputModel, InputInputTokens, InputOutputTokens}
	full := Usage{Destination: "14155550100", Units: 1, HasUnits: true, Seconds: 60, HasSeconds: true,
		Model: "gpt-4o-mini", InputTokens: 10, OutputTokens: 10}
	for _, tc := range []struct {
		channel string
		takes   UsageInputs
	}{
		{"sms", InputDestination | InputUnits},
		{"voice", InputDestination | InputSeconds},
		{"llm", InputModel | InputInputTokens | InputOutputTokens},
	} {
		u := full
		u.Sent = tc.takes
		if est, msg, ok := h.e.Estimate(org, tc.channel, &u); !ok || est <= 0 {
			t.Errorf("%s with its own inputs: (%d, %q, %v), want a price", tc.channel, est, msg, ok)
		}
		for i, in := range all {
			if tc.takes&in != 0 {
				continue
			}
			u.Sent = tc.takes | in
			name := usageInputNames[i]
			if _, msg, ok := h.e.Estimate(org, tc.channel, &u); ok || !strings.Contains(msg, "usage."+name) {
				t.Errorf("%s with %s: (%q, %v), want refused naming usage.%s", tc.channel, name, msg, ok, name)
			}
		}
	}
	u := full
	u.Sent = InputDestination | InputUnits | InputSeconds
	wantCode(t, h.apply1(t, 2000, rtCharge(org, "logged", "sms", u)), CodeOK)
}
