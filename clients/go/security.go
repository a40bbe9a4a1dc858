package jobqueue

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// The environment variables Dial reads for a setting no option gave (the contract every
// client library follows: an explicit option wins over the environment). An empty
// variable counts as unset.
const (
	envToken          = "JOBQ_TOKEN"
	envTLS            = "JOBQ_TLS"
	envTLSCA          = "JOBQ_TLS_CA"
	envTLSClientCert  = "JOBQ_TLS_CLIENT_CERT"
	envTLSClientKey   = "JOBQ_TLS_CLIENT_KEY"
	envTLSServerName  = "JOBQ_TLS_SERVER_NAME"
	optTransportCreds = "WithTransportCredentials"
)

// setting is one value of the connection's security and where it came from (an option's
// or a variable's name), so that an error can say what to fix. An empty source is unset.
type setting struct {
	value  string
	source string
}

func (s setting) given() bool { return s.source != "" }

// securitySettings are the token and TLS settings, from options and then the environment.
type securitySettings struct {
	token      setting
	tls        setting // "1" when on
	caFile     setting
	certFile   setting
	keyFile    setting
	serverName setting
}

// WithToken sends token as `authorization: Bearer <token>` on every call of the connection,
// unary and streaming (the worker's Lease stream, the batches' EnqueueStreams), over TLS
// and over plaintext alike. It wins over JOBQ_TOKEN. Dial refuses an empty token, or one
// with characters a header value cannot carry.
func WithToken(token string) Option {
	return func(s *dialSettings) { s.security.token = setting{token, "WithToken"} }
}

// WithTLS makes the connection TLS, verifying the server's certificate against the
// system's root CAs (or WithTLSCAFile's). It wins over JOBQ_TLS.
func WithTLS() Option {
	return func(s *dialSettings) { s.security.tls = setting{"1", "WithTLS"} }
}

// WithTLSCAFile verifies the server's certificate against the PEM certificates in path
// instead of the system's roots, and implies TLS. It wins over JOBQ_TLS_CA.
func WithTLSCAFile(path string) Option {
	return func(s *dialSettings) { s.security.caFile = setting{path, "WithTLSCAFile"} }
}

// WithTLSClientCert presents the PEM certificate in certFile, whose private key is the PEM
// in keyFile, when the server asks for one (mutual TLS); it implies TLS. It wins over
// JOBQ_TLS_CLIENT_CERT and JOBQ_TLS_CLIENT_KEY, both of which it replaces.
func WithTLSClientCert(certFile, keyFile string) Option {
	return func(s *dialSettings) {
		s.security.certFile = setting{certFile, "WithTLSClientCert"}
		s.security.keyFile = setting{keyFile, "WithTLSClientCert"}
	}
}

// WithTLSServerName checks the server's certificate for name instead of the target's host
// (a target given as an IP address, a load balancer), and implies TLS. It wins over
// JOBQ_TLS_SERVER_NAME.
func WithTLSServerName(name string) Option {
	return func(s *dialSettings) { s.security.serverName = setting{name, "WithTLSServerName"} }
}

// withEnvironment fills the settings no option gave from getenv.
func (s securitySettings) withEnvironment(getenv func(string) string) securitySettings {
	fill := func(st *setting, name string) {
		if v := getenv(name); !st.given() && v != "" {
			*st = setting{v, name}
		}
	}
	fill(&s.token, envToken)
	fill(&s.tls, envTLS)
	fill(&s.caFile, envTLSCA)
	fill(&s.serverName, envTLSServerName)
	// The certificate and its key are one setting: an option giving the pair hides both
	// variables, so that a stray variable never pairs with the option's other half.
	if !s.certFile.given() && !s.keyFile.given() {
		fill(&s.certFile, envTLSClientCert)
		fill(&s.keyFile, envTLSClientKey)
	}
	return s
}

// tlsGiven names the first TLS setting given, or "" for none.
func (s securitySettings) tlsGiven() string {
	for _, st := range []setting{s.tls, s.caFile, s.certFile, s.keyFile, s.serverName} {
		if st.given() {
			return st.source
		}
	}
	return ""
}

// resolveSecurity turns the options' settings, then the environment's, into the
// connection's transport credentials and its token (nil for none). creds is what
// WithTransportCredentials gave, or nil: it wins over the environment's TLS settings
// and cannot be combined with the TLS options.
func resolveSecurity(opts securitySettings, creds credentials.TransportCredentials, getenv func(string) string) (credentials.TransportCredentials, credentials.PerRPCCredentials, error) {
	if creds != nil {
		if source := opts.tlsGiven(); source != "" {
			return nil, nil, fmt.Errorf("jobqueue: %s and %s both configure the transport; use one", optTransportCreds, source)
		}
	}
	s := opts.withEnvironment(getenv)
	token, err := tokenCredentials(s.token)
	if err != nil {
		return nil, nil, err
	}
	if creds != nil {
		return creds, token, nil
	}
	tlsOn, err := s.tlsOn()
	if err != nil {
		return nil, nil, err
	}
	if !tlsOn {
		return insecure.NewCredentials(), token, nil
	}
	cfg, err := s.tlsConfig()
	if err != nil {
		return nil, nil, err
	}
	return credentials.NewTLS(cfg), token, nil
}

// tlsOn reads JOBQ_TLS / WithTLS; a CA file, a client certificate or a server name implies
// TLS whatever it says.
func (s securitySettings) tlsOn() (bool, error) {
	if s.caFile.given() || s.certFile.given() || s.keyFile.given() || s.serverName.given() {
		return true, nil
	}
	if !s.tls.given() {
		return false, nil
	}
	on, err := strconv.ParseBool(s.tls.value)
	if err != nil {
		return false, fmt.Errorf("jobqueue: %s=%q: want 1 or true (or 0 or false)", s.tls.source, s.tls.value)
	}
	return on, nil
}

func (s securitySettings) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.serverName.given() {
		if s.serverName.value == "" {
			return nil, fmt.Errorf("jobqueue: %s: the server name is empty", s.serverName.source)
		}
		cfg.ServerName = s.serverName.value
	}
	if s.caFile.given() {
		pool, err := loadCAFile(s.caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if s.certFile.given() || s.keyFile.given() {
		pair, err := loadClientCert(s.certFile, s.keyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// readPEM reads a PEM file and checks that it holds a block of a type wanted accepts;
// every error names the file and the setting that named it.
func readPEM(st setting, what string, wanted func(blockType string) bool) ([]byte, error) {
	if st.value == "" {
		return nil, fmt.Errorf("jobqueue: %s: the %s file name is empty", st.source, what)
	}
	data, err := os.ReadFile(st.value)
	if err != nil {
		return nil, fmt.Errorf("jobqueue: %s: reading the %s: %w", st.source, what, err)
	}
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("jobqueue: %s: %s holds no PEM %s", st.source, st.value, what)
		}
		if wanted(block.Type) {
			return data, nil
		}
	}
}

func isCertificate(blockType string) bool { return blockType == "CERTIFICATE" }

func isPrivateKey(blockType string) bool { return strings.HasSuffix(blockType, "PRIVATE KEY") }

func loadCAFile(st setting) (*x509.CertPool, error) {
	data, err := readPEM(st, "CA certificate", isCertificate)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("jobqueue: %s: %s holds no valid CA certificate", st.source, st.value)
	}
	return pool, nil
}

func loadClientCert(cert, key setting) (tls.Certificate, error) {
	noCert, noKey := cert.value == "", key.value == "" // an empty variable counts as unset
	switch {
	case noCert && noKey:
		return tls.Certificate{}, fmt.Errorf("jobqueue: %s: both file names are empty", cert.source)
	case noKey:
		return tls.Certificate{}, fmt.Errorf("jobqueue: %s gives a client certificate without its key (%s)", cert.source, pairedSetting(cert.source, envTLSClientKey, "second"))
	case noCert:
		return tls.Certificate{}, fmt.Errorf("jobqueue: %s gives a client key without its certificate (%s)", key.source, pairedSetting(key.source, envTLSClientCert, "first"))
	}
	certPEM, err := readPEM(cert, "client certificate", isCertificate)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, err := readPEM(key, "client private key", isPrivateKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("jobqueue: %s: client certificate %s with key %s: %w", cert.source, cert.value, key.value, err)
	}
	return pair, nil
}

// pairedSetting names where the missing half of a client certificate goes: the other
// variable when the given half came from one, else the other argument of the option.
func pairedSetting(source, otherVar, argument string) string {
	if strings.HasPrefix(source, "JOBQ_") {
		return "set " + otherVar
	}
	return "the " + argument + " argument of WithTLSClientCert is empty"
}

// bearerToken sends `authorization: Bearer <token>` on every call.
//
// It is a PerRPCCredentials rather than an interceptor because gRPC then adds it to every
// RPC of the connection, unary and streaming, including the ones this package opens with
// contexts of its own (the batches' EnqueueStreams, the worker's Lease stream), and it
// does not depend on its place among interceptors the caller adds with WithDialOptions.
// RequireTransportSecurity is false because the contract sends the token over plaintext
// too (a dev server on loopback).
type bearerToken struct{ header string }

func tokenCredentials(st setting) (credentials.PerRPCCredentials, error) {
	if !st.given() {
		return nil, nil
	}
	if err := checkToken(st.value); err != nil {
		return nil, fmt.Errorf("jobqueue: %s: %w", st.source, err)
	}
	return bearerToken{header: "Bearer " + st.value}, nil
}

// checkToken refuses what a header value cannot carry, without echoing the secret.
func checkToken(token string) error {
	if token == "" {
		return errors.New("the token is empty")
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("the token has a space, a control or a non-ASCII character at byte %d", i)
		}
	}
	return nil
}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (t bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": t.header}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (bearerToken) RequireTransportSecurity() bool { return false }

// String and GoString keep the token out of logs that print the credentials.
func (bearerToken) String() string { return "Bearer [redacted]" }

// GoString implements fmt.GoStringer.
func (t bearerToken) GoString() string { return t.String() }
