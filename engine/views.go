package engine

// Read-side types shared by the storage that answers reads (wal) and the API
// that shows them (server).

// EntryView is a ledger entry joined with what later entries derived for it.
type EntryView struct {
	Entry
	RefundedAtMs int64
	Delivery     Delivery
}

// TxQuery selects ledger entries, newest first.
type TxQuery struct {
	Limit int
	// BeforeID continues a listing strictly after (older than) this entry.
	BeforeID string
	FromMs   int64 // inclusive; 0 = unbounded
	ToMs     int64 // exclusive; 0 = unbounded
	Type     EntryType
	Channel  string
}

// UsageRow is one day's usage of one channel and group.
type UsageRow struct {
	Day        int64
	Channel    string
	Group      string
	Messages   int64
	Delivered  int64
	Failed     int64
	CostMicros int64
}

// AuditMismatch is an org whose wallet in memory differs from its ledger.
type AuditMismatch struct {
	OrgID           string
	BalanceMicros   int64
	LedgerSumMicros int64
}
