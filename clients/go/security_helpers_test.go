package jobqueue_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// The test server's tokens, shaped like the real server's (jq_<id>_<secret>): the
// producer's may enqueue, the worker's may lease.
const (
	producerToken = "jq_prod1_s3cret"
	workerToken   = "jq_work1_s3cret"
	// serverName is the only name in the test server's certificate: a client dialling
	// 127.0.0.1 must say it with WithTLSServerName (or JOBQ_TLS_SERVER_NAME).
	serverName = "jobq.test"
	// clientName is the common name of the test client's certificate.
	clientName = "worker-7"
	// forbiddenQueue is the queue no token may enqueue to (QUEUE_NOT_ALLOWED).
	forbiddenQueue = "forbidden"
)

// testPKI is a CA with a server and a client certificate it signed, and a second CA that
// signed nothing, written as PEM files in a temporary folder.
type testPKI struct {
	caFile, otherCAFile     string
	serverCert, serverKey   string
	clientCert, clientKey   string
	otherClientCert         string // signed by the other CA, with otherClientKey
	otherClientKey          string
	garbageFile, missingDir string
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	p := &testPKI{missingDir: filepath.Join(dir, "missing")}
	ca, caKey := newCA(t, "jobqueue test CA")
	other, otherKey := newCA(t, "another CA")
	p.caFile = writePEM(t, dir, "ca.pem", "CERTIFICATE", ca.Raw)
	p.otherCAFile = writePEM(t, dir, "other-ca.pem", "CERTIFICATE", other.Raw)
	p.serverCert, p.serverKey = issue(t, dir, "server", ca, caKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: serverName},
		DNSNames:    []string{serverName},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	p.clientCert, p.clientKey = issue(t, dir, "client", ca, caKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: clientName},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	p.otherClientCert, p.otherClientKey = issue(t, dir, "other-client", other, otherKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "stranger"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	p.garbageFile = filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(p.garbageFile, []byte("not a PEM file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func serial(t *testing.T) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func newCA(t *testing.T, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// issue signs tmpl with the CA and writes <name>.pem and <name>-key.pem.
func issue(t *testing.T, dir, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, tmpl *x509.Certificate) (certFile, keyFile string) {
	t.Helper()
	key := newKey(t)
	tmpl.SerialNumber = serial(t)
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, dir, name+".pem", "CERTIFICATE", der), writePEM(t, dir, name+"-key.pem", "PRIVATE KEY", keyDER)
}

func writePEM(t *testing.T, dir, name, blockType string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// transportMode is how the test server accepts connections.
type transportMode int

const (
	plaintext transportMode = iota
	serverTLS               // TLS with the server's certificate
	mutualTLS               // and a client certificate signed by the test CA required
)

// authServer is a JobQueueService that checks tokens as the real one does with --auth
// (UNAUTHENTICATED, PERMISSION_DENIED with their reasons) and reports every call it gets,
// with the authorization metadata and the client certificate it came with.
type authServer struct {
	jobqueuev1.UnimplementedJobQueueServiceServer
	calls chan seenCall
}

type seenCall struct {
	method        string
	authorization []string // every authorization value, so a repeated header shows
	clientName    string   // the client certificate's common name, "" without one
}

// startAuthServer serves on a port of 127.0.0.1 until the test ends.
func startAuthServer(t *testing.T, pki *testPKI, mode transportMode) (addr string, srv *authServer) {
	t.Helper()
	var opts []grpc.ServerOption
	if mode != plaintext {
		pair, err := tls.LoadX509KeyPair(pki.serverCert, pki.serverKey)
		if err != nil {
			t.Fatal(err)
		}
		cfg := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
		if mode == mutualTLS {
			caPEM, err := os.ReadFile(pki.caFile)
			if err != nil {
				t.Fatal(err)
			}
			cfg.ClientCAs = x509.NewCertPool()
			cfg.ClientCAs.AppendCertsFromPEM(caPEM)
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg)))
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv = &authServer{calls: make(chan seenCall, 64)}
	gs := grpc.NewServer(opts...)
	jobqueuev1.RegisterJobQueueServiceServer(gs, srv)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return lis.Addr().String(), srv
}

// next is the next call the server got.
func (s *authServer) next(t *testing.T) seenCall {
	t.Helper()
	select {
	case c := <-s.calls:
		return c
	case <-time.After(waitTimeout):
		t.Fatal("the server got no call")
		return seenCall{}
	}
}

// noCalls fails the test if a call reached the server (one refused in the handshake cannot).
func (s *authServer) noCalls(t *testing.T) {
	t.Helper()
	select {
	case c := <-s.calls:
		t.Errorf("the server got a call: %+v", c)
	default:
	}
}

// authorize reports the call, then refuses it unless it carries the token of role.
func (s *authServer) authorize(ctx context.Context, method, role string) error {
	md, _ := metadata.FromIncomingContext(ctx)
	call := seenCall{method: method, authorization: md.Get("authorization")}
	if p, ok := peer.FromContext(ctx); ok {
		if info, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(info.State.PeerCertificates) > 0 {
			call.clientName = info.State.PeerCertificates[0].Subject.CommonName
		}
	}
	s.calls <- call
	tokens := map[string]string{"Bearer " + producerToken: "producer", "Bearer " + workerToken: "worker"}
	switch got := call.authorization; {
	case len(got) == 0:
		return refusal(codes.Unauthenticated, jobqueuev1.ErrorReason_TOKEN_MISSING, "")
	case len(got) > 1 || tokens[got[0]] == "":
		return refusal(codes.Unauthenticated, jobqueuev1.ErrorReason_TOKEN_INVALID, "")
	case tokens[got[0]] != role:
		return refusal(codes.PermissionDenied, jobqueuev1.ErrorReason_ROLE_NOT_ALLOWED, "")
	}
	return nil
}

// refusal is a status shaped like the server's: an ErrorInfo, and a BadRequest naming field.
func refusal(code codes.Code, reason jobqueuev1.ErrorReason, field string) error {
	details := []protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: reason.String(), Domain: jobqueue.ErrorDomain}}
	if field != "" {
		details = append(details, &errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: "not allowed"}},
		})
	}
	st, err := status.New(code, fmt.Sprintf("refused: %s", reason)).WithDetails(details...)
	if err != nil {
		panic(err)
	}
	return st.Err()
}

func (s *authServer) Enqueue(ctx context.Context, req *jobqueuev1.EnqueueRequest) (*jobqueuev1.EnqueueResponse, error) {
	if err := s.authorize(ctx, "Enqueue", "producer"); err != nil {
		return nil, err
	}
	if req.GetQueue() == forbiddenQueue {
		return nil, refusal(codes.PermissionDenied, jobqueuev1.ErrorReason_QUEUE_NOT_ALLOWED, "queue")
	}
	return &jobqueuev1.EnqueueResponse{JobId: req.GetQueue() + ":1"}, nil
}

// EnqueueStream answers every message with an id per job, and ends the stream with
// QUEUE_NOT_ALLOWED on a message naming forbiddenQueue.
func (s *authServer) EnqueueStream(stream grpc.BidiStreamingServer[jobqueuev1.EnqueueStreamRequest, jobqueuev1.EnqueueStreamResponse]) error {
	if err := s.authorize(stream.Context(), "EnqueueStream", "producer"); err != nil {
		return err
	}
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		for i, r := range req.GetRequests() {
			if r.GetQueue() == forbiddenQueue { // the real server ends the stream, too
				return refusal(codes.PermissionDenied, jobqueuev1.ErrorReason_QUEUE_NOT_ALLOWED, fmt.Sprintf("requests[%d].queue", i))
			}
		}
		resp := &jobqueuev1.EnqueueStreamResponse{Sequence: req.GetSequence()}
		for _, r := range req.GetRequests() {
			resp.Responses = append(resp.Responses, &jobqueuev1.EnqueueResponse{JobId: r.GetQueue() + ":1"})
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// Lease gives no jobs: it holds the stream open until the worker closes it.
func (s *authServer) Lease(stream grpc.BidiStreamingServer[jobqueuev1.LeaseRequest, jobqueuev1.LeaseResponse]) error {
	if err := s.authorize(stream.Context(), "Lease", "worker"); err != nil {
		return err
	}
	for {
		if _, err := stream.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// dial makes a client of addr, closed when the test ends.
func dial(t *testing.T, addr string, opts ...jobqueue.Option) *jobqueue.Client {
	t.Helper()
	client, err := jobqueue.Dial(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// enqueueOne enqueues to queue "email" without batching's stream, so the call is a unary
// Enqueue.
func enqueueOne(t *testing.T, addr string, opts ...jobqueue.Option) error {
	t.Helper()
	client := dial(t, addr, append(opts, jobqueue.WithoutBatching())...)
	_, err := client.Enqueue(testContext(t), "email", nil)
	return err
}

// clearSecurityEnv unsets every variable Dial reads, for the test (t.Setenv restores them).
func clearSecurityEnv(t *testing.T) {
	for _, name := range []string{"JOBQ_TOKEN", "JOBQ_TLS", "JOBQ_TLS_CA", "JOBQ_TLS_CLIENT_CERT", "JOBQ_TLS_CLIENT_KEY", "JOBQ_TLS_SERVER_NAME"} {
		t.Setenv(name, "")
	}
}

// wantHandshakeFailure checks that a call failed before reaching the server, with a
// message containing want.
func wantHandshakeFailure(t *testing.T, err error, srv *authServer, want string) {
	t.Helper()
	if !errors.Is(err, jobqueue.ErrUnavailable) || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want UNAVAILABLE saying %q", err, want)
	}
	srv.noCalls(t)
}
