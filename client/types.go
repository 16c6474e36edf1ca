package client

import (
	"encoding/json"
	"time"
)

// Ledger entry types (Transaction.Type).
const (
	TypeTopup       = "topup"
	TypeSpend       = "spend"
	TypeRefund      = "refund"
	TypeTopupRefund = "topup_refund"
	TypeGrant       = "grant"
	TypeExpiry      = "expiry"
	TypeAdjustment  = "adjustment"
	TypeDispute     = "dispute"
)

// API key roles.
const (
	RoleAdmin  = "admin"  // everything in its org
	RoleCharge = "charge" // charges, reservations, delivery reports, balance, status, rates
	RoleRead   = "read"   // every GET route
)

// Delivery report statuses.
const (
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// Outbound block reasons (Balance.OutboundBlockReason), highest first.
const (
	BlockOperatorHold        = "operator_hold"
	BlockPaymentDisputed     = "payment_disputed"
	BlockInsufficientBalance = "insufficient_balance"
)

// Balance is an org's wallet: GET /balance, and the "balance" of every
// money-moving answer.
type Balance struct {
	// BalanceUSD is balance_micros in USD truncated at 4 decimals, exactly
	// as the server wrote it (for display).
	BalanceUSD json.Number `json:"balance_usd"`
	// BalanceCents and Credits are balance_micros / 10,000 truncated.
	BalanceCents int64 `json:"balance_cents"`
	Credits      int64 `json:"credits"`
	// OutboundPaused is true while charges are refused; OutboundBlockReason
	// says why (one of the Block constants), nil when not paused.
	OutboundPaused      bool    `json:"outbound_paused"`
	OutboundBlockReason *string `json:"outbound_block_reason"`
	// BalanceMicros is the sum of the ledger.
	BalanceMicros int64 `json:"balance_micros"`
	// ReservedMicros is held by open reservations.
	ReservedMicros int64 `json:"reserved_micros"`
	// AvailableMicros = BalanceMicros - ReservedMicros.
	AvailableMicros int64  `json:"available_micros"`
	Currency        string `json:"currency"`
	// OutboundBlockDetails is the operator's text of an operator hold.
	OutboundBlockDetails *string `json:"outbound_block_details"`
	PauseThresholdMicros int64   `json:"pause_threshold_micros"`
	// AsOf names the log position the answer reflects; for one org it never
	// goes backwards.
	AsOf string `json:"as_of"`
}

// Status is GET /status: what the dashboard needs to show billing.
type Status struct {
	// BillingModel is always "payg" (prepaid, pay as you go).
	BillingModel string `json:"billing_model"`
	// StripeConfigured is true when the server has Stripe keys.
	StripeConfigured bool `json:"stripe_configured"`
	// HasCustomer is true once a Stripe customer exists for the org.
	HasCustomer bool `json:"has_customer"`
	// CanManage is true when the key may manage billing (role admin).
	CanManage bool `json:"can_manage"`
	// CanCheckout is true when a top-up can be started now with this key.
	CanCheckout bool `json:"can_checkout"`
	// PaymentProvider is ProviderStripe or ProviderDev (the built-in
	// development provider, used when no Stripe keys are configured).
	PaymentProvider      string  `json:"payment_provider"`
	Wallet               Balance `json:"wallet"`
	OutboundPaused       bool    `json:"outbound_paused"`
	OutboundBlockReason  *string `json:"outbound_block_reason"`
	OutboundBlockDetails *string `json:"outbound_block_details"`
	PauseThresholdMicros int64   `json:"pause_threshold_micros"`
	// LastTopup is the org's last paid top-up, nil when there is none.
	LastTopup *TopUp `json:"last_topup"`
}

// Payment providers (Status.PaymentProvider).
const (
	ProviderDev    = "dev"
	ProviderStripe = "stripe"
)

// Top-up statuses (TopUp.Status).
const (
	TopupPending = "pending"
	TopupPaid    = "paid"
	TopupExpired = "expired"
)

// TopUp is a top-up from its checkout to its credit: the answer to TopUp
// and Status.LastTopup.
type TopUp struct {
	// CheckoutURL is where the payer completes the payment: Stripe
	// Checkout, or <public-url>/dev/checkout/<topup_id> with the
	// development provider.
	CheckoutURL string `json:"checkoutUrl"`
	ID          string `json:"topup_id"`
	// SessionID is the checkout session ("dev_<topup_id>" with the
	// development provider); nil while none is recorded.
	SessionID *string `json:"session_id"`
	// Amount is in the currency's minor unit (cents for usd).
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	// Status is TopupPending, TopupPaid or TopupExpired.
	Status string `json:"status"`
	// CreditMicros is what the payment credits to the wallet (converted at
	// the FX rate in force when the top-up was created).
	CreditMicros int64      `json:"credit_micros"`
	CreatedAt    time.Time  `json:"created_at"`
	PaidAt       *time.Time `json:"paid_at"`
}

// TopUpInfo is the former name of TopUp.
//
// Deprecated: use TopUp.
type TopUpInfo = TopUp

// TopUpRequest starts a one-time checkout that adds funds to the wallet.
type TopUpRequest struct {
	// Amount is in the currency's minor unit (cents for usd), worth
	// 500..1,000,000 cents of USD.
	Amount int64 `json:"amount"`
	// Currency is "usd" (the default when empty) or a currency of the FX
	// table (SetFxRates).
	Currency string `json:"currency,omitempty"`
	// SuccessURL and CancelURL are absolute http(s) URLs the payer returns
	// to.
	SuccessURL string `json:"successUrl"`
	CancelURL  string `json:"cancelUrl"`
	// IdempotencyKey (8-255 visible ASCII characters) makes the request
	// create one top-up however often it is sent. Empty: the client makes a
	// random one, sends it on every retry and reports it in
	// TopUpResult.IdempotencyKey.
	IdempotencyKey string `json:"-"`
}

// TopUpResult is the pending (or, for a replay, current) top-up and where to
// pay it.
type TopUpResult struct {
	TopUp
	// Replayed is true when the Idempotency-Key was already used with the
	// same body: the top-up is the original one, in its current status.
	Replayed bool `json:"-"`
	// IdempotencyKey is the key the request carried.
	IdempotencyKey string `json:"-"`
	RequestID      string `json:"-"`
}

// Transaction is one ledger entry (credit_transactions). Negative amounts
// are spends, positive ones credits; entries never change, except that
// RefundedAt and DeliveryStatus are derived from later events.
type Transaction struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	// AmountMinor is AmountMicros in cents, truncated toward zero (display
	// only: a sub-cent spend shows 0).
	AmountMinor        int64  `json:"amount_minor"`
	AmountMicros       int64  `json:"amount_micros"`
	BalanceAfterMicros int64  `json:"balance_after_micros"`
	Reference          string `json:"reference"`
	// Metadata values are strings, bools or json.Number.
	Metadata   map[string]any `json:"metadata"`
	CreatedAt  time.Time      `json:"created_at"`
	ExpiresAt  *time.Time     `json:"expires_at"`
	RefundedAt *time.Time     `json:"refunded_at"`
	// DeliveryStatus is set on spends only: "delivered", "failed", or nil
	// before any report.
	DeliveryStatus *string `json:"delivery_status,omitempty"`
}

// Channel returns the entry's metadata "channel", or "".
func (t *Transaction) Channel() string {
	s, _ := t.Metadata["channel"].(string)
	return s
}

// Cursor continues a transaction listing after its last item. Pass it back
// unchanged.
type Cursor struct {
	TS string `json:"cursor_ts"`
	ID string `json:"cursor_id"`
}

// TransactionsQuery filters and pages GET /transactions. Zero fields are not
// sent.
type TransactionsQuery struct {
	// Limit is the page size, 1..100 (server default 30).
	Limit int
	// Cursor continues after a previous page (its NextCursor).
	Cursor *Cursor
	// Type keeps one entry type (a Type constant).
	Type string
	// Channel keeps spends of one channel.
	Channel string
	// From (inclusive) and To (exclusive) bound created_at; the server
	// works in whole milliseconds.
	From, To time.Time
}

// TransactionPage is one page of GET /transactions, newest first.
type TransactionPage struct {
	Transactions []Transaction `json:"transactions"`
	// NextCursor continues after the last item; nil when HasMore is false.
	NextCursor *Cursor `json:"next_cursor"`
	HasMore    bool    `json:"has_more"`
}

// UsageByChannel groupings (the groupBy argument).
const (
	GroupByDestination = "destination" // keys "sms:1", "sms:44", "sms:*", "sms:-"
	GroupByModel       = "model"       // keys "llm:gpt-4o-mini", "llm:-"
)

// ChannelUsage is one row of GET /usage-by-channel.
type ChannelUsage struct {
	// Key is the channel, or "channel:group" with a group_by.
	Key           string `json:"key"`
	Channel       string `json:"channel"`
	TotalMessages int64  `json:"total_messages"`
	Delivered     int64  `json:"delivered"`
	Failed        int64  `json:"failed"`
	// TotalCostMinor is TotalCostMicros in cents, truncated.
	TotalCostMinor int64 `json:"total_cost_minor"`
	// TotalCost is USD at 4 decimals as the server wrote it.
	TotalCost       json.Number `json:"total_cost"`
	TotalCostMicros int64       `json:"total_cost_micros"`
}

// Invoice is a Stripe invoice or one-time payment receipt.
type Invoice struct {
	ID     string `json:"id"`
	Number string `json:"number"`
	// Amount is in the currency's minor unit (cents for USD).
	Amount      int64      `json:"amount"`
	Currency    string     `json:"currency"`
	Status      string     `json:"status"`
	PeriodStart *time.Time `json:"period_start"`
	PeriodEnd   *time.Time `json:"period_end"`
	PDFURL      string     `json:"pdf_url"`
	CreatedAt   time.Time  `json:"created_at"`
}

// RateCard is a rate card: an org's effective prices (GET /rates), or a
// card to commit with SetRates or SetOrgRates. Prices are micros.
type RateCard struct {
	// Version is the card's version, assigned by the server (0 when no
	// card was ever committed). SetRates and SetOrgRates ignore it.
	Version  int64                  `json:"version"`
	Channels map[string]ChannelRate `json:"channels"`
}

// Rating units (ChannelRate.Per).
const (
	PerUnit   = "unit"
	PerMinute = "minute"
	PerToken  = "token"
)

// ChannelRate prices one channel: per "unit", "minute" or "token".
type ChannelRate struct {
	// Per is PerUnit, PerMinute or PerToken.
	Per string `json:"per"`
	// Increment is a per-minute channel's [first, next] billing increments
	// in seconds.
	Increment []int64 `json:"increment,omitempty"`
	// Prices maps a destination prefix (or "*") to micros per unit or per
	// minute.
	Prices map[string]int64 `json:"prices,omitempty"`
	// Models prices a per-token channel's models.
	Models map[string]ModelRate `json:"models,omitempty"`
}

// RatesSet is a committed rate card: the answer to SetRates and SetOrgRates.
type RatesSet struct {
	// Version is the version the server gave the card; every spend rated
	// with it records it as rate_version.
	Version int64 `json:"version"`
	// OrgID is the org of an override, nil for the default card.
	OrgID    *string                `json:"org_id"`
	Channels map[string]ChannelRate `json:"channels"`
}

// ModelRate prices an LLM model in micros per million tokens.
type ModelRate struct {
	InputPerMillion  int64 `json:"input_per_million"`
	OutputPerMillion int64 `json:"output_per_million"`
}

// Usage is what a charge measured, rated by the rate card: destination and
// units (per unit), destination and seconds (per minute), or model and
// token counts (per token). Nil counts are not sent.
type Usage struct {
	Destination  string `json:"destination,omitempty"`
	Units        *int64 `json:"units,omitempty"`
	Seconds      *int64 `json:"seconds,omitempty"`
	Model        string `json:"model,omitempty"`
	InputTokens  *int64 `json:"input_tokens,omitempty"`
	OutputTokens *int64 `json:"output_tokens,omitempty"`
}

// Int64 returns a pointer to n, for the optional counts of Usage and
// UpdateOrgRequest.
func Int64(n int64) *int64 { return &n }

// String returns a pointer to s, for the optional fields of UpdateOrgRequest.
func String(s string) *string { return &s }

// ChargeRequest is one real-time debit (POST /charges). Give AmountMicros
// (pre-rated) or Usage (rated by the server), not both.
type ChargeRequest struct {
	// Reference (1-255 visible ASCII characters) is unique per org: it is
	// the charge's idempotency key.
	Reference string `json:"reference"`
	// Channel matches [a-z0-9_]{1,32}: "sms", "voice", "llm", ...
	Channel      string `json:"channel"`
	AmountMicros int64  `json:"amount_micros,omitempty"`
	Usage        *Usage `json:"usage,omitempty"`
	// Metadata is a flat object (at most 20 keys) of strings, numbers and
	// booleans; system keys (channel, country, ...) are refused.
	Metadata map[string]any `json:"metadata,omitempty"`
}

// ChargeResult is the answer to a charge: the spend and the wallet after it.
type ChargeResult struct {
	Transaction Transaction `json:"transaction"`
	Balance     Balance     `json:"balance"`
	// Replayed is true when the reference was already charged with the same
	// body: Transaction is the original and nothing was debited again.
	Replayed  bool   `json:"-"`
	RequestID string `json:"-"`
}

// BatchResult is the answer to POST /charges/batch: one result per charge,
// in order, and the wallet after the batch.
type BatchResult struct {
	Results   []BatchItem `json:"results"`
	Balance   Balance     `json:"balance"`
	RequestID string      `json:"-"`
}

// BatchItem is the outcome of one charge of a batch.
type BatchItem struct {
	Index int `json:"index"`
	// Status is the HTTP status the charge alone would have had: 201
	// charged, 200 replayed, else a refusal described by Error.
	Status      int          `json:"status"`
	Transaction *Transaction `json:"transaction,omitempty"`
	Error       *Error       `json:"error,omitempty"`
}

// Err returns the item's refusal as an error (a *Error), or nil.
func (b *BatchItem) Err() error {
	if b.Error == nil {
		return nil
	}
	return b.Error
}

// Replayed reports whether the item repeated an earlier charge.
func (b *BatchItem) Replayed() bool { return b.Status == 200 && b.Transaction != nil }

// RefundRequest refunds a spend back to the wallet (or a top-up back to the
// card).
type RefundRequest struct {
	TransactionID string `json:"transaction_id"`
	// AmountMicros to refund; 0 refunds all that is still refundable.
	AmountMicros int64  `json:"amount_micros,omitempty"`
	Reason       string `json:"reason,omitempty"`
	// IdempotencyKey (8-255 visible ASCII characters) makes the refund take
	// effect once. Empty: the client makes a random one, sends it on every
	// retry and reports it in RefundResult.IdempotencyKey.
	IdempotencyKey string `json:"-"`
}

// RefundResult is the refund entry and the wallet after it.
type RefundResult struct {
	Transaction Transaction `json:"transaction"`
	Balance     Balance     `json:"balance"`
	// Replayed is true when the Idempotency-Key was already used with the
	// same body.
	Replayed bool `json:"-"`
	// IdempotencyKey is the key the request carried.
	IdempotencyKey string `json:"-"`
	RequestID      string `json:"-"`
}

// Org is an organization as the operator API shows it.
type Org struct {
	ID                   string    `json:"id"`
	Name                 string    `json:"name"`
	CreatedAt            time.Time `json:"created_at"`
	PauseThresholdMicros int64     `json:"pause_threshold_micros"`
	Wallet               Balance   `json:"wallet"`
}

// UpdateOrgRequest changes an org; nil fields are left as they are.
type UpdateOrgRequest struct {
	Name *string `json:"name,omitempty"`
	// PauseThresholdMicros (0..10^15): outbound traffic pauses while
	// available funds are at or below it.
	PauseThresholdMicros *int64 `json:"pause_threshold_micros,omitempty"`
}

// APIKey is an org API key. Key, the secret, is set only in the answer to
// CreateKey: the server stores a hash and never shows it again.
type APIKey struct {
	ID        string     `json:"id"`
	OrgID     string     `json:"org_id"`
	Role      string     `json:"role"`
	Prefix    string     `json:"prefix"`
	Key       string     `json:"key,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at"`
}

// AdjustmentRequest is an operator correction: a signed amount.
type AdjustmentRequest struct {
	// AmountMicros is nonzero, |amount| <= 10^15; negative debits.
	AmountMicros int64  `json:"amount_micros"`
	Reason       string `json:"reason"`
	// Reference makes the adjustment exactly-once. Empty: the client makes
	// a random one, keeps it across retries and reports it in the result.
	Reference string `json:"reference"`
}

// AdjustmentResult is the adjustment entry and the wallet after it.
type AdjustmentResult struct {
	Transaction Transaction `json:"transaction"`
	Balance     Balance     `json:"balance"`
	Replayed    bool        `json:"-"`
	// Reference is the reference the request carried.
	Reference string `json:"-"`
	RequestID string `json:"-"`
}

// GrantRequest is an operator credit that expires: a grant entry whose
// unused remainder leaves the wallet at ExpiresAt as an expiry entry.
type GrantRequest struct {
	// AmountMicros is 1..10^15.
	AmountMicros int64
	// ExpiresAt is sent in UTC with millisecond precision (the server's).
	ExpiresAt time.Time
	Reason    string
	// Reference makes the grant exactly-once. Empty: the client makes a
	// random one, keeps it across retries and reports it in the result.
	Reference string
}

// MarshalJSON writes the request body, expires_at as RFC 3339 UTC with
// milliseconds.
func (g GrantRequest) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		AmountMicros int64  `json:"amount_micros"`
		ExpiresAt    string `json:"expires_at"`
		Reason       string `json:"reason,omitempty"`
		Reference    string `json:"reference"`
	}{g.AmountMicros, g.ExpiresAt.UTC().Format(timeParamLayout), g.Reason, g.Reference})
}

// GrantResult is the grant entry and the wallet after it.
type GrantResult struct {
	Transaction Transaction `json:"transaction"`
	Balance     Balance     `json:"balance"`
	// Replayed is true when the reference was already granted with the
	// same body: Transaction is the original and nothing was credited again.
	Replayed bool `json:"-"`
	// Reference is the reference the request carried.
	Reference string `json:"-"`
	RequestID string `json:"-"`
}

// AuditReport is GET /admin/v1/audit: every balance recomputed from the
// durable ledger and compared with memory.
type AuditReport struct {
	OrgsChecked int             `json:"orgs_checked"`
	Mismatches  []AuditMismatch `json:"mismatches"`
}

// AuditMismatch is one thing the audit found wrong with an org: its
// wallet differs from its ledger's sum, an entry breaks the ledger's
// balance or hash chain, or a wallet is missing from memory or storage.
type AuditMismatch struct {
	OrgID string `json:"org_id"`
	// Problem is what is wrong, as GET /admin/v1/audit names it
	// ("balance_mismatch", "hash_mismatch", "stored_wallet_missing", ...).
	Problem string `json:"problem"`
	// EntryID is the entry at fault, when the problem is one entry.
	EntryID         string `json:"entry_id,omitempty"`
	BalanceMicros   int64  `json:"balance_micros"`
	LedgerSumMicros int64  `json:"ledger_sum_micros"`
}

// ClusterInfo is the Raft state of the node that answered.
type ClusterInfo struct {
	NodeID string `json:"node_id"`
	// Leader is the leader's node id, nil when none is known.
	Leader       *string `json:"leader"`
	Term         uint64  `json:"term"`
	CommitIndex  uint64  `json:"commit_index"`
	AppliedIndex uint64  `json:"applied_index"`
	// SnapshotIndex is the log index of the node's last Raft snapshot
	// (taken or installed); 0 before the first.
	SnapshotIndex uint64 `json:"snapshot_index"`
	// Digest is a SHA-256 of the node's whole state at AppliedIndex:
	// replicas that applied the same log report the same digest.
	Digest string        `json:"digest"`
	Nodes  []ClusterNode `json:"nodes"`
}

// ClusterJoinRequest adds a node to the cluster as a voter.
type ClusterJoinRequest struct {
	NodeID string `json:"node_id"`
	// RaftAddr is host:port of the node's Raft transport.
	RaftAddr string `json:"raft_addr"`
	// HTTPAddr is host:port of the node's HTTP API.
	HTTPAddr string `json:"http_addr"`
}

// ClusterNode is one member of the cluster.
type ClusterNode struct {
	ID       string  `json:"id"`
	RaftAddr string  `json:"raft_addr"`
	HTTPAddr *string `json:"http_addr"`
	Suffrage string  `json:"suffrage"`
	State    string  `json:"state"`
}
