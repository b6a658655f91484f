package routeros_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowshield/flowshield/routeros"
	"github.com/flowshield/flowshield/routeros/routerostest"
)

// selfSigned is a certificate like a router's own: not from any CA.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "router"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestTLS(t *testing.T) {
	emuCfg := routerostest.DefaultConfiguration()
	emuCfg.TLS = &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}
	for _, tc := range []struct {
		name     string
		insecure bool
		wantErr  string
	}{
		{"verified", false, "certificate"},
		{"insecure", true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := setup(t, emuCfg, func(c *routeros.Configuration) {
				c.TLS, c.TLSInsecure = true, tc.insecure
				c.DialTimeout = 10 * time.Second
			})
			res, err := f.r.Resource(ctxT(t))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("self-signed certificate accepted without TLSInsecure: %v", err)
				}
				return
			}
			if err != nil || res["board-name"] != "CHR" {
				t.Fatalf("resource over TLS: %v %v", res, err)
			}
		})
	}
}

func TestFatalRedials(t *testing.T) {
	f := setup(t, routerostest.DefaultConfiguration(), nil)
	ctx := ctxT(t)
	f.emu.Inject(routerostest.Fault{Kind: routerostest.Fatal, Message: "too many sessions"})
	_, err := f.r.Resource(ctx)
	if err == nil || routeros.IsTrap(err) || f.r.Connected() {
		t.Fatalf("after !fatal: %v, connected %v", err, f.r.Connected())
	}
	if _, err := f.r.Resource(ctx); err != nil {
		t.Fatalf("next call: %v", err)
	}
	if f.emu.Accepted() != 2 {
		t.Fatalf("%d connections, want 2", f.emu.Accepted())
	}
}

func TestPermissionsAndResource(t *testing.T) {
	for _, tc := range []struct {
		group     string
		wantWrite bool
	}{{"full", true}, {"read", false}} {
		t.Run(tc.group, func(t *testing.T) {
			emuCfg := routerostest.DefaultConfiguration()
			emuCfg.Group = tc.group
			f := setup(t, emuCfg, nil)
			ctx := ctxT(t)
			pol, err := f.r.Permissions(ctx)
			if err != nil {
				t.Fatal(err)
			}
			has := map[string]bool{}
			for _, p := range pol {
				has[p] = true
			}
			if !has["api"] || !has["read"] || has["write"] != tc.wantWrite || has["!ftp"] {
				t.Fatalf("policies %v", pol)
			}
			res, err := f.r.Resource(ctx)
			if err != nil || !strings.HasPrefix(res["version"], "7.") || res["architecture-name"] == "" {
				t.Fatalf("resource %v %v", res, err)
			}
		})
	}
}

// caSigned is a CA and a router certificate it signed for 127.0.0.1.
func caSigned(t *testing.T) (ca *x509.Certificate, leaf tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "flowshield test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	if ca, err = x509.ParseCertificate(caDER); err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "router"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return ca, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func writePEM(t *testing.T, certs ...*x509.Certificate) string {
	t.Helper()
	var buf []byte
	for _, c := range certs {
		buf = append(buf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, buf, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestTLSVerification: API-SSL verified by a pinned fingerprint (the
// router's self-signed certificate) or by a CA file; a wrong pin fails
// with CertificateMismatchError, a wrong CA with the x509 error, and
// neither reaches the login.
func TestTLSVerification(t *testing.T) {
	self := selfSigned(t)
	selfPin := routeros.Fingerprint(sha256.Sum256(self.Certificate[0]))
	ca, signed := caSigned(t)
	otherCA, _ := caSigned(t)
	signedPin := routeros.Fingerprint(sha256.Sum256(signed.Certificate[0]))
	for _, tc := range []struct {
		name     string
		cert     tls.Certificate
		pin      routeros.Fingerprint
		caFile   string
		mismatch bool   // a CertificateMismatchError
		wantErr  string // else an error containing this
	}{
		{name: "right pin, self-signed", cert: self, pin: selfPin},
		{name: "wrong pin", cert: self, pin: signedPin, mismatch: true},
		{name: "CA file", cert: signed, caFile: writePEM(t, ca)},
		{name: "CA file and pin", cert: signed, caFile: writePEM(t, ca), pin: signedPin},
		{name: "CA file, wrong pin", cert: signed, caFile: writePEM(t, ca), pin: selfPin, mismatch: true},
		{name: "wrong CA", cert: signed, caFile: writePEM(t, otherCA), wantErr: "certificate signed by unknown authority"},
		{name: "self-signed with a CA file", cert: self, caFile: writePEM(t, ca), wantErr: "certificate"},
		{name: "CA file missing", cert: signed, caFile: filepath.Join(t.TempDir(), "none.pem"), wantErr: "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			emuCfg := routerostest.DefaultConfiguration()
			emuCfg.TLS = &tls.Config{Certificates: []tls.Certificate{tc.cert}}
			f := setup(t, emuCfg, func(c *routeros.Configuration) {
				c.TLS, c.TLSCAFile, c.TLSFingerprint = true, tc.caFile, tc.pin
				c.DialTimeout = 10 * time.Second
			})
			res, err := f.r.Resource(ctxT(t))
			var mismatch *routeros.CertificateMismatchError
			switch {
			case tc.mismatch:
				if !errors.As(err, &mismatch) || mismatch.Want != tc.pin || mismatch.Got != routeros.Fingerprint(sha256.Sum256(tc.cert.Certificate[0])) {
					t.Fatalf("error %v (%T), want a CertificateMismatchError", err, err)
				}
				if !strings.Contains(err.Error(), mismatch.Got.String()) {
					t.Fatalf("error %q does not name the router's fingerprint", err)
				}
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || errors.As(err, &mismatch) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
			default:
				if err != nil || res["board-name"] != "CHR" {
					t.Fatalf("resource over TLS: %v %v", res, err)
				}
				return
			}
			if f.emu.Logins() != 0 {
				t.Fatalf("%d logins through an unverified connection", f.emu.Logins())
			}
		})
	}
}

func TestParseFingerprint(t *testing.T) {
	const hexLower = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	want, err := routeros.ParseFingerprint(hexLower)
	if err != nil {
		t.Fatal(err)
	}
	colons := want.String()
	if colons != "01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF" {
		t.Fatalf("String %q", colons)
	}
	for _, ok := range []string{strings.ToUpper(hexLower), colons, strings.ToLower(colons), " " + hexLower + "\n"} {
		if got, err := routeros.ParseFingerprint(ok); err != nil || got != want {
			t.Errorf("%q: %v %v", ok, got, err)
		}
	}
	for _, bad := range []string{"", hexLower[:62], hexLower + "00", "zz" + hexLower[2:], "0:123" + colons[5:], colons + ":", "sha256:" + hexLower} {
		if _, err := routeros.ParseFingerprint(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
