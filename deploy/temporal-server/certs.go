package main

// `temporal-server certs --dir DIR`: a private CA and the cluster's
// certificates, ECDSA P-256, as PEM files (keys PKCS#8, mode 0600):
//
//	ca.pem ca.key                         the cluster's CA (clients trust it; it signs everything)
//	server.pem server.key                 the frontend (names: --hosts, plus hv-temporal)
//	hv-temporal-system.pem/.key           Temporal's system worker → frontend
//	hv-worker.pem/.key                    the hypervisor's workers (policy.go: RoleWorker)
//	hv-ui.pem/.key                        the Web UI server (read-only)
//	<agent>.pem/.key                      one per --agents name (agents' clients)
//
// Files that exist are kept, so a cluster's data folder keeps its CA across
// restarts; a missing leaf is issued by the existing CA.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

const certValidity = 825 * 24 * time.Hour

type issued struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func writePEM(file, kind string, der []byte, mode os.FileMode) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	defer f.Close()
	return pem.Encode(f, &pem.Block{Type: kind, Bytes: der})
}

func readPair(dir, name string) (*issued, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, name+".pem"))
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, name+".key"))
	if err != nil {
		return nil, err
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, fmt.Errorf("%s: not PEM", name)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, err
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s.key: not an ECDSA key", name)
	}
	return &issued{cert, key}, nil
}

func issue(dir, name string, template *x509.Certificate, parent *issued) (*issued, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	template.SerialNumber = serial
	template.NotBefore = time.Now().Add(-time.Hour)
	template.NotAfter = time.Now().Add(certValidity)
	signer, signerKey := template, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, template, signer, &key.PublicKey, signerKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	// The key first and private; the certificate last marks the pair complete.
	if err := writePEM(filepath.Join(dir, name+".key"), "PRIVATE KEY", keyDER, 0o600); err != nil {
		return nil, err
	}
	if err := writePEM(filepath.Join(dir, name+".pem"), "CERTIFICATE", der, 0o644); err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &issued{cert, key}, nil
}

func exists(dir, name string) bool {
	_, err := os.Stat(filepath.Join(dir, name+".pem"))
	return err == nil
}

// WriteCerts issues what is missing in dir and returns the files it wrote.
func WriteCerts(dir string, hosts, agents []string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var written []string
	var ca *issued
	var err error
	if exists(dir, "ca") {
		if ca, err = readPair(dir, "ca"); err != nil {
			return nil, fmt.Errorf("the existing CA in %s: %w", dir, err)
		}
	} else {
		// A half-written pair (key without certificate) from an interrupted run: start it again.
		_ = os.Remove(filepath.Join(dir, "ca.key"))
		ca, err = issue(dir, "ca", &x509.Certificate{
			Subject:               pkix.Name{CommonName: "agent-hypervisor cluster CA"},
			IsCA:                  true,
			BasicConstraintsValid: true,
			MaxPathLenZero:        true,
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		}, nil)
		if err != nil {
			return nil, err
		}
		written = append(written, filepath.Join(dir, "ca.pem"))
	}

	leaf := func(name string, cn string, usage x509.ExtKeyUsage, dns []string, ips []net.IP) error {
		if exists(dir, name) {
			return nil
		}
		_ = os.Remove(filepath.Join(dir, name+".key"))
		_, err := issue(dir, name, &x509.Certificate{
			Subject:     pkix.Name{CommonName: cn, Organization: []string{"agent-hypervisor"}},
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{usage},
			DNSNames:    dns,
			IPAddresses: ips,
		}, ca)
		if err == nil {
			written = append(written, filepath.Join(dir, name+".pem"))
		}
		return err
	}

	var dns []string
	var ips []net.IP
	for _, h := range append([]string{ServerName}, hosts...) {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, h)
		}
	}
	if err := leaf("server", ServerName, x509.ExtKeyUsageServerAuth, dns, ips); err != nil {
		return nil, err
	}
	for _, cn := range append([]string{SystemCN, WorkerCN, UICN}, agents...) {
		if cn == "server" || cn == "ca" {
			return nil, errors.New(`"ca" and "server" name the CA's and the frontend's files, not a client`)
		}
		if err := leaf(cn, cn, x509.ExtKeyUsageClientAuth, nil, nil); err != nil {
			return nil, err
		}
	}
	return written, nil
}
