// Package e2e holds end-to-end tests that run real orbitd processes (see
// internal/testserver). Every response any test of this package receives is
// validated against api/openapi.yaml: TestMain installs the validator as
// testserver.DefaultOnResponse, and a response the document does not
// describe (status, headers, body) fails the test that made the request.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/orbit/orbit/internal/testserver"
)

const (
	oaSpecPath = "../api/openapi.yaml"
	oaJSONPath = "../server/openapi.json"
)

var (
	oaSpec   *openapi3.T
	oaRouter routers.Router
)

func TestMain(m *testing.M) {
	// The development provider's pages are HTML: validate them as text.
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("text/css", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("text/javascript", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("image/svg+xml", openapi3filter.PlainBodyDecoder)
	if err := oaLoadSpec(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	testserver.DefaultOnResponse = func(t testing.TB, req *http.Request, resp *testserver.Response) {
		if err := oaValidate(req, resp); err != nil {
			t.Errorf("response does not match api/openapi.yaml: %s %s -> %d: %v\nbody: %s",
				req.Method, req.URL.RequestURI(), resp.Status, err, oaClip(resp.Body))
		}
	}
	testserver.Main(m)
}

// oaLoadSpec loads and validates api/openapi.yaml and builds the router used
// to find the operation of each request.
func oaLoadSpec() error {
	doc, err := oaLoadDoc(oaSpecPath)
	if err != nil {
		return err
	}
	// The document's servers name fixed hosts; test servers listen on random
	// loopback ports. Without servers the router matches paths on any host.
	routing := *doc
	routing.Servers = nil
	r, err := gorillamux.NewRouter(&routing)
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	oaSpec, oaRouter = doc, r
	return nil
}

func oaLoadDoc(path string) (*openapi3.T, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return oaParseDoc(raw)
}

func oaParseDoc(raw []byte) (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		return nil, fmt.Errorf("load OpenAPI document: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("invalid OpenAPI document: %w", err)
	}
	return doc, nil
}

// oaValidate checks one response against the document: its status must
// be documented for the operation, and its headers and body must match. A
// request the router cannot place (an unknown path, or a documented path
// with an undocumented method) must be answered with the documented error
// envelope of 401, 404 or 405.
func oaValidate(req *http.Request, resp *testserver.Response) error {
	route, params, err := oaRouter.FindRoute(req)
	switch {
	case err == nil:
		oaRecord(route, resp.Status)
		in := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{
				Request:    req,
				PathParams: params,
				Route:      route,
			},
			Status: resp.Status,
			Header: resp.Header,
			Body:   io.NopCloser(bytes.NewReader(resp.Body)),
			Options: &openapi3filter.Options{
				IncludeResponseStatus: true,
				MultiError:            true,
			},
		}
		return openapi3filter.ValidateResponse(context.Background(), in)
	case errors.Is(err, routers.ErrMethodNotAllowed):
		// The org and admin APIs answer 405 after authentication; the other
		// paths answer 405, or 404 where they are off (the development
		// provider's pages while Stripe is configured).
		if oaAuthed(req) {
			return oaValidateUnrouted(resp, map[int]string{401: "Unauthenticated", 405: "MethodNotAllowed"})
		}
		return oaValidateUnrouted(resp, map[int]string{404: "NotFound", 405: "MethodNotAllowed"})
	case errors.Is(err, routers.ErrPathNotFound):
		if oaAuthed(req) {
			return oaValidateUnrouted(resp, map[int]string{401: "Unauthenticated", 404: "NotFound"})
		}
		return oaValidateUnrouted(resp, map[int]string{404: "NotFound"})
	default:
		return fmt.Errorf("router: %w", err)
	}
}

// oaAuthed reports whether a request is on an authenticated API, where
// credentials are checked before routing.
func oaAuthed(req *http.Request) bool {
	return strings.HasPrefix(req.URL.Path, "/api/v1/billing/") || strings.HasPrefix(req.URL.Path, "/admin/v1/")
}

// oaValidateUnrouted validates an answer to a request outside the documented
// operations against the component response for its status.
func oaValidateUnrouted(resp *testserver.Response, allowed map[int]string) error {
	name, ok := allowed[resp.Status]
	if !ok {
		return fmt.Errorf("status %d is not documented for a request outside the documented operations (want one of %v)", resp.Status, oaKeys(allowed))
	}
	ref := oaSpec.Components.Responses[name]
	if ref == nil || ref.Value == nil {
		return fmt.Errorf("components.responses.%s missing", name)
	}
	for h, hr := range ref.Value.Headers {
		if hr.Value.Required && resp.Header.Get(h) == "" {
			return fmt.Errorf("response header %q missing", h)
		}
	}
	mt := ref.Value.Content.Get(resp.Header.Get("Content-Type"))
	if mt == nil {
		return fmt.Errorf("unexpected Content-Type %q", resp.Header.Get("Content-Type"))
	}
	var v any
	if err := json.Unmarshal(resp.Body, &v); err != nil {
		return fmt.Errorf("body is not JSON: %w", err)
	}
	if err := mt.Schema.Value.VisitJSON(v, openapi3.MultiErrors()); err != nil {
		return fmt.Errorf("components.responses.%s: %w", name, err)
	}
	return nil
}

func oaKeys(m map[int]string) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

func oaClip(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + fmt.Sprintf("... (%d bytes)", len(b))
	}
	return string(b)
}

// oaSendRaw sends a request over a raw connection and validates the answer
// like the suite's clients do. It is for bodies above the server's 8 MiB
// transport limit: the server answers 413 and closes without reading the
// body, and net/http's client may then report the interrupted write instead
// of the answer; here the body is written in the background and the answer
// read regardless.
func oaSendRaw(t testing.TB, base, method, path string, headers map[string]string, body []byte) *testserver.Response {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	var head strings.Builder
	fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", method, path, u.Host, len(body))
	for k, v := range headers {
		fmt.Fprintf(&head, "%s: %s\r\n", k, v)
	}
	head.WriteString("\r\n")
	go func() {
		// Write errors are expected once the server refuses the body.
		if _, err := conn.Write([]byte(head.String())); err == nil {
			_, _ = conn.Write(body)
		}
	}()
	hr, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s (%d-byte body): %v", method, path, len(body), err)
	}
	defer hr.Body.Close()
	raw, _ := io.ReadAll(hr.Body)
	r := &testserver.Response{Status: hr.StatusCode, Header: hr.Header, Body: raw}
	_ = json.Unmarshal(raw, &r.JSON)
	req, _ := http.NewRequest(method, base+path, nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if err := oaValidate(req, r); err != nil {
		t.Errorf("response does not match api/openapi.yaml: %s %s -> %d: %v\nbody: %s", method, path, r.Status, err, oaClip(raw))
	}
	return r
}

// The recorder notes which documented operation answered which statuses, so
// a test can check that it exercised every route and status it should.
var (
	oaRecMu sync.Mutex
	oaRec   map[string]map[int]bool // "METHOD /path/{template}" -> statuses seen
)

func oaRecord(route *routers.Route, status int) {
	oaRecMu.Lock()
	defer oaRecMu.Unlock()
	if oaRec == nil {
		return
	}
	op := route.Method + " " + route.Path
	if oaRec[op] == nil {
		oaRec[op] = map[int]bool{}
	}
	oaRec[op][status] = true
}

// oaStartRecording clears and starts the recorder; oaStopRecording returns what
// it saw. Tests that record must not run in parallel with others.
func oaStartRecording() {
	oaRecMu.Lock()
	defer oaRecMu.Unlock()
	oaRec = map[string]map[int]bool{}
}

func oaStopRecording() map[string]map[int]bool {
	oaRecMu.Lock()
	defer oaRecMu.Unlock()
	out := oaRec
	oaRec = nil
	return out
}

// TestOpenAPIInSync fails when server/openapi.json is not what the generator
// makes from api/openapi.yaml now (run `go generate ./server/`).
func TestOpenAPIInSync(t *testing.T) {
	out := filepath.Join(t.TempDir(), "openapi.json")
	cmd := exec.Command("go", "run", "../internal/openapigen", "-in", oaSpecPath, "-out", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openapigen: %v\n%s", err, b)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(oaJSONPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("server/openapi.json is stale: run `go generate ./server/` (committed %d bytes, generated %d bytes)", len(got), len(want))
	}
	if _, err := oaParseDoc(got); err != nil {
		t.Fatal(err)
	}
}

// TestOpenAPIServed checks that a real server serves exactly the generated
// document at /openapi.json, and that it is a valid OpenAPI document.
func TestOpenAPIServed(t *testing.T) {
	s := testserver.Start(t)
	r := s.Anon().Do("GET", "/openapi.json", nil).Expect(t, 200)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	want, err := os.ReadFile(oaJSONPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.Body, want) {
		t.Errorf("GET /openapi.json (%d bytes) differs from server/openapi.json (%d bytes)", len(r.Body), len(want))
	}
	doc, err := oaParseDoc(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi %q, want 3.0.3", doc.OpenAPI)
	}
	if got, want := doc.Paths.Len(), oaSpec.Paths.Len(); got != want {
		t.Errorf("served document has %d paths, api/openapi.yaml %d", got, want)
	}
}
