// Package client is the Go SDK for the Orbit billing API: the org API under
// /api/v1/billing (authenticated with an org API key) and the operator API
// under /admin/v1 (authenticated with the admin token).
//
// # Using it
//
//	c := client.New("http://127.0.0.1:8080", client.WithAPIKey(os.Getenv("ORBIT_API_KEY")))
//	res, err := c.Charge(ctx, client.ChargeRequest{
//		Reference:    "sms_msg_01J9KP3R5W8YEQ4DXG6N7H2VKZ",
//		Channel:      "sms",
//		AmountMicros: 4200,
//	})
//	switch {
//	case client.IsCode(err, client.CodeInsufficientFunds):
//		// the wallet cannot pay: pause the send
//	case err != nil:
//		// another refusal (*client.Error) or a transport failure
//	default:
//		fmt.Println(res.Transaction.ID, res.Balance.AvailableMicros, res.Replayed)
//	}
//
// One Client may hold both an API key and an admin token; org methods send
// the key (X-API-Key), admin methods the token (Authorization: Bearer).
// A Client is safe for concurrent use.
//
// # Money and time
//
// Every amount is an int64 of micros (1 USD = 1,000,000 micros), the API's
// exact unit. The API's display fields in cents (amount_minor,
// balance_cents, ...) are kept as int64 cents, and its USD numbers
// (balance_usd, total_cost) as json.Number, never as floats. FX rates are
// FxRate, an exact integer of 10^-8 USD written as decimal text. Times are
// time.Time in UTC; a field the API may answer with null is a pointer.
//
// # Errors
//
// A refusal of the API is a *Error carrying the HTTP status, the stable
// error code (insufficient_funds, not_found, idempotency_conflict, ...), the
// message, the details object and the request id; match it with IsCode or
// errors.As. Anything else (a transport failure, a context deadline, a
// response that is not the API's envelope) is an ordinary error.
//
// # Deadlines and retries
//
// Every call runs under a deadline: the context's own, or when it has none
// the client's default (WithTimeout, 30 s unless set).
//
// A request is retried automatically (up to WithRetries times, 3 by
// default, with exponential backoff and jitter, or after Retry-After
// when the server sends it) on 503, on 429 and on transport errors, but only
// when repeating it cannot apply it twice:
//
//   - GETs;
//   - charges and charge batches (the reference is the idempotency key: a
//     repeat replays the original result);
//   - adjustments, grants and reservation creations (their reference is the
//     idempotency key as well; when the caller gives none, the client makes
//     one and keeps it across retries);
//   - refunds, top-ups and reservation extensions, which carry an
//     Idempotency-Key header: when the caller gives none the client makes
//     one with crypto/rand and sends the same key on every attempt (the
//     result's IdempotencyKey reports it);
//   - reservation commits (the same commit again replays the first) and
//     releases (releasing a released hold is a no-op);
//   - delivery reports (repeating the same status is a no-op on the server);
//   - PUTs of rate cards and the FX table (a repeat commits the same
//     content again) and cluster joins (joining again is a no-op).
//
// Creating orgs or keys, renaming, revoking, pausing, unpausing and
// removing a cluster node are never retried: the error is returned to the
// caller, who knows whether a repeat is wanted.
//
// A result replayed by the server (same reference or Idempotency-Key with
// the same body, answered 200 with Idempotent-Replayed: true) has
// Replayed == true and carries the original transaction.
package client
