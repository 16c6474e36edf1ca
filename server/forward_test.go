package server

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"

	"github.com/valyala/fasthttp"
)

// followerStore is a follower as the server sees it: not the leader, with
// its own recovery still under way (not ready), knowing the leader's HTTP
// address, and maybe stopped on a storage fault.
type followerStore struct {
	*fuzzStore
	leader string
	fault  error
}

func (f *followerStore) Ready() bool            { return false }
func (f *followerStore) IsLeader() bool         { return false }
func (f *followerStore) LeaderHTTPAddr() string { return f.leader }
func (f *followerStore) Fault() error           { return f.fault }

// TestRecoveringFollowerForwards: a follower forwards API requests to the
// leader while its own recovery is under way (the answer comes from the
// leader's state); it answers 503 when it does not know where the leader
// is, or when it stopped on a storage fault.
func TestRecoveringFollowerForwards(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	leader := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if len(ctx.Request.Header.Peek(forwardedHeader)) == 0 {
			ctx.SetStatusCode(400)
			return
		}
		ctx.SetStatusCode(200)
		ctx.SetBodyString("from the leader")
	}}
	go func() { _ = leader.Serve(ln) }()
	defer leader.Shutdown()

	for _, tc := range []struct {
		name   string
		leader string
		fault  error
		status int
		body   string
	}{
		{"recovering, leader known", ln.Addr().String(), nil, 200, "from the leader"},
		{"leader unknown", "", nil, 503, ""},
		{"storage fault", ln.Addr().String(), errors.New("wal: storage fault"), 503, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &followerStore{fuzzStore: newFuzzStore(), leader: tc.leader, fault: tc.fault}
			srv := New(Config{Store: st, AdminToken: fuzzAdmin, PublicURL: "http://127.0.0.1:1",
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			var ctx fasthttp.RequestCtx
			ctx.Request.Header.SetMethod("GET")
			ctx.Request.SetRequestURI("/api/v1/billing/balance")
			ctx.Request.Header.Set("X-API-Key", fuzzKey)
			srv.Handle(&ctx)
			if got := ctx.Response.StatusCode(); got != tc.status {
				t.Fatalf("status %d, want %d: %s", got, tc.status, ctx.Response.Body())
			}
			if tc.body != "" && string(ctx.Response.Body()) != tc.body {
				t.Fatalf("body %q, want the leader's %q", ctx.Response.Body(), tc.body)
			}
		})
	}
}
