package engine

// CommandKind names what a command does.
type CommandKind uint8

// Command kinds. Their numbers are part of the log format: append only.
const (
	CmdCreateOrg CommandKind = iota + 1
	CmdUpdateOrg
	CmdCreateKey
	CmdRevokeKey
	CmdCharge
	CmdAdjustment
	CmdRefund
	CmdDelivery
	CmdPause
	CmdUnpause
	CmdTopupCreate
	CmdTopupComplete
	CmdTopupExpire
	CmdSetRates
	CmdGrant
	CmdHoldCreate
	CmdHoldExtend
	CmdHoldCommit
	CmdHoldRelease
	// Cluster membership metadata (engine/cluster.go).
	CmdSetNodeAddr
	// Payments (engine/payments.go).
	CmdTopupSession
	CmdPaymentEvent
	CmdSetFxRates
)

var commandKindNames = [...]string{"", "create_org", "update_org", "create_key", "revoke_key", "charge", "adjustment", "refund", "delivery", "pause", "unpause", "topup_create", "topup_complete", "topup_expire",
	"set_rates", "grant", "hold_create", "hold_extend", "hold_commit", "hold_release",
	"set_node_addr", "topup_session", "payment_event", "set_fx_rates"}

func (k CommandKind) String() string {
	if int(k) < len(commandKindNames) {
		return commandKindNames[k]
	}
	return "unknown"
}

// Command is one request to change state, validated by the server before it
// is proposed (sizes, formats, ranges) and decided by Apply (everything that
// depends on state). Fields not used by a kind stay zero.
type Command struct {
	Kind  CommandKind `json:"k"`
	OrgID string      `json:"o,omitempty"`
	// Reference is a charge's or adjustment's reference, or the
	// Idempotency-Key of a refund.
	Reference    string   `json:"r,omitempty"`
	Channel      string   `json:"c,omitempty"`
	AmountMicros int64    `json:"a,omitempty"`
	Metadata     Metadata `json:"m,omitempty"`
	// BodyHash identifies the request body that came with Reference: a retry
	// with the same hash replays, another hash conflicts.
	BodyHash string `json:"h,omitempty"`
	// TxID is the target of a refund or delivery report; KeyID of a revoke.
	TxID   string   `json:"t,omitempty"`
	KeyID  string   `json:"ki,omitempty"`
	Status Delivery `json:"s,omitempty"`
	// Name is an org's name; Reason an adjustment's, refund's or pause's text.
	Name   string `json:"n,omitempty"`
	Reason string `json:"rs,omitempty"`
	// API key registration: the role, the SHA-256 of the secret (hex) and the
	// displayable prefix. The secret itself never enters the log.
	Role      string `json:"ro,omitempty"`
	KeyHash   string `json:"kh,omitempty"`
	KeyPrefix string `json:"kp,omitempty"`
	// Top-ups: the amount in the currency's minor unit, the currency, the
	// checkout's return URLs, the payment provider ("dev" or "stripe"), and
	// for completion the top-up and the provider's session and payment ids.
	AmountMinor   int64  `json:"am,omitempty"`
	Currency      string `json:"cu,omitempty"`
	SuccessURL    string `json:"su,omitempty"`
	CancelURL     string `json:"cl,omitempty"`
	Provider      string `json:"pv,omitempty"`
	TopupID       string `json:"tu,omitempty"`
	SessionID     string `json:"ss,omitempty"`
	PaymentIntent string `json:"pi,omitempty"`
	// Usage to rate (a charge, a hold's estimate, a commit's actual usage);
	// when set, AmountMicros is only admission's estimate.
	Usage *Usage `json:"us,omitempty"`
	// Card is a rate card to commit: the default when OrgID is empty, else
	// the org's override.
	Card *RateCard `json:"rc,omitempty"`
	// TTLSeconds of a hold; ExpiresAtMs of a grant.
	TTLSeconds  int64 `json:"ttl,omitempty"`
	ExpiresAtMs int64 `json:"ex,omitempty"`
	// Payments: the checkout URL of a Stripe session, the Stripe event's
	// type in Name and its id in Reference, the ledger entry an API-made
	// refund wrote, an invoice to store, and the FX table to commit.
	CheckoutURL   string           `json:"cu_url,omitempty"`
	RefundEntryID string           `json:"rei,omitempty"`
	Invoice       *InvoiceRecord   `json:"inv,omitempty"`
	FxRates       map[string]int64 `json:"fx,omitempty"`
	// Cluster membership metadata: a node's id and addresses (an empty
	// RaftAddr removes the node).
	NodeID   string `json:"nid,omitempty"`
	RaftAddr string `json:"nra,omitempty"`
	HTTPAddr string `json:"nha,omitempty"`
	// UpdateOrg: which fields to set.
	SetName         bool  `json:"sn,omitempty"`
	SetThreshold    bool  `json:"st,omitempty"`
	ThresholdMicros int64 `json:"th,omitempty"`
}

// Batch is the unit of replication: the commands of one Raft log entry, the
// leader's time when it proposed them, and (filled in at apply, not encoded)
// the group and log index that make ids unique.
type Batch struct {
	TimeMs   int64     `json:"t"`
	Commands []Command `json:"c"`
	Group    uint8     `json:"-"`
	Index    uint64    `json:"-"`
}
