package jobqueue_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// recordingConn answers unary calls with reply, recording each request; it has no streams.
type recordingConn struct {
	reply    proto.Message
	requests []proto.Message
}

func (c *recordingConn) Invoke(_ context.Context, _ string, args, reply any, _ ...grpc.CallOption) error {
	c.requests = append(c.requests, proto.Clone(args.(proto.Message)))
	proto.Merge(reply.(proto.Message), c.reply)
	return nil
}

func (c *recordingConn) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, errors.New("recordingConn has no streams")
}

func TestCreateTokenSendsEachRoleAndTheTTLOnlyWhenGiven(t *testing.T) {
	conn := &recordingConn{reply: &jobqueuev1.CreateTokenResponse{Token: "jq_ab_cd", Info: &jobqueuev1.TokenInfo{TokenId: "ab"}}}
	client := jobqueue.New(conn, jobqueue.WithoutBatching())
	cases := []struct {
		role jobqueue.TokenRole
		want jobqueuev1.TokenRole
		ttl  time.Duration
	}{
		{jobqueue.TokenRoleProducer, jobqueuev1.TokenRole_TOKEN_ROLE_PRODUCER, 0},
		{jobqueue.TokenRoleWorker, jobqueuev1.TokenRole_TOKEN_ROLE_WORKER, 90 * time.Minute},
		{jobqueue.TokenRoleAdmin, jobqueuev1.TokenRole_TOKEN_ROLE_ADMIN, 0},
	}
	for i, c := range cases {
		token, info, err := client.CreateToken(context.Background(), "n", c.role, []string{"q*"}, c.ttl)
		if err != nil || token != "jq_ab_cd" || info.ID != "ab" || !info.ExpireTime.IsZero() {
			t.Fatalf("%s: CreateToken = %q, %+v, %v", c.role, token, info, err)
		}
		req := conn.requests[i].(*jobqueuev1.CreateTokenRequest)
		if req.GetRole() != c.want || req.GetName() != "n" || !slices.Equal(req.GetQueues(), []string{"q*"}) ||
			(req.GetTtl() != nil) != (c.ttl != 0) || req.GetTtl().AsDuration() != c.ttl {
			t.Errorf("%s: request = %v", c.role, req)
		}
	}
}

func TestCreateTokenRefusesAnUnknownRoleOrANegativeTTLBeforeSending(t *testing.T) {
	conn := &recordingConn{reply: &jobqueuev1.CreateTokenResponse{}}
	client := jobqueue.New(conn, jobqueue.WithoutBatching())
	cases := []struct {
		role  jobqueue.TokenRole
		ttl   time.Duration
		field string
	}{
		{"", 0, "role"},
		{"PRODUCER", 0, "role"}, // the constants' values are lower case
		{"superuser", time.Hour, "role"},
		{jobqueue.TokenRoleWorker, -time.Second, "ttl"},
	}
	for _, c := range cases {
		_, _, err := client.CreateToken(context.Background(), "n", c.role, []string{"*"}, c.ttl)
		var e *jobqueue.Error
		if !errors.Is(err, jobqueue.ErrInvalidArgument) || !errors.As(err, &e) || e.Field != c.field {
			t.Errorf("role %q, ttl %s: err = %v", c.role, c.ttl, err)
		}
	}
	if len(conn.requests) != 0 {
		t.Errorf("sent %d requests", len(conn.requests))
	}
}

// findToken returns the token with the given id from ListTokens.
func findToken(tokens []jobqueue.TokenInfo, id string) (jobqueue.TokenInfo, bool) {
	i := slices.IndexFunc(tokens, func(t jobqueue.TokenInfo) bool { return t.ID == id })
	if i < 0 {
		return jobqueue.TokenInfo{}, false
	}
	return tokens[i], true
}

// sameToken compares two descriptions of a token (times by instant).
func sameToken(a, b jobqueue.TokenInfo) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Role == b.Role && slices.Equal(a.Queues, b.Queues) &&
		a.CreateTime.Equal(b.CreateTime) && a.ExpireTime.Equal(b.ExpireTime)
}

// TestTokenManagementOnTheRealServer runs the token methods against one `jobq serve --auth`
// (TLS as in serverWithAuth), with its bootstrap admin token.
func TestTokenManagementOnTheRealServer(t *testing.T) {
	clearSecurityEnv(t)
	pki := newTestPKI(t)
	addr, adminToken := serverWithAuth(t, pki)
	secure := func(opts ...jobqueue.Option) []jobqueue.Option {
		return append([]jobqueue.Option{jobqueue.WithTLSCAFile(pki.caFile), jobqueue.WithTLSServerName(serverName),
			jobqueue.WithTLSClientCert(pki.clientCert, pki.clientKey)}, opts...)
	}
	admin := dial(t, addr, secure(jobqueue.WithToken(adminToken))...)

	t.Run("CreatedListedUsedAndRevoked", func(t *testing.T) {
		ctx, queue := testContext(t), uniqueQueue(t)

		token, info, err := admin.CreateToken(ctx, "billing api", jobqueue.TokenRoleProducer, []string{queue}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if info.ID == "" || !strings.HasPrefix(token, "jq_"+info.ID+"_") || info.Name != "billing api" ||
			info.Role != jobqueue.TokenRoleProducer || !slices.Equal(info.Queues, []string{queue}) ||
			info.CreateTime.IsZero() || !info.ExpireTime.IsZero() {
			t.Fatalf("CreateToken = %q, %+v", token, info)
		}
		secret := strings.TrimPrefix(token, "jq_"+info.ID+"_")

		// ListTokens describes it (and the bootstrap admin token), sorted by id, without secrets.
		tokens, err := admin.ListTokens(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if listed, ok := findToken(tokens, info.ID); !ok || !sameToken(listed, info) {
			t.Errorf("ListTokens has %+v, %v; want %+v", listed, ok, info)
		}
		adminID := strings.Split(adminToken, "_")[1]
		if bootstrap, ok := findToken(tokens, adminID); !ok || bootstrap.Role != jobqueue.TokenRoleAdmin || !slices.Equal(bootstrap.Queues, []string{"*"}) {
			t.Errorf("the bootstrap admin token is listed as %+v, %v", bootstrap, ok)
		}
		if !slices.IsSortedFunc(tokens, func(a, b jobqueue.TokenInfo) int { return strings.Compare(a.ID, b.ID) }) {
			t.Errorf("ListTokens is not sorted by id: %+v", tokens)
		}
		if listing := fmt.Sprintf("%+v", tokens); strings.Contains(listing, secret) {
			t.Errorf("ListTokens shows a secret: %s", listing)
		}

		// The producer token enqueues to its queue only, and may not manage tokens. Unary calls,
		// so that each one authenticates anew.
		producer := dial(t, addr, secure(jobqueue.WithToken(token), jobqueue.WithoutBatching())...)
		if _, err := producer.Enqueue(ctx, queue, map[string]any{"n": 1}); err != nil {
			t.Fatalf("Enqueue with the new token: %v", err)
		}
		if _, err := producer.Enqueue(ctx, queue+"-elsewhere", nil); !errors.Is(err, jobqueue.ErrQueueNotAllowed) {
			t.Errorf("Enqueue outside the token's queues: %v", err)
		}
		if _, err := producer.ListTokens(ctx); !errors.Is(err, jobqueue.ErrRoleNotAllowed) {
			t.Errorf("ListTokens with a producer token: %v", err)
		}

		// Revoked, it is refused at once (the server reloads its tokens on revoke) and unlisted.
		if err := admin.RevokeToken(ctx, info.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := producer.Enqueue(ctx, queue, nil); !errors.Is(err, jobqueue.ErrTokenInvalid) || !errors.Is(err, jobqueue.ErrUnauthenticated) {
			t.Errorf("Enqueue with the revoked token: %v", err)
		}
		tokens, err = admin.ListTokens(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if listed, ok := findToken(tokens, info.ID); ok {
			t.Errorf("the revoked token is still listed: %+v", listed)
		}

		// Revoking it again, or a token never issued: ErrTokenNotFound (not a job's ErrNotFound).
		for _, id := range []string{info.ID, "0123456789abcdef"} {
			err := admin.RevokeToken(ctx, id)
			if !errors.Is(err, jobqueue.ErrTokenNotFound) || errors.Is(err, jobqueue.ErrNotFound) {
				t.Errorf("RevokeToken(%q) = %v", id, err)
			}
		}
	})

	t.Run("WithATTL", func(t *testing.T) {
		ctx, queue := testContext(t), uniqueQueue(t)
		// The expiry time is the creation time plus the ttl, and ListTokens shows it too.
		_, info, err := admin.CreateToken(ctx, "mailers", jobqueue.TokenRoleWorker, []string{"emails", "emails-*"}, 30*24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if info.Role != jobqueue.TokenRoleWorker || info.CreateTime.IsZero() || info.ExpireTime.Sub(info.CreateTime) != 30*24*time.Hour {
			t.Errorf("CreateToken = %+v", info)
		}
		tokens, err := admin.ListTokens(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if listed, ok := findToken(tokens, info.ID); !ok || !sameToken(listed, info) {
			t.Errorf("ListTokens has %+v, %v; want %+v", listed, ok, info)
		}

		// A token whose ttl has passed is refused as expired.
		token, short, err := admin.CreateToken(ctx, "short-lived", jobqueue.TokenRoleProducer, []string{queue}, time.Millisecond)
		if err != nil || short.ExpireTime.Sub(short.CreateTime) != time.Millisecond {
			t.Fatalf("CreateToken = %+v, %v", short, err)
		}
		producer := dial(t, addr, secure(jobqueue.WithToken(token), jobqueue.WithoutBatching())...)
		var last error
		eventually(t, "the 1 ms token is refused as expired", func() bool {
			_, last = producer.Enqueue(ctx, queue, nil)
			return errors.Is(last, jobqueue.ErrTokenExpired)
		})
		if !errors.Is(last, jobqueue.ErrUnauthenticated) {
			t.Errorf("Enqueue with the expired token: %v", last)
		}
	})
}
