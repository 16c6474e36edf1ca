package engine

import (
	"container/heap"
	"sort"
)

// Grants are operator credits that expire. Each is a Lot: spends and holds
// draw on the earliest-expiring lot first and on money that never expires
// last. At a lot's expiry its remainder that no hold draws on leaves the
// wallet as an `expiry` entry; a part a hold gives back later leaves when
// the hold closes. No expiry takes available funds below zero.

// Lot is what is left of one grant.
type Lot struct {
	EntryID     string `json:"entry"`
	ExpiresAtMs int64  `json:"exp"`
	// Remaining is granted money not yet spent or expired; Held is the part
	// of it open holds draw on.
	Remaining int64 `json:"rem"`
	Held      int64 `json:"held,omitempty"`
}

// Draw is the part of a hold taken from one lot ("" = money that never
// expires).
type Draw struct {
	LotID  string `json:"lot,omitempty"`
	Amount int64  `json:"amt"`
}

func (a *applier) grant(o *Org, c *Command) Result {
	if rec, ok := a.ref(o.rec.ID, NSGrant, c.Reference); ok {
		return replayOrConflict(rec, c.BodyHash, "reference already used with a different request")
	}
	if c.AmountMicros < 1 || c.AmountMicros > MaxAmountMicros {
		return Result{Code: CodeInvalid, Message: "amount_micros out of range"}
	}
	if c.ExpiresAtMs <= a.timeMs {
		return Result{Code: CodeInvalid, Message: "expires_at must be in the future"}
	}
	if _, ok := addMicros(o.rec.BalanceMicros, c.AmountMicros); !ok {
		return Result{Code: CodeInvalid, Message: "balance would overflow"}
	}
	var md Metadata
	if c.Reason != "" {
		md = md.with("reason", jsonString(c.Reason))
	}
	e := a.write(o, EntryGrant, c.AmountMicros, "grant:"+c.Reference, md, c.ExpiresAtMs)
	a.putRef(o.rec.ID, NSGrant, c.Reference, RefRecord{TxID: e.ID, BodyHash: c.BodyHash})
	a.noteEntry(e)
	o.rec.Lots = append(o.rec.Lots, Lot{EntryID: e.ID, ExpiresAtMs: c.ExpiresAtMs, Remaining: c.AmountMicros})
	sortLots(o.rec.Lots)
	a.e.scheduleDeadline(c.ExpiresAtMs, o.rec.ID)
	return Result{Code: CodeOK, TxID: e.ID, Entry: e}
}

func sortLots(lots []Lot) {
	sort.Slice(lots, func(i, j int) bool {
		if lots[i].ExpiresAtMs != lots[j].ExpiresAtMs {
			return lots[i].ExpiresAtMs < lots[j].ExpiresAtMs
		}
		return lots[i].EntryID < lots[j].EntryID
	})
}

// consumeLots takes amount of a debit out of the lots' undrawn parts,
// earliest-expiring first; whatever they do not cover is money that never
// expires. The caller checked that amount fits in available funds.
func consumeLots(o *Org, amount int64) {
	for i := range o.rec.Lots {
		if amount == 0 {
			break
		}
		l := &o.rec.Lots[i]
		t := min(amount, l.Remaining-l.Held)
		l.Remaining -= t
		amount -= t
	}
	dropEmptyLots(o)
}

func dropEmptyLots(o *Org) {
	lots := o.rec.Lots[:0]
	for _, l := range o.rec.Lots {
		if l.Remaining > 0 {
			lots = append(lots, l)
		}
	}
	if len(lots) == 0 {
		lots = nil
	}
	o.rec.Lots = lots
}

func findLot(o *Org, id string) *Lot {
	for i := range o.rec.Lots {
		if o.rec.Lots[i].EntryID == id {
			return &o.rec.Lots[i]
		}
	}
	return nil
}

// debit writes a debit entry of amount (> 0 or 0) drawn on lots first.
func (a *applier) debit(o *Org, typ EntryType, amount int64, reference string, md Metadata) *Entry {
	consumeLots(o, amount)
	return a.write(o, typ, -amount, reference, md, 0)
}

// expireLots removes the undrawn remainder of every lot due at the batch
// time as an `expiry` entry, never taking available funds below zero.
func (a *applier) expireLots(o *Org) {
	for i := range o.rec.Lots {
		l := &o.rec.Lots[i]
		if l.ExpiresAtMs > a.timeMs {
			break // sorted: the rest expire later
		}
		amount := min(l.Remaining-l.Held, o.rec.BalanceMicros-o.rec.ReservedMicros)
		if amount <= 0 {
			continue
		}
		l.Remaining -= amount
		md := Metadata{}.with("grant_id", jsonString(l.EntryID))
		a.write(o, EntryExpiry, -amount, "expiry:"+l.EntryID, md, 0)
	}
	dropEmptyLots(o)
}

// deadline is an org with a hold or grant due at a time.
type deadline struct {
	atMs  int64
	orgID string
}

type deadlineHeap []deadline

func (h deadlineHeap) Len() int { return len(h) }
func (h deadlineHeap) Less(i, j int) bool {
	if h[i].atMs != h[j].atMs {
		return h[i].atMs < h[j].atMs
	}
	return h[i].orgID < h[j].orgID
}
func (h deadlineHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *deadlineHeap) Push(x any)   { *h = append(*h, x.(deadline)) }
func (h *deadlineHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// scheduleDeadline remembers that org has something due at atMs. Entries may
// go stale (a hold committed early); processing a stale one does nothing.
func (e *Engine) scheduleDeadline(atMs int64, orgID string) {
	heap.Push(&e.deadlines, deadline{atMs, orgID})
	e.nextDeadlineMs.Store(e.deadlines[0].atMs)
}

// dueOrgs pops every org with something due at or before nowMs, sorted and
// deduplicated so every replica processes them in the same order.
func (e *Engine) dueOrgs(nowMs int64) []string {
	var ids []string
	for len(e.deadlines) > 0 && e.deadlines[0].atMs <= nowMs {
		d := heap.Pop(&e.deadlines).(deadline)
		if len(ids) == 0 || ids[len(ids)-1] != d.orgID {
			ids = append(ids, d.orgID)
		}
	}
	sort.Strings(ids)
	out := ids[:0]
	for i, id := range ids {
		if i == 0 || id != ids[i-1] {
			out = append(out, id)
		}
	}
	if len(e.deadlines) > 0 {
		e.nextDeadlineMs.Store(e.deadlines[0].atMs)
	} else {
		e.nextDeadlineMs.Store(0)
	}
	return out
}

// NextDeadlineMs is the earliest time a hold or grant may be due, 0 for none.
// The leader proposes an empty batch once it passes, so expiries happen
// within the ticker's period even when no traffic arrives.
func (e *Engine) NextDeadlineMs() int64 { return e.nextDeadlineMs.Load() }

// rebuildDeadlines schedules every open hold and lot after Load.
func (e *Engine) rebuildDeadlines() {
	e.deadlines = e.deadlines[:0]
	e.nextDeadlineMs.Store(0)
	e.orgs.each(func(o *Org) {
		for _, l := range o.rec.Lots {
			e.scheduleDeadline(l.ExpiresAtMs, o.rec.ID)
		}
		for _, h := range o.holds {
			e.scheduleDeadline(h.ExpiresAtMs, o.rec.ID)
		}
	})
}
