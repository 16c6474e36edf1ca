// Package dashboard serves Orbit's billing dashboard: a static single page
// (HTML, CSS and vanilla JavaScript, embedded with go:embed, no build step
// and no external assets) that signs in with an org API key and calls the
// org API (/api/v1/billing/...) of the same server from the browser.
//
// Routes (GET): "/" and "/dashboard/" answer index.html, "/dashboard/<file>"
// the other assets. Every answer carries a strict Content-Security-Policy
// (default-src 'self', no inline script or style) and nosniff; index.html
// is Cache-Control: no-store, the assets no-cache (revalidated each load).
package dashboard

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"path"
	"strings"

	"github.com/valyala/fasthttp"
)

//go:embed static
var static embed.FS

// CSP is the Content-Security-Policy of every dashboard answer: only this
// origin's scripts, styles, images and API; no framing, no plugins.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; " +
	"form-action 'self'; frame-ancestors 'none'"

type asset struct {
	body        []byte
	contentType string
	etag        string
}

var assets = load()

func load() map[string]asset {
	types := map[string]string{
		".html": "text/html; charset=utf-8",
		".css":  "text/css; charset=utf-8",
		".js":   "text/javascript; charset=utf-8",
		".svg":  "image/svg+xml",
	}
	out := map[string]asset{}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct := types[path.Ext(p)]
		if ct == "" {
			ct = "application/octet-stream"
		}
		out[strings.TrimPrefix(p, "static/")] = asset{body: b, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic("dashboard: embedded assets: " + err.Error())
	}
	return out
}

// file maps a request path to an asset name ("" when it is not one).
func file(p string) string {
	switch {
	case p == "/" || p == "/dashboard/":
		return "index.html"
	case strings.HasPrefix(p, "/dashboard/"):
		name := strings.TrimPrefix(p, "/dashboard/")
		if name == "index.html" {
			return name
		}
		if _, ok := assets[name]; ok && !strings.Contains(name, "/") {
			return name
		}
	}
	return ""
}

// Has reports whether path is a dashboard page or asset.
func Has(path string) bool { return file(path) != "" }

// Serve answers a GET of a path for which Has is true.
func Serve(ctx *fasthttp.RequestCtx) {
	name := file(string(ctx.Path()))
	a, ok := assets[name]
	if !ok {
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		return
	}
	h := &ctx.Response.Header
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.SetContentType(a.contentType)
	if name == "index.html" {
		h.Set("Cache-Control", "no-store")
	} else {
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		if string(ctx.Request.Header.Peek("If-None-Match")) == a.etag {
			ctx.SetStatusCode(fasthttp.StatusNotModified)
			return
		}
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetBody(a.body)
}
