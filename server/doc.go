// Package server is Orbit's HTTP face on fasthttp: routing, strict request
// decoding (package jsonx), the {data, meta} / {error, meta} envelope, API-key
// and admin-token auth with roles, the org Billing API and the operator API,
// health, readiness and Prometheus metrics.
//
// Handlers only decode, call the store and encode: every decision about
// money is the engine's. The package declares the small Store interface it
// needs; cmd/orbitd satisfies it with raftstore.
//
// fasthttp rule: nothing from a RequestCtx (body, headers, args) is kept
// after a handler returns or handed to another goroutine; everything that
// enters a command is copied (string conversions copy).
package server
