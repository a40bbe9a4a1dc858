package jobqueue

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// TokenRole is what an API token may do (docs/security.md lists each method's roles).
type TokenRole string

// The token roles.
const (
	// TokenRoleProducer: Enqueue, EnqueueBatch, EnqueueStream, and GetStatus of jobs in its
	// queues.
	TokenRoleProducer TokenRole = "producer"
	// TokenRoleWorker: Lease, Ack, Fail and Extend on its queues.
	TokenRoleWorker TokenRole = "worker"
	// TokenRoleAdmin: every method on its queues; token management needs the pattern "*".
	TokenRoleAdmin TokenRole = "admin"
)

var tokenRoleToProto = map[TokenRole]jobqueuev1.TokenRole{
	TokenRoleProducer: jobqueuev1.TokenRole_TOKEN_ROLE_PRODUCER,
	TokenRoleWorker:   jobqueuev1.TokenRole_TOKEN_ROLE_WORKER,
	TokenRoleAdmin:    jobqueuev1.TokenRole_TOKEN_ROLE_ADMIN,
}

// tokenRoleFromProto is the role of a TokenInfo; "" for one this version of the package
// does not know (from a newer server).
func tokenRoleFromProto(p jobqueuev1.TokenRole) TokenRole {
	for k, v := range tokenRoleToProto {
		if v == p {
			return k
		}
	}
	return ""
}

// TokenInfo describes an API token, never its secret.
type TokenInfo struct {
	// ID is the token's public id, the part of the token before its secret
	// (jq_<id>_<secret>): what RevokeToken takes.
	ID string
	// Name is a label for people: who or what holds the token.
	Name string
	// Role is what the token may do.
	Role TokenRole
	// Queues are shell-style patterns ("*", "?", "[...]") of the queues the token may
	// touch; "*" is every queue.
	Queues []string
	// CreateTime is when the token was created.
	CreateTime time.Time
	// ExpireTime is when the token stops working; zero when it never does.
	ExpireTime time.Time
}

func tokenInfoFromProto(p *jobqueuev1.TokenInfo) TokenInfo {
	return TokenInfo{
		ID:         p.GetTokenId(),
		Name:       p.GetName(),
		Role:       tokenRoleFromProto(p.GetRole()),
		Queues:     p.GetQueues(),
		CreateTime: timeOf(p.GetCreateTime()),
		ExpireTime: timeOf(p.GetExpireTime()),
	}
}

// CreateToken issues an API token (the caller needs an admin token for the queues "*").
// The token, jq_<id>_<secret>, is returned this once: the server keeps only its hash, so
// store it (in a secret store) before anything else; info describes it. name is a label
// for people (1 to 128 printable characters); queues are 1 to 64 patterns of the queues
// the token may touch ("*" for every queue); a ttl of 0 makes a token that works until
// revoked. An unknown role or a negative ttl is ErrInvalidArgument, refused before
// sending; ErrTokenLimitReached when the server holds as many tokens as it allows.
func (c *Client) CreateToken(ctx context.Context, name string, role TokenRole, queues []string, ttl time.Duration) (token string, info TokenInfo, err error) {
	p, ok := tokenRoleToProto[role]
	if !ok {
		return "", TokenInfo{}, invalidArgument("role", "is not a known token role: use TokenRoleProducer, TokenRoleWorker or TokenRoleAdmin")
	}
	if ttl < 0 {
		return "", TokenInfo{}, invalidArgument("ttl", "must not be negative (0: the token does not expire)")
	}
	req := &jobqueuev1.CreateTokenRequest{Name: name, Role: p, Queues: queues}
	if ttl > 0 {
		req.Ttl = durationpb.New(ttl)
	}
	resp, err := c.stub.CreateToken(ctx, req)
	if err != nil {
		return "", TokenInfo{}, wrapError(err)
	}
	return resp.GetToken(), tokenInfoFromProto(resp.GetInfo()), nil
}

// ListTokens describes every token, sorted by id, without secrets (admin token for the
// queues "*").
func (c *Client) ListTokens(ctx context.Context) ([]TokenInfo, error) {
	resp, err := c.stub.ListTokens(ctx, &jobqueuev1.ListTokensRequest{})
	if err != nil {
		return nil, wrapError(err)
	}
	tokens := make([]TokenInfo, 0, len(resp.GetTokens()))
	for _, t := range resp.GetTokens() {
		tokens = append(tokens, tokenInfoFromProto(t))
	}
	return tokens, nil
}

// RevokeToken deletes the token with the given id (TokenInfo.ID; admin token for the
// queues "*"): new calls with it are refused with ErrTokenInvalid at once by this server
// and within a second by the others sharing its Redis, and open streams that authenticated
// with it (a Worker's, the batches' EnqueueStreams) end within seconds.
// ErrTokenNotFound when no token has the id (never issued, or revoked already).
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	_, err := c.stub.RevokeToken(ctx, &jobqueuev1.RevokeTokenRequest{TokenId: id})
	return wrapError(err)
}
