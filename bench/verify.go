package bench

import (
	"fmt"
	"strings"
)

// Verification is the money check made after every run: the server's own
// audit (every balance recomputed from the durable ledger) must find no
// mismatch, and every org the run used must hold exactly its funding less
// the charges the harness saw acknowledged, with nothing left reserved. A
// run that fails it lost or double-counted money: its figures do not count.
type Verification struct {
	OK bool `json:"ok"`
	// Audits is one entry per audit made (one per node in a cluster).
	Audits []AuditOutcome `json:"audits"`
	// OrgsChecked is how many (org, node) balances were compared.
	OrgsChecked int `json:"orgs_checked"`
	// AckedCharges and AckedMicros are what the harness saw acknowledged
	// over the whole run (in-doubt requests resolved included).
	AckedCharges uint64 `json:"acked_charges"`
	AckedMicros  int64  `json:"acked_micros"`
	// Unresolved counts requests whose outcome stayed unknown.
	Unresolved uint64 `json:"unresolved"`
	// ProblemCount is the number of problems found; Problems lists the first
	// problemsListed of them.
	ProblemCount int      `json:"problem_count"`
	Problems     []string `json:"problems,omitempty"`
}

// AuditOutcome is one audit's answer.
type AuditOutcome struct {
	Source      string   `json:"source"` // node URL, or "engine ledger"
	OrgsChecked int      `json:"orgs_checked"`
	Mismatches  []string `json:"mismatches,omitempty"`
	Err         string   `json:"error,omitempty"`
}

// WalletState is an org's wallet as the server reports it.
type WalletState struct {
	BalanceMicros  int64
	ReservedMicros int64
	Err            error
}

// problemsListed bounds the problems a Verification keeps.
const problemsListed = 20

func (v *Verification) problem(format string, args ...any) {
	v.ProblemCount++
	if len(v.Problems) < problemsListed {
		v.Problems = append(v.Problems, fmt.Sprintf(format, args...))
	}
}

// AddAudit records the audit of a server that holds the run's orgs (orgs
// of them). An error, any mismatch, or fewer stored wallets checked than
// the run used orgs (the durable state lacks wallets the server answers
// from memory) is a problem.
func (v *Verification) AddAudit(a AuditOutcome, orgs int) {
	v.Audits = append(v.Audits, a)
	switch {
	case a.Err != "":
		v.problem("audit %s failed: %s", a.Source, a.Err)
	case len(a.Mismatches) > 0:
		v.problem("audit %s: %d mismatches (first: %s)", a.Source, len(a.Mismatches), a.Mismatches[0])
	case a.OrgsChecked < orgs:
		v.problem("audit %s checked %d stored wallets, but the run used %d orgs", a.Source, a.OrgsChecked, orgs)
	}
}

// AddBalances compares each org's wallet, as read from source, with its
// funding less what the harness saw charged. All slices are indexed by org.
func (v *Verification) AddBalances(source string, orgs []string, fundingMicros, chargedMicros []int64, wallets []WalletState) {
	for i, org := range orgs {
		v.OrgsChecked++
		w := wallets[i]
		want := fundingMicros[i] - chargedMicros[i]
		switch {
		case w.Err != nil:
			v.problem("%s: reading org %s: %v", source, org, w.Err)
		case w.BalanceMicros != want:
			v.problem("%s: org %s balance %d micros, want funding %d - acknowledged charges %d = %d (off by %d)",
				source, org, w.BalanceMicros, fundingMicros[i], chargedMicros[i], want, w.BalanceMicros-want)
		case w.ReservedMicros != 0:
			v.problem("%s: org %s still has %d micros reserved after every hold was committed", source, org, w.ReservedMicros)
		}
	}
}

// Finish sets OK: no problem, at least one audit, every org compared, and
// no request left in doubt.
func (v *Verification) Finish(orgs int) {
	if v.Unresolved > 0 {
		v.problem("%d requests still in doubt after retries: their outcome is unknown", v.Unresolved)
	}
	if len(v.Audits) == 0 {
		v.problem("no audit was made")
	}
	if v.OrgsChecked < orgs {
		v.problem("only %d of %d org balances were compared", v.OrgsChecked, orgs)
	}
	v.OK = v.ProblemCount == 0
}

// Summary is one line for humans.
func (v *Verification) Summary() string {
	var audited []string
	for _, a := range v.Audits {
		audited = append(audited, fmt.Sprintf("%d orgs", a.OrgsChecked))
	}
	base := fmt.Sprintf("audit (%s), %d balances compared, %d charges / %d micros acknowledged",
		strings.Join(audited, ", "), v.OrgsChecked, v.AckedCharges, v.AckedMicros)
	if v.OK {
		return "verified: " + base
	}
	return fmt.Sprintf("VERIFICATION FAILED (%d problems; the figures do not count): %s; %s",
		v.ProblemCount, strings.Join(v.Problems, "; "), base)
}
