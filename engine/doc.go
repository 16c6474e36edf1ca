// Package engine is Orbit's deterministic billing state machine: wallets in
// micros, the ledger entries each command writes, exactly-once references,
// refunds, delivery reports and the outbound-pause rules of SPEC.md.
//
// Everything that decides money lives here and nowhere else. The package does
// no I/O, reads no clock and draws no randomness: Apply decides every command
// from the engine's state, the batch's own time and index, and read-only
// lookups of state that earlier batches persisted (ColdStore). Two engines fed
// the same batches over the same stored state end byte-identical; the tests
// check exactly that.
//
// Who may call what:
//   - Apply and Persisted: one goroutine at a time (the FSM). Apply appends what
//     must be persisted to a Changes value; the caller writes it durably (or at
//     least readably) and then calls Persisted before the next Apply that could
//     depend on it.
//   - Admit/AdmitDebit/Unadmit, Org lookups, key lookups and the View
//     methods: any goroutine. Admission is lock-free (atomic counters per
//     wallet); reads take the engine's read lock.
//
// Invariants (SPEC.md section 7), asserted after every command:
// balance == sum of the org's ledger entries >= 0, and
// available = balance - reserved >= 0.
package engine
