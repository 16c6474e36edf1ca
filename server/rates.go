package server

import (
	"sort"

	"github.com/orbit/orbit/engine"
	"github.com/orbit/orbit/server/jsonx"
)

// decodeRateCard reads a rate card (SPEC.md section 6) strictly: unknown
// fields, wrong types and out-of-range prices are 400.
func decodeRateCard(v jsonx.Value) (engine.RateCard, *apiError) {
	card := engine.RateCard{Channels: map[string]engine.ChannelRate{}}
	if err := onlyFields(v, "channels"); err != nil {
		return card, err
	}
	chs, ok := v.Get("channels")
	if !ok || chs.Kind != jsonx.Object {
		return card, invalidField("channels", "must be an object of channel rates")
	}
	for _, f := range chs.Fields {
		where := "channels." + f.Key
		if f.Value.Kind != jsonx.Object {
			return card, invalidField(where, "must be an object")
		}
		if err := onlyFields(f.Value, "per", "increment", "prices", "models"); err != nil {
			return card, invalid(where + "." + err.message)
		}
		var ch engine.ChannelRate
		per, err := requiredStr(f.Value, "per")
		if err != nil {
			return card, invalidField(where+".per", "is required")
		}
		ch.Per = per
		if inc, ok := f.Value.Get("increment"); ok {
			if inc.Kind != jsonx.Array {
				return card, invalidField(where+".increment", "must be [first, next]")
			}
			for _, it := range inc.Items {
				n, e := it.Int64()
				if it.Kind != jsonx.Number || e != nil {
					return card, invalidField(where+".increment", "must be [first, next] integers")
				}
				ch.Increment = append(ch.Increment, n)
			}
		}
		if prices, ok := f.Value.Get("prices"); ok {
			if prices.Kind != jsonx.Object {
				return card, invalidField(where+".prices", "must be an object of prefix: micros")
			}
			ch.Prices = make(map[string]int64, len(prices.Fields))
			for _, p := range prices.Fields {
				n, e := p.Value.Int64()
				if p.Value.Kind != jsonx.Number || e != nil {
					return card, invalidField(where+".prices."+p.Key, "must be an integer of micros")
				}
				ch.Prices[p.Key] = n
			}
		}
		if models, ok := f.Value.Get("models"); ok {
			if models.Kind != jsonx.Object {
				return card, invalidField(where+".models", "must be an object of model rates")
			}
			ch.Models = make(map[string]engine.ModelRate, len(models.Fields))
			for _, m := range models.Fields {
				mw := where + ".models." + m.Key
				if m.Value.Kind != jsonx.Object {
					return card, invalidField(mw, "must be an object")
				}
				if err := onlyFields(m.Value, "input_per_million", "output_per_million"); err != nil {
					return card, invalidField(mw, "unknown field")
				}
				var r engine.ModelRate
				var e *apiError
				var present bool
				if r.InputPerMillion, present, e = integer(m.Value, "input_per_million"); e != nil || !present {
					return card, invalidField(mw+".input_per_million", "must be an integer of micros")
				}
				if r.OutputPerMillion, present, e = integer(m.Value, "output_per_million"); e != nil || !present {
					return card, invalidField(mw+".output_per_million", "must be an integer of micros")
				}
				ch.Models[m.Key] = r
			}
		}
		card.Channels[f.Key] = ch
	}
	if msg := card.Validate(); msg != "" {
		return card, invalid("rate card: " + msg)
	}
	return card, nil
}

// writeRateCard writes a card with channels, prices and models sorted.
func writeRateCard(w *jw, card *engine.RateCard) {
	w.objStart()
	names := make([]string, 0, len(card.Channels))
	for n := range card.Channels {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ch := card.Channels[n]
		w.key(n)
		w.objStart()
		w.kStr("per", ch.Per)
		if len(ch.Increment) == 2 {
			w.key("increment")
			w.arrStart()
			w.int(ch.Increment[0])
			w.int(ch.Increment[1])
			w.arrEnd()
		}
		if len(ch.Prices) > 0 {
			w.key("prices")
			w.objStart()
			keys := make([]string, 0, len(ch.Prices))
			for k := range ch.Prices {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				w.kInt(k, ch.Prices[k])
			}
			w.objEnd()
		}
		if len(ch.Models) > 0 {
			w.key("models")
			w.objStart()
			keys := make([]string, 0, len(ch.Models))
			for k := range ch.Models {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				w.key(k)
				w.objStart()
				w.kInt("input_per_million", ch.Models[k].InputPerMillion)
				w.kInt("output_per_million", ch.Models[k].OutputPerMillion)
				w.objEnd()
			}
			w.objEnd()
		}
		w.objEnd()
	}
	w.objEnd()
}
