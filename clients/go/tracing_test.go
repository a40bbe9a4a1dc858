package jobqueue_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"testing"
	"time"

	otelcodes "go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/types/known/timestamppb"

	jobqueue "github.com/jobqueue/jobqueue/clients/go"
	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// recordingProvider is an SDK tracer provider that keeps every span in memory once it ends.
func recordingProvider(t *testing.T, opts ...sdktrace.TracerProviderOption) (*sdktrace.TracerProvider, *tracetest.InMemoryExporter) {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(append(opts, sdktrace.WithSyncer(spans))...)
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, spans
}

// traceparent is sc as a W3C traceparent header.
func traceparent(sc trace.SpanContext) string {
	return fmt.Sprintf("00-%s-%s-%s", sc.TraceID(), sc.SpanID(), sc.TraceFlags())
}

// spanNamed returns the one ended span called name.
func spanNamed(t *testing.T, spans *tracetest.InMemoryExporter, name string) tracetest.SpanStub {
	t.Helper()
	var found []tracetest.SpanStub
	for _, s := range spans.GetSpans() {
		if s.Name == name {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans named %q among %v", len(found), name, spanNames(spans))
	}
	return found[0]
}

func spanNames(spans *tracetest.InMemoryExporter) []string {
	var names []string
	for _, s := range spans.GetSpans() {
		names = append(names, s.Name)
	}
	return names
}

func attributesOf(s tracetest.SpanStub) map[string]any {
	m := map[string]any{}
	for _, kv := range s.Attributes {
		m[string(kv.Key)] = kv.Value.AsInterface()
	}
	return m
}

func sendAttributes(queue string) map[string]any {
	return map[string]any{
		"messaging.system":           "jobqueue",
		"messaging.destination.name": queue,
		"messaging.operation.type":   "send",
		"messaging.operation.name":   "send",
	}
}

func TestAnEnqueuesSendSpanTravelsInTheJobsMetadataAndTheCallsHeaders(t *testing.T) {
	tp, spans := recordingProvider(t)
	client, fake := startFakeServer(t, jobqueue.WithTracerProvider(tp), jobqueue.WithoutBatching())
	ctx, request := tp.Tracer("test").Start(testContext(t), "request")

	res, err := client.Enqueue(ctx, "emails", nil, jobqueue.WithMetadata(map[string]string{"tenant": "acme"}))
	request.End()
	if err != nil {
		t.Fatal(err)
	}

	send := spanNamed(t, spans, "send emails")
	wantAttrs := sendAttributes("emails")
	wantAttrs["messaging.message.id"] = res.JobID
	if got := attributesOf(send); !reflect.DeepEqual(got, wantAttrs) {
		t.Errorf("attributes\n got %v\nwant %v", got, wantAttrs)
	}
	if send.SpanKind != trace.SpanKindProducer || send.Status.Code != otelcodes.Unset {
		t.Errorf("kind %v, status %v", send.SpanKind, send.Status)
	}
	if send.Parent.SpanID() != request.SpanContext().SpanID() {
		t.Errorf("parent %v, want the caller's span %v", send.Parent.SpanID(), request.SpanContext().SpanID())
	}
	calls := fake.received()
	if len(calls) != 1 || calls[0].method != "Enqueue" {
		t.Fatalf("calls %+v", calls)
	}
	want := traceparent(send.SpanContext)
	if md, wantMD := calls[0].requests[0].GetMetadata(), map[string]string{"tenant": "acme", "traceparent": want}; !maps.Equal(md, wantMD) {
		t.Errorf("job metadata %v, want %v", md, wantMD)
	}
	if got := calls[0].headers.Get("traceparent"); !reflect.DeepEqual(got, []string{want}) {
		t.Errorf("traceparent header %q, want %q", got, want)
	}
}

func TestABatchedEnqueueCarriesItsSendSpanInTheJobsMetadataOnly(t *testing.T) {
	tp, spans := recordingProvider(t)
	client, fake := startFakeServer(t, jobqueue.WithTracerProvider(tp))

	if _, err := client.Enqueue(testContext(t), "emails", nil); err != nil {
		t.Fatal(err)
	}

	send := spanNamed(t, spans, "send emails")
	calls := fake.received()
	if len(calls) != 1 || calls[0].method != "EnqueueStream" {
		t.Fatalf("calls %+v", calls)
	}
	if got, want := calls[0].requests[0].GetMetadata()["traceparent"], traceparent(send.SpanContext); got != want {
		t.Errorf("job traceparent %q, want %q", got, want)
	}
	// The stream is every caller's: it carries no caller's context.
	if got := calls[0].headers.Get("traceparent"); len(got) != 0 {
		t.Errorf("the shared stream carries traceparent %q", got)
	}
}

func TestEnqueueBatchHasOneSendSpanInEveryJobAndCall(t *testing.T) {
	tp, spans := recordingProvider(t)
	client, fake := startFakeServer(t, jobqueue.WithTracerProvider(tp))
	const callers = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

	_, err := client.EnqueueBatch(testContext(t), []jobqueue.BatchJob{
		{Queue: "q"},
		{Queue: "q", Options: []jobqueue.EnqueueOption{jobqueue.WithMetadata(map[string]string{"traceparent": callers})}},
	})
	if err != nil {
		t.Fatal(err)
	}

	send := spanNamed(t, spans, "send q")
	wantAttrs := sendAttributes("q")
	wantAttrs["messaging.batch.message_count"] = int64(2)
	if got := attributesOf(send); !reflect.DeepEqual(got, wantAttrs) {
		t.Errorf("attributes\n got %v\nwant %v", got, wantAttrs)
	}
	calls := fake.received()
	if len(calls) != 1 || calls[0].method != "EnqueueBatch" {
		t.Fatalf("calls %+v", calls)
	}
	want := traceparent(send.SpanContext)
	if got := calls[0].requests[0].GetMetadata(); !maps.Equal(got, map[string]string{"traceparent": want}) {
		t.Errorf("first job's metadata %v, want the send span's traceparent %s", got, want)
	}
	if got := calls[0].requests[1].GetMetadata(); !maps.Equal(got, map[string]string{"traceparent": callers}) {
		t.Errorf("second job's metadata %v, want the caller's traceparent kept", got)
	}
	if got := calls[0].headers.Get("traceparent"); !reflect.DeepEqual(got, []string{want}) {
		t.Errorf("traceparent header %q, want %q", got, want)
	}

	spans.Reset()
	if _, err := client.EnqueueBatch(testContext(t), []jobqueue.BatchJob{{Queue: "a"}, {Queue: "b"}}); err != nil {
		t.Fatal(err)
	}
	mixed := attributesOf(spanNamed(t, spans, "send"))
	if _, ok := mixed["messaging.destination.name"]; ok || mixed["messaging.batch.message_count"] != int64(2) {
		t.Errorf("a batch of two queues has attributes %v", mixed)
	}
}

func TestAFailedSendMarksItsSpanAsAnError(t *testing.T) {
	tp, spans := recordingProvider(t)
	client, _ := startFakeServer(t, jobqueue.WithTracerProvider(tp), jobqueue.WithoutBatching())

	if _, err := client.Enqueue(testContext(t), "refused", nil); err == nil {
		t.Fatal("the enqueue succeeded")
	}

	send := spanNamed(t, spans, "send refused")
	if send.Status.Code != otelcodes.Error || len(send.Events) != 1 || send.Events[0].Name != "exception" {
		t.Errorf("status %v, events %v: want an error and the exception recorded", send.Status, send.Events)
	}
	if _, ok := attributesOf(send)["messaging.message.id"]; ok {
		t.Error("a refused job has a message id")
	}
}

func TestWithoutARecordingSpanNothingIsInjected(t *testing.T) {
	sampledOut, spans := recordingProvider(t, sdktrace.WithSampler(sdktrace.NeverSample()))
	for name, opts := range map[string][]jobqueue.Option{
		"global no-op provider": nil,
		"sampled out":           {jobqueue.WithTracerProvider(sampledOut)},
	} {
		t.Run(name, func(t *testing.T) {
			client, fake := startFakeServer(t, append(opts, jobqueue.WithoutBatching())...)
			md := map[string]string{"tenant": "acme"}
			if _, err := client.Enqueue(testContext(t), "q", nil, jobqueue.WithMetadata(md)); err != nil {
				t.Fatal(err)
			}
			if _, err := client.EnqueueBatch(testContext(t), []jobqueue.BatchJob{{Queue: "q"}}); err != nil {
				t.Fatal(err)
			}
			for _, call := range fake.received() {
				if got := call.headers.Get("traceparent"); len(got) != 0 {
					t.Errorf("%s carries traceparent %q", call.method, got)
				}
				if got := call.requests[0].GetMetadata(); call.method == "Enqueue" && !maps.Equal(got, md) ||
					call.method == "EnqueueBatch" && len(got) != 0 {
					t.Errorf("%s sent metadata %v", call.method, got)
				}
			}
		})
	}
	if got := spans.GetSpans(); len(got) != 0 {
		t.Errorf("spans recorded: %v", got)
	}
}

// leaseWithMetadata sends the worker job id of queue "q" at attempt 2, with md.
func leaseWithMetadata(fake *fakeServer, id string, md map[string]string) {
	now := time.Now()
	fake.responses <- &jobqueuev1.LeaseResponse{Jobs: []*jobqueuev1.LeasedJob{{
		Job: &jobqueuev1.Job{
			Id: id, Queue: "q", State: jobqueuev1.JobState_JOB_STATE_ACTIVE, Attempts: 2, MaxAttempts: 3,
			StartTime: timestamppb.New(now), Metadata: md,
		},
		LeaseToken:      "tok-" + id,
		LeaseExpireTime: timestamppb.New(now.Add(time.Hour)),
	}}}
}

func TestTheProcessSpanIsTheChildOfTheJobsCreationContextAndLinksToIt(t *testing.T) {
	tp, spans := recordingProvider(t)
	client, fake := startFakeServer(t, jobqueue.WithTracerProvider(tp))
	inHandler := make(chan trace.SpanContext, 2)
	startWorker(t, client, "q", func(ctx context.Context, job *jobqueue.LeasedJob) (map[string]any, error) {
		inHandler <- trace.SpanContextFromContext(ctx)
		if job.ID == "q:fails" {
			return nil, errors.New("boom")
		}
		return nil, nil
	}, jobqueue.WithGracePeriod(0)) // the fake confirms no ack: a graceful stop would wait for ever
	created, err := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	if err != nil {
		t.Fatal(err)
	}
	creator, err := trace.SpanIDFromHex("00f067aa0ba902b7")
	if err != nil {
		t.Fatal(err)
	}

	leaseWithMetadata(fake, "q:traced", map[string]string{
		"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tracestate": "vendor=1",
	})
	if ack, _ := untilSettled(t, fake, "q:traced"); ack == nil {
		t.Fatal("the job was not acked")
	}

	process := spanNamed(t, spans, "process q")
	if process.Parent.TraceID() != created || process.Parent.SpanID() != creator || !process.Parent.IsRemote() {
		t.Errorf("parent %+v, want the remote span %s of trace %s", process.Parent, creator, created)
	}
	if process.SpanContext.TraceID() != created {
		t.Errorf("trace %s, want the job's %s", process.SpanContext.TraceID(), created)
	}
	if len(process.Links) != 1 || !process.Links[0].SpanContext.Equal(process.Parent) {
		t.Errorf("links %+v, want one to the parent %+v", process.Links, process.Parent)
	}
	wantAttrs := map[string]any{
		"messaging.system":           "jobqueue",
		"messaging.destination.name": "q",
		"messaging.operation.type":   "process",
		"messaging.operation.name":   "process",
		"messaging.message.id":       "q:traced",
		"jobqueue.job.attempt":       int64(2),
		"jobqueue.worker.id":         "go-test",
	}
	if got := attributesOf(process); !reflect.DeepEqual(got, wantAttrs) {
		t.Errorf("attributes\n got %v\nwant %v", got, wantAttrs)
	}
	if process.SpanKind != trace.SpanKindConsumer || process.Status.Code != otelcodes.Unset {
		t.Errorf("kind %v, status %v", process.SpanKind, process.Status)
	}
	if got := <-inHandler; !got.Equal(process.SpanContext) {
		t.Errorf("the handler's context holds span %+v, want the process span %+v", got, process.SpanContext)
	}

	spans.Reset()
	leaseWithMetadata(fake, "q:fails", nil)
	if _, fail := untilSettled(t, fake, "q:fails"); fail == nil {
		t.Fatal("the job was not failed")
	}
	<-inHandler
	failed := spanNamed(t, spans, "process q")
	if failed.Parent.IsValid() || len(failed.Links) != 0 {
		t.Errorf("a job without a traceparent has parent %+v and links %+v: want a root", failed.Parent, failed.Links)
	}
	if failed.Status.Code != otelcodes.Error || failed.Status.Description != "boom" {
		t.Errorf("status %+v, want the handler's error", failed.Status)
	}
}

func TestAJobsProcessSpanIsTheChildOfItsSendSpan(t *testing.T) {
	if serverAddr == "" {
		t.Skip(skipReason)
	}
	tp, spans := recordingProvider(t)
	client, err := jobqueue.Dial(serverAddr, jobqueue.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	queue := uniqueQueue(t)
	startWorker(t, client, queue, func(context.Context, *jobqueue.LeasedJob) (map[string]any, error) {
		return nil, nil
	})

	res, err := client.Enqueue(testContext(t), queue, nil)
	if err != nil {
		t.Fatal(err)
	}
	job := waitFor(t, client, res.JobID)

	send, process := spanNamed(t, spans, "send "+queue), spanNamed(t, spans, "process "+queue)
	if got, want := job.Metadata["traceparent"], traceparent(send.SpanContext); got != want {
		t.Errorf("the job's traceparent %q, want the send span's %q", got, want)
	}
	if process.Parent.TraceID() != send.SpanContext.TraceID() || process.Parent.SpanID() != send.SpanContext.SpanID() {
		t.Errorf("process span's parent %+v, want the send span %+v", process.Parent, send.SpanContext)
	}
	if len(process.Links) != 1 || process.Links[0].SpanContext.SpanID() != send.SpanContext.SpanID() {
		t.Errorf("links %+v, want one to the send span", process.Links)
	}
	if attributesOf(process)["messaging.message.id"] != res.JobID || attributesOf(send)["messaging.message.id"] != res.JobID {
		t.Errorf("message ids: send %v, process %v, want %s", attributesOf(send), attributesOf(process), res.JobID)
	}
}
