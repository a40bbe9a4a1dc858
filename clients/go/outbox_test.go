package jobqueue

import (
	"fmt"
	"testing"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

func TestTheOutboxCoalescesEverythingWaitingIntoOneRequest(t *testing.T) {
	o := newOutbox()
	o.extend(&jobqueuev1.ExtendRequest{JobId: "a"})
	o.settle(settlement{ack: &jobqueuev1.AckRequest{JobId: "b"}})
	o.settle(settlement{fail: &jobqueuev1.FailRequest{JobId: "c"}})
	o.resubscribe(&jobqueuev1.Subscribe{MaxInFlight: 1})
	req, done := o.take()
	if done || req.GetSubscribe().GetMaxInFlight() != 1 || len(req.GetExtends()) != 1 || len(req.GetAcks()) != 1 || len(req.GetFails()) != 1 {
		t.Errorf("req = %v, done = %v", req, done)
	}
	if req, _ := o.take(); req != nil {
		t.Errorf("a second take found %v", req)
	}
}

func TestALongBacklogIsSplitAcrossRequests(t *testing.T) {
	o := newOutbox()
	for i := range maxEntriesPerMessage + 10 {
		o.settle(settlement{ack: &jobqueuev1.AckRequest{JobId: fmt.Sprint(i)}})
	}
	o.close()
	first, done := o.take()
	if len(first.GetAcks()) != maxEntriesPerMessage || done {
		t.Errorf("first = %d acks, done %v", len(first.GetAcks()), done)
	}
	second, done := o.take()
	if len(second.GetAcks()) != 10 || !done || second.GetAcks()[0].GetJobId() != fmt.Sprint(maxEntriesPerMessage) {
		t.Errorf("second = %d acks, done %v", len(second.GetAcks()), done)
	}
}
