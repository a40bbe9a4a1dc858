package jobqueue

import (
	"math"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	jobqueuev1 "github.com/jobqueue/jobqueue/clients/go/gen/jobqueue/v1"
)

const (
	// maxReportChars is the longest log line or progress message the server takes, in
	// characters (Unicode code points); longer ones are cut.
	maxReportChars = 1024
	// maxLinesPerUpdate is the most log lines one ProgressUpdate may carry; more are split
	// across several updates for the same job.
	maxLinesPerUpdate = 100
	// progressFlush is the longest a report waits for another message to ride along with
	// before it is sent on its own.
	progressFlush = 100 * time.Millisecond
	// maxProgressBytes bounds the encoded progress updates of one LeaseRequest (at least one
	// update always goes), far below the server's 4 MiB message limit.
	maxProgressBytes = 1 << 20
)

// Progress reports how far the job is: percent from 0 to 100 (a value outside is clamped,
// NaN is 0) and what it is doing (cut to 1,024 characters). GetStatus, WatchJob and Wait then
// show it as Job.Progress, until a later report replaces it. It does not wait for the server:
// the report is queued and sent on the worker's stream with its next message, within 100 ms;
// reports made in between are merged, the latest progress winning. It does nothing once the
// handler has returned or the job was stopped, or on a LeasedJob the worker did not make.
func (j *LeasedJob) Progress(percent float64, message string) {
	switch {
	case math.IsNaN(percent):
		percent = 0
	case percent < 0:
		percent = 0
	case percent > 100:
		percent = 100
	}
	j.report(&percent, cutReport(message), nil)
}

// Log appends a line to the job's log, which GetStatus shows as Job.Logs (the server keeps
// the last 100 lines of a job). A line longer than 1,024 characters is cut. Like Progress,
// it is queued and sent with the worker's next message on the stream, within 100 ms, in
// order with the job's other lines, and does nothing once the handler has returned or the
// job was stopped.
func (j *LeasedJob) Log(line string) {
	j.report(nil, "", []string{cutReport(line)})
}

func (j *LeasedJob) report(percent *float64, message string, lines []string) {
	if j.out == nil || j.reportsEnded.Load() {
		return
	}
	j.out.report(progressKey{jobID: j.ID, token: j.LeaseToken}, percent, message, lines)
}

// endReports makes later Progress and Log calls do nothing: the handler returned, or the
// job is no longer this worker's.
func (j *LeasedJob) endReports() {
	j.reportsEnded.Store(true)
}

// cutReport makes s valid UTF-8 (a string field that is not would fail the whole stream
// message) and at most maxReportChars characters long.
func cutReport(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= maxReportChars {
		return s // no more bytes than characters allowed
	}
	n := 0
	for i := range s {
		if n == maxReportChars {
			return s[:i]
		}
		n++
	}
	return s
}

// progressKey names one lease of a job: a report goes with the lease it was made under.
type progressKey struct {
	jobID, token string
}

// pendingProgress is what one lease reported since the last message took its reports.
type pendingProgress struct {
	key     progressKey
	percent *float64 // nil: no progress reported, only lines
	message string
	lines   []string
}

// next builds the next update from what is pending, without taking it: the progress, if
// any, and the first maxLinesPerUpdate lines.
func (p *pendingProgress) next() *jobqueuev1.ProgressUpdate {
	u := &jobqueuev1.ProgressUpdate{JobId: p.key.jobID, LeaseToken: p.key.token, Percent: p.percent}
	if p.percent != nil {
		u.Message = p.message
	}
	u.Logs = p.lines[:min(len(p.lines), maxLinesPerUpdate)]
	return u
}

// consume drops what next returned.
func (p *pendingProgress) consume(u *jobqueuev1.ProgressUpdate) {
	p.percent, p.message = nil, ""
	p.lines = p.lines[len(u.GetLogs()):]
}

func (p *pendingProgress) empty() bool {
	return p.percent == nil && len(p.lines) == 0
}

// report queues a lease's progress (percent set, with message) and lines, merged with what it
// reported before that was not sent yet. It wakes the sender only after progressFlush, so
// that reports ride along with the acks and extends going out meanwhile.
func (o *outbox) report(key progressKey, percent *float64, message string, lines []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.progressBy[key]
	if p == nil {
		p = &pendingProgress{key: key}
		o.progressBy[key] = p
		o.progress = append(o.progress, p)
	}
	if percent != nil {
		p.percent, p.message = percent, message
	}
	p.lines = append(p.lines, lines...)
	if !o.progressArmed {
		o.progressArmed = true
		time.AfterFunc(progressFlush, func() {
			o.mu.Lock()
			o.progressArmed = false
			o.mu.Unlock()
			o.signal()
		})
	}
}

// takeProgress takes the pending reports, oldest lease first, as updates of at most
// maxLinesPerUpdate lines (the first of a lease's updates carrying its progress), up to
// maxProgressBytes. It also returns the jobs that still have reports pending or in these
// updates: their acks and fails wait for a later message, so that their last reports reach
// the server while it still counts the job as held. Called with o.mu held.
func (o *outbox) takeProgress() ([]*jobqueuev1.ProgressUpdate, map[string]bool) {
	var updates []*jobqueuev1.ProgressUpdate
	var held map[string]bool
	size := 0
	for len(o.progress) > 0 {
		p := o.progress[0]
		if p.empty() {
			o.progress = o.progress[1:]
			if o.progressBy[p.key] == p {
				delete(o.progressBy, p.key)
			}
			continue
		}
		u := p.next()
		n := proto.Size(u)
		if len(updates) > 0 && size+n > maxProgressBytes {
			break
		}
		p.consume(u)
		size += n
		updates = append(updates, u)
		if held == nil {
			held = make(map[string]bool)
		}
		held[p.key.jobID] = true
	}
	for _, p := range o.progress {
		if p.empty() {
			continue
		}
		if held == nil {
			held = make(map[string]bool)
		}
		held[p.key.jobID] = true
	}
	return updates, held
}
