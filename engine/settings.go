package engine

import "strconv"

// Settings are a Raft group's replicated settings: the default rate card
// and the sequence that versions every committed card.
type Settings struct {
	DefaultCard        *RateCard `json:"card,omitempty"`
	DefaultCardVersion int64     `json:"card_version,omitempty"`
	RateSeq            int64     `json:"rate_seq,omitempty"`
	// Nodes are the cluster's members' addresses, sorted by id: how any
	// node finds the leader's HTTP address to forward a request.
	Nodes []NodeInfo `json:"nodes,omitempty"`
	// FxRates are USD per unit of each currency x 10^8 (usd is implicit).
	FxRates map[string]int64 `json:"fx,omitempty"`
}

// LoadSettings installs persisted settings (after Load).
func (e *Engine) LoadSettings(s Settings) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.settings = s
}

// setRates commits a rate card: the default when the command names no org,
// else the org's override. Each committed card gets the next version.
func (a *applier) setRates(c *Command) Result {
	var o *Org
	if c.OrgID != "" {
		if o = a.e.org(c.OrgID); o == nil {
			return Result{Code: CodeNotFound, Message: "org not found"}
		}
	}
	if c.Card == nil {
		return Result{Code: CodeInvalid, Message: "rate card required"}
	}
	if msg := c.Card.Validate(); msg != "" {
		return Result{Code: CodeInvalid, Message: "rate card: " + msg}
	}
	s := &a.e.settings
	if o != nil {
		s.RateSeq++
		o.rec.RateOverride = c.Card
		o.rec.RateOverrideVersion = s.RateSeq
		a.touch(o)
	} else {
		s.RateSeq++
		s.DefaultCard = c.Card
		s.DefaultCardVersion = s.RateSeq
	}
	copied := *s
	a.out.Settings = &copied
	return Result{Code: CodeOK, ID: strconv.FormatInt(s.RateSeq, 10)}
}

// channelRate returns the rate that prices channel for o, and its card's
// version.
func (e *Engine) channelRate(o *Org, channel string) (ChannelRate, int64, bool) {
	if ov := o.rec.RateOverride; ov != nil {
		if ch, ok := ov.Channels[channel]; ok {
			return ch, o.rec.RateOverrideVersion, true
		}
	}
	if def := e.settings.DefaultCard; def != nil {
		if ch, ok := def.Channels[channel]; ok {
			return ch, e.settings.DefaultCardVersion, true
		}
	}
	return ChannelRate{}, 0, false
}

// rateWith prices usage with one channel's rate and adds the spend's
// metadata: the rated inputs, the matched prefix and the card version.
func rateWith(ch ChannelRate, version int64, channel string, u *Usage) (Rated, string, bool) {
	return rateChannel(&ch, channel, u, max(version, 1))
}

// Estimate prices usage for org with the cards in force now, for admission.
// Apply rates again with the card in force when the command applies.
func (e *Engine) Estimate(orgID, channel string, u *Usage) (int64, string, bool) {
	o := e.org(orgID)
	if o == nil {
		return 0, "org not found", false
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	ch, version, ok := e.channelRate(o, channel)
	if !ok {
		return 0, "no rate for channel " + strconv.Quote(channel), false
	}
	// An input the channel's rate does not take would be ignored by
	// rating: the gateway meant another pricing than the card has, so the
	// card cannot price what was sent. Checked here, before the log, and
	// not in Apply, so that commands already logged rate as they did.
	if f := u.ForeignInput(ch.Per); f != "" {
		return 0, "usage." + f + " does not apply to channel " + strconv.Quote(channel) + ", priced per " + ch.Per, false
	}
	r, msg, ok := rateWith(ch, version, channel, u)
	return r.CostMicros, msg, ok
}

// Rates returns an org's effective card (the default with its override
// applied) and the newest version among them.
func (e *Engine) Rates(orgID string) (RateCard, int64, bool) {
	o := e.org(orgID)
	if o == nil {
		return RateCard{}, 0, false
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	card := effectiveCard(e.settings.DefaultCard, o.rec.RateOverride)
	version := max(e.settings.DefaultCardVersion, o.rec.RateOverrideVersion)
	if card == nil {
		return RateCard{Channels: map[string]ChannelRate{}}, version, true
	}
	return *card, version, true
}

// Settings returns a copy of the group's settings.
func (e *Engine) Settings() Settings {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.settings
}
