package server

import (
	"github.com/valyala/fasthttp"

	"github.com/orbit/orbit/engine"
)

// Error codes of the API (SPEC.md section 3), each with its one HTTP status.
const (
	errInvalidRequest         = "invalid_request"
	errIdempotencyKeyRequired = "idempotency_key_required"
	errNotRefundable          = "not_refundable"
	errUnauthenticated        = "unauthenticated"
	errInsufficientFunds      = "insufficient_funds"
	errForbidden              = "forbidden"
	errOutboundPaused         = "outbound_paused"
	errNotFound               = "not_found"
	errIdempotencyConflict    = "idempotency_conflict"
	errReservationClosed      = "reservation_closed"
	errPayloadTooLarge        = "payload_too_large"
	errUnsupportedMediaType   = "unsupported_media_type"
	errNoRate                 = "no_rate"
	errRateLimited            = "rate_limited"
	errUnavailable            = "unavailable"
	errMethodNotAllowed       = "method_not_allowed"
)

var errorStatus = map[string]int{
	errInvalidRequest:         fasthttp.StatusBadRequest,
	errIdempotencyKeyRequired: fasthttp.StatusBadRequest,
	errNotRefundable:          fasthttp.StatusBadRequest,
	errUnauthenticated:        fasthttp.StatusUnauthorized,
	errInsufficientFunds:      fasthttp.StatusPaymentRequired,
	errForbidden:              fasthttp.StatusForbidden,
	errOutboundPaused:         fasthttp.StatusForbidden,
	errNotFound:               fasthttp.StatusNotFound,
	errIdempotencyConflict:    fasthttp.StatusConflict,
	errReservationClosed:      fasthttp.StatusConflict,
	errPayloadTooLarge:        fasthttp.StatusRequestEntityTooLarge,
	errUnsupportedMediaType:   fasthttp.StatusUnsupportedMediaType,
	errNoRate:                 fasthttp.StatusUnprocessableEntity,
	errRateLimited:            fasthttp.StatusTooManyRequests,
	errUnavailable:            fasthttp.StatusServiceUnavailable,
	errMethodNotAllowed:       fasthttp.StatusMethodNotAllowed,
}

// apiError is a refusal on its way to the client.
type apiError struct {
	code    string
	message string
	details func(w *jw) // writes the details object's fields; may be nil
}

func (e *apiError) status() int { return errorStatus[e.code] }

func newError(code, message string) *apiError { return &apiError{code: code, message: message} }

func invalid(message string) *apiError { return newError(errInvalidRequest, message) }

// invalidField is a 400 naming the offending field.
func invalidField(field, message string) *apiError {
	return &apiError{code: errInvalidRequest, message: field + ": " + message, details: func(w *jw) { w.kStr("field", field) }}
}

// resultError maps an engine refusal to its API error; nil for success codes.
func resultError(r *engine.Result) *apiError {
	switch r.Code {
	case engine.CodeOK, engine.CodeReplayed:
		return nil
	case engine.CodeConflict:
		return newError(errIdempotencyConflict, r.Message)
	case engine.CodeInsufficientFunds:
		wv := r.Wallet
		return &apiError{code: errInsufficientFunds, message: r.Message, details: func(w *jw) {
			w.kInt("available_micros", wv.AvailableMicros())
			w.kInt("pause_threshold_micros", wv.ThresholdMicros)
		}}
	case engine.CodeOutboundPaused:
		wv := r.Wallet
		return &apiError{code: errOutboundPaused, message: r.Message, details: func(w *jw) {
			w.kStrOrNull("outbound_block_reason", wv.BlockReason())
			w.kStrOrNull("outbound_block_details", wv.HoldDetails)
		}}
	case engine.CodeNotFound:
		return newError(errNotFound, r.Message)
	case engine.CodeNotRefundable:
		return newError(errNotRefundable, r.Message)
	case engine.CodeReservationClosed:
		return newError(errReservationClosed, r.Message)
	case engine.CodeNoRate:
		return newError(errNoRate, r.Message)
	}
	return invalid(r.Message)
}
