package client

import (
	"context"
	"time"
)

// Reservation statuses (Reservation.Status).
const (
	ReservationOpen      = "open"
	ReservationCommitted = "committed"
	ReservationReleased  = "released"
	ReservationExpired   = "expired"
)

// Reservation is a hold of funds for a voice call or a streamed LLM
// response: created, extended slice by slice, then committed with the
// actual usage or released.
type Reservation struct {
	ID string `json:"id"`
	// Reference is unique among the org's reservations.
	Reference string `json:"reference"`
	Channel   string `json:"channel"`
	// Status is ReservationOpen, ReservationCommitted, ReservationReleased
	// or ReservationExpired.
	Status string `json:"status"`
	// AmountMicros is held: the creation's amount plus every extension.
	AmountMicros int64 `json:"amount_micros"`
	// CapturedMicros is what the commit charged.
	CapturedMicros int64 `json:"captured_micros"`
	// UncollectedMicros is what a capped commit could not charge.
	UncollectedMicros int64 `json:"uncollected_micros"`
	// Capped is true when the commit was capped at what the wallet had.
	Capped bool `json:"capped"`
	// Expired is true when the hold expired (a commit after expiry still
	// billed).
	Expired bool `json:"expired"`
	// TransactionID is the commit's spend, nil until committed.
	TransactionID *string `json:"transaction_id"`
	// RateVersion is the rate card version in force at creation, which
	// also rates the commit's usage; nil when the channel had no card.
	RateVersion *int64 `json:"rate_version"`
	// Metadata values are strings, bools or json.Number.
	Metadata  map[string]any `json:"metadata"`
	CreatedAt time.Time      `json:"created_at"`
	ExpiresAt time.Time      `json:"expires_at"`
	ClosedAt  *time.Time     `json:"closed_at"`
}

// ReservationRequest holds funds (POST /reservations). Give AmountMicros or
// a Usage estimate (rated with the card in force now), not both.
type ReservationRequest struct {
	// Reference (1-255 visible ASCII characters) is unique among the org's
	// reservations and makes the creation exactly-once. Empty: the client
	// makes a random one; the result's Reservation.Reference reports it.
	Reference    string `json:"reference"`
	Channel      string `json:"channel"`
	AmountMicros int64  `json:"amount_micros,omitempty"`
	Usage        *Usage `json:"usage,omitempty"`
	// TTLSeconds (1..86400; 0 sends none: the server's 300) is how long
	// the hold lives uncommitted before the system releases it.
	TTLSeconds int64 `json:"ttl_seconds,omitempty"`
	// Metadata is a flat object copied to the commit's spend.
	Metadata map[string]any `json:"metadata,omitempty"`
}

// ExtendRequest holds more on an open reservation.
type ExtendRequest struct {
	// AmountMicros is added to the hold (1..10^15).
	AmountMicros int64 `json:"amount_micros"`
	// TTLSeconds, when not 0, moves the expiry to that many seconds from
	// now (1..86400).
	TTLSeconds int64 `json:"ttl_seconds,omitempty"`
	// IdempotencyKey (8-255 visible ASCII characters) makes the extension
	// take effect once. Empty: the client makes a random one, sends it on
	// every retry and reports it in ReservationResult.IdempotencyKey.
	IdempotencyKey string `json:"-"`
}

// CommitRequest charges a reservation's actual usage: AmountMicros, or a
// Usage rated with the card in force when the hold was created.
type CommitRequest struct {
	AmountMicros int64  `json:"amount_micros,omitempty"`
	Usage        *Usage `json:"usage,omitempty"`
}

// ReservationResult is a hold and the wallet after a create, extend or
// release.
type ReservationResult struct {
	Reservation Reservation `json:"reservation"`
	Balance     Balance     `json:"balance"`
	// Replayed is true when the server answered an earlier identical
	// request again (same reference, or same Idempotency-Key, and body):
	// nothing was held twice.
	Replayed bool `json:"-"`
	// IdempotencyKey is the key an extension carried ("" otherwise).
	IdempotencyKey string `json:"-"`
	RequestID      string `json:"-"`
}

// CommitResult is a committed reservation, its spend and the wallet after
// it.
type CommitResult struct {
	Reservation Reservation `json:"reservation"`
	// Transaction is the spend (reference "reservation:<reference>").
	Transaction Transaction `json:"transaction"`
	// Capped is true when the usage above the hold did not fit in the
	// wallet: the charge stopped at what it had, UncollectedMicros short.
	Capped            bool  `json:"capped"`
	UncollectedMicros int64 `json:"uncollected_micros"`
	// Expired is true when the commit came after the hold expired: it was
	// billed from available funds, capped likewise.
	Expired bool    `json:"expired"`
	Balance Balance `json:"balance"`
	// Replayed is true when the same commit was already applied: nothing
	// was charged again.
	Replayed  bool   `json:"-"`
	RequestID string `json:"-"`
}

func reservationPath(id string) string { return orgBase + "/reservations/" + seg(id) }

// CreateReservation holds funds (POST /reservations): available funds drop
// by the hold, the balance does not. The reference makes it exactly-once,
// so the call is retried safely (a repeat replays the original hold); an
// empty reference is replaced by a random one. A hold that does not fit is
// CodeInsufficientFunds (402); a reference reused with another body
// CodeIdempotencyConflict (409); a usage no card prices CodeNoRate (422).
func (c *Client) CreateReservation(ctx context.Context, req ReservationRequest) (*ReservationResult, error) {
	if req.Reference == "" {
		req.Reference = newKey("hold_")
	}
	var res ReservationResult
	m, err := c.do(ctx, &request{method: "POST", path: orgBase + "/reservations", body: req, auth: authOrg, idempotent: true}, &res)
	if err != nil {
		return nil, err
	}
	res.Replayed, res.RequestID = m.replayed, m.requestID
	return &res, nil
}

// Reservation returns the state of a hold (GET /reservations/{id}); an id
// of another org is CodeNotFound.
func (c *Client) Reservation(ctx context.Context, id string) (*Reservation, error) {
	if id == "" {
		return nil, errMissing("reservation id")
	}
	var r Reservation
	if _, err := c.do(ctx, orgGet("/reservations/"+seg(id), nil), &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// ExtendReservation holds AmountMicros more on an open reservation (POST
// /reservations/{id}/extend), the next slice of a call. The request carries
// an Idempotency-Key (req.IdempotencyKey, or a random one made here) that is
// the same on every retry, so a retry never holds twice. 402 leaves the
// hold as it was; a closed hold is CodeReservationClosed (409).
func (c *Client) ExtendReservation(ctx context.Context, id string, req ExtendRequest) (*ReservationResult, error) {
	if id == "" {
		return nil, errMissing("reservation id")
	}
	key := req.IdempotencyKey
	if key == "" {
		key = newKey("idem_")
	}
	var res ReservationResult
	m, err := c.do(ctx, &request{method: "POST", path: reservationPath(id) + "/extend", body: req, auth: authOrg, idempotent: true, idempotencyKey: key}, &res)
	if err != nil {
		return nil, err
	}
	res.Replayed, res.RequestID, res.IdempotencyKey = m.replayed, m.requestID, key
	return &res, nil
}

// CommitReservation charges the actual usage and frees the rest of the hold
// (POST /reservations/{id}/commit), writing one spend. Usage above the hold
// is taken from available funds, capped at what the wallet has (Capped).
// A commit repeated with the same body replays the first (Replayed), so
// the call is retried safely; another body afterwards, or a commit after a
// release, is CodeReservationClosed (409).
func (c *Client) CommitReservation(ctx context.Context, id string, req CommitRequest) (*CommitResult, error) {
	if id == "" {
		return nil, errMissing("reservation id")
	}
	var res CommitResult
	m, err := c.do(ctx, &request{method: "POST", path: reservationPath(id) + "/commit", body: req, auth: authOrg, idempotent: true}, &res)
	if err != nil {
		return nil, err
	}
	res.Replayed, res.RequestID = m.replayed, m.requestID
	return &res, nil
}

// ReleaseReservation frees a hold (POST /reservations/{id}/release).
// Releasing a released or expired hold is a no-op, so the call is retried
// safely; releasing a committed one is CodeReservationClosed (409).
func (c *Client) ReleaseReservation(ctx context.Context, id string) (*ReservationResult, error) {
	if id == "" {
		return nil, errMissing("reservation id")
	}
	var res ReservationResult
	m, err := c.do(ctx, &request{method: "POST", path: reservationPath(id) + "/release", auth: authOrg, idempotent: true}, &res)
	if err != nil {
		return nil, err
	}
	res.Replayed, res.RequestID = m.replayed, m.requestID
	return &res, nil
}
