package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orbit/orbit/client"
	"github.com/orbit/orbit/internal/testserver"
)

// mustSelfSignedCert writes a self-signed certificate for 127.0.0.1 and
// its key as PEM files, and returns their paths and a pool trusting it.
func mustSelfSignedCert(t *testing.T) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "orbit test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
}

// TestTLS: with --tls-cert/--tls-key the API is HTTPS only: the operator
// API, charges and the Go SDK work over it, a client that does not trust
// the certificate is refused at the handshake, and plain HTTP gets no
// answer.
func TestTLS(t *testing.T) {
	certFile, keyFile, roots := mustSelfSignedCert(t)
	s := testserver.New(t)
	s.EnableTLS(certFile, keyFile, roots)
	s.Start()
	if !strings.HasPrefix(s.URL, "https://") {
		t.Fatalf("URL %s", s.URL)
	}
	org := s.MustOrg(t, "TLS", 1_000_000)
	r := s.Key(org.Key).Do("POST", "/api/v1/billing/charges", chargeBody("tls-1", 1000)).Expect(t, 201)
	if r.Data()["transaction"] == nil {
		t.Fatalf("charge over TLS: %s", r.Body)
	}
	s.Anon().Do("GET", "/healthz", nil).Expect(t, 200)

	// The Go SDK, given a client that trusts the certificate.
	sdk := client.New(s.URL, client.WithAPIKey(org.Key), client.WithHTTPClient(s.HTTPClient()))
	b, err := sdk.Balance(context.Background())
	if err != nil || b.BalanceMicros != 999_000 {
		t.Fatalf("SDK balance over TLS: %+v, %v", b, err)
	}

	// A client without the certificate in its roots fails the handshake.
	untrusting := &http.Client{Timeout: 5 * time.Second}
	if resp, err := untrusting.Get(s.URL + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatalf("a client that does not trust the certificate got %d", resp.StatusCode)
	} else if !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusting client: %v, want a certificate error", err)
	}
	// Plain HTTP on the TLS port gets no HTTP answer.
	plain := &http.Client{Timeout: 5 * time.Second}
	if resp, err := plain.Get("http://" + s.HTTPAddr + "/healthz"); err == nil {
		defer resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatalf("plain HTTP on the TLS listener answered 200")
		}
	}
	// Only TLS 1.2 and later are offered.
	conn, err := tls.Dial("tcp", s.HTTPAddr, &tls.Config{RootCAs: roots, MaxVersion: tls.VersionTLS11})
	if err == nil {
		conn.Close()
		t.Fatalf("a TLS 1.1 handshake succeeded")
	}
}

// TestTLSCluster: two nodes sharing one certificate: the second joins over
// HTTPS, and writes sent to the follower are forwarded to the leader over
// HTTPS and land once.
func TestTLSCluster(t *testing.T) {
	certFile, keyFile, roots := mustSelfSignedCert(t)
	n1 := testserver.New(t)
	n1.ExtraArgs = []string{"--node-id", "node1"}
	n1.EnableTLS(certFile, keyFile, roots)
	n1.Start()
	n2 := testserver.New(t)
	n2.ExtraArgs = []string{"--node-id", "node2", "--join", n1.HTTPAddr}
	n2.EnableTLS(certFile, keyFile, roots)
	n2.Start()
	testserver.WaitFor(t, 30*time.Second, "node2 a voter, knowing the leader", func() bool {
		r, err := n2.Admin().TryDo("GET", "/admin/v1/cluster", nil)
		return err == nil && r.Status == 200 && len(r.Data()["nodes"].([]any)) == 2 && r.Data()["leader"] == "node1"
	})
	// The follower forwards once it has applied the leader's HTTP address.
	testserver.WaitFor(t, 30*time.Second, "node2 forwarding to the leader", func() bool {
		r, err := n2.Admin().TryDo("GET", "/admin/v1/orgs", nil)
		return err == nil && r.Status == 200
	})
	org := n2.MustOrg(t, "TLS cluster", 1_000_000) // forwarded: node2 follows
	for i, ref := range []string{"tc-1", "tc-2", "tc-1"} {
		want := 201
		if i == 2 {
			want = 200 // the same reference again: replayed, not charged twice
		}
		n2.Key(org.Key).Do("POST", "/api/v1/billing/charges", chargeBody(ref, 1000)).Expect(t, want)
	}
	bal := n1.Key(org.Key).Do("GET", "/api/v1/billing/balance", nil).Expect(t, 200).Data()
	if num(t, bal, "balance_micros") != 998_000 {
		t.Fatalf("balance on the leader %v, want 998000", bal["balance_micros"])
	}
}
