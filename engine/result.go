package engine

// Code is the outcome of one command. A refusal is a result, not an error of
// the system; the server maps each code to one HTTP status and error code.
type Code uint8

// Result codes.
const (
	CodeOK Code = iota
	// CodeReplayed: the reference was applied before with the same body; the
	// result names the original transaction.
	CodeReplayed
	CodeConflict          // same reference or key, different body; or a delivery status change
	CodeInsufficientFunds // does not fit in available funds, or paused for insufficient_balance
	CodeOutboundPaused    // operator hold or card dispute
	CodeNotFound          // unknown org, key or transaction
	CodeNotRefundable     // refund of an entry that is not a spend or a top-up
	CodeInvalid           // a request that state makes invalid (e.g. refund above what is left)
	CodeReservationClosed // extend, commit or release of a hold in a state that forbids it
	CodeNoRate            // usage the rate card cannot price
)

var codeNames = [...]string{"ok", "replayed", "conflict", "insufficient_funds", "outbound_paused", "not_found", "not_refundable", "invalid", "reservation_closed", "no_rate"}

func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "unknown"
}

// Result is what Apply decided for one command.
type Result struct {
	Code Code
	// TxID names the transaction written, or on CodeReplayed the original one.
	TxID string
	// Entry is the entry written (nil when none was).
	Entry *Entry
	// ID is the id of a created org or key.
	ID string
	// Wallet is the org's wallet right after the command.
	Wallet WalletView
	// Message explains a refusal.
	Message string
	// Hold is the reservation a hold command acted on (a copy).
	Hold *Hold
	// Commit outcome: whether the charge was capped at what the wallet had,
	// the micros left uncollected, and whether the hold had expired.
	Capped            bool
	UncollectedMicros int64
	Expired           bool
}

// WalletView is a consistent copy of an org's wallet and pause state.
type WalletView struct {
	OrgID           string
	BalanceMicros   int64
	ReservedMicros  int64
	ThresholdMicros int64
	OperatorHold    bool
	HoldDetails     string
	Disputed        bool
	// Group and Index name the log position the view reflects (as_of).
	Group uint8
	Index uint64
}

// AvailableMicros is the balance less open holds.
func (w WalletView) AvailableMicros() int64 { return w.BalanceMicros - w.ReservedMicros }

// BlockReason is the highest-priority reason outbound traffic is paused, or "".
func (w WalletView) BlockReason() string {
	switch {
	case w.OperatorHold:
		return "operator_hold"
	case w.Disputed:
		return "payment_disputed"
	case w.AvailableMicros() <= w.ThresholdMicros:
		return "insufficient_balance"
	}
	return ""
}
