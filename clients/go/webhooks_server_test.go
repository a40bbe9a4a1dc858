package jobqueue_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
)

// webhookWait bounds the wait for a delivery: the dedicated server looks for events every
// 0.1 s, the default is every 2 s.
const webhookWait = 15 * time.Second

// delivery is one POST a webhook receiver got.
type delivery struct {
	method string
	header http.Header
	body   []byte
}

// webhookReceiver is a local HTTP endpoint (127.0.0.1) that records every request and
// answers 204.
func webhookReceiver(t *testing.T) (url string, deliveries <-chan delivery) {
	t.Helper()
	got := make(chan delivery, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		got <- delivery{method: r.Method, header: r.Header.Clone(), body: body}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/hooks/jobqueue", got
}

// serverWithFastWebhooks starts a `jobq serve` of the test's own (embedded Valkey) whose
// webhook dispatcher looks for events every 0.1 s (JOBQ_WEBHOOK_INTERVAL_SECONDS, read from
// the environment the server inherits), and a client of it.
func serverWithFastWebhooks(t *testing.T) *jobqueue.Client {
	t.Helper()
	if serveBin == "" {
		t.Skip(skipReason)
	}
	t.Setenv("JOBQ_WEBHOOK_INTERVAL_SECONDS", "0.1")
	dir := t.TempDir()
	addr, stop, err := launchServe(serveBin, dir, "--data-dir", filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return dial(t, addr)
}

// validSignature checks Jobqueue-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>.
func validSignature(secret string, d delivery) bool {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(d.header.Get("Jobqueue-Timestamp") + "."))
	mac.Write(d.body)
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	return hmac.Equal([]byte(want), []byte(d.header.Get("Jobqueue-Signature")))
}

func TestAWebhookReceivesASignedJobDeadAndIsManaged(t *testing.T) {
	client := serverWithFastWebhooks(t)
	ctx, queue := testContext(t), uniqueQueue(t)
	url, deliveries := webhookReceiver(t)

	// 127.0.0.1 is refused without AllowPrivateNetwork, naming the URL.
	_, err := client.CreateWebhook(ctx, jobqueue.Webhook{URL: url, Queue: queue})
	var e *jobqueue.Error
	if !errors.Is(err, jobqueue.ErrInvalidArgument) || !errors.As(err, &e) || e.Field != "webhook.url" {
		t.Fatalf("CreateWebhook to 127.0.0.1 without AllowPrivateNetwork = %v, want ErrInvalidArgument naming webhook.url", err)
	}
	if webhooks, err := client.ListWebhooks(ctx); err != nil || len(webhooks) != 0 {
		t.Fatalf("after a refusal, ListWebhooks = %+v, %v", webhooks, err)
	}

	before := time.Now()
	made, err := client.CreateWebhook(ctx, jobqueue.Webhook{URL: url, Queue: queue, AllowPrivateNetwork: true, DeadJobs: 5})
	if err != nil {
		t.Fatal(err)
	}
	hook := made.Webhook
	if made.Secret == "" || hook.ID == "" || hook.URL != url || hook.Queue != queue || !hook.AllowPrivateNetwork ||
		hook.DeadJobs != 5 || hook.OldestJobAge != 0 ||
		hook.CreateTime.Before(before.Add(-time.Minute)) || hook.CreateTime.After(time.Now().Add(time.Minute)) {
		t.Fatalf("CreateWebhook = %+v", made)
	}

	webhooks, err := client.ListWebhooks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(webhooks) != 1 || !sameWebhook(webhooks[0], hook) {
		t.Errorf("ListWebhooks = %+v, want [%+v]", webhooks, hook)
	}

	// A job with one attempt, failed non-retryably by a worker, dies: the webhook hears of it.
	startWorker(t, client, queue, func(ctx context.Context, job *jobqueue.LeasedJob) (map[string]any, error) {
		return nil, jobqueue.NonRetryable(errors.New("boom"))
	})
	id := enqueue(t, client, queue, map[string]any{"n": 1}, jobqueue.WithMaxAttempts(1))
	if job := waitFor(t, client, id); job.State != jobqueue.StateDead {
		t.Fatalf("job = %+v, want DEAD", job)
	}

	var d delivery
	select {
	case d = <-deliveries:
	case <-time.After(webhookWait):
		t.Fatalf("no delivery within %s", webhookWait)
	}
	if d.method != http.MethodPost || d.header.Get("Jobqueue-Event") != "job.dead" || d.header.Get("Jobqueue-Delivery") == "" {
		t.Errorf("delivery: %s, headers %v", d.method, d.header)
	}
	if !validSignature(made.Secret, d) {
		t.Errorf("Jobqueue-Signature %q does not sign %q.%s with the secret",
			d.header.Get("Jobqueue-Signature"), d.header.Get("Jobqueue-Timestamp"), d.body)
	}
	if sec, err := strconv.ParseInt(d.header.Get("Jobqueue-Timestamp"), 10, 64); err != nil ||
		time.Since(time.Unix(sec, 0)).Abs() > time.Minute {
		t.Errorf("Jobqueue-Timestamp %q is not now", d.header.Get("Jobqueue-Timestamp"))
	}
	var body struct {
		Event     string `json:"event"`
		Queue     string `json:"queue"`
		WebhookID string `json:"webhook_id"`
		Delivery  string `json:"delivery_id"`
		Job       struct {
			ID    string `json:"id"`
			State string `json:"state"`
		} `json:"job"`
	}
	if err := json.Unmarshal(d.body, &body); err != nil {
		t.Fatalf("body %s: %v", d.body, err)
	}
	if body.Event != "job.dead" || body.Queue != queue || body.WebhookID != hook.ID || body.Job.ID != id ||
		body.Delivery != d.header.Get("Jobqueue-Delivery") {
		t.Errorf("body = %s", d.body)
	}

	// Deleted, it is no longer listed, and deleting it again is ErrWebhookNotFound (not a
	// job's ErrNotFound).
	if err := client.DeleteWebhook(ctx, hook.ID); err != nil {
		t.Fatal(err)
	}
	if webhooks, err := client.ListWebhooks(ctx); err != nil || len(webhooks) != 0 {
		t.Errorf("after DeleteWebhook, ListWebhooks = %+v, %v", webhooks, err)
	}
	for _, id := range []string{hook.ID, "01J000000000000000000NONE"} {
		if err := client.DeleteWebhook(ctx, id); !errors.Is(err, jobqueue.ErrWebhookNotFound) || errors.Is(err, jobqueue.ErrNotFound) {
			t.Errorf("DeleteWebhook(%q) = %v, want ErrWebhookNotFound", id, err)
		}
	}
}

func TestTheHundredAndFirstWebhookIsErrWebhookLimitReached(t *testing.T) {
	client := serverWithFastWebhooks(t)
	ctx, queue := testContext(t), uniqueQueue(t)
	url, _ := webhookReceiver(t)

	hook := jobqueue.Webhook{URL: url, Queue: queue, AllowPrivateNetwork: true}
	var ids []string
	for range 100 {
		made, err := client.CreateWebhook(ctx, hook)
		if err != nil {
			t.Fatalf("webhook %d: %v", len(ids)+1, err)
		}
		ids = append(ids, made.Webhook.ID)
	}
	_, err := client.CreateWebhook(ctx, hook)
	if !errors.Is(err, jobqueue.ErrWebhookLimitReached) || !errors.Is(err, jobqueue.ErrResourceExhausted) {
		t.Fatalf("the 101st CreateWebhook = %v, want ErrWebhookLimitReached", err)
	}

	// ListWebhooks has them all, oldest first (ids made in one millisecond may come in any
	// order); once one is deleted, there is room again.
	webhooks, err := client.ListWebhooks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	listed := make([]string, 0, len(webhooks))
	for _, w := range webhooks {
		listed = append(listed, w.ID)
	}
	if !slices.IsSortedFunc(webhooks, func(a, b jobqueue.Webhook) int { return a.CreateTime.Compare(b.CreateTime) }) {
		t.Errorf("ListWebhooks is not oldest first: %+v", webhooks)
	}
	slices.Sort(listed)
	slices.Sort(ids)
	if !slices.Equal(listed, ids) {
		t.Errorf("ListWebhooks = %v, want %v", listed, ids)
	}
	if err := client.DeleteWebhook(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CreateWebhook(ctx, hook); err != nil {
		t.Errorf("CreateWebhook after a delete: %v", err)
	}
}
