package engine

import "math/bits"

// MaxAmountMicros bounds every amount a client sends (SPEC.md section 2).
const MaxAmountMicros int64 = 1_000_000_000_000_000 // 10^15 micros = 1 billion USD

// MicrosPerUSD and MicrosPerCent convert the internal unit to display units.
const (
	MicrosPerUSD  int64 = 1_000_000
	MicrosPerCent int64 = 10_000
)

// addMicros returns a+b and whether it did not overflow int64.
func addMicros(a, b int64) (int64, bool) {
	s := a + b
	// Overflow iff a and b have the same sign and s has the other.
	if (a >= 0) == (b >= 0) && (s >= 0) != (a >= 0) {
		return 0, false
	}
	return s, true
}

// subMicros returns a-b and whether it did not overflow int64.
func subMicros(a, b int64) (int64, bool) {
	d := a - b
	// Overflow iff a and b have different signs and d has b's sign.
	if (a >= 0) != (b >= 0) && (d >= 0) != (a >= 0) {
		return 0, false
	}
	return d, true
}

// mulDivCeil returns ceil(a*b/d) for non-negative a, b and positive d, using a
// 128-bit intermediate, and false when the result does not fit in int64.
func mulDivCeil(a, b, d uint64) (int64, bool) {
	hi, lo := bits.Mul64(a, b)
	if hi >= d {
		return 0, false
	}
	q, r := bits.Div64(hi, lo, d)
	if q > uint64(1<<63-1) { // checked before rounding up: q+1 could wrap
		return 0, false
	}
	if r != 0 {
		q++
	}
	if q > uint64(1<<63-1) {
		return 0, false
	}
	return int64(q), true
}

// mulDivFloor returns floor(a*b/d) for non-negative a, b and positive d.
func mulDivFloor(a, b, d uint64) (int64, bool) {
	hi, lo := bits.Mul64(a, b)
	if hi >= d {
		return 0, false
	}
	q, _ := bits.Div64(hi, lo, d)
	if q > uint64(1<<63-1) {
		return 0, false
	}
	return int64(q), true
}

// uint128 is an unsigned 128-bit integer for token costs.
type uint128 struct{ hi, lo uint64 }

func uint128Mul(a, b uint64) uint128 {
	hi, lo := bits.Mul64(a, b)
	return uint128{hi, lo}
}

func (x uint128) add(y uint128) uint128 {
	lo, carry := bits.Add64(x.lo, y.lo, 0)
	hi, _ := bits.Add64(x.hi, y.hi, carry)
	return uint128{hi, lo}
}

// divCeil returns ceil(x/d) if it fits in int64.
func (x uint128) divCeil(d uint64) (int64, bool) {
	if x.hi >= d {
		return 0, false
	}
	q, r := bits.Div64(x.hi, x.lo, d)
	if r != 0 {
		q++
	}
	if q > uint64(1<<63-1) || q == 0 && r != 0 {
		return 0, false
	}
	return int64(q), true
}
