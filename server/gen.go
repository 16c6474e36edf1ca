package server

// openapi.json is api/openapi.yaml, validated and converted to compact JSON.
// Regenerate it after editing the YAML (TestOpenAPIInSync in e2e fails when
// the two differ):
//
//go:generate go run ../internal/openapigen -in ../api/openapi.yaml -out openapi.json
