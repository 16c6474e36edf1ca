package bench

import (
	"bytes"
	"strconv"
)

// Request bodies are built once per worker with fixed-width slots for a
// sequence number; each request rewrites the digits in place, so the load
// loop sends a new, unique reference every time without allocating.

// seqDigits is the width of the sequence number in a reference.
const seqDigits = 12

// template is a request body with the offsets of its sequence slots.
type template struct {
	body  []byte
	slots []int
}

// reference appends `"<run>-<worker>-<seq slot>[-<item>]"` (with quotes)
// and records the slot.
func (t *template) reference(runID string, worker, item int) {
	t.body = append(t.body, '"')
	t.body = append(t.body, runID...)
	t.body = append(t.body, '-')
	t.body = strconv.AppendInt(t.body, int64(worker), 10)
	t.body = append(t.body, '-')
	t.slots = append(t.slots, len(t.body))
	t.body = append(t.body, bytes.Repeat([]byte{'0'}, seqDigits)...)
	if item >= 0 {
		t.body = append(t.body, '-')
		t.body = strconv.AppendInt(t.body, int64(item), 10)
	}
	t.body = append(t.body, '"')
}

// chargeTemplate is one pre-rated charge:
// {"reference":"...","channel":"sms","amount_micros":4200}.
func chargeTemplate(runID string, worker int) *template {
	t := &template{}
	t.body = append(t.body, `{"reference":`...)
	t.reference(runID, worker, -1)
	t.body = append(t.body, `,"channel":"sms","amount_micros":`...)
	t.body = strconv.AppendInt(t.body, amountMicros, 10)
	t.body = append(t.body, '}')
	return t
}

// batchTemplate is {"charges":[ n charges ]} for POST /charges/batch.
func batchTemplate(runID string, worker, n int) *template {
	t := &template{}
	t.body = append(t.body, `{"charges":[`...)
	for i := range n {
		if i > 0 {
			t.body = append(t.body, ',')
		}
		t.body = append(t.body, `{"reference":`...)
		t.reference(runID, worker, i)
		t.body = append(t.body, `,"channel":"sms","amount_micros":`...)
		t.body = strconv.AppendInt(t.body, amountMicros, 10)
		t.body = append(t.body, '}')
	}
	t.body = append(t.body, "]}"...)
	return t
}

// holdTemplate is a reservation of holdMicros on the voice channel.
func holdTemplate(runID string, worker int) *template {
	t := &template{}
	t.body = append(t.body, `{"reference":`...)
	t.reference(runID, worker, -1)
	t.body = append(t.body, `,"channel":"voice","amount_micros":`...)
	t.body = strconv.AppendInt(t.body, holdMicros, 10)
	t.body = append(t.body, '}')
	return t
}

// commitBody charges amountMicros of a hold.
var commitBody = []byte(`{"amount_micros":` + strconv.Itoa(amountMicros) + `}`)

// setSeq writes seq into every slot.
func (t *template) setSeq(seq uint64) {
	var digits [seqDigits]byte
	for i := seqDigits - 1; i >= 0; i-- {
		digits[i] = byte('0' + seq%10)
		seq /= 10
	}
	for _, s := range t.slots {
		copy(t.body[s:s+seqDigits], digits[:])
	}
}

// clone returns a copy sharing no memory with t.
func (t *template) clone() *template {
	return &template{body: bytes.Clone(t.body), slots: t.slots}
}

var statusKey = []byte(`"status":`)

// batchStatuses counts the per-charge statuses of a /charges/batch answer:
// those of each status code go to counts, and it returns how many there
// were. Only result items carry a "status" key (a ledger entry's field is
// "delivery_status").
func batchStatuses(body []byte, counts *[600]uint64) (items int) {
	for {
		i := bytes.Index(body, statusKey)
		if i < 0 {
			return items
		}
		body = body[i+len(statusKey):]
		n, j := 0, 0
		for j < len(body) && j < 3 && body[j] >= '0' && body[j] <= '9' {
			n = n*10 + int(body[j]-'0')
			j++
		}
		if j == 0 || n >= len(counts) {
			n = 0 // unparseable: counted under 0, which no caller accepts
		}
		counts[n]++
		items++
		body = body[j:]
	}
}

var reservationIDKey = []byte(`"reservation":{"id":"`)

// reservationID extracts the hold id from a reservation answer.
func reservationID(body []byte) []byte {
	i := bytes.Index(body, reservationIDKey)
	if i < 0 {
		return nil
	}
	body = body[i+len(reservationIDKey):]
	j := bytes.IndexByte(body, '"')
	if j <= 0 {
		return nil
	}
	return body[:j]
}
