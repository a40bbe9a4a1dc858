package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// load makes the same call from `concurrency` goroutines, goroutine i on connection
// i mod len(conns): separate connections, so a server's SO_REUSEPORT processes share them.
type load struct {
	conns       []*grpc.ClientConn
	method      string
	body        []byte
	concurrency int
}

type measurement struct {
	latencies []time.Duration // of the successful calls
	errors    map[string]int64
	elapsed   time.Duration
}

// count is the calls made, answered or not.
func (m measurement) count() int64 {
	n := int64(len(m.latencies))
	for _, e := range m.errors {
		n += e
	}
	return n
}

// caller is one goroutine's share, merged at the end so the calls share nothing.
type caller struct {
	latencies []time.Duration
	errors    map[string]int64
}

// phase calls until `calls` calls are made (when positive) or until `until`.
func (l *load) phase(ctx context.Context, calls int64, until time.Time) measurement {
	if !until.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, until.Add(drainTimeout))
		defer cancel()
	}
	var budget atomic.Int64
	budget.Store(calls)
	callers := make([]caller, l.concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range callers {
		wg.Go(func() {
			callers[i] = l.call(ctx, l.conns[i%len(l.conns)], calls > 0, &budget, until)
		})
	}
	wg.Wait()
	m := measurement{elapsed: time.Since(start), errors: map[string]int64{}}
	for _, c := range callers {
		m.latencies = append(m.latencies, c.latencies...)
		for code, n := range c.errors {
			m.errors[code] += n
		}
	}
	return m
}

func (l *load) call(ctx context.Context, conn *grpc.ClientConn, counted bool, budget *atomic.Int64, until time.Time) caller {
	c := caller{errors: map[string]int64{}}
	for ctx.Err() == nil {
		if counted && budget.Add(-1) < 0 || !counted && time.Now().After(until) {
			break
		}
		var replyBytes int
		start := time.Now()
		err := conn.Invoke(ctx, l.method, l.body, &replyBytes)
		took := time.Since(start)
		switch {
		case err != nil:
			c.errors[status.Code(err).String()]++
		case replyBytes == 0 && len(l.body) > 0:
			c.errors["EMPTY_REPLY"]++
		default:
			c.latencies = append(c.latencies, took)
		}
	}
	return c
}

// dial opens n connections to target and waits until each is ready.
func dial(ctx context.Context, target string, n int) ([]*grpc.ClientConn, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	conns := make([]*grpc.ClientConn, 0, n)
	for range n {
		conn, err := grpc.NewClient(target,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{})))
		if err != nil {
			closeAll(conns)
			return nil, err
		}
		conns = append(conns, conn)
		conn.Connect()
	}
	for _, conn := range conns {
		for state := conn.GetState(); state != connectivity.Ready; state = conn.GetState() {
			if !conn.WaitForStateChange(ctx, state) {
				closeAll(conns)
				return nil, fmt.Errorf("connecting to %s: %w (last state %s)", target, ctx.Err(), state)
			}
		}
	}
	return conns, nil
}

func closeAll(conns []*grpc.ClientConn) {
	for _, conn := range conns {
		conn.Close()
	}
}
