package jobqueue_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// serverWithAuth starts a `jobq serve` of its own (embedded Valkey) that serves TLS with the
// test PKI's server certificate, requires client certificates of its CA, and requires
// tokens; it returns the server's address and its bootstrap admin token.
func serverWithAuth(t *testing.T, pki *testPKI) (addr, adminToken string) {
	t.Helper()
	if serveBin == "" {
		t.Skip(skipReason)
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	addr, stop, err := launchServe(serveBin, dir, "--data-dir", data, "--auth",
		"--tls-cert", pki.serverCert, "--tls-key", pki.serverKey, "--tls-client-ca", pki.caFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	token, err := os.ReadFile(filepath.Join(data, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	return addr, strings.TrimSpace(string(token))
}

// createToken makes a token of role for the queues matching pattern, with the admin client.
func createToken(t *testing.T, admin *jobqueue.Client, role jobqueuev1.TokenRole, pattern string) string {
	t.Helper()
	resp, err := admin.Stub().CreateToken(testContext(t), &jobqueuev1.CreateTokenRequest{
		Name: t.Name() + " " + role.String(), Role: role, Queues: []string{pattern},
	})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetToken()
}

func TestTheRealServerWithMutualTLSAndAuthServesTheClientAndTheWorker(t *testing.T) {
	clearSecurityEnv(t)
	pki := newTestPKI(t)
	addr, adminToken := serverWithAuth(t, pki)
	secure := func(opts ...jobqueue.Option) []jobqueue.Option {
		return append([]jobqueue.Option{jobqueue.WithTLSCAFile(pki.caFile), jobqueue.WithTLSServerName(serverName),
			jobqueue.WithTLSClientCert(pki.clientCert, pki.clientKey)}, opts...)
	}
	ctx := testContext(t)
	admin := dial(t, addr, secure(jobqueue.WithToken(adminToken))...)
	producerSecret := createToken(t, admin, jobqueuev1.TokenRole_TOKEN_ROLE_PRODUCER, "allowed-*")
	workerSecret := createToken(t, admin, jobqueuev1.TokenRole_TOKEN_ROLE_WORKER, "allowed-*")

	// The producer's token on the batches' EnqueueStream; the worker's on its Lease stream.
	producer := dial(t, addr, secure(jobqueue.WithToken(producerSecret))...)
	res, err := producer.Enqueue(ctx, "allowed-1", map[string]any{"n": 1})
	if err != nil {
		t.Fatal(err)
	}
	workerCtx, stopWorker := context.WithCancel(ctx)
	defer stopWorker()
	worker := jobqueue.NewWorker(dial(t, addr, secure(jobqueue.WithToken(workerSecret))...), []string{"allowed-1"})
	worker.Handle("allowed-1", func(_ context.Context, job *jobqueue.LeasedJob) (map[string]any, error) {
		return map[string]any{"seen": job.Payload["n"]}, nil
	})
	ran := make(chan error, 1)
	go func() { ran <- worker.Run(workerCtx) }()
	job, err := admin.Wait(ctx, res.JobID)
	if err != nil || job.State != jobqueue.StateCompleted || job.Result["seen"] != 1.0 {
		t.Fatalf("Wait = %+v, %v", job, err)
	}
	stopWorker()
	if err := <-ran; err != nil {
		t.Errorf("Run = %v", err)
	}

	// The server's refusals, as this package's errors.
	_, err = producer.Enqueue(ctx, "elsewhere", nil)
	var e *jobqueue.Error
	if !errors.Is(err, jobqueue.ErrQueueNotAllowed) || !errors.Is(err, jobqueue.ErrPermissionDenied) || !errors.As(err, &e) || e.Field != "queue" {
		t.Errorf("a queue outside the token's patterns: %v", err)
	}
	refused := jobqueue.NewWorker(producer, []string{"allowed-1"})
	refused.Handle("allowed-1", func(context.Context, *jobqueue.LeasedJob) (map[string]any, error) { return nil, nil })
	if err := refused.Run(ctx); !errors.Is(err, jobqueue.ErrRoleNotAllowed) {
		t.Errorf("a producer's Lease: Run = %v", err)
	}
	if err := enqueueOne(t, addr, secure()...); !errors.Is(err, jobqueue.ErrTokenMissing) {
		t.Errorf("no token: %v", err)
	}
	if err := enqueueOne(t, addr, secure(jobqueue.WithToken("jq_nobody_s3cret"))...); !errors.Is(err, jobqueue.ErrTokenInvalid) {
		t.Errorf("an unknown token: %v", err)
	}

	// Without the client certificate, or trusting another CA, the handshake fails.
	err = enqueueOne(t, addr, jobqueue.WithTLSCAFile(pki.caFile), jobqueue.WithTLSServerName(serverName), jobqueue.WithToken(adminToken))
	if !errors.Is(err, jobqueue.ErrUnavailable) {
		t.Errorf("without a client certificate: %v", err)
	}
	err = enqueueOne(t, addr, jobqueue.WithTLSCAFile(pki.otherCAFile), jobqueue.WithTLSServerName(serverName),
		jobqueue.WithTLSClientCert(pki.clientCert, pki.clientKey), jobqueue.WithToken(adminToken))
	if !errors.Is(err, jobqueue.ErrUnavailable) || !strings.Contains(err.Error(), "unknown authority") {
		t.Errorf("trusting another CA: %v", err)
	}
}
