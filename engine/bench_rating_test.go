package engine

import (
	"strconv"
	"testing"
)

// BenchmarkChargePath compares a pre-rated charge with one rated by the card
// (per unit, longest prefix; per minute with increments; per token) through
// Apply, in one run: rating must stay a small part of the charging path.
func BenchmarkChargePath(b *testing.B) {
	card := &RateCard{Channels: map[string]ChannelRate{
		"sms":   {Per: PerUnit, Prices: map[string]int64{"1": 4200, "44": 35000, "447": 36000, "*": 50000}},
		"voice": {Per: PerMinute, Increment: []int64{60, 6}, Prices: map[string]int64{"1": 9000, "*": 30000}},
		"llm":   {Per: PerToken, Models: map[string]ModelRate{"gpt-4o-mini": {InputPerMillion: 150000, OutputPerMillion: 600000}}},
	}}
	kinds := []struct {
		name    string
		channel string
		usage   *Usage
	}{
		{"prerated", "sms", nil},
		{"unit", "sms", &Usage{Destination: "447700900123", Units: 1, HasUnits: true}},
		{"minute", "voice", &Usage{Destination: "14155550100", Seconds: 95, HasSeconds: true}},
		{"token", "llm", &Usage{Model: "gpt-4o-mini", InputTokens: 1200, OutputTokens: 350}},
	}
	for _, k := range kinds {
		b.Run(k.name, func(b *testing.B) {
			const nOrgs, batchSize = 100, 1024
			st := NewMemStore()
			e := New(1, st)
			orgs := benchOrgs(b, e, st, nOrgs)
			ch := &Changes{}
			e.Apply(&Batch{TimeMs: 1_700_000_000_000, Index: 3, Commands: []Command{{Kind: CmdSetRates, Card: card}}}, ch)
			st.Write(ch)
			e.Persisted()
			cmds := make([]Command, batchSize)
			index := uint64(3)
			b.ReportAllocs()
			b.ResetTimer()
			for n := 0; n < b.N; {
				m := min(batchSize, b.N-n)
				for i := 0; i < m; i++ {
					cmds[i] = Command{Kind: CmdCharge, OrgID: orgs[(n+i)%nOrgs], Reference: strconv.Itoa(n + i),
						Channel: k.channel, AmountMicros: 4200, Usage: k.usage, BodyHash: "h"}
				}
				index++
				ch.Reset()
				res := e.Apply(&Batch{TimeMs: 1_700_000_000_000, Index: index, Commands: cmds[:m]}, ch)
				if res[0].Code != CodeOK {
					b.Fatalf("%v %s", res[0].Code, res[0].Message)
				}
				// Only what the next batch reads: references stay unique.
				e.Persisted()
				n += m
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "charges/s")
		})
	}
}
