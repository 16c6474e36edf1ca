package dashboard

import (
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestHas(t *testing.T) {
	for p, want := range map[string]bool{
		"/": true, "/dashboard/": true, "/dashboard/index.html": true, "/dashboard/app.js": true,
		"/dashboard/style.css": true, "/dashboard/favicon.svg": true,
		"/dashboard": false, "/dashboard/nope.js": false, "/dashboard/../app.js": false,
		"/dashboard/static/app.js": false, "/index.html": false, "/app.js": false, "/api/v1/billing/balance": false,
	} {
		if got := Has(p); got != want {
			t.Errorf("Has(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestServe(t *testing.T) {
	for _, c := range []struct{ path, ctype, cache, body string }{
		{"/", "text/html; charset=utf-8", "no-store", "<!doctype html>"},
		{"/dashboard/app.js", "text/javascript; charset=utf-8", "no-cache", "'use strict'"},
		{"/dashboard/style.css", "text/css; charset=utf-8", "no-cache", ":root"},
	} {
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI(c.path)
		Serve(&ctx)
		h := &ctx.Response.Header
		if ctx.Response.StatusCode() != 200 || string(h.ContentType()) != c.ctype || string(h.Peek("Cache-Control")) != c.cache {
			t.Errorf("%s: %d %q %q", c.path, ctx.Response.StatusCode(), h.ContentType(), h.Peek("Cache-Control"))
		}
		if string(h.Peek("Content-Security-Policy")) != CSP || !strings.Contains(string(ctx.Response.Body()), c.body) {
			t.Errorf("%s: CSP %q or body", c.path, h.Peek("Content-Security-Policy"))
		}
	}
	// Assets revalidate with their ETag.
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/dashboard/app.js")
	ctx.Request.Header.Set("If-None-Match", assets["app.js"].etag)
	Serve(&ctx)
	if ctx.Response.StatusCode() != 304 || len(ctx.Response.Body()) != 0 {
		t.Errorf("conditional GET: %d", ctx.Response.StatusCode())
	}
}

// The page must not need anything the CSP forbids: no inline script or
// style, no external URL.
func TestNoInlineOrExternal(t *testing.T) {
	html := string(assets["index.html"].body)
	for _, bad := range []string{"<script>", "style=", "<style", "onclick=", "onload=", "javascript:", "//cdn", "https://", "http://"} {
		if strings.Contains(html, bad) {
			t.Errorf("index.html contains %q", bad)
		}
	}
	js := string(assets["app.js"].body)
	for _, bad := range []string{"innerHTML", "eval(", "new Function", "localStorage.setItem", "document.write"} {
		if strings.Contains(js, bad) {
			t.Errorf("app.js contains %q", bad)
		}
	}
}
