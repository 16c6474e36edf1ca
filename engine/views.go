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

// AuditMismatch is one thing the audit found wrong: an org whose wallet
// differs from its ledger, or a ledger entry that is unreadable, out of
// place, or breaks its org's balance or hash chain.
type AuditMismatch struct {
	OrgID string
	// EntryID names the entry at fault, when the problem is one entry.
	EntryID string
	Problem AuditProblem
	// BalanceMicros is the wallet's balance (stored or in memory) and
	// LedgerSumMicros the sum of its ledger, for the balance problems.
	BalanceMicros   int64
	LedgerSumMicros int64
}

// AuditProblem names what an AuditMismatch is about.
type AuditProblem string

// What the audit checks.
const (
	// The stored wallet's balance is not the sum of its ledger.
	AuditBalance AuditProblem = "balance_mismatch"
	// The wallet in memory disagrees with the stored one at the same index.
	AuditMemory AuditProblem = "memory_mismatch"
	// A stored wallet is missing from memory.
	AuditWalletMissing AuditProblem = "wallet_missing"
	// An org has ledger entries, or a wallet in memory as of the stored
	// state's applied index, but no stored wallet.
	AuditStoredWalletMissing AuditProblem = "stored_wallet_missing"
	// An entry's balance_after is not the running sum of the org's ledger.
	AuditBalanceAfter AuditProblem = "balance_after_mismatch"
	// An entry's hash is not SHA-256(previous hash || its bytes): the entry,
	// or the one before it, was changed, removed or inserted.
	AuditHash AuditProblem = "hash_mismatch"
	// The org's newest entry is not the one its wallet names: entries were
	// removed from the end, or the wallet record was changed.
	AuditChainHead AuditProblem = "chain_head_mismatch"
	// An entry's bytes cannot be decoded.
	AuditUnreadable AuditProblem = "unreadable_entry"
	// An entry's bytes name another org or id than the key it is stored at.
	AuditMisplaced AuditProblem = "misplaced_entry"
)
