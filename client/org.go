package client

import (
	"context"
	"errors"
	"iter"
	"net/url"
	"strconv"
)

// orgBase is the org API's base path.
const orgBase = "/api/v1/billing"

// timeParamLayout formats from/to query times: RFC 3339 UTC with
// milliseconds, the server's precision.
const timeParamLayout = "2006-01-02T15:04:05.000Z07:00"

func orgGet(path string, query url.Values) *request {
	return &request{method: "GET", path: orgBase + path, query: query, auth: authOrg, idempotent: true}
}

// Balance returns the org's wallet (GET /balance).
func (c *Client) Balance(ctx context.Context) (*Balance, error) {
	var b Balance
	if _, err := c.do(ctx, orgGet("/balance", nil), &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// Status returns the billing status (GET /status).
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var s Status
	if _, err := c.do(ctx, orgGet("/status", nil), &s); err != nil {
		return nil, err
	}
	return &s, nil
}

func (q *TransactionsQuery) values() url.Values {
	v := url.Values{}
	if q == nil {
		return v
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Cursor != nil {
		v.Set("cursor_ts", q.Cursor.TS)
		v.Set("cursor_id", q.Cursor.ID)
	}
	if q.Type != "" {
		v.Set("type", q.Type)
	}
	if q.Channel != "" {
		v.Set("channel", q.Channel)
	}
	if !q.From.IsZero() {
		v.Set("from", q.From.UTC().Format(timeParamLayout))
	}
	if !q.To.IsZero() {
		v.Set("to", q.To.UTC().Format(timeParamLayout))
	}
	return v
}

// Transactions returns one page of the ledger, newest first (GET
// /transactions). q may be nil for the first page with the server's default
// size. To read everything, use AllTransactions.
func (c *Client) Transactions(ctx context.Context, q *TransactionsQuery) (*TransactionPage, error) {
	var p TransactionPage
	if _, err := c.do(ctx, orgGet("/transactions", q.values()), &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// AllTransactions pages through every entry q selects, newest first,
// following next_cursor until has_more is false; q.Limit is the page size
// and q.Cursor, if set, the starting point. Each entry older than the first
// page is seen exactly once even while new entries arrive. On an error the
// sequence yields it once (with a zero Transaction) and ends. Each page
// request gets ctx as is, so a deadline on ctx bounds the whole walk.
//
//	for tx, err := range c.AllTransactions(ctx, &client.TransactionsQuery{Limit: 100}) {
//		if err != nil { return err }
//		sum += tx.AmountMicros
//	}
func (c *Client) AllTransactions(ctx context.Context, q *TransactionsQuery) iter.Seq2[Transaction, error] {
	return func(yield func(Transaction, error) bool) {
		var cur TransactionsQuery
		if q != nil {
			cur = *q
		}
		for {
			page, err := c.Transactions(ctx, &cur)
			if err != nil {
				yield(Transaction{}, err)
				return
			}
			for _, tx := range page.Transactions {
				if !yield(tx, nil) {
					return
				}
			}
			if !page.HasMore || page.NextCursor == nil || len(page.Transactions) == 0 {
				return
			}
			next := *page.NextCursor
			cur.Cursor = &next
		}
	}
}

// Transaction returns one ledger entry by id (GET /transactions/{id}); an id
// of another org is not_found.
func (c *Client) Transaction(ctx context.Context, id string) (*Transaction, error) {
	if id == "" {
		return nil, errMissing("transaction id")
	}
	var t Transaction
	if _, err := c.do(ctx, orgGet("/transactions/"+seg(id), nil), &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// UsageByChannel returns spend and volume per channel over the last days
// days, today included (GET /usage-by-channel), ordered by cost, highest
// first. days 0 uses the server's default (30); groupBy is "" (per
// channel), "destination" or "model" (keys become "channel:group").
func (c *Client) UsageByChannel(ctx context.Context, days int, groupBy string) ([]ChannelUsage, error) {
	v := url.Values{}
	if days != 0 {
		v.Set("days", strconv.Itoa(days))
	}
	if groupBy != "" {
		v.Set("group_by", groupBy)
	}
	var rows []ChannelUsage
	if _, err := c.do(ctx, orgGet("/usage-by-channel", v), &rows); err != nil {
		return nil, err
	}
	return rows, nil
}

// Invoices returns the org's invoices and payment receipts, newest first
// (GET /invoices).
func (c *Client) Invoices(ctx context.Context) ([]Invoice, error) {
	var inv []Invoice
	if _, err := c.do(ctx, orgGet("/invoices", nil), &inv); err != nil {
		return nil, err
	}
	return inv, nil
}

// Rates returns the org's effective rate card (GET /rates).
func (c *Client) Rates(ctx context.Context) (*RateCard, error) {
	var r RateCard
	if _, err := c.do(ctx, orgGet("/rates", nil), &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Charge debits the wallet in real time (POST /charges). The reference is
// the idempotency key, so the call is retried safely: a repeat is answered
// with the original spend and Replayed == true. A wallet that cannot pay is
// a *Error with CodeInsufficientFunds (402); a paused org CodeOutboundPaused
// (403); a reference reused with another body CodeIdempotencyConflict (409).
func (c *Client) Charge(ctx context.Context, req ChargeRequest) (*ChargeResult, error) {
	if req.Reference == "" {
		return nil, errMissing("charge reference")
	}
	var res ChargeResult
	m, err := c.do(ctx, &request{method: "POST", path: orgBase + "/charges", body: req, auth: authOrg, idempotent: true}, &res)
	if err != nil {
		return nil, err
	}
	res.Replayed, res.RequestID = m.replayed, m.requestID
	return &res, nil
}

// ChargeBatch decides up to 1,000 charges in one request (POST
// /charges/batch), each on its own, in order. A refused charge does not
// fail the call: look at each BatchItem's Status and Err. Every charge has a
// reference, so the batch is retried safely.
func (c *Client) ChargeBatch(ctx context.Context, reqs []ChargeRequest) (*BatchResult, error) {
	if len(reqs) == 0 {
		return nil, errors.New("orbit: a batch needs at least one charge")
	}
	body := struct {
		Charges []ChargeRequest `json:"charges"`
	}{reqs}
	var res BatchResult
	m, err := c.do(ctx, &request{method: "POST", path: orgBase + "/charges/batch", body: body, auth: authOrg, idempotent: true}, &res)
	if err != nil {
		return nil, err
	}
	res.RequestID = m.requestID
	for i := range res.Results {
		if e := res.Results[i].Error; e != nil {
			e.Status = res.Results[i].Status
			e.RequestID = m.requestID
		}
	}
	return &res, nil
}

// Delivery records a delivery report, DeliveryDelivered or DeliveryFailed,
// for a spend (POST /charges/{id}/delivery) and returns the spend. The same
// status again is a no-op (so the call is retried safely); another status
// afterwards is CodeIdempotencyConflict. Reports never move money.
func (c *Client) Delivery(ctx context.Context, transactionID, status string) (*Transaction, error) {
	if transactionID == "" {
		return nil, errMissing("transaction id")
	}
	body := struct {
		Status string `json:"status"`
	}{status}
	var res struct {
		Transaction Transaction `json:"transaction"`
	}
	_, err := c.do(ctx, &request{method: "POST", path: orgBase + "/charges/" + seg(transactionID) + "/delivery", body: body, auth: authOrg, idempotent: true}, &res)
	if err != nil {
		return nil, err
	}
	return &res.Transaction, nil
}

// Refund gives a spend back to the wallet, in full or in part (POST
// /refunds; the key needs the admin role). The request carries an
// Idempotency-Key (req.IdempotencyKey, or a random one made here) that is
// the same on every retry, so the refund takes effect once.
func (c *Client) Refund(ctx context.Context, req RefundRequest) (*RefundResult, error) {
	if req.TransactionID == "" {
		return nil, errMissing("transaction id")
	}
	key := req.IdempotencyKey
	if key == "" {
		key = newKey("idem_")
	}
	var res RefundResult
	m, err := c.do(ctx, &request{method: "POST", path: orgBase + "/refunds", body: req, auth: authOrg, idempotent: true, idempotencyKey: key}, &res)
	if err != nil {
		return nil, err
	}
	res.Replayed, res.RequestID, res.IdempotencyKey = m.replayed, m.requestID, key
	return &res, nil
}

// Credits is Balance through the seed's alias route (GET /credits); the
// answer is identical.
func (c *Client) Credits(ctx context.Context) (*Balance, error) {
	var b Balance
	if _, err := c.do(ctx, orgGet("/credits", nil), &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// TopUp starts a one-time checkout that adds funds to the wallet (POST
// /balance/top-up; the key needs the admin role) and returns the pending
// top-up with its CheckoutURL, where the payer pays. The wallet is
// credited, once, when the payment completes. The request carries an
// Idempotency-Key (req.IdempotencyKey, or a random one made here) that is
// the same on every retry, so a retry never starts a second top-up: the
// server answers the original one (Replayed). The same key with another
// body is CodeIdempotencyConflict (409).
func (c *Client) TopUp(ctx context.Context, req TopUpRequest) (*TopUpResult, error) {
	return c.topUp(ctx, "/balance/top-up", req)
}

// PurchaseCredits is TopUp through the seed's alias route (POST
// /credits/purchase): the same top-ups and Idempotency-Keys.
func (c *Client) PurchaseCredits(ctx context.Context, req TopUpRequest) (*TopUpResult, error) {
	return c.topUp(ctx, "/credits/purchase", req)
}

func (c *Client) topUp(ctx context.Context, path string, req TopUpRequest) (*TopUpResult, error) {
	key := req.IdempotencyKey
	if key == "" {
		key = newKey("idem_")
	}
	var res TopUpResult
	m, err := c.do(ctx, &request{method: "POST", path: orgBase + path, body: req, auth: authOrg, idempotent: true, idempotencyKey: key}, &res)
	if err != nil {
		return nil, err
	}
	res.Replayed, res.RequestID, res.IdempotencyKey = m.replayed, m.requestID, key
	return &res, nil
}
