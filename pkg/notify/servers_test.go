package notify

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/require"
)

// mail is one message received by the test SMTP server.
type receivedMail struct {
	From, To, User string
	Data           string
	TLS            bool
}

// smtpServer is a real SMTP server (emersion/go-smtp) on 127.0.0.1 with
// STARTTLS and AUTH PLAIN, recording what it accepts.
type smtpServer struct {
	Addr   string
	CAFile string
	mu     sync.Mutex
	mails  []receivedMail
	// failRcpt makes RCPT answer with this SMTP code once (e.g. 451).
	failRcpt int
}

func (s *smtpServer) Mails() []receivedMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]receivedMail(nil), s.mails...)
}

type smtpSession struct {
	srv  *smtpServer
	conn *smtp.Conn
	cur  receivedMail
}

func (ss *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (ss *smtpSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != "sred" || password != "s3cret" {
			return errors.New("invalid credentials")
		}
		ss.cur.User = username
		return nil
	}), nil
}
func (ss *smtpSession) Reset()        {}
func (ss *smtpSession) Logout() error { return nil }
func (ss *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if ss.cur.User == "" {
		return smtp.ErrAuthRequired
	}
	ss.cur.From = from
	return nil
}
func (ss *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.srv.mu.Lock()
	code := ss.srv.failRcpt
	ss.srv.failRcpt = 0
	ss.srv.mu.Unlock()
	if code != 0 {
		return &smtp.SMTPError{Code: code, Message: "try again later"}
	}
	ss.cur.To = to
	return nil
}
func (ss *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := ss.conn.TLSConnectionState()
	ss.cur.Data, ss.cur.TLS = string(b), isTLS
	ss.srv.mu.Lock()
	ss.srv.mails = append(ss.srv.mails, ss.cur)
	ss.srv.mu.Unlock()
	return nil
}

func startSMTP(t *testing.T) *smtpServer { return startSMTPServer(t, false) }

// startSMTPS starts the server in implicit TLS mode ("SMTPS", port 465
// style): TLS from the first byte, no STARTTLS.
func startSMTPS(t *testing.T) *smtpServer { return startSMTPServer(t, true) }

func startSMTPServer(t *testing.T, implicitTLS bool) *smtpServer {
	t.Helper()
	certPEM, keyPEM := selfSigned(t)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(t, err)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, certPEM, 0o600))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &smtpServer{Addr: ln.Addr().String(), CAFile: ca}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &smtpSession{srv: s, conn: c}, nil
	}))
	srv.Domain = "127.0.0.1"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	if implicitTLS {
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { srv.Close() })
	return s
}

func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}
