package main

import (
	"io"
	"sync"
	"time"
)

const (
	// logBatchDelay is how long log lines may gather before they are written out together.
	logBatchDelay = 10 * time.Millisecond
	// logBatchBytes is the size at which a batch is written out without waiting longer.
	logBatchBytes = 64 << 10
	// maxPendingLogBytes bounds the log output waiting to be written; past it a Write waits.
	maxPendingLogBytes = 1 << 20
)

// batchedWriter writes the log in batches, as nginx's buffered access log does: a Write
// copies its line into a buffer and returns, and one goroutine writes out what has gathered
// logBatchDelay after the first line of a batch (sooner once logBatchBytes have). Under load
// one write(2) carries many access-log lines instead of one each, a system call that was a
// tenth of the CPU time of a catalog read; a line waits at most logBatchDelay. Lines keep their
// order. When the output falls behind by maxPendingLogBytes, a Write waits for it, as an
// unbuffered log would. Close writes out what is pending.
type batchedWriter struct {
	out   io.Writer
	kick  chan struct{} // a batch has begun
	full  chan struct{} // the batch is big enough to write now
	close chan struct{} // closed by Close
	done  chan struct{} // closed when the writing goroutine has written its last batch

	mu       sync.Mutex
	drained  *sync.Cond // signalled when the writing goroutine takes the pending batch
	pending  []byte
	closed   bool
	stopOnce sync.Once
}

func newBatchedWriter(out io.Writer) *batchedWriter {
	w := &batchedWriter{out: out, kick: make(chan struct{}, 1), full: make(chan struct{}, 1),
		close: make(chan struct{}), done: make(chan struct{})}
	w.drained = sync.NewCond(&w.mu)
	go w.writeBatches()
	return w
}

func (w *batchedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	for len(w.pending) >= maxPendingLogBytes && !w.closed {
		w.drained.Wait()
	}
	if w.closed {
		w.mu.Unlock()
		<-w.done // after the last batch, in order
		return w.out.Write(p)
	}
	first := len(w.pending) == 0
	w.pending = append(w.pending, p...)
	size := len(w.pending)
	w.mu.Unlock()
	if first {
		notify(w.kick)
	}
	if size >= logBatchBytes {
		notify(w.full)
	}
	return len(p), nil
}

// notify sends on a channel of capacity one unless a notice is already waiting there.
func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (w *batchedWriter) writeBatches() {
	defer close(w.done)
	var batch []byte
	wait := time.NewTimer(logBatchDelay)
	for {
		closing := false
		select {
		case <-w.kick:
			wait.Reset(logBatchDelay)
			select {
			case <-wait.C:
			case <-w.full:
			case <-w.close:
				closing = true
			}
		case <-w.close:
			closing = true
		}
		w.mu.Lock()
		batch, w.pending = w.pending, batch[:0]
		w.drained.Broadcast()
		w.mu.Unlock()
		select {
		case <-w.full: // about the batch just taken
		default:
		}
		if len(batch) > 0 {
			// A log that cannot be written is no reason to fail a request; slog drops its
			// handler's errors too.
			_, _ = w.out.Write(batch)
		}
		if closing {
			return
		}
	}
}

// Close writes out the pending lines and stops the writing goroutine; later Writes go
// straight to the output.
func (w *batchedWriter) Close() error {
	w.stopOnce.Do(func() {
		w.mu.Lock()
		w.closed = true
		w.drained.Broadcast()
		w.mu.Unlock()
		close(w.close)
	})
	<-w.done
	return nil
}
