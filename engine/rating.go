package engine

import (
	"sort"
	"strconv"
)

// Rating prices usage with a rate card (SPEC.md section 6). Prices are
// micros; every cost is rounded up to a whole micro once per charge, with a
// 128-bit intermediate so no token count overflows.

// Rate units of a channel.
const (
	PerUnit   = "unit"
	PerMinute = "minute"
	PerToken  = "token"
)

// Limits of rate cards.
const (
	rateCardChannelsMax = 256
	ratePricesMax       = 10_000
	rateModelsMax       = 1_000
	// PriceMicrosMax bounds one price: $1,000,000 per unit, minute or
	// million tokens.
	PriceMicrosMax int64 = 1_000_000_000_000
)

// RateCard prices channels. The JSON form is the API's (SPEC.md section 6).
type RateCard struct {
	Channels map[string]ChannelRate `json:"channels"`
}

// ChannelRate prices one channel.
type ChannelRate struct {
	Per string `json:"per"`
	// Increment is [first, next] billing increments in seconds (minute only).
	Increment []int64 `json:"increment,omitempty"`
	// Prices by destination prefix (digits) or "*" (unit and minute).
	Prices map[string]int64 `json:"prices,omitempty"`
	// Models prices tokens by model (token only).
	Models map[string]ModelRate `json:"models,omitempty"`
}

// ModelRate prices one model's tokens.
type ModelRate struct {
	InputPerMillion  int64 `json:"input_per_million"`
	OutputPerMillion int64 `json:"output_per_million"`
}

// Usage is what a gateway reports for rating.
type Usage struct {
	Destination  string `json:"d,omitempty"`
	Units        int64  `json:"u,omitempty"`
	Seconds      int64  `json:"s,omitempty"`
	Model        string `json:"m,omitempty"`
	InputTokens  int64  `json:"i,omitempty"`
	OutputTokens int64  `json:"o,omitempty"`
	HasUnits     bool   `json:"hu,omitempty"`
	HasSeconds   bool   `json:"hs,omitempty"`
	// Sent is which inputs the request named, for admission (Estimate)
	// only: it is not in the log, so Apply never depends on it.
	Sent UsageInputs `json:"-"`
}

// UsageInputs is a set of usage inputs, one bit each.
type UsageInputs uint8

// The usage inputs.
const (
	InputDestination UsageInputs = 1 << iota
	InputUnits
	InputSeconds
	InputModel
	InputInputTokens
	InputOutputTokens
)

// usageInputNames are the inputs' JSON names, in bit order.
var usageInputNames = [...]string{"destination", "units", "seconds", "model", "input_tokens", "output_tokens"}

// inputsOf is what a channel priced per per takes (SPEC.md section 6).
func inputsOf(per string) UsageInputs {
	switch per {
	case PerUnit:
		return InputDestination | InputUnits
	case PerMinute:
		return InputDestination | InputSeconds
	case PerToken:
		return InputModel | InputInputTokens | InputOutputTokens
	}
	return 0
}

// ForeignInput names the first input u was sent with that a channel priced
// per per does not take (seconds on a per-unit channel, say), or "".
func (u *Usage) ForeignInput(per string) string {
	foreign := u.Sent &^ inputsOf(per)
	for i, name := range usageInputNames {
		if foreign&(1<<i) != 0 {
			return name
		}
	}
	return ""
}

// Validate checks a card's shape and ranges. It returns a message for the
// first problem, or "".
func (c *RateCard) Validate() string {
	if len(c.Channels) > rateCardChannelsMax {
		return "at most 256 channels"
	}
	for _, name := range sortedKeys(c.Channels) {
		ch := c.Channels[name]
		if !validChannel(name) {
			return "channel " + strconv.Quote(name) + " must match [a-z0-9_]{1,32}"
		}
		where := "channels." + name
		switch ch.Per {
		case PerUnit, PerMinute:
			if len(ch.Models) > 0 {
				return where + ": models apply to per token only"
			}
			if len(ch.Prices) == 0 || len(ch.Prices) > ratePricesMax {
				return where + ": prices must hold 1 to 10000 entries"
			}
			for _, p := range sortedKeys(ch.Prices) {
				if p != "*" && !allDigits(p) {
					return where + ": price keys are digit prefixes or \"*\""
				}
				if v := ch.Prices[p]; v < 0 || v > PriceMicrosMax {
					return where + ": prices are micros from 0 to 10^12"
				}
			}
			if ch.Per == PerUnit && len(ch.Increment) > 0 {
				return where + ": increment applies to per minute only"
			}
			if ch.Per == PerMinute && len(ch.Increment) > 0 {
				if len(ch.Increment) != 2 || ch.Increment[0] < 1 || ch.Increment[1] < 1 ||
					ch.Increment[0] > 86_400 || ch.Increment[1] > 86_400 {
					return where + ": increment is [first, next] seconds, each 1 to 86400"
				}
			}
		case PerToken:
			if len(ch.Prices) > 0 || len(ch.Increment) > 0 {
				return where + ": per token takes models only"
			}
			if len(ch.Models) == 0 || len(ch.Models) > rateModelsMax {
				return where + ": models must hold 1 to 1000 entries"
			}
			for _, m := range sortedKeys(ch.Models) {
				r := ch.Models[m]
				if m == "" || len(m) > 64 {
					return where + ": model names are 1-64 characters"
				}
				if r.InputPerMillion < 0 || r.InputPerMillion > PriceMicrosMax || r.OutputPerMillion < 0 || r.OutputPerMillion > PriceMicrosMax {
					return where + ": token prices are micros from 0 to 10^12 per million"
				}
			}
		default:
			return where + `: per must be "unit", "minute" or "token"`
		}
	}
	return ""
}

// Rated is the outcome of rating usage.
type Rated struct {
	CostMicros int64
	// Metadata the spend records: the rated inputs and the matched prefix.
	Metadata Metadata
	Group    string
}

// Rate prices usage on channel with card. It returns a message and false
// when the card cannot price it (422 no_rate).
func Rate(card *RateCard, channel string, u *Usage) (Rated, string, bool) {
	ch, ok := card.Channels[channel]
	if !ok {
		return Rated{}, "no rate for channel " + strconv.Quote(channel), false
	}
	return rateChannel(&ch, channel, u, 0)
}

// rateChannel prices usage with one channel's rate; version > 0 is recorded
// as rate_version. The metadata is built in one allocation, sorted.
func rateChannel(ch *ChannelRate, channel string, u *Usage, version int64) (Rated, string, bool) {
	r, msg, ok := rateInputs(ch, channel, u)
	if ok && version > 0 {
		r.Metadata = append(r.Metadata, KV{"rate_version", jsonInt(version)})
		sortMetadata(r.Metadata)
	}
	return r, msg, ok
}

func rateInputs(ch *ChannelRate, channel string, u *Usage) (Rated, string, bool) {
	switch ch.Per {
	case PerUnit:
		if u.Destination == "" {
			return Rated{}, "usage.destination is required on per-unit channel " + channel, false
		}
		prefix, price, ok := matchPrefix(ch.Prices, u.Destination)
		if !ok {
			return Rated{}, "no rate for destination " + strconv.Quote(u.Destination) + " on " + channel, false
		}
		units := u.Units
		if !u.HasUnits {
			units = 1
		}
		cost, ok := mulDivCeil(uint64(price), uint64(units), 1)
		if !ok || cost > MaxAmountMicros {
			return Rated{}, "cost out of range", false
		}
		md := make(Metadata, 0, 4)
		md = append(md, KV{"country", jsonString(prefix)}, KV{"destination", jsonString(u.Destination)}, KV{"units", jsonInt(units)})
		return Rated{CostMicros: cost, Metadata: md, Group: prefix}, "", true
	case PerMinute:
		if u.Destination == "" || !u.HasSeconds {
			return Rated{}, "usage.destination and usage.seconds are required on per-minute channel " + channel, false
		}
		prefix, price, ok := matchPrefix(ch.Prices, u.Destination)
		if !ok {
			return Rated{}, "no rate for destination " + strconv.Quote(u.Destination) + " on " + channel, false
		}
		first, next := int64(1), int64(1)
		if len(ch.Increment) == 2 {
			first, next = ch.Increment[0], ch.Increment[1]
		}
		billable := BillableSeconds(u.Seconds, first, next)
		cost, ok := mulDivCeil(uint64(billable), uint64(price), 60)
		if !ok || cost > MaxAmountMicros {
			return Rated{}, "cost out of range", false
		}
		md := make(Metadata, 0, 4)
		md = append(md, KV{"country", jsonString(prefix)}, KV{"destination", jsonString(u.Destination)}, KV{"seconds", jsonInt(u.Seconds)})
		return Rated{CostMicros: cost, Metadata: md, Group: prefix}, "", true
	case PerToken:
		if u.Model == "" {
			return Rated{}, "usage.model is required on per-token channel " + channel, false
		}
		m, ok := ch.Models[u.Model]
		if !ok {
			return Rated{}, "no rate for model " + strconv.Quote(u.Model) + " on " + channel, false
		}
		in := uint128Mul(uint64(u.InputTokens), uint64(m.InputPerMillion))
		out := uint128Mul(uint64(u.OutputTokens), uint64(m.OutputPerMillion))
		cost, ok := in.add(out).divCeil(1_000_000)
		if !ok || cost > MaxAmountMicros {
			return Rated{}, "cost out of range", false
		}
		md := make(Metadata, 0, 4)
		md = append(md, KV{"input_tokens", jsonInt(u.InputTokens)}, KV{"model", jsonString(u.Model)}, KV{"output_tokens", jsonInt(u.OutputTokens)})
		return Rated{CostMicros: cost, Metadata: md, Group: u.Model}, "", true
	}
	return Rated{}, "no rate for channel " + strconv.Quote(channel), false
}

// BillableSeconds applies billing increments [first, next]: 0 for 0 s, first
// for 1..first s, and first + ceil((s-first)/next) x next beyond.
func BillableSeconds(s, first, next int64) int64 {
	switch {
	case s <= 0:
		return 0
	case s <= first:
		return first
	}
	return first + (s-first+next-1)/next*next
}

// matchPrefix returns the longest price prefix of the destination's digits,
// else "*".
func matchPrefix(prices map[string]int64, destination string) (string, int64, bool) {
	var buf [64]byte
	digits := buf[:0]
	for i := 0; i < len(destination); i++ {
		if c := destination[i]; c >= '0' && c <= '9' {
			digits = append(digits, c)
		}
	}
	for l := len(digits); l > 0; l-- {
		if p, ok := prices[string(digits[:l])]; ok { // no allocation: map lookup by []byte
			if l == len(destination) {
				return destination, p, true
			}
			return string(digits[:l]), p, true
		}
	}
	if p, ok := prices["*"]; ok {
		return "*", p, true
	}
	return "", 0, false
}

// effectiveCard merges an org's override over the default: the override
// replaces the default for the channels it names.
func effectiveCard(def, override *RateCard) *RateCard {
	if override == nil || len(override.Channels) == 0 {
		return def
	}
	if def == nil || len(def.Channels) == 0 {
		return override
	}
	out := &RateCard{Channels: make(map[string]ChannelRate, len(def.Channels)+len(override.Channels))}
	for k, v := range def.Channels {
		out.Channels[k] = v
	}
	for k, v := range override.Channels {
		out.Channels[k] = v
	}
	return out
}

func validChannel(s string) bool {
	if len(s) < 1 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	if s == "" || len(s) > 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
