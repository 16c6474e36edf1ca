package client

import (
	"errors"
	"strconv"
	"strings"
)

// Error codes of the API (SPEC section 3), each answered with one HTTP status.
const (
	CodeInvalidRequest         = "invalid_request"          // 400
	CodeIdempotencyKeyRequired = "idempotency_key_required" // 400
	CodeNotRefundable          = "not_refundable"           // 400
	CodeUnauthenticated        = "unauthenticated"          // 401
	CodeInsufficientFunds      = "insufficient_funds"       // 402
	CodeForbidden              = "forbidden"                // 403
	CodeOutboundPaused         = "outbound_paused"          // 403
	CodeNotFound               = "not_found"                // 404
	CodeMethodNotAllowed       = "method_not_allowed"       // 405
	CodeIdempotencyConflict    = "idempotency_conflict"     // 409
	CodeReservationClosed      = "reservation_closed"       // 409
	CodePayloadTooLarge        = "payload_too_large"        // 413
	CodeUnsupportedMediaType   = "unsupported_media_type"   // 415
	CodeNoRate                 = "no_rate"                  // 422
	CodeRateLimited            = "rate_limited"             // 429
	CodeUnavailable            = "unavailable"              // 503

	// CodeUnexpectedResponse is the client's own code for a response that
	// is not the API's JSON envelope (a proxy's HTML error page, say).
	CodeUnexpectedResponse = "unexpected_response"
)

// Error is a refusal answered by the API: {"error": {"code", "message",
// "details"}} with its HTTP status and the request id.
type Error struct {
	// Status is the HTTP status (402, 404, ...).
	Status int `json:"-"`
	// Code is the stable error code, one of the Code constants.
	Code string `json:"code"`
	// Message explains the refusal for a human.
	Message string `json:"message"`
	// Details holds the code's extra facts, when the API sends any: for
	// example "field" for invalid_request, "available_micros" and
	// "pause_threshold_micros" for insufficient_funds (numbers are
	// json.Number). Nil when absent.
	Details map[string]any `json:"details,omitempty"`
	// RequestID is the request's id (meta.request_id), for support.
	RequestID string `json:"-"`
}

// Error renders the status, code, message and request id.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("orbit: ")
	if e.Status != 0 {
		b.WriteString(strconv.Itoa(e.Status))
		b.WriteByte(' ')
	}
	b.WriteString(e.Code)
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" (request ")
		b.WriteString(e.RequestID)
		b.WriteByte(')')
	}
	return b.String()
}

// Temporary reports whether the same request may succeed later unchanged
// (503 unavailable, 429 rate_limited).
func (e *Error) Temporary() bool { return e.Status == 503 || e.Status == 429 }

// AsError returns the *Error in err's chain.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// IsCode reports whether err is (or wraps) an API *Error with the code, for
// example IsCode(err, CodeInsufficientFunds).
func IsCode(err error, code string) bool {
	e, ok := AsError(err)
	return ok && e.Code == code
}

// StatusOf returns the HTTP status of an API *Error in err's chain, or 0.
func StatusOf(err error) int {
	if e, ok := AsError(err); ok {
		return e.Status
	}
	return 0
}
