package client

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// FxRateScale is the precision of an FxRate: 10^8 units per USD, the
// server's own (it keeps every rate as USD per unit x 10^8).
const FxRateScale = 100_000_000

// fxRateDecimals is the number of decimals FxRateScale keeps.
const fxRateDecimals = 8

// FxRate is an exchange rate in USD per unit of a currency, kept exactly as
// an integer count of 10^-8 USD: 1.0825 is FxRate(108250000). It reads and
// writes JSON numbers as plain decimal text, never through a float, so a
// rate set with SetFxRates reads back from FxRates unchanged.
type FxRate int64

// ParseFxRate reads a plain decimal ("1.0825", "0.0067", "150") with at most
// 8 decimals (trailing zeros beyond them are allowed). Signs, exponents and
// anything else are refused. The server further requires a rate above 0
// and at most 10000.
func ParseFxRate(s string) (FxRate, error) {
	intPart, frac, dot := strings.Cut(s, ".")
	if intPart == "" || !digits(intPart) || (dot && (frac == "" || !digits(frac))) {
		return 0, fmt.Errorf("orbit: FX rate %q: want a plain decimal number such as 1.0825", s)
	}
	frac = strings.TrimRight(frac, "0")
	if len(frac) > fxRateDecimals {
		return 0, fmt.Errorf("orbit: FX rate %q: at most %d decimals", s, fxRateDecimals)
	}
	intPart = strings.TrimLeft(intPart, "0")
	if len(intPart) > 10 { // 10^10 x 10^8 fits in int64; more would not
		return 0, fmt.Errorf("orbit: FX rate %q: too large", s)
	}
	var n int64
	if intPart != "" {
		n, _ = strconv.ParseInt(intPart, 10, 64)
	}
	r := n * FxRateScale
	if frac != "" {
		f, _ := strconv.ParseInt(frac+strings.Repeat("0", fxRateDecimals-len(frac)), 10, 64)
		r += f
	}
	return FxRate(r), nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// String writes the rate as a plain decimal with at least one decimal and
// no trailing zeros beyond it: "1.0825", "2.0", "0.00000001".
func (r FxRate) String() string {
	u := uint64(r)
	sign := ""
	if r < 0 {
		sign, u = "-", uint64(-r)
	}
	frac := strconv.FormatUint(u%FxRateScale+FxRateScale, 10)[1:]
	frac = strings.TrimRight(frac, "0")
	if frac == "" {
		frac = "0"
	}
	return sign + strconv.FormatUint(u/FxRateScale, 10) + "." + frac
}

// MarshalJSON writes the rate as a JSON number with its exact decimals.
func (r FxRate) MarshalJSON() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalJSON reads a JSON number (or a string holding one) exactly.
func (r *FxRate) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		b = b[1 : len(b)-1]
	}
	v, err := ParseFxRate(string(b))
	if err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "orbit: "))
	}
	*r = v
	return nil
}

// FxRates is the FX table: USD per unit of each currency, keyed by its
// lowercase ISO 4217 code ("eur", "gbp", ...). usd is implicit (always 1)
// and never listed.
type FxRates map[string]FxRate
