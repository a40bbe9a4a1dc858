package jobqueue_test

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/credentials/insecure"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// wantCall checks the server's next call: its method, the one authorization value it
// carried ("" for none) and the client certificate's name.
func wantCall(t *testing.T, srv *authServer, method, authorization, client string) {
	t.Helper()
	var want []string
	if authorization != "" {
		want = []string{authorization}
	}
	c := srv.next(t)
	if c.method != method || !slices.Equal(c.authorization, want) || c.clientName != client {
		t.Errorf("the server got %+v, want %s with authorization %q and client %q", c, method, want, client)
	}
}

// runWorkerUntilLeased runs a worker on client until the server has its Lease call, then
// stops it; it returns the server's call and Run's error (nil after the stop).
func runWorkerUntilLeased(t *testing.T, client *jobqueue.Client, srv *authServer) (seenCall, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	w := jobqueue.NewWorker(client, []string{"email"})
	w.Handle("email", func(context.Context, *jobqueue.LeasedJob) (map[string]any, error) { return nil, nil })
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	call := srv.next(t)
	cancel()
	return call, <-done
}

func TestATokenGoesOnUnaryAndStreamingCallsOverPlaintext(t *testing.T) {
	clearSecurityEnv(t)
	addr, srv := startAuthServer(t, newTestPKI(t), plaintext)

	if err := enqueueOne(t, addr, jobqueue.WithToken(producerToken)); err != nil {
		t.Fatal(err)
	}
	wantCall(t, srv, "Enqueue", "Bearer "+producerToken, "")

	// With batching, Enqueue goes on an EnqueueStream the client opens with its own context.
	batching := dial(t, addr, jobqueue.WithToken(producerToken))
	if res, err := batching.Enqueue(testContext(t), "email", nil); err != nil || res.JobID != "email:1" {
		t.Fatalf("Enqueue = %+v, %v", res, err)
	}
	wantCall(t, srv, "EnqueueStream", "Bearer "+producerToken, "")

	call, err := runWorkerUntilLeased(t, dial(t, addr, jobqueue.WithToken(workerToken)), srv)
	if err != nil {
		t.Errorf("Run = %v", err)
	}
	if call.method != "Lease" || !slices.Equal(call.authorization, []string{"Bearer " + workerToken}) {
		t.Errorf("the server got %+v", call)
	}
}

func TestWithoutATokenNoAuthorizationIsSent(t *testing.T) {
	clearSecurityEnv(t)
	addr, srv := startAuthServer(t, newTestPKI(t), plaintext)

	err := enqueueOne(t, addr)
	wantCall(t, srv, "Enqueue", "", "")
	var e *jobqueue.Error
	if !errors.Is(err, jobqueue.ErrTokenMissing) || !errors.Is(err, jobqueue.ErrUnauthenticated) ||
		!errors.As(err, &e) || e.Reason != jobqueuev1.ErrorReason_TOKEN_MISSING {
		t.Errorf("err = %v, want TOKEN_MISSING", err)
	}
}

func TestRefusedCredentialsMapToTheAuthErrors(t *testing.T) {
	clearSecurityEnv(t)
	addr, srv := startAuthServer(t, newTestPKI(t), plaintext)

	err := enqueueOne(t, addr, jobqueue.WithToken("jq_nobody_x"))
	if !errors.Is(err, jobqueue.ErrTokenInvalid) || !errors.Is(err, jobqueue.ErrUnauthenticated) || errors.Is(err, jobqueue.ErrTokenMissing) {
		t.Errorf("an unknown token: err = %v", err)
	}

	// As a unary Enqueue, and as the only batch on an EnqueueStream (which the refusal ends),
	// the error names the field as for a single enqueue.
	for _, client := range []*jobqueue.Client{
		dial(t, addr, jobqueue.WithToken(producerToken), jobqueue.WithoutBatching()),
		dial(t, addr, jobqueue.WithToken(producerToken)),
	} {
		_, err = client.Enqueue(testContext(t), forbiddenQueue, nil)
		var e *jobqueue.Error
		if !errors.Is(err, jobqueue.ErrQueueNotAllowed) || !errors.Is(err, jobqueue.ErrPermissionDenied) ||
			!errors.As(err, &e) || e.Field != "queue" || e.Reason != jobqueuev1.ErrorReason_QUEUE_NOT_ALLOWED {
			t.Errorf("a forbidden queue: err = %v (%+v)", err, e)
		}
	}

	// A producer's token may not lease: the worker's stream is refused, and Run returns
	// the error instead of reconnecting for ever.
	worker := jobqueue.NewWorker(dial(t, addr, jobqueue.WithToken(producerToken)), []string{"email"})
	worker.Handle("email", func(context.Context, *jobqueue.LeasedJob) (map[string]any, error) { return nil, nil })
	err = worker.Run(testContext(t))
	if !errors.Is(err, jobqueue.ErrRoleNotAllowed) || !errors.Is(err, jobqueue.ErrPermissionDenied) {
		t.Errorf("a producer's Lease: Run = %v", err)
	}
	drain(srv)
}

// drain empties the server's record of calls the test looked at through their answers.
func drain(srv *authServer) {
	for len(srv.calls) > 0 {
		<-srv.calls
	}
}

func TestTLSWithTheCAFileVerifiesTheServer(t *testing.T) {
	clearSecurityEnv(t)
	pki := newTestPKI(t)
	addr, srv := startAuthServer(t, pki, serverTLS)

	err := enqueueOne(t, addr, jobqueue.WithTLSCAFile(pki.caFile), jobqueue.WithTLSServerName(serverName), jobqueue.WithToken(producerToken))
	if err != nil {
		t.Fatal(err)
	}
	wantCall(t, srv, "Enqueue", "Bearer "+producerToken, "")

	call, err := runWorkerUntilLeased(t, dial(t, addr, jobqueue.WithTLSCAFile(pki.caFile), jobqueue.WithTLSServerName(serverName), jobqueue.WithToken(workerToken)), srv)
	if err != nil || call.method != "Lease" || !slices.Equal(call.authorization, []string{"Bearer " + workerToken}) {
		t.Errorf("Run = %v; the server got %+v", err, call)
	}
}

func TestTheServerCertificateMustNameTheServer(t *testing.T) {
	clearSecurityEnv(t)
	pki := newTestPKI(t)
	addr, srv := startAuthServer(t, pki, serverTLS)

	// The certificate names jobq.test only; the target is 127.0.0.1.
	err := enqueueOne(t, addr, jobqueue.WithTLSCAFile(pki.caFile), jobqueue.WithToken(producerToken))
	wantHandshakeFailure(t, err, srv, "127.0.0.1")

	err = enqueueOne(t, addr, jobqueue.WithTLSCAFile(pki.caFile), jobqueue.WithTLSServerName("other.test"))
	wantHandshakeFailure(t, err, srv, "other.test")
}

func TestAServerCertificateFromAnotherCAFailsTheHandshake(t *testing.T) {
	clearSecurityEnv(t)
	pki := newTestPKI(t)
	addr, srv := startAuthServer(t, pki, serverTLS)

	err := enqueueOne(t, addr, jobqueue.WithTLSCAFile(pki.otherCAFile), jobqueue.WithTLSServerName(serverName), jobqueue.WithToken(producerToken))
	wantHandshakeFailure(t, err, srv, "unknown authority")
}

func TestMutualTLSRefusesAClientWithoutItsCertificate(t *testing.T) {
	clearSecurityEnv(t)
	pki := newTestPKI(t)
	addr, srv := startAuthServer(t, pki, mutualTLS)

	err := enqueueOne(t, addr, jobqueue.WithTLSCAFile(pki.caFile), jobqueue.WithTLSServerName(serverName), jobqueue.WithToken(producerToken))
	if !errors.Is(err, jobqueue.ErrUnavailable) {
		t.Errorf("without a certificate: err = %v, want UNAVAILABLE", err)
	}
	srv.noCalls(t)

	err = enqueueOne(t, addr, jobqueue.WithTLSCAFile(pki.caFile), jobqueue.WithTLSServerName(serverName),
		jobqueue.WithTLSClientCert(pki.otherClientCert, pki.otherClientKey))
	if !errors.Is(err, jobqueue.ErrUnavailable) {
		t.Errorf("with a certificate of another CA: err = %v, want UNAVAILABLE", err)
	}
	srv.noCalls(t)
}

func TestMutualTLSWithTheClientCertificateWorks(t *testing.T) {
	clearSecurityEnv(t)
	pki := newTestPKI(t)
	addr, srv := startAuthServer(t, pki, mutualTLS)

	err := enqueueOne(t, addr, jobqueue.WithTLSCAFile(pki.caFile), jobqueue.WithTLSServerName(serverName),
		jobqueue.WithTLSClientCert(pki.clientCert, pki.clientKey), jobqueue.WithToken(producerToken))
	if err != nil {
		t.Fatal(err)
	}
	wantCall(t, srv, "Enqueue", "Bearer "+producerToken, clientName)
}

func TestTheEnvironmentConfiguresTLSAndTheToken(t *testing.T) {
	pki := newTestPKI(t)
	addr, srv := startAuthServer(t, pki, mutualTLS)
	t.Setenv("JOBQ_TOKEN", producerToken)
	t.Setenv("JOBQ_TLS", "")
	t.Setenv("JOBQ_TLS_CA", pki.caFile)
	t.Setenv("JOBQ_TLS_CLIENT_CERT", pki.clientCert)
	t.Setenv("JOBQ_TLS_CLIENT_KEY", pki.clientKey)
	t.Setenv("JOBQ_TLS_SERVER_NAME", serverName)

	if err := enqueueOne(t, addr); err != nil {
		t.Fatal(err)
	}
	wantCall(t, srv, "Enqueue", "Bearer "+producerToken, clientName)

	// The token reaches the worker's stream from the environment too.
	t.Setenv("JOBQ_TOKEN", workerToken)
	call, err := runWorkerUntilLeased(t, dial(t, addr), srv)
	if err != nil || !slices.Equal(call.authorization, []string{"Bearer " + workerToken}) || call.clientName != clientName {
		t.Errorf("Run = %v; the server got %+v", err, call)
	}
}

func TestOptionsWinOverTheEnvironment(t *testing.T) {
	pki := newTestPKI(t)
	addr, srv := startAuthServer(t, pki, mutualTLS)
	t.Setenv("JOBQ_TOKEN", "jq_env_wrong")
	t.Setenv("JOBQ_TLS", "true")
	t.Setenv("JOBQ_TLS_CA", pki.otherCAFile)
	t.Setenv("JOBQ_TLS_CLIENT_CERT", pki.otherClientCert)
	t.Setenv("JOBQ_TLS_CLIENT_KEY", pki.otherClientKey)
	t.Setenv("JOBQ_TLS_SERVER_NAME", "other.test")

	err := enqueueOne(t, addr, jobqueue.WithToken(producerToken), jobqueue.WithTLSCAFile(pki.caFile),
		jobqueue.WithTLSServerName(serverName), jobqueue.WithTLSClientCert(pki.clientCert, pki.clientKey))
	if err != nil {
		t.Fatal(err)
	}
	wantCall(t, srv, "Enqueue", "Bearer "+producerToken, clientName)

	// WithTransportCredentials wins over every JOBQ_TLS* variable; the token still comes
	// from JOBQ_TOKEN.
	plainAddr, plainSrv := startAuthServer(t, pki, plaintext)
	t.Setenv("JOBQ_TOKEN", producerToken)
	if err := enqueueOne(t, plainAddr, jobqueue.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		t.Fatal(err)
	}
	wantCall(t, plainSrv, "Enqueue", "Bearer "+producerToken, "")
}

func TestTheTLSVariableVerifiesWithTheSystemRoots(t *testing.T) {
	clearSecurityEnv(t)
	addr, srv := startAuthServer(t, newTestPKI(t), serverTLS)
	t.Setenv("JOBQ_TLS", "1")
	t.Setenv("JOBQ_TLS_SERVER_NAME", serverName)

	// The test CA is in no system's roots: the handshake happens, and fails on it.
	wantHandshakeFailure(t, enqueueOne(t, addr), srv, "unknown authority")

	// WithTLS alone does the same.
	clearSecurityEnv(t)
	wantHandshakeFailure(t, enqueueOne(t, addr, jobqueue.WithTLS(), jobqueue.WithTLSServerName(serverName)), srv, "unknown authority")
}

func TestDialRefusesBadSettingsNamingThem(t *testing.T) {
	pki := newTestPKI(t)
	missing := filepath.Join(pki.missingDir, "ca.pem")
	cases := []struct {
		name  string
		env   map[string]string
		opts  []jobqueue.Option
		wants []string // in the error's text
		not   string   // never in it (a secret)
	}{
		{name: "a certificate without its key", opts: []jobqueue.Option{jobqueue.WithTLSClientCert(pki.clientCert, "")},
			wants: []string{"WithTLSClientCert", "without its key"}},
		{name: "a key without its certificate", opts: []jobqueue.Option{jobqueue.WithTLSClientCert("", pki.clientKey)},
			wants: []string{"WithTLSClientCert", "without its certificate"}},
		{name: "a certificate variable without the key's", env: map[string]string{"JOBQ_TLS_CLIENT_CERT": pki.clientCert},
			wants: []string{"JOBQ_TLS_CLIENT_CERT", "without its key", "set JOBQ_TLS_CLIENT_KEY"}},
		{name: "a key variable without the certificate's", env: map[string]string{"JOBQ_TLS_CLIENT_KEY": pki.clientKey},
			wants: []string{"JOBQ_TLS_CLIENT_KEY", "without its certificate", "set JOBQ_TLS_CLIENT_CERT"}},
		{name: "a missing CA file", opts: []jobqueue.Option{jobqueue.WithTLSCAFile(missing)},
			wants: []string{"WithTLSCAFile", missing}},
		{name: "a CA file that is not PEM", env: map[string]string{"JOBQ_TLS_CA": pki.garbageFile},
			wants: []string{"JOBQ_TLS_CA", pki.garbageFile, "no PEM CA certificate"}},
		{name: "a CA file holding a key", opts: []jobqueue.Option{jobqueue.WithTLSCAFile(pki.clientKey)},
			wants: []string{pki.clientKey, "no PEM CA certificate"}},
		{name: "a certificate file holding a key", opts: []jobqueue.Option{jobqueue.WithTLSClientCert(pki.clientKey, pki.clientKey)},
			wants: []string{pki.clientKey, "no PEM client certificate"}},
		{name: "a key file holding a certificate", opts: []jobqueue.Option{jobqueue.WithTLSClientCert(pki.clientCert, pki.clientCert)},
			wants: []string{pki.clientCert, "no PEM client private key"}},
		{name: "an unreadable key file", env: map[string]string{"JOBQ_TLS_CLIENT_CERT": pki.clientCert, "JOBQ_TLS_CLIENT_KEY": missing},
			wants: []string{"JOBQ_TLS_CLIENT_KEY", missing}},
		{name: "a key of another certificate", opts: []jobqueue.Option{jobqueue.WithTLSClientCert(pki.clientCert, pki.otherClientKey)},
			wants: []string{pki.clientCert, pki.otherClientKey, "does not match"}},
		{name: "an unreadable JOBQ_TLS", env: map[string]string{"JOBQ_TLS": "maybe"},
			wants: []string{`JOBQ_TLS="maybe"`}},
		{name: "an empty server name", opts: []jobqueue.Option{jobqueue.WithTLSServerName("")},
			wants: []string{"WithTLSServerName", "empty"}},
		{name: "an empty token", opts: []jobqueue.Option{jobqueue.WithToken("")},
			wants: []string{"WithToken", "empty"}},
		{name: "a token with a newline", env: map[string]string{"JOBQ_TOKEN": "jq_a_s3cret\n"},
			wants: []string{"JOBQ_TOKEN", "byte 11"}, not: "s3cret"},
		{name: "transport credentials and a TLS option",
			opts:  []jobqueue.Option{jobqueue.WithTransportCredentials(insecure.NewCredentials()), jobqueue.WithTLSCAFile(pki.caFile)},
			wants: []string{"WithTransportCredentials", "WithTLSCAFile"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clearSecurityEnv(t)
			for name, value := range c.env {
				t.Setenv(name, value)
			}
			client, err := jobqueue.Dial("127.0.0.1:1", c.opts...)
			if err == nil {
				client.Close()
				t.Fatal("Dial succeeded")
			}
			for _, want := range c.wants {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not say %q: %v", want, err)
				}
			}
			if c.not != "" && strings.Contains(err.Error(), c.not) {
				t.Errorf("the error shows %q: %v", c.not, err)
			}
		})
	}
}

func TestAnUnreadableFileKeepsItsCause(t *testing.T) {
	clearSecurityEnv(t)
	missing := filepath.Join(t.TempDir(), "nope.pem")
	_, err := jobqueue.Dial("127.0.0.1:1", jobqueue.WithTLSCAFile(missing))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v, want one matching fs.ErrNotExist", err)
	}
}
