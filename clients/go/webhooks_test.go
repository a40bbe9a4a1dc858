package jobqueue_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// storedWebhook is a webhook as the server answers it, every field set.
func storedWebhook(id string, created time.Time) *jobqueuev1.Webhook {
	return &jobqueuev1.Webhook{
		Id:                  id,
		Url:                 "https://ops.example.com/hooks/jobqueue",
		Queue:               "emails",
		OldestJobAge:        durationpb.New(5 * time.Minute),
		DeadJobs:            10,
		AllowPrivateNetwork: true,
		CreateTime:          timestamppb.New(created),
	}
}

func TestCreateWebhookSendsTheWholeDefinitionAndReadsTheSecretAndTheStoredWebhook(t *testing.T) {
	created := time.Date(2025, 3, 1, 12, 0, 0, 250e6, time.UTC)
	conn := &recordingConn{reply: &jobqueuev1.CreateWebhookResponse{Webhook: storedWebhook("01JWEBHOOK", created), Secret: "s3cret"}}
	client := jobqueue.New(conn, jobqueue.WithoutBatching())

	made, err := client.CreateWebhook(context.Background(), jobqueue.Webhook{
		ID:                  "ignored", // the server's, like CreateTime
		URL:                 "https://ops.example.com/hooks/jobqueue",
		Queue:               "emails",
		OldestJobAge:        5 * time.Minute,
		DeadJobs:            10,
		AllowPrivateNetwork: true,
		CreateTime:          created,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := &jobqueuev1.CreateWebhookRequest{Webhook: &jobqueuev1.Webhook{
		Url:                 "https://ops.example.com/hooks/jobqueue",
		Queue:               "emails",
		OldestJobAge:        durationpb.New(5 * time.Minute),
		DeadJobs:            10,
		AllowPrivateNetwork: true,
	}}
	if len(conn.requests) != 1 || !proto.Equal(conn.requests[0], want) {
		t.Errorf("requests = %v, want [%v]", conn.requests, want)
	}
	wantMade := jobqueue.NewWebhook{Secret: "s3cret", Webhook: jobqueue.Webhook{
		ID:                  "01JWEBHOOK",
		URL:                 "https://ops.example.com/hooks/jobqueue",
		Queue:               "emails",
		OldestJobAge:        5 * time.Minute,
		DeadJobs:            10,
		AllowPrivateNetwork: true,
		CreateTime:          created,
	}}
	if made.Secret != wantMade.Secret || !sameWebhook(made.Webhook, wantMade.Webhook) {
		t.Errorf("CreateWebhook = %+v, want %+v", made, wantMade)
	}
}

func TestAWebhookOfEveryQueueWithoutThresholdsLeavesThemUnset(t *testing.T) {
	conn := &recordingConn{reply: &jobqueuev1.CreateWebhookResponse{
		Webhook: &jobqueuev1.Webhook{Id: "01JW", Url: "https://ops.example.com/h"}, Secret: "s",
	}}
	client := jobqueue.New(conn, jobqueue.WithoutBatching())

	made, err := client.CreateWebhook(context.Background(), jobqueue.Webhook{URL: "https://ops.example.com/h"})
	if err != nil {
		t.Fatal(err)
	}
	req := conn.requests[0].(*jobqueuev1.CreateWebhookRequest).GetWebhook()
	if !proto.Equal(req, &jobqueuev1.Webhook{Url: "https://ops.example.com/h"}) || req.OldestJobAge != nil {
		t.Errorf("request = %v", req)
	}
	// An unset threshold, queue and time read back as zero values.
	if made.Webhook != (jobqueue.Webhook{ID: "01JW", URL: "https://ops.example.com/h"}) || made.Secret != "s" {
		t.Errorf("CreateWebhook = %+v", made)
	}
}

func TestNegativeWebhookThresholdsAreRefusedBeforeSending(t *testing.T) {
	conn := &recordingConn{reply: &jobqueuev1.CreateWebhookResponse{}}
	client := jobqueue.New(conn, jobqueue.WithoutBatching())
	cases := []struct {
		webhook jobqueue.Webhook
		field   string
	}{
		{jobqueue.Webhook{URL: "https://x.example", OldestJobAge: -time.Second}, "webhook.oldest_job_age"},
		{jobqueue.Webhook{URL: "https://x.example", DeadJobs: -1}, "webhook.dead_jobs"},
	}
	for _, c := range cases {
		made, err := client.CreateWebhook(context.Background(), c.webhook)
		var e *jobqueue.Error
		if !errors.Is(err, jobqueue.ErrInvalidArgument) || !errors.As(err, &e) || e.Field != c.field || made != (jobqueue.NewWebhook{}) {
			t.Errorf("%+v: CreateWebhook = %+v, %v; want ErrInvalidArgument naming %s", c.webhook, made, err, c.field)
		}
	}
	if len(conn.requests) != 0 {
		t.Errorf("sent %d requests", len(conn.requests))
	}
}

func TestListWebhooksReadsEachWebhook(t *testing.T) {
	created := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	conn := &recordingConn{reply: &jobqueuev1.ListWebhooksResponse{Webhooks: []*jobqueuev1.Webhook{
		storedWebhook("01JA", created),
		{Id: "01JB", Url: "http://10.0.0.7:8080/alerts", AllowPrivateNetwork: true, CreateTime: timestamppb.New(created.Add(time.Second))},
	}}}
	client := jobqueue.New(conn, jobqueue.WithoutBatching())

	webhooks, err := client.ListWebhooks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []jobqueue.Webhook{
		{ID: "01JA", URL: "https://ops.example.com/hooks/jobqueue", Queue: "emails", OldestJobAge: 5 * time.Minute,
			DeadJobs: 10, AllowPrivateNetwork: true, CreateTime: created},
		{ID: "01JB", URL: "http://10.0.0.7:8080/alerts", AllowPrivateNetwork: true, CreateTime: created.Add(time.Second)},
	}
	if len(webhooks) != len(want) {
		t.Fatalf("ListWebhooks = %+v, want %+v", webhooks, want)
	}
	for i := range want {
		if !sameWebhook(webhooks[i], want[i]) {
			t.Errorf("webhook %d = %+v, want %+v", i, webhooks[i], want[i])
		}
	}
	if len(conn.requests) != 1 || !proto.Equal(conn.requests[0], &jobqueuev1.ListWebhooksRequest{}) {
		t.Errorf("requests = %v", conn.requests)
	}

	// None: an empty slice, not an error.
	empty := jobqueue.New(&recordingConn{reply: &jobqueuev1.ListWebhooksResponse{}}, jobqueue.WithoutBatching())
	if webhooks, err := empty.ListWebhooks(context.Background()); err != nil || len(webhooks) != 0 {
		t.Errorf("ListWebhooks with none = %+v, %v", webhooks, err)
	}
}

func TestDeleteWebhookSendsTheID(t *testing.T) {
	conn := &recordingConn{reply: &jobqueuev1.DeleteWebhookResponse{}}
	client := jobqueue.New(conn, jobqueue.WithoutBatching())
	if err := client.DeleteWebhook(context.Background(), "01JWEBHOOK"); err != nil {
		t.Fatal(err)
	}
	if len(conn.requests) != 1 || !proto.Equal(conn.requests[0], &jobqueuev1.DeleteWebhookRequest{Id: "01JWEBHOOK"}) {
		t.Errorf("requests = %v", conn.requests)
	}
}

// sameWebhook compares two webhooks (times by instant).
func sameWebhook(a, b jobqueue.Webhook) bool {
	ta, tb := a.CreateTime, b.CreateTime
	a.CreateTime, b.CreateTime = time.Time{}, time.Time{}
	return a == b && ta.Equal(tb)
}

// An admin registers a webhook and keeps its secret; the receiver checks each delivery's
// signature and timestamp before trusting it.
func ExampleClient_CreateWebhook() {
	ctx := context.Background()
	admin, err := jobqueue.Dial("localhost:50051", jobqueue.WithToken("jq_..."))
	if err != nil {
		log.Fatal(err)
	}
	defer admin.Close()

	made, err := admin.CreateWebhook(ctx, jobqueue.Webhook{
		URL:          "https://ops.example.com/hooks/jobqueue",
		Queue:        "emails",
		OldestJobAge: 5 * time.Minute,
		DeadJobs:     10,
	})
	if err != nil {
		log.Fatal(err)
	}
	secret := made.Secret // shown this once: store it for the receiver
	fmt.Println("webhook", made.Webhook.ID)

	// The receiver, at https://ops.example.com/hooks/jobqueue:
	http.HandleFunc("POST /hooks/jobqueue", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		ts := r.Header.Get("Jobqueue-Timestamp")
		sec, err := strconv.ParseInt(ts, 10, 64)
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(ts + "."))
		mac.Write(body)
		want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
		if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute ||
			!hmac.Equal([]byte(want), []byte(r.Header.Get("Jobqueue-Signature"))) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		// Skip a Jobqueue-Delivery seen already (a delivery may come twice), then act on it.
		log.Printf("%s: %s", r.Header.Get("Jobqueue-Event"), body)
		w.WriteHeader(http.StatusNoContent)
	})
}
