package main

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
)

// startDebug serves Go's profiles (pprof) on addr, for finding where time
// goes under load. It is off unless --debug-addr is set; bind it to
// loopback: profiles reveal internals.
func startDebug(addr string, logger *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	go func() {
		if err := http.ListenAndServe(addr, mux); err != nil {
			logger.Error("debug listener stopped", "addr", addr, "err", err)
		}
	}()
}

// loopbackAddr reports whether addr is host:port with a loopback host.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
