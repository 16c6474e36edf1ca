package server

import (
	"sort"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/orbit/orbit/engine"
	"github.com/orbit/orbit/server/jsonx"
)

// FX rates: USD per unit of a currency, committed through the log like a
// rate card and kept as integers x 10^8. The JSON number's text is parsed
// exactly (no float ever holds a rate): 1.0825 is 108250000.

// fxCurrenciesMax bounds the FX table (ISO 4217 has fewer currencies).
const fxCurrenciesMax = 300

// fxRateDecimalsMax is the precision of a rate (the scale 10^8).
const fxRateDecimalsMax = 8

var _ [engine.USDRateScale - 100_000_000]struct{} // 10^fxRateDecimalsMax
var _ [100_000_000 - engine.USDRateScale]struct{}

// parseFxRate converts a JSON number's text (a plain decimal: digits, an
// optional fraction of at most 8 significant decimals, no sign, no
// exponent) to USD per unit x 10^8.
func parseFxRate(text string) (int64, bool) {
	intPart, frac, dot := cutByte(text, '.')
	if intPart == "" || len(intPart) > 5 || !allDigits(intPart) || (len(intPart) > 1 && intPart[0] == '0') || (dot && frac == "") {
		return 0, false
	}
	if !allDigits(frac) {
		return 0, false
	}
	for len(frac) > fxRateDecimalsMax && frac[len(frac)-1] == '0' {
		frac = frac[:len(frac)-1]
	}
	if len(frac) > fxRateDecimalsMax {
		return 0, false
	}
	n, _ := strconv.ParseInt(intPart, 10, 64)
	rate := n * engine.USDRateScale
	if frac != "" {
		f, _ := strconv.ParseInt(frac, 10, 64)
		for i := len(frac); i < fxRateDecimalsMax; i++ {
			f *= 10
		}
		rate += f
	}
	return rate, rate >= 1 && rate <= engine.FxRateMax
}

func cutByte(s string, sep byte) (before, after string, found bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == sep {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// appendFxRate writes a rate x 10^8 as a JSON number with at least one
// decimal (1.0, 1.0825).
func appendFxRate(b []byte, rate int64) []byte {
	b = strconv.AppendInt(b, rate/engine.USDRateScale, 10)
	b = append(b, '.')
	frac := strconv.FormatInt(rate%engine.USDRateScale+engine.USDRateScale, 10)[1:]
	for len(frac) > 1 && frac[len(frac)-1] == '0' {
		frac = frac[:len(frac)-1]
	}
	return append(b, frac...)
}

// parseFxTable validates a PUT /admin/v1/fx-rates body.
func parseFxTable(v jsonx.Value) (map[string]int64, *apiError) {
	if len(v.Fields) > fxCurrenciesMax {
		return nil, invalid("at most " + strconv.Itoa(fxCurrenciesMax) + " currencies")
	}
	table := make(map[string]int64, len(v.Fields))
	for _, f := range v.Fields {
		if !validCurrencyCode(f.Key) || f.Key == "usd" {
			return nil, invalidField(f.Key, "must be a lowercase ISO 4217 currency code other than usd")
		}
		if f.Value.Kind != jsonx.Number {
			return nil, invalidField(f.Key, "must be a number: USD per unit of the currency")
		}
		rate, ok := parseFxRate(f.Value.Str)
		if !ok {
			return nil, invalidField(f.Key, "must be a decimal number above 0 and at most 10000 with at most 8 decimals (no exponent)")
		}
		table[f.Key] = rate
	}
	return table, nil
}

func writeFxTable(w *jw, table map[string]int64) {
	keys := make([]string, 0, len(table))
	for k := range table {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	w.objStart()
	for _, k := range keys {
		w.key(k)
		w.sep()
		w.b = appendFxRate(w.b, table[k])
	}
	w.objEnd()
}

// adminPutFxRates replaces the FX table.
func (s *Server) adminPutFxRates(ctx *fasthttp.RequestCtx, rs *reqState, _ []string) {
	v, err := jsonBody(ctx, bodyBytesMax)
	var table map[string]int64
	if err == nil {
		table, err = parseFxTable(v)
	}
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	r, err := s.submitOne(ctx, engine.Command{Kind: engine.CmdSetFxRates, FxRates: table})
	if err == nil {
		err = resultError(&r)
	}
	if err != nil {
		respondError(ctx, rs, err)
		return
	}
	respond(ctx, rs, 200, func(w *jw) { writeFxTable(w, table) })
}

// adminGetFxRates answers the committed FX table.
func (s *Server) adminGetFxRates(ctx *fasthttp.RequestCtx, rs *reqState, _ []string) {
	table := s.store.FxRates()
	respond(ctx, rs, 200, func(w *jw) { writeFxTable(w, table) })
}
