package jobqueue

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// tracerName is the instrumentation scope: "jobqueue" in every client library, so that a
// trace reads the same whichever language produced or ran the job.
const tracerName = "jobqueue"

// The attributes of the OpenTelemetry messaging semantic conventions, and the library's own.
const (
	attrSystem       = attribute.Key("messaging.system")
	attrDestination  = attribute.Key("messaging.destination.name")
	attrOpType       = attribute.Key("messaging.operation.type")
	attrOpName       = attribute.Key("messaging.operation.name")
	attrMessageID    = attribute.Key("messaging.message.id")
	attrBatchCount   = attribute.Key("messaging.batch.message_count")
	attrJobAttempt   = attribute.Key("jobqueue.job.attempt")
	attrWorkerID     = attribute.Key("jobqueue.worker.id")
	systemName       = "jobqueue"
	traceparentField = "traceparent"
)

// WithTracerProvider sets the OpenTelemetry tracer provider of the client's producer spans
// and of the process spans of its workers (default otel.GetTracerProvider(), which records
// nothing until the application installs an SDK provider).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(s *dialSettings) { s.tracerProvider = tp }
}

func newTracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		// The global provider delegates to one set later, so this tracer follows it.
		tp = otel.GetTracerProvider()
	}
	return tp.Tracer(tracerName)
}

// propagator is the application's global propagator or, while that is the no-op default
// (it has no fields), W3C trace context: a job's context must travel even when the
// application set only a tracer provider. Read on each use, as the application may set it
// after Dial.
func propagator() propagation.TextMapPropagator {
	if p := otel.GetTextMapPropagator(); len(p.Fields()) > 0 {
		return p
	}
	return propagation.TraceContext{}
}

// sendSpan is the producer span of one Enqueue or EnqueueBatch call.
type sendSpan struct {
	span trace.Span
	// fields is the span's context as propagation fields (traceparent, tracestate, ...);
	// nil when the span is not recording, so nothing is injected: the no-cost path.
	fields propagation.MapCarrier
}

// startSend starts the producer span for jobs of queue ("" when they go to several queues;
// batch is the job count of an EnqueueBatch call, 0 for Enqueue). The returned context
// carries the span, and its context as outgoing gRPC metadata so that the server's span of
// the call is the send span's child.
func (c *Client) startSend(ctx context.Context, queue string, batch int) (context.Context, sendSpan) {
	name := "send"
	if queue != "" {
		name += " " + queue
	}
	ctx, span := c.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindProducer))
	if !span.IsRecording() {
		return ctx, sendSpan{span: span}
	}
	span.SetAttributes(attrSystem.String(systemName), attrOpType.String("send"), attrOpName.String("send"))
	if queue != "" {
		span.SetAttributes(attrDestination.String(queue))
	}
	if batch > 0 {
		span.SetAttributes(attrBatchCount.Int(batch))
	}
	fields := propagation.MapCarrier{}
	propagator().Inject(ctx, fields)
	if len(fields) == 0 {
		return ctx, sendSpan{span: span}
	}
	md, _ := metadata.FromOutgoingContext(ctx)
	md = md.Copy() // the caller's metadata is shared: set ours on a copy
	for k, v := range fields {
		md.Set(k, v)
	}
	return metadata.NewOutgoingContext(ctx, md), sendSpan{span: span, fields: fields}
}

// inject puts the span's context in the job's metadata, for the worker's process span,
// unless the caller put a traceparent there: theirs is kept, whole.
func (s sendSpan) inject(req *jobqueuev1.EnqueueRequest) {
	if s.fields == nil {
		return
	}
	if _, ok := req.Metadata[traceparentField]; ok {
		return
	}
	if req.Metadata == nil {
		req.Metadata = make(map[string]string, len(s.fields))
	}
	for k, v := range s.fields {
		if _, taken := req.Metadata[k]; !taken {
			req.Metadata[k] = v
		}
	}
}

// end ends the span; jobID is the enqueued job's ("" for a batch).
func (s sendSpan) end(jobID string, err error) {
	if jobID != "" && err == nil && s.span.IsRecording() {
		s.span.SetAttributes(attrMessageID.String(jobID))
	}
	endSpan(s.span, err)
}

// endSpan ends span, marked as failed when err is not nil.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(otelcodes.Error, err.Error())
	}
	span.End()
}

// batchQueue is the queue every job of a batch goes to, or "" when they go to several.
func batchQueue(jobs []BatchJob) string {
	if len(jobs) == 0 {
		return ""
	}
	for _, job := range jobs[1:] {
		if job.Queue != jobs[0].Queue {
			return ""
		}
	}
	return jobs[0].Queue
}

// startProcess starts the consumer span of one run of job's handler. Its parent is the
// context the producer put in the job's metadata, linked as well (the messaging
// conventions link a process span to the message's creation context); without one it is a
// root, whatever span Run's context holds. The returned context carries it to the handler.
func (w *Worker) startProcess(ctx context.Context, job *LeasedJob) (context.Context, trace.Span) {
	// An empty span context first, so that a job without one does not extract Run's span.
	ctx = propagator().Extract(trace.ContextWithSpanContext(ctx, trace.SpanContext{}), propagation.MapCarrier(job.Metadata))
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}
	if created := trace.SpanContextFromContext(ctx); created.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: created}))
	}
	ctx, span := w.client.tracer.Start(ctx, "process "+job.Queue, opts...)
	if span.IsRecording() {
		span.SetAttributes(
			attrSystem.String(systemName),
			attrDestination.String(job.Queue),
			attrOpType.String("process"),
			attrOpName.String("process"),
			attrMessageID.String(job.ID),
			attrJobAttempt.Int(job.Attempt),
			attrWorkerID.String(w.settings.workerID),
		)
	}
	return ctx, span
}

// endProcess ends a process span: failed when the handler failed, or when its job was
// stopped or its lease lost while it ran (what it returned is dropped then).
func endProcess(ctx context.Context, span trace.Span, err error) {
	if err == nil {
		err = context.Cause(ctx)
	}
	endSpan(span, err)
}
