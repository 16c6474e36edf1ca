package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/orbit/orbit/client"
)

// Commands for grants, rate cards, FX rates, cluster membership, top-ups
// and reservations.

// ---- operator commands ----

func defGrant(fs *flag.FlagSet) runFunc {
	expiresAt := fs.String("expires-at", "", "when the unused remainder expires, RFC 3339 (required), e.g. 2026-12-31T00:00:00Z")
	reason := fs.String("reason", "", "why (kept in the ledger)")
	reference := fs.String("reference", "", "idempotency reference (default: generated)")
	return func(a *app, ctx context.Context, args []string) error {
		self := cmdByPath("grant")
		amount, err := strconv.ParseInt(args[1], 10, 64)
		if err != nil || amount <= 0 {
			return usagef(self, "grant: AMOUNT_MICROS %q: want a positive integer of micros (1 USD = 1000000)", args[1])
		}
		if *expiresAt == "" {
			return usagef(self, "grant: --expires-at is required")
		}
		exp, err := time.Parse(time.RFC3339Nano, *expiresAt)
		if err != nil {
			return usagef(self, "grant: --expires-at %q: want an RFC 3339 time such as 2026-12-31T00:00:00Z", *expiresAt)
		}
		c, err := a.adminClient()
		if err != nil {
			return err
		}
		res, err := c.Grant(ctx, args[0], client.GrantRequest{AmountMicros: amount, ExpiresAt: exp, Reason: *reason, Reference: *reference})
		if err != nil {
			return err
		}
		if a.g.json {
			return a.printLastJSON()
		}
		if res.Replayed {
			fmt.Fprintf(a.stdout, "Replayed: reference %s was already granted; nothing changed.\n", res.Reference)
		} else {
			fmt.Fprintf(a.stdout, "Granted %s to org %s, expiring at %s.\n", money(amount), args[0], fmtTimePtr(res.Transaction.ExpiresAt))
		}
		a.printKV(
			"Transaction", res.Transaction.ID,
			"Reference", res.Reference,
			"Amount", money(res.Transaction.AmountMicros),
			"Expires", fmtTimePtr(res.Transaction.ExpiresAt),
			"Balance", money(res.Balance.BalanceMicros),
			"Available", money(res.Balance.AvailableMicros),
		)
		return nil
	}
}

func defClusterJoin(fs *flag.FlagSet) runFunc {
	nodeID := fs.String("node-id", "", "the node's id (required)")
	raftAddr := fs.String("raft-addr", "", "host:port of the node's Raft transport (required)")
	httpAddr := fs.String("http-addr", "", "host:port of the node's HTTP API (required)")
	return func(a *app, ctx context.Context, _ []string) error {
		self := cmdByPath("cluster join")
		for _, f := range []struct{ name, v string }{{"node-id", *nodeID}, {"raft-addr", *raftAddr}, {"http-addr", *httpAddr}} {
			if f.v == "" {
				return usagef(self, "cluster join: --%s is required", f.name)
			}
		}
		c, err := a.adminClient()
		if err != nil {
			return err
		}
		ci, err := c.ClusterJoin(ctx, client.ClusterJoinRequest{NodeID: *nodeID, RaftAddr: *raftAddr, HTTPAddr: *httpAddr})
		if err != nil {
			return err
		}
		if a.g.json {
			return a.printLastJSON()
		}
		fmt.Fprintf(a.stdout, "Node %s is a member (raft %s, http %s).\n", *nodeID, *raftAddr, *httpAddr)
		return a.printCluster(ci)
	}
}

func defClusterRemove(fs *flag.FlagSet) runFunc {
	return func(a *app, ctx context.Context, args []string) error {
		c, err := a.adminClient()
		if err != nil {
			return err
		}
		ci, err := c.ClusterRemove(ctx, args[0])
		if err != nil {
			return err
		}
		if a.g.json {
			return a.printLastJSON()
		}
		fmt.Fprintf(a.stdout, "Removed node %s.\n", args[0])
		return a.printCluster(ci)
	}
}

// cardFile is a rate card file: {"channels"}, or what 'rates get' and
// 'rates set' print ({"version", "org_id"?, "channels"}; those two are
// ignored).
type cardFile struct {
	Version  *int64                        `json:"version"`
	OrgID    *string                       `json:"org_id"`
	Channels map[string]client.ChannelRate `json:"channels"`
}

func (a *app) readCard(self *command, name string) (client.RateCard, error) {
	var raw []byte
	var err error
	if name == "-" {
		raw, err = io.ReadAll(io.LimitReader(a.stdin, 8<<20))
		name = "stdin"
	} else {
		raw, err = os.ReadFile(name)
	}
	if err != nil {
		return client.RateCard{}, usagef(self, "rates set: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var f cardFile
	if err := dec.Decode(&f); err != nil {
		return client.RateCard{}, usagef(self, "rates set: %s: not a rate card: %v", name, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return client.RateCard{}, usagef(self, "rates set: %s: trailing data after the card", name)
	}
	if f.Channels == nil {
		return client.RateCard{}, usagef(self, "rates set: %s: no \"channels\" object", name)
	}
	return client.RateCard{Channels: f.Channels}, nil
}

func defRatesSet(fs *flag.FlagSet) runFunc {
	org := fs.String("org", "", "commit ORG's override instead of the default card")
	return func(a *app, ctx context.Context, args []string) error {
		card, err := a.readCard(cmdByPath("rates set"), args[0])
		if err != nil {
			return err
		}
		c, err := a.adminClient()
		if err != nil {
			return err
		}
		var rs *client.RatesSet
		if *org != "" {
			rs, err = c.SetOrgRates(ctx, *org, card)
		} else {
			rs, err = c.SetRates(ctx, card)
		}
		if err != nil {
			return err
		}
		if a.g.json {
			return a.printLastJSON()
		}
		if rs.OrgID != nil {
			fmt.Fprintf(a.stdout, "Committed the rate card override of org %s as version %d (it replaces the default card for the channels it names).\n", *rs.OrgID, rs.Version)
		} else {
			fmt.Fprintf(a.stdout, "Committed the default rate card as version %d.\n", rs.Version)
		}
		return a.printLastData()
	}
}

func defRatesGet(fs *flag.FlagSet) runFunc {
	org := fs.String("org", "", "the org the API key belongs to (checked when an admin token is at hand)")
	return func(a *app, ctx context.Context, _ []string) error {
		self := cmdByPath("rates get")
		if a.apiKey() == "" {
			if *org != "" {
				return usagef(self, "rates get --org %s: pass an API key of that org with --api-key or ORBIT_API_KEY", *org)
			}
			return usagef(self, "rates get: pass an org API key with --api-key or ORBIT_API_KEY; it prints that org's "+
				"effective card (the operator API has no route that reads the default card alone: 'rates set' prints the card it commits)")
		}
		if *org != "" && a.hasAdminToken() {
			if err := a.checkKeyOfOrg(ctx, self, *org); err != nil {
				return err
			}
		}
		c, err := a.orgClient()
		if err != nil {
			return err
		}
		if _, err := c.Rates(ctx); err != nil {
			return err
		}
		if a.g.json {
			return a.printLastJSON()
		}
		return a.printLastData()
	}
}

// checkKeyOfOrg fails unless the API key's prefix is one of org's live keys.
func (a *app) checkKeyOfOrg(ctx context.Context, self *command, org string) error {
	admin, err := a.adminClient()
	if err != nil {
		return err
	}
	keys, err := admin.ListKeys(ctx, org)
	if err != nil {
		return err
	}
	key := a.apiKey()
	for _, k := range keys {
		if k.RevokedAt == nil && k.Prefix != "" && strings.HasPrefix(key, k.Prefix) {
			return nil
		}
	}
	return usagef(self, "rates get: the API key is not a key of org %s", org)
}

func defFxGet(fs *flag.FlagSet) runFunc {
	return func(a *app, ctx context.Context, _ []string) error {
		c, err := a.adminClient()
		if err != nil {
			return err
		}
		rates, err := c.FxRates(ctx)
		if err != nil {
			return err
		}
		if a.g.json {
			return a.printLastJSON()
		}
		if len(rates) == 0 {
			fmt.Fprintln(a.stdout, "No FX rates: top-ups are in usd only (orbitctl fx set eur=1.0825 adds one).")
			return nil
		}
		return a.printFx(rates)
	}
}

func (a *app) printFx(rates client.FxRates) error {
	codes := make([]string, 0, len(rates))
	for c := range rates {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	tw := newTable(a.stdout)
	fmt.Fprintln(tw, "CURRENCY\tUSD PER UNIT")
	for _, c := range codes {
		fmt.Fprintf(tw, "%s\t%s\n", c, rates[c])
	}
	return tw.Flush()
}

func defFxSet(fs *flag.FlagSet) runFunc {
	merge := fs.Bool("merge", false, "change only the named currencies and keep the others")
	clear := fs.Bool("clear", false, "remove every rate (give no CUR=RATE)")
	return func(a *app, ctx context.Context, args []string) error {
		self := cmdByPath("fx set")
		switch {
		case *clear && (len(args) > 0 || *merge):
			return usagef(self, "fx set: --clear takes no CUR=RATE and no --merge")
		case !*clear && len(args) == 0:
			return usagef(self, "fx set: give CUR=RATE pairs (e.g. eur=1.0825), or --clear")
		}
		named := client.FxRates{}
		for _, arg := range args {
			cur, text, ok := strings.Cut(arg, "=")
			if !ok || cur == "" {
				return usagef(self, "fx set: %q: want CURRENCY=RATE, e.g. eur=1.0825", arg)
			}
			cur = strings.ToLower(cur)
			r, err := client.ParseFxRate(text)
			if err != nil {
				return usagef(self, "fx set: %s: %v", cur, strings.TrimPrefix(err.Error(), "orbit: "))
			}
			if _, dup := named[cur]; dup {
				return usagef(self, "fx set: %s is given twice", cur)
			}
			named[cur] = r
		}
		c, err := a.adminClient()
		if err != nil {
			return err
		}
		table := named
		if *merge {
			cur, err := c.FxRates(ctx)
			if err != nil {
				return err
			}
			for k, v := range named {
				cur[k] = v
			}
			table = cur
		}
		committed, err := c.SetFxRates(ctx, table)
		if err != nil {
			return err
		}
		if a.g.json {
			return a.printLastJSON()
		}
		if len(committed) == 0 {
			fmt.Fprintln(a.stdout, "Committed an empty FX table: top-ups are in usd only.")
			return nil
		}
		fmt.Fprintf(a.stdout, "Committed the FX table (%d currencies).\n", len(committed))
		return a.printFx(committed)
	}
}

// ---- org commands ----

func defTopup(fs *flag.FlagSet) runFunc {
	amount := fs.Int64("amount", 0, "amount in the currency's minor unit, e.g. cents (required; worth 500..1000000 cents of USD)")
	currency := fs.String("currency", "usd", "usd, or a currency of the FX table")
	success := fs.String("success-url", "", "absolute http(s) URL the payer returns to after paying (required)")
	cancel := fs.String("cancel-url", "", "absolute http(s) URL the payer returns to after cancelling (required)")
	key := fs.String("idempotency-key", "", "8-255 visible ASCII characters (default: generated)")
	return func(a *app, ctx context.Context, _ []string) error {
		self := cmdByPath("topup")
		switch {
		case *amount <= 0:
			return usagef(self, "topup: --amount must be a positive integer of the currency's minor unit (cents)")
		case *success == "":
			return usagef(self, "topup: --success-url is required")
		case *cancel == "":
			return usagef(self, "topup: --cancel-url is required")
		}
		c, err := a.orgClient()
		if err != nil {
			return err
		}
		tu, err := c.TopUp(ctx, client.TopUpRequest{Amount: *amount, Currency: *currency, SuccessURL: *success, CancelURL: *cancel, IdempotencyKey: *key})
		if err != nil {
			return err
		}
		if a.g.json {
			return a.printLastJSON()
		}
		if tu.Replayed {
			fmt.Fprintf(a.stdout, "Replayed: Idempotency-Key %s was already used; this is the original top-up (%s).\n", tu.IdempotencyKey, tu.Status)
		} else {
			fmt.Fprintln(a.stdout, "Top-up created: pay at the checkout URL; the wallet is credited once the payment completes.")
		}
		a.printKV(
			"Checkout URL", tu.CheckoutURL,
			"Top-up", tu.ID,
			"Amount", strconv.FormatInt(tu.Amount, 10)+" "+tu.Currency+" (minor units)",
			"Credit", money(tu.CreditMicros),
			"Status", tu.Status,
			"Idempotency-Key", tu.IdempotencyKey,
		)
		return nil
	}
}

// usageFlags are the flags of a rated usage.
type usageFlags struct {
	fs                                  *flag.FlagSet
	destination, model                  *string
	units, seconds, inTokens, outTokens *int64
}

func defineUsage(fs *flag.FlagSet) *usageFlags {
	return &usageFlags{
		fs:          fs,
		destination: fs.String("destination", "", "usage: the destination number (with --units or --seconds)"),
		units:       fs.Int64("units", 0, "usage: units of a per-unit channel"),
		seconds:     fs.Int64("seconds", 0, "usage: seconds of a per-minute channel"),
		model:       fs.String("model", "", "usage: the model of a per-token channel"),
		inTokens:    fs.Int64("input-tokens", 0, "usage: input tokens"),
		outTokens:   fs.Int64("output-tokens", 0, "usage: output tokens"),
	}
}

// get returns the usage the flags give, or nil when none was set.
func (u *usageFlags) get() *client.Usage {
	var out client.Usage
	set := false
	if isSet(u.fs, "destination") {
		out.Destination, set = *u.destination, true
	}
	if isSet(u.fs, "model") {
		out.Model, set = *u.model, true
	}
	for _, f := range []struct {
		name string
		v    *int64
		dst  **int64
	}{{"units", u.units, &out.Units}, {"seconds", u.seconds, &out.Seconds}, {"input-tokens", u.inTokens, &out.InputTokens}, {"output-tokens", u.outTokens, &out.OutputTokens}} {
		if isSet(u.fs, f.name) {
			*f.dst, set = client.Int64(*f.v), true
		}
	}
	if !set {
		return nil
	}
	return &out
}

// amountOrUsage checks that exactly one of --amount-micros and a usage was
// given.
func amountOrUsage(self *command, fs *flag.FlagSet, amount int64, u *client.Usage) error {
	switch {
	case isSet(fs, "amount-micros") && u != nil:
		return usagef(self, "%s: give --amount-micros or a usage (--destination, --seconds, ...), not both", self.path)
	case !isSet(fs, "amount-micros") && u == nil:
		return usagef(self, "%s: give --amount-micros or a usage (--destination with --units or --seconds, or --model with tokens)", self.path)
	case isSet(fs, "amount-micros") && amount <= 0:
		return usagef(self, "%s: --amount-micros must be a positive integer of micros", self.path)
	}
	return nil
}

func defResCreate(fs *flag.FlagSet) runFunc {
	reference := fs.String("reference", "", "unique hold reference: the idempotency key (default: generated)")
	channel := fs.String("channel", "", "channel, [a-z0-9_]{1,32}: voice, llm, ... (required)")
	amount := fs.Int64("amount-micros", 0, "amount to hold in micros")
	ttl := fs.Int64("ttl-seconds", 0, "seconds until the hold expires, 1..86400 (server default 300)")
	uf := defineUsage(fs)
	return func(a *app, ctx context.Context, _ []string) error {
		self := cmdByPath("reservations create")
		if *channel == "" {
			return usagef(self, "reservations create: --channel is required")
		}
		u := uf.get()
		if err := amountOrUsage(self, fs, *amount, u); err != nil {
			return err
		}
		c, err := a.orgClient()
		if err != nil {
			return err
		}
		res, err := c.CreateReservation(ctx, client.ReservationRequest{Reference: *reference, Channel: *channel, AmountMicros: *amount, Usage: u, TTLSeconds: *ttl})
		if err != nil {
			return err
		}
		if a.g.json {
			return a.printLastJSON()
		}
		if res.Replayed {
			fmt.Fprintf(a.stdout, "Replayed: reference %s already holds; nothing was held again.\n", res.Reservation.Reference)
		} else {
			fmt.Fprintf(a.stdout, "Held %s on %s.\n", money(res.Reservation.AmountMicros), res.Reservation.Channel)
		}
		a.printReservation(&res.Reservation, &res.Balance)
		return nil
	}
}

func defResGet(fs *flag.FlagSet) runFunc {
	return func(a *app, ctx context.Context, args []string) error {
		c, err := a.orgClient()
		if err != nil {
			return err
		}
		r, err := c.Reservation(ctx, args[0])
		if err != nil {
			return err
		}
		if a.g.json {
			return a.printLastJSON()
		}
		a.printReservation(r, nil)
		return nil
	}
}

func defResExtend(fs *flag.FlagSet) runFunc {
	amount := fs.Int64("amount-micros", 0, "amount to add to the hold in micros (required)")
	ttl := fs.Int64("ttl-seconds", 0, "move the expiry to this many seconds from now, 1..86400")
	key := fs.String("idempotency-key", "", "8-255 visible ASCII characters (default: generated)")
	return func(a *app, ctx context.Context, args []string) error {
		if *amount <= 0 {
			return usagef(cmdByPath("reservations extend"), "reservations extend: --amount-micros must be a positive integer of micros")
		}
		c, err := a.orgClient()
		if err != nil {
			return err
		}
		res, err := c.ExtendReservation(ctx, args[0], client.ExtendRequest{AmountMicros: *amount, TTLSeconds: *ttl, IdempotencyKey: *key})
		if err != nil {
			return err
		}
		if a.g.json {
			return a.printLastJSON()
		}
		if res.Replayed {
			fmt.Fprintf(a.stdout, "Replayed: Idempotency-Key %s was already applied; nothing was held again.\n", res.IdempotencyKey)
		} else {
			fmt.Fprintf(a.stdout, "Held %s more; the hold is %s.\n", money(*amount), money(res.Reservation.AmountMicros))
		}
		a.printReservation(&res.Reservation, &res.Balance, "Idempotency-Key", res.IdempotencyKey)
		return nil
	}
}

func defResCommit(fs *flag.FlagSet) runFunc {
	amount := fs.Int64("amount-micros", 0, "the actual amount in micros")
	uf := defineUsage(fs)
	return func(a *app, ctx context.Context, args []string) error {
		self := cmdByPath("reservations commit")
		u := uf.get()
		if err := amountOrUsage(self, fs, *amount, u); err != nil {
			return err
		}
		c, err := a.orgClient()
		if err != nil {
			return err
		}
		res, err := c.CommitReservation(ctx, args[0], client.CommitRequest{AmountMicros: *amount, Usage: u})
		if err != nil {
			return err
		}
		if a.g.json {
			return a.printLastJSON()
		}
		switch {
		case res.Replayed:
			fmt.Fprintln(a.stdout, "Replayed: this commit was already applied; nothing was charged again.")
		case res.Capped:
			fmt.Fprintf(a.stdout, "Charged %s, capped at what the wallet had: %s uncollected.\n", money(-res.Transaction.AmountMicros), money(res.UncollectedMicros))
		default:
			fmt.Fprintf(a.stdout, "Charged %s; the rest of the hold is free.\n", money(-res.Transaction.AmountMicros))
		}
		if res.Expired {
			fmt.Fprintln(a.stdout, "The hold had expired: the charge came from available funds.")
		}
		a.printReservation(&res.Reservation, &res.Balance, "Spend reference", res.Transaction.Reference)
		return nil
	}
}

func defResRelease(fs *flag.FlagSet) runFunc {
	return func(a *app, ctx context.Context, args []string) error {
		c, err := a.orgClient()
		if err != nil {
			return err
		}
		res, err := c.ReleaseReservation(ctx, args[0])
		if err != nil {
			return err
		}
		if a.g.json {
			return a.printLastJSON()
		}
		fmt.Fprintf(a.stdout, "Hold %s is %s.\n", res.Reservation.ID, res.Reservation.Status)
		a.printReservation(&res.Reservation, &res.Balance)
		return nil
	}
}
