package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
)

// tlsSetup is what --tls-cert and --tls-key give: the listeners' server
// configuration and the client configuration nodes use to reach each other
// (forwarding to the leader, joining).
type tlsSetup struct {
	server *tls.Config
	client *tls.Config
}

// loadTLS reads the PEM certificate chain and key. Nil when TLS is off.
// Peers are verified against the system roots plus the node's own
// certificate chain, so a cluster sharing one certificate (self-signed or
// from a private CA whose root is in the chain) needs nothing more.
func loadTLS(certFile, keyFile string) (*tlsSetup, error) {
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	pem, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	roots.AppendCertsFromPEM(pem)
	return &tlsSetup{
		server: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		client: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
	}, nil
}

// listen opens a TCP listener, wrapped in TLS when t is set.
func listen(addr string, t *tlsSetup) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	if t != nil {
		ln = tls.NewListener(ln, t.server)
	}
	return ln, nil
}

// scheme is the URL scheme of this node's listeners.
func (t *tlsSetup) scheme() string {
	if t != nil {
		return "https"
	}
	return "http"
}

// clientConfig is nil when TLS is off.
func (t *tlsSetup) clientConfig() *tls.Config {
	if t == nil {
		return nil
	}
	return t.client
}
