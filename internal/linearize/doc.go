// Package linearize checks recorded histories of one prepaid wallet for
// linearizability with porcupine: a sequential model of the wallet exact to
// SPEC.md (charges, refunds full and partial with Idempotency-Keys, holds
// created, extended, committed and released, balance reads), a recorder
// that turns concurrent clients' calls into porcupine operations, a
// workload generator shared by the end-to-end tests (e2e/) and the
// in-process partition tests (raftstore/), and the code that saves a
// failing history as porcupine's HTML visualization plus the raw history
// as JSON.
//
// Only tests use it. The model is the specification, so it reads nothing
// from the engine: a bug in the engine cannot hide in the checker.
//
// Operations whose outcome is unknown (a 503 or a timeout after the request
// was sent) are recorded as possibly applied: their return time is after the
// end of the history and the model applies them where they are legal. That
// is exactly "applied at some point after the call, or never": never is the
// order that puts them last, where nothing observes them.
package linearize
