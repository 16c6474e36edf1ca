package engine

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

func TestAddMicros(t *testing.T) {
	cases := []struct {
		a, b, sum int64
		ok        bool
	}{
		{1, 2, 3, true},
		{-5, 3, -2, true},
		{0, 0, 0, true},
		{math.MaxInt64, 0, math.MaxInt64, true},
		{math.MaxInt64, 1, 0, false},
		{1, math.MaxInt64, 0, false},
		{math.MaxInt64, math.MaxInt64, 0, false},
		{math.MinInt64, 0, math.MinInt64, true},
		{math.MinInt64, -1, 0, false},
		{-1, math.MinInt64, 0, false},
		{math.MinInt64, math.MinInt64, 0, false},
		{math.MinInt64, math.MaxInt64, -1, true},
		{math.MaxInt64, math.MinInt64, -1, true},
		{math.MaxInt64, -1, math.MaxInt64 - 1, true},
		{math.MaxInt64 - 5, 5, math.MaxInt64, true},
		{math.MaxInt64 - 5, 6, 0, false},
		{MaxAmountMicros, MaxAmountMicros, 2 * MaxAmountMicros, true},
	}
	for _, c := range cases {
		sum, ok := addMicros(c.a, c.b)
		if sum != c.sum || ok != c.ok {
			t.Errorf("addMicros(%d, %d) = %d %v, want %d %v", c.a, c.b, sum, ok, c.sum, c.ok)
		}
	}
}

func TestSubMicros(t *testing.T) {
	cases := []struct {
		a, b, diff int64
		ok         bool
	}{
		{5, 3, 2, true},
		{3, 5, -2, true},
		{0, math.MaxInt64, -math.MaxInt64, true},
		{-1, math.MaxInt64, math.MinInt64, true},
		{-2, math.MaxInt64, 0, false},
		{0, math.MinInt64, 0, false},
		{1, math.MinInt64, 0, false},
		{-1, math.MinInt64, math.MaxInt64, true},
		{math.MinInt64, math.MinInt64, 0, true},
		{math.MaxInt64, math.MaxInt64, 0, true},
		{math.MaxInt64, -1, 0, false},
		{math.MaxInt64, 0, math.MaxInt64, true},
		{math.MinInt64, 1, 0, false},
		{math.MinInt64, -1, math.MinInt64 + 1, true},
		{math.MinInt64, 0, math.MinInt64, true},
		{math.MaxInt64, math.MinInt64, 0, false},
		{math.MinInt64, math.MaxInt64, 0, false},
	}
	for _, c := range cases {
		diff, ok := subMicros(c.a, c.b)
		if diff != c.diff || ok != c.ok {
			t.Errorf("subMicros(%d, %d) = %d %v, want %d %v", c.a, c.b, diff, ok, c.diff, c.ok)
		}
	}
}

// interestingInt64 draws edge values more often than chance would.
func interestingInt64(r *rand.Rand) int64 {
	switch r.IntN(6) {
	case 0:
		return []int64{0, 1, -1, math.MaxInt64, math.MinInt64, math.MaxInt64 - 1, math.MinInt64 + 1, MaxAmountMicros, -MaxAmountMicros}[r.IntN(9)]
	case 1:
		return r.Int64N(2000) - 1000
	case 2:
		return math.MaxInt64 - r.Int64N(1000)
	case 3:
		return math.MinInt64 + r.Int64N(1000)
	}
	return int64(r.Uint64())
}

func TestAddSubMicrosAgainstBig(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	minI, maxI := big.NewInt(math.MinInt64), big.NewInt(math.MaxInt64)
	fits := func(x *big.Int) bool { return x.Cmp(minI) >= 0 && x.Cmp(maxI) <= 0 }
	for i := 0; i < 200_000; i++ {
		a, b := interestingInt64(r), interestingInt64(r)
		want := new(big.Int).Add(big.NewInt(a), big.NewInt(b))
		got, ok := addMicros(a, b)
		if ok != fits(want) || (ok && got != want.Int64()) || (!ok && got != 0) {
			t.Fatalf("addMicros(%d, %d) = %d %v, exact %v", a, b, got, ok, want)
		}
		want.Sub(big.NewInt(a), big.NewInt(b))
		got, ok = subMicros(a, b)
		if ok != fits(want) || (ok && got != want.Int64()) || (!ok && got != 0) {
			t.Fatalf("subMicros(%d, %d) = %d %v, exact %v", a, b, got, ok, want)
		}
	}
}

func TestMulDiv(t *testing.T) {
	const maxU = math.MaxUint64
	cases := []struct {
		a, b, d      uint64
		floor, ceil  int64
		okFl, okCeil bool
	}{
		{0, 12345, 7, 0, 0, true, true},
		{7, 3, 2, 10, 11, true, true},
		{6, 3, 2, 9, 9, true, true},
		{1, 1, 1_000_000, 0, 1, true, true},
		// Token pricing: 1,500 tokens at 3 USD per million = 4,500 micros.
		{1500, 3_000_000, 1_000_000, 4500, 4500, true, true},
		{1501, 3_000_001, 1_000_000, 4503, 4504, true, true},
		{math.MaxInt64, 1, 1, math.MaxInt64, math.MaxInt64, true, true},
		{1 << 63, 1, 1, 0, 0, false, false},
		// The 128-bit intermediate: a*b overflows 64 bits, the quotient fits.
		{math.MaxInt64, 2, 2, math.MaxInt64, math.MaxInt64, true, true},
		{maxU, maxU, maxU, 0, 0, false, false},
		{maxU, 1 << 62, 1 << 63, math.MaxInt64, 0, true, false}, // (2^64-1)/2
		// floor fits exactly at MaxInt64; the remainder pushes ceil over.
		{2, 3<<62 - 1, 3, math.MaxInt64, 0, true, false}, // 3*MaxInt64 + 1
		{math.MaxInt64*2 + 1, 1, 2, math.MaxInt64, 0, true, false},
		// The quotient is 2^64-1 with a remainder: rounding up must not wrap.
		{31, (maxU/31)*2 + 1, 2, 0, 0, false, false},
		{3, maxU / 3 * 2, 2, 0, 0, false, false},
		// Division by zero is refused, not a panic.
		{1, 1, 0, 0, 0, false, false},
		{0, 0, 0, 0, 0, false, false},
	}
	for _, c := range cases {
		fl, okFl := mulDivFloor(c.a, c.b, c.d)
		ce, okCe := mulDivCeil(c.a, c.b, c.d)
		if fl != c.floor || okFl != c.okFl {
			t.Errorf("mulDivFloor(%d, %d, %d) = %d %v, want %d %v", c.a, c.b, c.d, fl, okFl, c.floor, c.okFl)
		}
		if ce != c.ceil || okCe != c.okCeil {
			t.Errorf("mulDivCeil(%d, %d, %d) = %d %v, want %d %v", c.a, c.b, c.d, ce, okCe, c.ceil, c.okCeil)
		}
	}
}

func TestMulDivAgainstBig(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	maxI := big.NewInt(math.MaxInt64)
	u := func() uint64 {
		switch r.IntN(5) {
		case 0:
			return []uint64{0, 1, 2, math.MaxUint64, math.MaxInt64, 1 << 63, 1_000_000}[r.IntN(7)]
		case 1:
			return r.Uint64N(1 << 20)
		case 2:
			return r.Uint64N(1 << 32)
		}
		return r.Uint64()
	}
	for i := 0; i < 200_000; i++ {
		a, b, d := u(), u(), u()
		if d == 0 {
			d = 1 + r.Uint64N(1000)
		}
		p := new(big.Int).Mul(new(big.Int).SetUint64(a), new(big.Int).SetUint64(b))
		q, rem := new(big.Int).QuoRem(p, new(big.Int).SetUint64(d), new(big.Int))
		fl, okFl := mulDivFloor(a, b, d)
		if want := q.Cmp(maxI) <= 0; okFl != want || (okFl && fl != q.Int64()) || (!okFl && fl != 0) {
			t.Fatalf("mulDivFloor(%d, %d, %d) = %d %v, exact %v", a, b, d, fl, okFl, q)
		}
		if rem.Sign() != 0 {
			q.Add(q, big.NewInt(1))
		}
		ce, okCe := mulDivCeil(a, b, d)
		if want := q.Cmp(maxI) <= 0; okCe != want || (okCe && ce != q.Int64()) || (!okCe && ce != 0) {
			t.Fatalf("mulDivCeil(%d, %d, %d) = %d %v, exact %v", a, b, d, ce, okCe, q)
		}
	}
}

func TestJSONString(t *testing.T) {
	cases := map[string]string{
		"":          `""`,
		"sms":       `"sms"`,
		`a"b\c`:     `"a\"b\\c"`,
		"x\ny\x00":  `"x\u000ay\u0000"`,
		"\x1f":      `"\u001f"`,
		"héllo €":   `"héllo €"`,
		"tab\there": `"tab\u0009here"`,
	}
	for in, want := range cases {
		if got := jsonString(in); got != want {
			t.Errorf("jsonString(%q) = %s, want %s", in, got, want)
		}
	}
	if jsonInt(-42) != "-42" || jsonInt(math.MaxInt64) != "9223372036854775807" {
		t.Fatal("jsonInt")
	}
}

func TestMetadataWith(t *testing.T) {
	m := Metadata{{"b", "1"}, {"d", "2"}}
	cases := []struct {
		key  string
		want Metadata
	}{
		{"a", Metadata{{"a", "x"}, {"b", "1"}, {"d", "2"}}},
		{"c", Metadata{{"b", "1"}, {"c", "x"}, {"d", "2"}}},
		{"e", Metadata{{"b", "1"}, {"d", "2"}, {"e", "x"}}},
		{"b", Metadata{{"b", "x"}, {"d", "2"}}},
		{"d", Metadata{{"b", "1"}, {"d", "x"}}},
	}
	for _, c := range cases {
		got := m.with(c.key, "x")
		if len(got) != len(c.want) {
			t.Fatalf("with(%q) = %v, want %v", c.key, got, c.want)
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Fatalf("with(%q) = %v, want %v", c.key, got, c.want)
			}
		}
		if v, ok := got.Get(c.key); !ok || v != "x" {
			t.Fatalf("Get(%q) = %q %v", c.key, v, ok)
		}
	}
	if m[0] != (KV{"b", "1"}) || m[1] != (KV{"d", "2"}) || len(m) != 2 {
		t.Fatalf("with modified its receiver: %v", m)
	}
	if got := Metadata(nil).with("k", "1"); len(got) != 1 || got[0] != (KV{"k", "1"}) {
		t.Fatalf("nil.with = %v", got)
	}
	if _, ok := m.Get("zz"); ok {
		t.Fatal("Get of a missing key")
	}
}
