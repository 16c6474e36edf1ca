package engine

import "encoding/json"

// A batch is encoded as:
//
//	formatV1 | varint TimeMs | uvarint len(Commands) | command...
//	command = kind byte | (tag, value)... | 0
//
// Tags are part of the log format: append only, never reuse one. Values are
// a string, a signed varint, nothing (a true bool), metadata, a nested usage
// field list, or JSON bytes for the rare structured payloads (rate cards,
// invoices, FX tables) that are not worth a format of their own.

type fieldKind uint8

const (
	fieldString fieldKind = iota + 1
	fieldInt
	fieldBool
	fieldMetadata
	fieldUsage
	fieldJSON
	fieldDelivery
)

// commandField describes one encoded field: how to reach it in a Command.
// One table drives both the encoder and the decoder, so they cannot drift.
type commandField struct {
	tag  byte
	kind fieldKind
	str  func(*Command) *string
	num  func(*Command) *int64
	flag func(*Command) *bool
	// json fields: whether present, encode, decode into c.
	isSet     func(*Command) bool
	marshal   func(*Command) ([]byte, error)
	unmarshal func(*Command, []byte) error
}

var commandFields = []commandField{
	{tag: 1, kind: fieldString, str: func(c *Command) *string { return &c.OrgID }},
	{tag: 2, kind: fieldString, str: func(c *Command) *string { return &c.Reference }},
	{tag: 3, kind: fieldString, str: func(c *Command) *string { return &c.Channel }},
	{tag: 4, kind: fieldInt, num: func(c *Command) *int64 { return &c.AmountMicros }},
	{tag: 5, kind: fieldMetadata},
	{tag: 6, kind: fieldString, str: func(c *Command) *string { return &c.BodyHash }},
	{tag: 7, kind: fieldString, str: func(c *Command) *string { return &c.TxID }},
	{tag: 8, kind: fieldString, str: func(c *Command) *string { return &c.KeyID }},
	{tag: 9, kind: fieldDelivery},
	{tag: 10, kind: fieldString, str: func(c *Command) *string { return &c.Name }},
	{tag: 11, kind: fieldString, str: func(c *Command) *string { return &c.Reason }},
	{tag: 12, kind: fieldString, str: func(c *Command) *string { return &c.Role }},
	{tag: 13, kind: fieldString, str: func(c *Command) *string { return &c.KeyHash }},
	{tag: 14, kind: fieldString, str: func(c *Command) *string { return &c.KeyPrefix }},
	{tag: 15, kind: fieldInt, num: func(c *Command) *int64 { return &c.AmountMinor }},
	{tag: 16, kind: fieldString, str: func(c *Command) *string { return &c.Currency }},
	{tag: 17, kind: fieldString, str: func(c *Command) *string { return &c.SuccessURL }},
	{tag: 18, kind: fieldString, str: func(c *Command) *string { return &c.CancelURL }},
	{tag: 19, kind: fieldString, str: func(c *Command) *string { return &c.Provider }},
	{tag: 20, kind: fieldString, str: func(c *Command) *string { return &c.TopupID }},
	{tag: 21, kind: fieldString, str: func(c *Command) *string { return &c.SessionID }},
	{tag: 22, kind: fieldString, str: func(c *Command) *string { return &c.PaymentIntent }},
	{tag: 23, kind: fieldUsage},
	{tag: 24, kind: fieldJSON,
		isSet:     func(c *Command) bool { return c.Card != nil },
		marshal:   func(c *Command) ([]byte, error) { return json.Marshal(c.Card) },
		unmarshal: func(c *Command, b []byte) error { c.Card = new(RateCard); return json.Unmarshal(b, c.Card) }},
	{tag: 25, kind: fieldInt, num: func(c *Command) *int64 { return &c.TTLSeconds }},
	{tag: 26, kind: fieldInt, num: func(c *Command) *int64 { return &c.ExpiresAtMs }},
	{tag: 27, kind: fieldString, str: func(c *Command) *string { return &c.CheckoutURL }},
	{tag: 28, kind: fieldString, str: func(c *Command) *string { return &c.RefundEntryID }},
	{tag: 29, kind: fieldJSON,
		isSet:     func(c *Command) bool { return c.Invoice != nil },
		marshal:   func(c *Command) ([]byte, error) { return json.Marshal(c.Invoice) },
		unmarshal: func(c *Command, b []byte) error { c.Invoice = new(InvoiceRecord); return json.Unmarshal(b, c.Invoice) }},
	{tag: 30, kind: fieldJSON,
		isSet:     func(c *Command) bool { return c.FxRates != nil },
		marshal:   func(c *Command) ([]byte, error) { return json.Marshal(c.FxRates) },
		unmarshal: func(c *Command, b []byte) error { return json.Unmarshal(b, &c.FxRates) }},
	{tag: 31, kind: fieldString, str: func(c *Command) *string { return &c.NodeID }},
	{tag: 32, kind: fieldString, str: func(c *Command) *string { return &c.RaftAddr }},
	{tag: 33, kind: fieldString, str: func(c *Command) *string { return &c.HTTPAddr }},
	{tag: 34, kind: fieldBool, flag: func(c *Command) *bool { return &c.SetName }},
	{tag: 35, kind: fieldBool, flag: func(c *Command) *bool { return &c.SetThreshold }},
	{tag: 36, kind: fieldInt, num: func(c *Command) *int64 { return &c.ThresholdMicros }},
}

// fieldByTag indexes commandFields by tag for the decoder.
var fieldByTag = func() (idx [64]*commandField) {
	for i := range commandFields {
		f := &commandFields[i]
		if idx[f.tag] != nil {
			panic("engine: duplicate command field tag")
		}
		idx[f.tag] = f
	}
	return idx
}()

// Usage fields, in a nested list of their own.
const (
	usageDestination = iota + 1
	usageUnits
	usageSeconds
	usageModel
	usageInputTokens
	usageOutputTokens
	usageHasUnits
	usageHasSeconds
)

// AppendBatch appends b's binary encoding to dst. Only the rare JSON
// payloads can fail to encode.
func AppendBatch(dst []byte, b *Batch) ([]byte, error) {
	dst = append(dst, formatV1)
	dst = appendVarint(dst, b.TimeMs)
	dst = appendUvarint(dst, uint64(len(b.Commands)))
	var err error
	for i := range b.Commands {
		if dst, err = appendCommand(dst, &b.Commands[i]); err != nil {
			return nil, err
		}
	}
	return dst, nil
}

func appendCommand(b []byte, c *Command) ([]byte, error) {
	b = append(b, byte(c.Kind))
	for i := range commandFields {
		f := &commandFields[i]
		switch f.kind {
		case fieldString:
			if s := *f.str(c); s != "" {
				b = appendString(append(b, f.tag), s)
			}
		case fieldInt:
			if v := *f.num(c); v != 0 {
				b = appendVarint(append(b, f.tag), v)
			}
		case fieldDelivery:
			if c.Status != DeliveryNone {
				b = append(b, f.tag, byte(c.Status))
			}
		case fieldBool:
			if *f.flag(c) {
				b = append(b, f.tag)
			}
		case fieldMetadata:
			if len(c.Metadata) > 0 {
				b = appendMetadata(append(b, f.tag), c.Metadata)
			}
		case fieldUsage:
			if c.Usage != nil {
				b = appendUsage(append(b, f.tag), c.Usage)
			}
		case fieldJSON:
			if f.isSet(c) {
				raw, err := f.marshal(c)
				if err != nil {
					return nil, err
				}
				b = appendString(append(b, f.tag), string(raw))
			}
		}
	}
	return append(b, 0), nil
}

func appendUsage(b []byte, u *Usage) []byte {
	if u.Destination != "" {
		b = appendString(append(b, usageDestination), u.Destination)
	}
	for _, n := range [...]struct {
		tag byte
		v   int64
	}{{usageUnits, u.Units}, {usageSeconds, u.Seconds}, {usageInputTokens, u.InputTokens}, {usageOutputTokens, u.OutputTokens}} {
		if n.v != 0 {
			b = appendVarint(append(b, n.tag), n.v)
		}
	}
	if u.Model != "" {
		b = appendString(append(b, usageModel), u.Model)
	}
	if u.HasUnits {
		b = append(b, usageHasUnits)
	}
	if u.HasSeconds {
		b = append(b, usageHasSeconds)
	}
	return append(b, 0)
}

// batchCommandsCap bounds DecodeBatch's first allocation (4,096 commands of
// about 500 bytes: 2 MiB).
const batchCommandsCap = 4096

// DecodeBatch decodes a batch written by AppendBatch, or by the JSON
// encoding that came before it. The decoded strings share one copy of data.
func DecodeBatch(data []byte, b *Batch) error {
	if len(data) > 0 && data[0] == '{' {
		return json.Unmarshal(data, b)
	}
	if len(data) == 0 || data[0] != formatV1 {
		return errCorrupt
	}
	r := reader{s: string(data), i: 1}
	b.TimeMs = r.varint()
	n := r.length()
	// The count is bounded by the bytes left, but a corrupt one must not
	// allocate a huge slice up front: at most batchCommandsCap at once (a
	// log entry holds up to 4,096 commands, so a real one is sized exactly;
	// growing from a smaller start cost a tenth of the FSM's CPU under
	// /charges/batch), beyond that grow as commands actually decode.
	b.Commands = make([]Command, 0, min(n, batchCommandsCap))
	for i := 0; i < n && r.err == nil; i++ {
		b.Commands = append(b.Commands, Command{})
		r.command(&b.Commands[i])
	}
	if r.err == nil && !r.done() {
		r.fail()
	}
	return r.err
}

func (r *reader) command(c *Command) {
	c.Kind = CommandKind(r.byte())
	for r.err == nil {
		tag := r.byte()
		if tag == 0 {
			return
		}
		if int(tag) >= len(fieldByTag) || fieldByTag[tag] == nil {
			r.fail() // a tag from a newer format: never guess
			return
		}
		f := fieldByTag[tag]
		switch f.kind {
		case fieldString:
			*f.str(c) = r.string()
		case fieldInt:
			*f.num(c) = r.varint()
		case fieldDelivery:
			c.Status = Delivery(r.byte())
		case fieldBool:
			*f.flag(c) = true
		case fieldMetadata:
			c.Metadata = r.metadata()
		case fieldUsage:
			c.Usage = r.usage()
		case fieldJSON:
			if err := f.unmarshal(c, []byte(r.string())); err != nil {
				r.fail()
			}
		}
	}
}

func (r *reader) usage() *Usage {
	u := &Usage{}
	for r.err == nil {
		switch r.byte() {
		case 0:
			return u
		case usageDestination:
			u.Destination = r.string()
		case usageUnits:
			u.Units = r.varint()
		case usageSeconds:
			u.Seconds = r.varint()
		case usageModel:
			u.Model = r.string()
		case usageInputTokens:
			u.InputTokens = r.varint()
		case usageOutputTokens:
			u.OutputTokens = r.varint()
		case usageHasUnits:
			u.HasUnits = true
		case usageHasSeconds:
			u.HasSeconds = true
		default:
			r.fail()
		}
	}
	return u
}
