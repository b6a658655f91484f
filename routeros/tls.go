package routeros

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
)

// Fingerprint is the SHA-256 of a certificate's DER encoding, as
// RouterOS's /certificate print shows it (fingerprint=) and as
// `openssl x509 -noout -fingerprint -sha256` prints it.
type Fingerprint [sha256.Size]byte

// ParseFingerprint reads 64 hex digits, with or without a colon between
// each pair ("AB:CD:..." or "abcd..."), in either case.
func ParseFingerprint(s string) (Fingerprint, error) {
	var f Fingerprint
	hexDigits := strings.TrimSpace(s)
	if strings.Contains(hexDigits, ":") {
		pairs := strings.Split(hexDigits, ":")
		for _, p := range pairs {
			if len(p) != 2 {
				return f, fmt.Errorf("certificate fingerprint %q: colons must separate pairs of hex digits", s)
			}
		}
		hexDigits = strings.Join(pairs, "")
	}
	if len(hexDigits) != 2*len(f) {
		return f, fmt.Errorf("certificate fingerprint %q: want %d hex digits (SHA-256), got %d", s, 2*len(f), len(hexDigits))
	}
	if _, err := hex.Decode(f[:], []byte(hexDigits)); err != nil {
		return f, fmt.Errorf("certificate fingerprint %q: %w", s, err)
	}
	return f, nil
}

// String is the fingerprint as upper-case pairs joined by colons.
func (f Fingerprint) String() string {
	var b strings.Builder
	for i, c := range f {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}

// CertificateMismatchError is a router whose API-SSL certificate is not
// the pinned one (Configuration.TLSFingerprint): another certificate
// installed on the router, or another host answering at its address.
type CertificateMismatchError struct {
	Address   string
	Want, Got Fingerprint
}

func (e *CertificateMismatchError) Error() string {
	return fmt.Sprintf("the TLS certificate of %s has SHA-256 fingerprint %s, not the pinned %s", e.Address, e.Got, e.Want)
}

// ReadCAFile reads a PEM file of CA certificates into a pool; a file with
// none is an error.
func ReadCAFile(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// tlsConfig is the API-SSL client configuration: the system's roots (or
// TLSCAFile's, read at every dial so a replaced file applies) with the
// address's host as server name; with TLSFingerprint, the router's own
// certificate must also have that hash, and without a CA file it is all
// that is checked, so the router's default self-signed certificate can be
// pinned.
func (r *Router) tlsConfig() (*tls.Config, error) {
	host, _, _ := net.SplitHostPort(r.cfg.Address)
	c := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if r.cfg.TLSCAFile != "" {
		pool, err := ReadCAFile(r.cfg.TLSCAFile)
		if err != nil {
			return nil, err
		}
		c.RootCAs = pool
	}
	pin, pinned := r.cfg.TLSFingerprint, r.cfg.TLSFingerprint != (Fingerprint{})
	switch {
	case r.cfg.TLSInsecure && !pinned:
		c.InsecureSkipVerify = true //nolint:gosec // operator's choice for the router's self-signed certificate
	case pinned && r.cfg.TLSCAFile == "":
		// the pin replaces the chain and name checks, done below instead
		c.InsecureSkipVerify = true //nolint:gosec // VerifyConnection checks the pinned hash
	}
	if pinned {
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the router sent no certificate")
			}
			got := Fingerprint(sha256.Sum256(cs.PeerCertificates[0].Raw))
			if !bytes.Equal(got[:], pin[:]) {
				return &CertificateMismatchError{Address: r.cfg.Address, Want: pin, Got: got}
			}
			return nil
		}
	}
	return c, nil
}
