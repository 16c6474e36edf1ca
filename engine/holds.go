package engine

// Reservations (holds) are for voice calls and streamed LLM responses, whose
// cost is known only at the end: create holds funds, extend holds more,
// commit charges the actual usage and frees the rest, release frees it all.
// A hold not committed by its expiry is released by the first batch whose
// time is at or past it, identically on every replica.

// Hold states.
const (
	HoldOpen      = "open"
	HoldCommitted = "committed"
	HoldReleased  = "released"
	HoldExpired   = "expired"
)

// Hold limits.
const (
	HoldTTLSecondsDefault int64 = 300
	HoldTTLSecondsMax     int64 = 86_400
)

// Hold is a reservation of funds.
type Hold struct {
	ID        string   `json:"id"`
	OrgID     string   `json:"org"`
	Reference string   `json:"ref"`
	Channel   string   `json:"ch"`
	Status    string   `json:"status"`
	Metadata  Metadata `json:"md,omitempty"`
	BodyHash  string   `json:"h"`
	// AmountMicros is what the hold holds while open, and held when it closed.
	AmountMicros int64  `json:"amt"`
	Estimate     *Usage `json:"est,omitempty"`
	// Rate is the channel's rate when the hold was created: a usage commit
	// is rated with it.
	Rate        *ChannelRate `json:"rate,omitempty"`
	RateVersion int64        `json:"rate_version,omitempty"`
	Draws       []Draw       `json:"draws,omitempty"`
	CreatedAtMs int64        `json:"created_at"`
	ExpiresAtMs int64        `json:"expires_at"`
	ClosedAtMs  int64        `json:"closed_at,omitempty"`
	// Commit outcome.
	CommitTxID        string `json:"commit_tx,omitempty"`
	CommitBodyHash    string `json:"commit_h,omitempty"`
	CapturedMicros    int64  `json:"captured,omitempty"`
	UncollectedMicros int64  `json:"uncollected,omitempty"`
	Capped            bool   `json:"capped,omitempty"`
	LateCommit        bool   `json:"late,omitempty"`
}

func (h *Hold) copyOf() *Hold {
	c := *h
	c.Draws = append([]Draw(nil), h.Draws...)
	return &c
}

// LoadHolds installs the open holds (after Load) and schedules every expiry.
func (e *Engine) LoadHolds(holds []Hold) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range holds {
		h := holds[i]
		if o := e.org(h.OrgID); o != nil && h.Status == HoldOpen {
			o.addHold(&h)
		}
	}
	e.rebuildDeadlines()
}

// HoldByID returns a copy of an open hold held in memory.
func (e *Engine) HoldByID(orgID, id string) (Hold, bool) {
	o := e.org(orgID)
	if o == nil {
		return Hold{}, false
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	h, ok := o.holds[id]
	if !ok {
		return Hold{}, false
	}
	return *h.copyOf(), true
}

// hold finds an org's hold: open in memory, else in this batch's writes or
// the store.
func (a *applier) hold(o *Org, id string) (*Hold, bool) {
	if h, ok := o.holds[id]; ok {
		return h, true
	}
	if h, ok := a.e.pendingHolds[id]; ok && h.OrgID == o.rec.ID {
		return h.copyOf(), true
	}
	if a.e.cold == nil {
		return nil, false
	}
	h, ok := a.e.cold.Hold(id)
	if !ok || h.OrgID != o.rec.ID {
		return nil, false
	}
	return &h, true
}

func (a *applier) putHold(h *Hold) {
	c := *h.copyOf()
	a.e.pendingHolds[h.ID] = c
	a.out.Holds = append(a.out.Holds, c)
}

// drawHold takes amount for hold h from the lots' undrawn parts, earliest
// expiring first, then from money that never expires.
func drawHold(o *Org, h *Hold, amount int64) {
	left := amount
	for i := range o.rec.Lots {
		if left == 0 {
			break
		}
		l := &o.rec.Lots[i]
		t := min(left, l.Remaining-l.Held)
		if t <= 0 {
			continue
		}
		l.Held += t
		h.Draws = addDraw(h.Draws, l.EntryID, t)
		left -= t
	}
	if left > 0 {
		h.Draws = addDraw(h.Draws, "", left)
	}
	o.rec.ReservedMicros += amount
	h.AmountMicros += amount
}

func addDraw(draws []Draw, lot string, amount int64) []Draw {
	for i := range draws {
		if draws[i].LotID == lot {
			draws[i].Amount += amount
			return draws
		}
	}
	return append(draws, Draw{LotID: lot, Amount: amount})
}

// undrawHold gives the hold's draws back to its lots and frees it.
func undrawHold(o *Org, h *Hold) {
	for _, d := range h.Draws {
		if d.LotID == "" {
			continue
		}
		if l := findLot(o, d.LotID); l != nil {
			l.Held -= d.Amount
		}
	}
	o.rec.ReservedMicros -= h.AmountMicros
}

// holdAmount decides a hold's or commit's amount: amount_micros as sent, or
// usage rated with rate.
func holdAmount(c *Command, rate *ChannelRate, version int64) (int64, Rated, Code, string) {
	if c.Usage == nil {
		if c.AmountMicros < 0 || c.AmountMicros > MaxAmountMicros {
			return 0, Rated{}, CodeInvalid, "amount_micros out of range"
		}
		return c.AmountMicros, Rated{}, CodeOK, ""
	}
	if rate == nil {
		return 0, Rated{}, CodeNoRate, "no rate for channel " + jsonString(c.Channel)
	}
	r, msg, ok := rateWith(*rate, version, c.Channel, c.Usage)
	if !ok {
		return 0, Rated{}, CodeNoRate, msg
	}
	return r.CostMicros, r, CodeOK, ""
}

func (a *applier) holdCreate(o *Org, c *Command) Result {
	if rec, ok := a.ref(o.rec.ID, NSReservation, c.Reference); ok {
		r := replayOrConflict(rec, c.BodyHash, "reservation reference already used with a different request")
		if h, ok := a.hold(o, rec.TxID); ok {
			r.Hold = h.copyOf()
		}
		return r
	}
	var rate *ChannelRate
	ch, version, ok := a.e.channelRate(o, c.Channel)
	if ok {
		rate = &ch
	}
	amount, _, code, msg := holdAmount(c, rate, version)
	if code != CodeOK {
		return Result{Code: code, Message: msg}
	}
	if code, msg := checkDebit(o, amount); code != CodeOK {
		return Result{Code: code, Message: msg}
	}
	ttl := c.TTLSeconds
	if ttl == 0 {
		ttl = HoldTTLSecondsDefault
	}
	if ttl < 1 || ttl > HoldTTLSecondsMax {
		return Result{Code: CodeInvalid, Message: "ttl_seconds must be from 1 to 86400"}
	}
	h := &Hold{
		ID:          a.newID(PrefixReservation),
		OrgID:       o.rec.ID,
		Reference:   c.Reference,
		Channel:     c.Channel,
		Status:      HoldOpen,
		Metadata:    c.Metadata,
		BodyHash:    c.BodyHash,
		Estimate:    c.Usage,
		Rate:        rate,
		RateVersion: version,
		CreatedAtMs: a.timeMs,
		ExpiresAtMs: a.timeMs + ttl*1000,
	}
	drawHold(o, h, amount)
	o.addHold(h)
	a.touch(o)
	a.putHold(h)
	a.putRef(o.rec.ID, NSReservation, c.Reference, RefRecord{TxID: h.ID, BodyHash: c.BodyHash})
	a.e.scheduleDeadline(h.ExpiresAtMs, o.rec.ID)
	return Result{Code: CodeOK, ID: h.ID, Hold: h.copyOf()}
}

func (a *applier) holdExtend(o *Org, c *Command) Result {
	if rec, ok := a.ref(o.rec.ID, NSExtend, c.Reference); ok {
		r := replayOrConflict(rec, c.BodyHash, "Idempotency-Key already used with a different request")
		if h, ok := a.hold(o, rec.TxID); ok {
			r.Hold = h.copyOf()
		}
		return r
	}
	h, ok := a.hold(o, c.TxID)
	if !ok {
		return Result{Code: CodeNotFound, Message: "reservation not found"}
	}
	if h.Status != HoldOpen {
		return Result{Code: CodeReservationClosed, Message: "reservation is " + h.Status, Hold: h.copyOf()}
	}
	if c.AmountMicros < 1 || c.AmountMicros > MaxAmountMicros {
		return Result{Code: CodeInvalid, Message: "amount_micros out of range"}
	}
	if c.TTLSeconds < 0 || c.TTLSeconds > HoldTTLSecondsMax {
		return Result{Code: CodeInvalid, Message: "ttl_seconds must be from 1 to 86400"}
	}
	if code, msg := checkDebit(o, c.AmountMicros); code != CodeOK {
		return Result{Code: code, Message: msg, Hold: h.copyOf()}
	}
	drawHold(o, h, c.AmountMicros)
	if c.TTLSeconds > 0 {
		h.ExpiresAtMs = a.timeMs + c.TTLSeconds*1000
		a.e.scheduleDeadline(h.ExpiresAtMs, o.rec.ID)
	}
	a.touch(o)
	a.putHold(h)
	a.putRef(o.rec.ID, NSExtend, c.Reference, RefRecord{TxID: h.ID, BodyHash: c.BodyHash})
	return Result{Code: CodeOK, ID: h.ID, Hold: h.copyOf()}
}

func (a *applier) holdCommit(o *Org, c *Command) Result {
	h, ok := a.hold(o, c.TxID)
	if !ok {
		return Result{Code: CodeNotFound, Message: "reservation not found"}
	}
	switch h.Status {
	case HoldCommitted:
		if h.CommitBodyHash == c.BodyHash {
			return Result{Code: CodeReplayed, TxID: h.CommitTxID, ID: h.ID, Hold: h.copyOf(),
				Capped: h.Capped, UncollectedMicros: h.UncollectedMicros, Expired: h.LateCommit}
		}
		return Result{Code: CodeReservationClosed, Message: "reservation already committed with a different request", Hold: h.copyOf()}
	case HoldReleased:
		return Result{Code: CodeReservationClosed, Message: "reservation was released", Hold: h.copyOf()}
	}
	actual, rated, code, msg := holdAmount(c, h.Rate, h.RateVersion)
	if code != CodeOK {
		return Result{Code: code, Message: msg}
	}
	expired := h.Status == HoldExpired
	covered := int64(0)
	if !expired {
		undrawHold(o, h)
		covered = min(actual, h.AmountMicros)
		// The spend takes the hold's own draws, earliest-expiring first (the
		// lots are sorted so), and its money that never expires last; the
		// order the draws were made in (create, then extends) does not matter.
		left := covered
		for i := range o.rec.Lots {
			l := &o.rec.Lots[i]
			for _, d := range h.Draws {
				if d.LotID == l.EntryID {
					t := min(left, d.Amount)
					l.Remaining -= t
					left -= t
				}
			}
		}
	}
	avail := o.rec.BalanceMicros - covered - o.rec.ReservedMicros
	excess := min(actual-covered, max(avail, 0))
	consumeLots(o, excess)
	total := covered + excess
	md := h.Metadata.with("channel", jsonString(h.Channel)).with("reservation_id", jsonString(h.ID))
	for _, kv := range rated.Metadata {
		md = md.with(kv.Key, kv.Value)
	}
	group := groupOf(md)
	e := a.write(o, EntrySpend, -total, "reservation:"+h.Reference, md, 0)
	dropEmptyLots(o)
	day := UnixDay(a.timeMs)
	a.noteEntry(e)
	a.out.Usage = append(a.out.Usage, UsageDelta{OrgID: o.rec.ID, Day: day, Channel: h.Channel, Group: group, Messages: 1, CostMicros: total})

	h.Status = HoldCommitted
	h.ClosedAtMs = a.timeMs
	h.CommitTxID = e.ID
	h.CommitBodyHash = c.BodyHash
	h.CapturedMicros = total
	h.UncollectedMicros = actual - total
	h.Capped = total < actual
	h.LateCommit = expired
	o.removeHold(h.ID)
	a.putHold(h)
	a.expireLots(o)
	return Result{Code: CodeOK, TxID: e.ID, Entry: e, ID: h.ID, Hold: h.copyOf(),
		Capped: h.Capped, UncollectedMicros: h.UncollectedMicros, Expired: expired}
}

func (a *applier) holdRelease(o *Org, c *Command) Result {
	h, ok := a.hold(o, c.TxID)
	if !ok {
		return Result{Code: CodeNotFound, Message: "reservation not found"}
	}
	switch h.Status {
	case HoldCommitted:
		return Result{Code: CodeReservationClosed, Message: "reservation was committed", Hold: h.copyOf()}
	case HoldReleased, HoldExpired:
		return Result{Code: CodeOK, ID: h.ID, Hold: h.copyOf()}
	}
	a.closeHold(o, h, HoldReleased)
	a.expireLots(o)
	return Result{Code: CodeOK, ID: h.ID, Hold: h.copyOf()}
}

// closeHold frees an open hold without charging it.
func (a *applier) closeHold(o *Org, h *Hold, status string) {
	undrawHold(o, h)
	h.Status = status
	h.ClosedAtMs = a.timeMs
	o.removeHold(h.ID)
	a.touch(o)
	a.putHold(h)
}

// expireDue releases o's holds and expires its grants that are due at the
// batch time.
func (a *applier) expireDue(o *Org) {
	for _, id := range sortedKeys(o.holds) {
		if h := o.holds[id]; h.ExpiresAtMs <= a.timeMs {
			a.closeHold(o, h, HoldExpired)
		}
	}
	a.expireLots(o)
}
