// Command openapigen validates api/openapi.yaml with kin-openapi and writes
// it as compact JSON for the server to embed (see server/gen.go):
//
//	go run ./internal/openapigen -in api/openapi.yaml -out server/openapi.json
//
// The output is deterministic (object keys sorted), so a test can regenerate
// it and compare it with the committed file.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/getkin/kin-openapi/openapi3"
)

func main() {
	in := flag.String("in", "api/openapi.yaml", "the OpenAPI document (YAML or JSON)")
	out := flag.String("out", "server/openapi.json", "where to write the compact JSON")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "openapigen:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	src, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	js, err := convert(src)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if old, err := os.ReadFile(out); err == nil && bytes.Equal(old, js) {
		return nil // unchanged: keep the file's timestamp
	}
	return os.WriteFile(out, js, 0o644)
}

// convert loads and validates an OpenAPI document and returns it as compact
// JSON with a trailing newline.
func convert(src []byte) ([]byte, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(src)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("invalid OpenAPI document: %w", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return buf.Bytes(), nil
}
