package jobqueue

// PendingJobs counts the jobs waiting for their batch to be sent, so a test can tell
// when concurrent callers have joined one.
func (c *Client) PendingJobs() int {
	c.batcher.mu.Lock()
	defer c.batcher.mu.Unlock()
	n := 0
	for _, ln := range c.batcher.lanes {
		if ln.open != nil {
			n += len(ln.open.calls)
		}
		for _, bt := range ln.ready {
			n += len(bt.calls)
		}
	}
	return n
}
