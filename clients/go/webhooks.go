package jobqueue

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// Webhook is an HTTP(S) endpoint the servers POST failure alerts to, as signed JSON
// (docs/monitoring.md): event "job.dead" when a job of Queue ends DEAD, and, when their
// thresholds are set, "queue.oldest_job_age" and "queue.dead_jobs" once when a queue passes
// the threshold ("firing") and once when it is back under ("resolved"). Each POST carries the
// headers Jobqueue-Event, Jobqueue-Delivery (the same on every retry of a delivery:
// deduplicate by it), Jobqueue-Timestamp (Unix seconds) and Jobqueue-Signature,
// "sha256=<hex>" of HMAC-SHA256 keyed with NewWebhook.Secret over "<timestamp>.<body>". A
// delivery is retried with backoff until the endpoint answers 2xx, so it arrives at least
// once.
//
// CreateWebhook takes a Webhook as its definition (ID and CreateTime are the server's and
// are ignored there); ListWebhooks returns them as stored. Zero fields are unset.
type Webhook struct {
	// ID is the server's id of the webhook: what DeleteWebhook takes.
	ID string
	// URL is the endpoint: http:// or https://, at most 2,048 characters, without
	// credentials. Its host must resolve to public addresses only (checked at creation and at
	// every delivery), unless AllowPrivateNetwork. Required.
	URL string
	// Queue is the queue whose events the webhook receives; "" is every queue.
	Queue string
	// OldestJobAge, when set, also alerts when a queue's oldest ready job has waited longer
	// than this (event "queue.oldest_job_age"): 1 s to 7 days; 0 is never.
	OldestJobAge time.Duration
	// DeadJobs, when set, also alerts when a queue holds at least this many DEAD jobs (event
	// "queue.dead_jobs"); 0 is never.
	DeadJobs int64
	// AllowPrivateNetwork allows an endpoint on a private, loopback or link-local address
	// (an internal service); without it such a URL is refused with ErrInvalidArgument naming
	// "webhook.url".
	AllowPrivateNetwork bool
	// CreateTime is when CreateWebhook made the webhook.
	CreateTime time.Time
}

// NewWebhook is a webhook just created, with its signing secret.
type NewWebhook struct {
	// Secret keys the HMAC-SHA256 signature of every delivery (Jobqueue-Signature). It is
	// returned this once: ListWebhooks never shows it, so store it (in a secret store) for
	// the receiver before anything else.
	Secret string
	// Webhook is the webhook as stored, with its ID and CreateTime.
	Webhook Webhook
}

// toProto builds the message for CreateWebhook. ID and CreateTime are the server's and are
// not sent. What the server would refuse and the message could carry anyway is left to the
// server, but for negative thresholds, refused here, named as the server names fields.
func (w Webhook) toProto() (*jobqueuev1.Webhook, error) {
	const prefix = "webhook."
	if w.OldestJobAge < 0 {
		return nil, invalidArgument(prefix+"oldest_job_age", "must not be negative (0: no alert)")
	}
	if w.DeadJobs < 0 {
		return nil, invalidArgument(prefix+"dead_jobs", "must not be negative (0: no alert)")
	}
	p := &jobqueuev1.Webhook{
		Url:                 w.URL,
		Queue:               w.Queue,
		DeadJobs:            w.DeadJobs,
		AllowPrivateNetwork: w.AllowPrivateNetwork,
	}
	if w.OldestJobAge != 0 {
		p.OldestJobAge = durationpb.New(w.OldestJobAge)
	}
	return p, nil
}

func webhookFromProto(p *jobqueuev1.Webhook) Webhook {
	return Webhook{
		ID:                  p.GetId(),
		URL:                 p.GetUrl(),
		Queue:               p.GetQueue(),
		OldestJobAge:        durationOf(p.GetOldestJobAge()),
		DeadJobs:            p.GetDeadJobs(),
		AllowPrivateNetwork: p.GetAllowPrivateNetwork(),
		CreateTime:          timeOf(p.GetCreateTime()),
	}
}

// CreateWebhook has the servers POST failure alerts to w.URL (see Webhook) and returns the
// webhook as stored with its signing secret, shown this once. The webhook hears of the jobs
// that die after its creation only. Like every webhook method, it needs an admin token whose
// patterns include "*" on a server with --auth (a webhook can hear of every queue).
// ErrInvalidArgument, with Error.Field naming the field ("webhook.url", "webhook.queue",
// "webhook.oldest_job_age", ...), for a bad definition, a URL whose host does not resolve,
// or one on a private address without AllowPrivateNetwork; a negative OldestJobAge or
// DeadJobs is refused before sending. ErrWebhookLimitReached when the server holds as many
// webhooks as it allows (100).
func (c *Client) CreateWebhook(ctx context.Context, w Webhook) (NewWebhook, error) {
	p, err := w.toProto()
	if err != nil {
		return NewWebhook{}, err
	}
	resp, err := c.stub.CreateWebhook(ctx, &jobqueuev1.CreateWebhookRequest{Webhook: p})
	if err != nil {
		return NewWebhook{}, wrapError(err)
	}
	return NewWebhook{Secret: resp.GetSecret(), Webhook: webhookFromProto(resp.GetWebhook())}, nil
}

// ListWebhooks returns every webhook, oldest first, without secrets. It takes an admin
// token for "*" on a server with --auth.
func (c *Client) ListWebhooks(ctx context.Context) ([]Webhook, error) {
	resp, err := c.stub.ListWebhooks(ctx, &jobqueuev1.ListWebhooksRequest{})
	if err != nil {
		return nil, wrapError(err)
	}
	webhooks := make([]Webhook, 0, len(resp.GetWebhooks()))
	for _, p := range resp.GetWebhooks() {
		webhooks = append(webhooks, webhookFromProto(p))
	}
	return webhooks, nil
}

// DeleteWebhook removes the webhook with the given id (Webhook.ID) and its secret: the
// servers stop delivering to it (a delivery already under way may still arrive).
// ErrWebhookNotFound when there is none (never created, or deleted already). It takes an
// admin token for "*" on a server with --auth.
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	_, err := c.stub.DeleteWebhook(ctx, &jobqueuev1.DeleteWebhookRequest{Id: id})
	return wrapError(err)
}
