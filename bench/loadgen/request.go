package main

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

// The methods the load generator calls.
const (
	enqueueMethod = "/jobqueue.v1.JobQueueService/Enqueue"
	echoMethod    = "/bench.Echo/Unary"
)

// request is the method to call and its encoded request, the same bytes for every call.
func request(kind, queue string, payloadBytes int) (method string, body []byte, err error) {
	switch kind {
	case "echo":
		return echoMethod, []byte(strings.Repeat("x", payloadBytes)), nil
	case "enqueue":
		payload, err := structpb.NewStruct(map[string]any{"pad": pad(payloadBytes)})
		if err != nil {
			return "", nil, err
		}
		body, err := proto.Marshal(&jobqueuev1.EnqueueRequest{Queue: queue, Payload: payload})
		return enqueueMethod, body, err
	}
	return "", nil, fmt.Errorf("--kind must be enqueue or echo, not %q", kind)
}

// pad makes the payload {"pad": "xxx..."}, whose JSON is size bytes (at least its 10 fixed
// ones), as bench/PROTOCOL.md sizes payloads.
func pad(size int) string {
	return strings.Repeat("x", max(size-len(`{"pad":""}`), 0))
}
