package jobqueue

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

func reportingJob(o *outbox, id string) *LeasedJob {
	return &LeasedJob{ID: id, LeaseToken: "token-" + id, out: o}
}

func TestReportsWaitForTheNextMessageAndAreMergedIntoOneUpdate(t *testing.T) {
	o := newOutbox()
	job := reportingJob(o, "q:1")
	job.Progress(10, "starting")
	job.Log("first")
	job.Progress(60, "copying")
	job.Log("second")
	o.extend(&jobqueuev1.ExtendRequest{JobId: "q:2"})

	req, _ := o.take()

	percent := 60.0
	want := &jobqueuev1.ProgressUpdate{JobId: "q:1", LeaseToken: "token-q:1", Percent: &percent, Message: "copying", Logs: []string{"first", "second"}}
	if len(req.GetProgress()) != 1 || !proto.Equal(req.GetProgress()[0], want) || len(req.GetExtends()) != 1 {
		t.Fatalf("request = %v", req)
	}
	if req, _ := o.take(); req != nil {
		t.Errorf("a second take found %v", req)
	}
}

func TestLinesAloneLeaveTheProgressUnset(t *testing.T) {
	o := newOutbox()
	reportingJob(o, "q:1").Log("only a line")

	req, _ := o.take()

	if u := req.GetProgress(); len(u) != 1 || u[0].Percent != nil || u[0].GetMessage() != "" || !slices.Equal(u[0].GetLogs(), []string{"only a line"}) {
		t.Errorf("updates = %v", u)
	}
}

func TestMoreThan100LinesAreSplitIntoUpdatesInOrderWithTheProgressInTheFirst(t *testing.T) {
	o := newOutbox()
	job := reportingJob(o, "q:1")
	var lines []string
	for i := range 250 {
		lines = append(lines, fmt.Sprint("line ", i))
		job.Log(lines[i])
	}
	job.Progress(5, "five")

	req, _ := o.take()

	updates := req.GetProgress()
	if len(updates) != 3 {
		t.Fatalf("%d updates: %v", len(updates), updates)
	}
	var sent []string
	for i, u := range updates {
		if n := len(u.GetLogs()); n != []int{100, 100, 50}[i] {
			t.Errorf("update %d has %d lines", i, n)
		}
		if u.GetJobId() != "q:1" || u.GetLeaseToken() != "token-q:1" {
			t.Errorf("update %d is for %s/%s", i, u.GetJobId(), u.GetLeaseToken())
		}
		if (u.Percent != nil) != (i == 0) || (u.GetMessage() != "") != (i == 0) {
			t.Errorf("update %d: percent %v, message %q", i, u.Percent, u.GetMessage())
		}
		sent = append(sent, u.GetLogs()...)
	}
	if !slices.Equal(sent, lines) || updates[0].GetPercent() != 5 || updates[0].GetMessage() != "five" {
		t.Errorf("lines or progress changed: %v", updates)
	}
}

func TestLongLinesAndMessagesAreCutToTheirCharactersAndMadeValidUTF8(t *testing.T) {
	o := newOutbox()
	job := reportingJob(o, "q:1")
	job.Log(strings.Repeat("é", 2000))                      // 2 bytes a character
	job.Log(strings.Repeat("a", 1024))                      // exactly the limit
	job.Log("bad \xff byte")                                // not UTF-8
	job.Progress(50, strings.Repeat("€", maxReportChars+1)) // 3 bytes a character

	req, _ := o.take()

	u := req.GetProgress()[0]
	if n := utf8.RuneCountInString(u.GetLogs()[0]); n != maxReportChars || !utf8.ValidString(u.GetLogs()[0]) {
		t.Errorf("a long line kept %d characters", n)
	}
	if u.GetLogs()[1] != strings.Repeat("a", 1024) {
		t.Errorf("a line of exactly 1,024 characters was changed")
	}
	if u.GetLogs()[2] != "bad \uFFFD byte" {
		t.Errorf("invalid UTF-8 became %q", u.GetLogs()[2])
	}
	if n := utf8.RuneCountInString(u.GetMessage()); n != maxReportChars {
		t.Errorf("a long message kept %d characters", n)
	}
	if _, err := proto.Marshal(req); err != nil {
		t.Errorf("the request does not encode: %v", err)
	}
}

func TestAPercentOutside0To100IsClamped(t *testing.T) {
	for _, c := range []struct{ in, want float64 }{{-5, 0}, {150, 100}, {math.NaN(), 0}, {math.Inf(1), 100}, {42.5, 42.5}} {
		o := newOutbox()
		reportingJob(o, "q:1").Progress(c.in, "")
		req, _ := o.take()
		if got := req.GetProgress()[0].GetPercent(); got != c.want {
			t.Errorf("Progress(%v) sent %v, want %v", c.in, got, c.want)
		}
	}
}

func TestAnAckOrFailWaitsForTheMessageAfterItsJobsLastReports(t *testing.T) {
	o := newOutbox()
	reportingJob(o, "q:1").Log("last words")
	reportingJob(o, "q:2").Log("also")
	o.settle(settlement{ack: &jobqueuev1.AckRequest{JobId: "q:1"}})
	o.settle(settlement{fail: &jobqueuev1.FailRequest{JobId: "q:2"}})
	o.settle(settlement{ack: &jobqueuev1.AckRequest{JobId: "q:3"}}) // no reports: goes at once

	first, _ := o.take()
	second, _ := o.take()

	if len(first.GetProgress()) != 2 || len(first.GetAcks()) != 1 || first.GetAcks()[0].GetJobId() != "q:3" || len(first.GetFails()) != 0 {
		t.Errorf("first = %v", first)
	}
	if len(second.GetProgress()) != 0 || len(second.GetAcks()) != 1 || second.GetAcks()[0].GetJobId() != "q:1" ||
		len(second.GetFails()) != 1 || second.GetFails()[0].GetJobId() != "q:2" {
		t.Errorf("second = %v", second)
	}
}

func TestReportsOverTheByteBudgetGoInSeveralMessagesKeepingEachJobsOrder(t *testing.T) {
	o := newOutbox()
	line := strings.Repeat("x", maxReportChars)
	const jobs, linesEach = 15, 150 // about 2.3 MB of lines
	for i := range linesEach {
		for j := range jobs {
			reportingJob(o, fmt.Sprint("q:", j)).Log(fmt.Sprint(i, line)[:maxReportChars])
		}
	}
	o.settle(settlement{ack: &jobqueuev1.AckRequest{JobId: "q:0"}})

	sent := map[string][]string{}
	ackedAfter := -1
	for n := 0; ; n++ {
		req, _ := o.take()
		if req == nil {
			break
		}
		if size := proto.Size(req); size > maxProgressBytes+maxLinesPerUpdate*(maxReportChars+8) {
			t.Errorf("message %d is %d bytes", n, size)
		}
		for _, u := range req.GetProgress() {
			if ackedAfter >= 0 && u.GetJobId() == "q:0" {
				t.Errorf("a report of q:0 went after its ack")
			}
			sent[u.GetJobId()] = append(sent[u.GetJobId()], u.GetLogs()...)
		}
		if len(req.GetAcks()) > 0 {
			ackedAfter = n
		}
	}
	if ackedAfter < 1 {
		t.Errorf("the ack went in message %d: the reports should have needed more than one", ackedAfter)
	}
	for j := range jobs {
		got := sent[fmt.Sprint("q:", j)]
		if len(got) != linesEach {
			t.Fatalf("job %d: %d lines sent", j, len(got))
		}
		for i, l := range got {
			if !strings.HasPrefix(l, fmt.Sprint(i, "x")) {
				t.Fatalf("job %d: line %d is %.10q...", j, i, l)
			}
		}
	}
}

func TestAReportAloneWakesTheSender(t *testing.T) {
	o := newOutbox()
	reportingJob(o, "q:1").Progress(1, "alone")

	select {
	case <-o.wake:
	case <-time.After(10 * time.Second):
		t.Fatal("nothing woke the sender")
	}
	if req, _ := o.take(); len(req.GetProgress()) != 1 {
		t.Errorf("req = %v", req)
	}
}

func TestALeaseTheServerTookBackLosesItsUnsentExtendsAndReports(t *testing.T) {
	o := newOutbox()
	stopped, other := reportingJob(o, "q:1"), reportingJob(o, "q:2")
	stopped.Log("dropped")
	other.Log("kept")
	o.extend(&jobqueuev1.ExtendRequest{JobId: "q:1", LeaseToken: stopped.LeaseToken},
		&jobqueuev1.ExtendRequest{JobId: "q:2", LeaseToken: other.LeaseToken})

	o.forgetLease(progressKey{jobID: "q:1", token: stopped.LeaseToken})
	req, _ := o.take()

	if len(req.GetExtends()) != 1 || req.GetExtends()[0].GetJobId() != "q:2" ||
		len(req.GetProgress()) != 1 || req.GetProgress()[0].GetJobId() != "q:2" {
		t.Errorf("req = %v", req)
	}
}

func TestReportsAfterTheHandlerReturnedOrOutsideAWorkerAreIgnored(t *testing.T) {
	o := newOutbox()
	job := reportingJob(o, "q:1")
	job.endReports()
	job.Progress(99, "too late")
	job.Log("too late")
	(&LeasedJob{ID: "q:2"}).Log("no worker") // a job made by hand (tests of a handler)

	if req, _ := o.take(); req != nil {
		t.Errorf("req = %v", req)
	}
}

func TestAClosedOutboxIsDoneOnlyOnceItsReportsAreSent(t *testing.T) {
	o := newOutbox()
	reportingJob(o, "q:1").Log("before closing")
	o.close()

	req, done := o.take()

	if len(req.GetProgress()) != 1 || !done {
		t.Errorf("req = %v, done = %v", req, done)
	}
}
