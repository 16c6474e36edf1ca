package server

import (
	_ "embed"

	"github.com/valyala/fasthttp"
)

// openAPIJSON is api/openapi.yaml converted to JSON at build time by
// `go generate` (see gen.go); served at /openapi.json.
//
//go:embed openapi.json
var openAPIJSON []byte

func serveOpenAPI(ctx *fasthttp.RequestCtx, rs *reqState) {
	ctx.Response.Header.SetContentType("application/json")
	ctx.SetStatusCode(200)
	ctx.SetBody(openAPIJSON)
}
