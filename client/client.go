package client

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults of a Client; each can be changed with an Option.
const (
	// DefaultTimeout bounds a call whose context has no deadline.
	DefaultTimeout = 30 * time.Second
	// DefaultRetries is how many times a retry-safe request is repeated
	// after its first attempt.
	DefaultRetries = 3
	// DefaultBackoffBase is the first retry's backoff before jitter; each
	// further retry doubles it, up to DefaultBackoffMax.
	DefaultBackoffBase = 100 * time.Millisecond
	// DefaultBackoffMax caps the backoff between two attempts.
	DefaultBackoffMax = 5 * time.Second

	// retryAfterMax caps a server's Retry-After.
	retryAfterMax = 60 * time.Second
	// responseBytesMax bounds a response body read into memory.
	responseBytesMax = 64 << 20
	// userAgent is sent with every request unless WithUserAgent changes it.
	userAgent = "orbit-go-client/1"
)

// Client calls the Orbit API. Make one with New; it is safe for concurrent
// use.
type Client struct {
	baseURL     string
	apiKey      string
	adminToken  string
	httpClient  *http.Client
	retries     int
	timeout     time.Duration
	backoffBase time.Duration
	backoffMax  time.Duration
	userAgent   string
	observe     func(resp *http.Response, body []byte)
}

// Option configures a Client.
type Option func(*Client)

// WithAPIKey sets the org API key (dv_live_sk_...) sent as X-API-Key by the
// org methods.
func WithAPIKey(key string) Option { return func(c *Client) { c.apiKey = key } }

// WithAdminToken sets the operator token sent as Authorization: Bearer by
// the admin methods.
func WithAdminToken(token string) Option { return func(c *Client) { c.adminToken = token } }

// WithHTTPClient sets the http.Client used for every request (nil keeps the
// default). Its Timeout, if any, applies per attempt; deadlines are better
// given through the context.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.httpClient = hc
		}
	}
}

// WithRetries sets how many times a retry-safe request is repeated after its
// first attempt (0 disables retries; negative counts as 0).
func WithRetries(n int) Option {
	return func(c *Client) {
		if n < 0 {
			n = 0
		}
		c.retries = n
	}
}

// WithTimeout sets the deadline of a call whose context has none (0 or
// negative: no default deadline).
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithBackoff sets the first retry's backoff and the cap of the exponential
// backoff. Each wait is drawn uniformly from [d/2, d] (jitter).
func WithBackoff(base, maxBackoff time.Duration) Option {
	return func(c *Client) {
		if base > 0 {
			c.backoffBase = base
		}
		if maxBackoff > 0 {
			c.backoffMax = maxBackoff
		}
	}
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// WithResponseObserver calls fn with every HTTP response the client
// receives (each attempt of a retried call) and its whole body, after the
// body was read. fn must not keep resp.Body; body is fn's to keep. Useful
// for logging, or to print the raw JSON the server sent.
func WithResponseObserver(fn func(resp *http.Response, body []byte)) Option {
	return func(c *Client) { c.observe = fn }
}

// New returns a client for the server at baseURL (for example
// "http://127.0.0.1:8080"; a trailing slash is ignored).
func New(baseURL string, opts ...Option) *Client {
	c := &Client{
		baseURL:     strings.TrimRight(baseURL, "/"),
		httpClient:  http.DefaultClient,
		retries:     DefaultRetries,
		timeout:     DefaultTimeout,
		backoffBase: DefaultBackoffBase,
		backoffMax:  DefaultBackoffMax,
		userAgent:   userAgent,
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// BaseURL returns the server address the client calls.
func (c *Client) BaseURL() string { return c.baseURL }

type requestIDKey struct{}

// WithRequestID returns a context whose calls send id as X-Request-Id; the
// server echoes it as the response's request id (meta.request_id).
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// auth names the credential a request carries.
type auth int

const (
	authOrg auth = iota
	authAdmin
)

// request is one logical API call.
type request struct {
	method string
	path   string // below the base URL, already escaped
	query  url.Values
	body   any // nil: no body; else marshalled to JSON once
	auth   auth
	// idempotent marks a request whose repetition cannot apply it twice, so
	// that it may be retried.
	idempotent bool
	// idempotencyKey, when set, is sent as the Idempotency-Key header on
	// every attempt.
	idempotencyKey string
}

// meta is what a call learned beyond its data.
type meta struct {
	status    int
	replayed  bool
	requestID string
}

// envelope is the API's answer: {"data", "meta"} or {"error", "meta"}.
type envelope struct {
	Data  json.RawMessage `json:"data"`
	Error *Error          `json:"error"`
	Meta  struct {
		RequestID string `json:"request_id"`
		Timestamp string `json:"timestamp"`
	} `json:"meta"`
}

// do runs r, retrying when that is safe, and decodes the envelope's data
// into out (when out is not nil).
func (c *Client) do(ctx context.Context, r *request, out any) (meta, error) {
	if _, ok := ctx.Deadline(); !ok && c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	var payload []byte
	if r.body != nil {
		var err error
		if payload, err = json.Marshal(r.body); err != nil {
			return meta{}, fmt.Errorf("orbit: encode request: %w", err)
		}
	}
	u := c.baseURL + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	for attempt := 0; ; attempt++ {
		resp, body, err := c.attempt(ctx, r, u, payload)
		if err == nil && resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusTooManyRequests {
			return decode(resp, body, out)
		}
		var last error
		var wait time.Duration
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // the method and path are named below
			}
			last = fmt.Errorf("orbit: %s %s: %w", r.method, r.path, err)
		} else {
			_, last = decode(resp, body, nil)
			wait, _ = retryAfter(resp.Header)
		}
		if !r.idempotent || attempt >= c.retries || ctx.Err() != nil {
			return meta{}, last
		}
		if wait == 0 {
			wait = c.backoff(attempt)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			// The wait would outlive the call's deadline: answer now.
			return meta{}, last
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return meta{}, last
		case <-t.C:
		}
	}
}

// attempt sends one HTTP request and reads the whole response.
func (c *Client) attempt(ctx context.Context, r *request, u string, payload []byte) (*http.Response, []byte, error) {
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, rd)
	if err != nil {
		return nil, nil, err
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	switch r.auth {
	case authOrg:
		if c.apiKey != "" {
			req.Header.Set("X-API-Key", c.apiKey)
		}
	case authAdmin:
		if c.adminToken != "" {
			req.Header.Set("Authorization", "Bearer "+c.adminToken)
		}
	}
	if r.idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", r.idempotencyKey)
	}
	if id, ok := ctx.Value(requestIDKey{}).(string); ok && id != "" {
		req.Header.Set("X-Request-Id", id)
	}
	resp, err := c.httpClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, responseBytesMax))
	if err != nil {
		return nil, nil, fmt.Errorf("read response: %w", err)
	}
	if c.observe != nil {
		c.observe(resp, body)
	}
	return resp, body, nil
}

// decode turns a response into its meta and out, or into an *Error.
func decode(resp *http.Response, body []byte, out any) (meta, error) {
	m := meta{
		status:    resp.StatusCode,
		replayed:  strings.EqualFold(resp.Header.Get("Idempotent-Replayed"), "true"),
		requestID: resp.Header.Get("X-Request-Id"),
	}
	var env envelope
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	envErr := dec.Decode(&env)
	if envErr == nil && env.Meta.RequestID != "" {
		m.requestID = env.Meta.RequestID
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		if envErr == nil && env.Error != nil && env.Error.Code != "" {
			e := env.Error
			e.Status = resp.StatusCode
			e.RequestID = m.requestID
			return m, e
		}
		return m, &Error{
			Status:    resp.StatusCode,
			Code:      CodeUnexpectedResponse,
			Message:   unexpected(resp, body),
			RequestID: m.requestID,
		}
	}
	if envErr != nil || env.Data == nil {
		return m, &Error{
			Status:    resp.StatusCode,
			Code:      CodeUnexpectedResponse,
			Message:   "response is not the API's JSON envelope: " + unexpected(resp, body),
			RequestID: m.requestID,
		}
	}
	if out != nil {
		dec := json.NewDecoder(bytes.NewReader(env.Data))
		dec.UseNumber()
		if err := dec.Decode(out); err != nil {
			return m, fmt.Errorf("orbit: decode response data: %w", err)
		}
	}
	return m, nil
}

// unexpected describes a response that is not the API's.
func unexpected(resp *http.Response, body []byte) string {
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	if s == "" {
		return resp.Status
	}
	return resp.Status + ": " + s
}

// retryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(h http.Header) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0, false
		}
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
	} else {
		return 0, false
	}
	if d < 0 {
		d = 0
	}
	return min(d, retryAfterMax), true
}

// backoff returns the wait before retry number attempt+1: exponential, capped,
// with jitter drawn from [d/2, d].
func (c *Client) backoff(attempt int) time.Duration {
	d := c.backoffBase
	for i := 0; i < attempt && d < c.backoffMax; i++ {
		d *= 2
	}
	d = min(d, c.backoffMax)
	half := d / 2
	return half + rand.N(d-half+1)
}

// newKey returns a random idempotency key or reference: prefix + 32 hex
// digits from crypto/rand.
func newKey(prefix string) string {
	var raw [16]byte
	if _, err := crand.Read(raw[:]); err != nil {
		// crypto/rand does not fail on supported platforms; should it,
		// a reused key would be unsafe, so stop here.
		panic("orbit: crypto/rand: " + err.Error())
	}
	return prefix + hex.EncodeToString(raw[:])
}

// seg escapes one path segment.
func seg(s string) string { return url.PathEscape(s) }

// errMissing is returned for a required argument left empty.
func errMissing(what string) error { return errors.New("orbit: " + what + " is required") }
