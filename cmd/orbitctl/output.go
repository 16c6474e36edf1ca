package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/orbit/orbit/client"
)

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// usd renders micros as USD truncated toward zero at 4 decimals, the way
// the API renders balance_usd: -4200 is "-$0.0042".
func usd(micros int64) string {
	q := micros / 100 // units of $0.0001, truncated toward zero
	sign := ""
	if q < 0 {
		sign = "-"
	}
	u := uint64(q)
	if q < 0 {
		u = uint64(-q)
	}
	return fmt.Sprintf("%s$%d.%04d", sign, u/10000, u%10000)
}

// money renders micros as USD and micros: "$150.0000 (150000000 micros)".
func money(micros int64) string {
	return usd(micros) + " (" + strconv.FormatInt(micros, 10) + " micros)"
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

const timeLayout = "2006-01-02T15:04:05.000Z"

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(timeLayout)
}

func fmtTimePtr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return fmtTime(*t)
}

func strOr(s *string, dflt string) string {
	if s == nil || *s == "" {
		return dflt
	}
	return *s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// outbound describes the pause state of a wallet.
func outbound(b *client.Balance) string {
	if !b.OutboundPaused {
		return "active"
	}
	s := "paused: " + strOr(b.OutboundBlockReason, "unknown")
	if b.OutboundBlockDetails != nil && *b.OutboundBlockDetails != "" {
		s += " (" + *b.OutboundBlockDetails + ")"
	}
	return s
}

// printKV prints label/value pairs as an aligned list.
func (a *app) printKV(pairs ...string) {
	tw := newTable(a.stdout)
	for i := 0; i+1 < len(pairs); i += 2 {
		fmt.Fprintf(tw, "%s:\t%s\n", pairs[i], pairs[i+1])
	}
	tw.Flush()
}

func (a *app) printOrg(o *client.Org) {
	w := &o.Wallet
	a.printKV(
		"ID", o.ID,
		"Name", o.Name,
		"Created", fmtTime(o.CreatedAt),
		"Balance", money(w.BalanceMicros),
		"Reserved", money(w.ReservedMicros),
		"Available", money(w.AvailableMicros),
		"Pause threshold", money(o.PauseThresholdMicros),
		"Outbound", outbound(w),
	)
}

func (a *app) printBalance(b *client.Balance) {
	a.printKV(
		"Balance", money(b.BalanceMicros),
		"Reserved", money(b.ReservedMicros),
		"Available", money(b.AvailableMicros),
		"Pause threshold", money(b.PauseThresholdMicros),
		"Outbound", outbound(b),
		"As of", b.AsOf,
	)
}

// printJSON prints a server response indented, numbers exactly as sent.
func (a *app) printJSON(body []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, body, "", "  "); err != nil {
		_, werr := a.stdout.Write(body)
		return werr
	}
	buf.WriteByte('\n')
	_, err := buf.WriteTo(a.stdout)
	return err
}

// printLastJSON prints the body of the last response.
func (a *app) printLastJSON() error {
	if len(a.bodies) == 0 {
		return nil
	}
	return a.printJSON(a.bodies[len(a.bodies)-1])
}

// printAllTransactionsJSON prints the entries of every page read, as the
// server sent them, in one JSON array.
func (a *app) printAllTransactionsJSON() error {
	all := []json.RawMessage{}
	for _, body := range a.bodies {
		var page struct {
			Data struct {
				Transactions []json.RawMessage `json:"transactions"`
			} `json:"data"`
		}
		if json.Unmarshal(body, &page) == nil {
			all = append(all, page.Data.Transactions...)
		}
	}
	b, err := json.Marshal(all)
	if err != nil {
		return err
	}
	return a.printJSON(b)
}

// printLastData prints the data of the last response's envelope, indented,
// numbers exactly as the server sent them.
func (a *app) printLastData() error {
	if len(a.bodies) == 0 {
		return nil
	}
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(a.bodies[len(a.bodies)-1], &env); err != nil || env.Data == nil {
		return a.printLastJSON()
	}
	return a.printJSON(env.Data)
}

// printReservation prints a hold, extra label/value pairs, and the wallet
// after it (when b is not nil).
func (a *app) printReservation(r *client.Reservation, b *client.Balance, extra ...string) {
	rateVersion := "-"
	if r.RateVersion != nil {
		rateVersion = strconv.FormatInt(*r.RateVersion, 10)
	}
	pairs := []string{
		"Reservation", r.ID,
		"Reference", r.Reference,
		"Channel", r.Channel,
		"Status", r.Status,
		"Held", money(r.AmountMicros),
		"Captured", money(r.CapturedMicros),
	}
	if r.Capped || r.UncollectedMicros != 0 {
		pairs = append(pairs, "Uncollected", money(r.UncollectedMicros))
	}
	pairs = append(pairs,
		"Rate version", rateVersion,
		"Spend", strOr(r.TransactionID, "-"),
		"Created", fmtTime(r.CreatedAt),
		"Expires", fmtTime(r.ExpiresAt),
		"Closed", fmtTimePtr(r.ClosedAt),
	)
	pairs = append(pairs, extra...)
	if b != nil {
		pairs = append(pairs, "Balance", money(b.BalanceMicros), "Available", money(b.AvailableMicros))
	}
	a.printKV(pairs...)
}
