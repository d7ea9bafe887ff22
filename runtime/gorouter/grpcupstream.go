package main

import (
	"fmt"
	"math"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"
)

// The relay's side toward the model server: one h2c connection that every call shares as a stream. It is dialled in
// the background when the first call needs it (calls wait for it until their deadlines; no caller's connection
// waits), dialled again after it fails or the model server says GOAWAY, and watched with PINGs while calls are in
// flight and nothing arrives, so a model server that vanished without closing its connection is noticed. PINGs are
// sent only then, and at most two until the model server sends HEADERS or DATA again (as gRPC's own clients limit
// themselves): gRPC servers, TF Serving's included, answer more PINGs than that between their own frames with
// GOAWAY (too_many_pings) and close the connection, which would fail slow but healthy calls. Past those two, a
// connection that died is noticed by TCP keepalive.

var (
	// keepaliveInterval: with calls in flight and nothing read for this long, the model server is PINGed.
	keepaliveInterval = 10 * time.Second
	// keepaliveTimeout: a PING not acknowledged within this closes the connection; its calls are UNAVAILABLE.
	keepaliveTimeout = 10 * time.Second
	dialTimeout      = 20 * time.Second
)

const (
	maxStreamID         = math.MaxInt32
	maxPingsWithoutData = 2
)

type upstreamH2 struct {
	target string
	// keepalive settings, read once when the relay is made
	pingAfter   time.Duration
	pingTimeout time.Duration
	mu          sync.Mutex
	conn        *upConn
	dialing     bool
	waiting     []*call
	closed      bool
}

func newUpstreamH2(target string, pingAfter, pingTimeout time.Duration) *upstreamH2 {
	return &upstreamH2{target: target, pingAfter: pingAfter, pingTimeout: pingTimeout}
}

// submit sends k on the current connection, or queues it for the one being dialled (never blocks).
func (u *upstreamH2) submit(k *call) {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		k.finish(codes.Unavailable, upstreamUnavailable(u.target, errShutDown.Error()).Message, true)
		return
	}
	if c := u.conn; c != nil {
		if c.open(k) {
			u.mu.Unlock()
			return
		}
		u.conn = nil
	}
	u.waiting = append(u.waiting, k)
	if !u.dialing {
		u.dialing = true
		go u.dial()
	}
	u.mu.Unlock()
}

func (u *upstreamH2) dial() {
	dialer := net.Dialer{Timeout: dialTimeout}
	nc, err := dialer.Dial("tcp", u.target)
	var c *upConn
	u.mu.Lock()
	u.dialing = false
	waiting := u.waiting
	u.waiting = nil
	if err == nil {
		if u.closed {
			_ = nc.Close()
			err = errShutDown
		} else {
			c = newUpConn(u, nc)
			u.conn = c
		}
	}
	var failed []*call
	for _, k := range waiting {
		if k.done.Load() {
			continue
		}
		if c == nil || !c.open(k) {
			failed = append(failed, k)
		}
	}
	u.mu.Unlock()
	detail := "the connection closed as it opened"
	if err != nil {
		detail = err.Error()
	}
	for _, k := range failed {
		k.finish(codes.Unavailable, upstreamUnavailable(u.target, detail).Message, true)
	}
}

// forget: c is not to take new calls (failed, draining).
func (u *upstreamH2) forget(c *upConn) {
	u.mu.Lock()
	if u.conn == c {
		u.conn = nil
	}
	u.mu.Unlock()
}

// release: k ended; its stream to the model server is reset when still open, or it leaves the queue.
func (u *upstreamH2) release(k *call) {
	if c := k.up.Load(); c != nil {
		c.release(k)
	}
}

func (u *upstreamH2) close() {
	u.mu.Lock()
	u.closed = true
	c := u.conn
	u.conn = nil
	u.mu.Unlock()
	if c != nil {
		c.fail(errShutDown.Error())
	}
}

// upConn is one HTTP/2 connection to the model server.
type upConn struct {
	u  *upstreamH2
	h2 *h2Conn
	// under h2.mu
	streams    map[uint32]*call
	queued     []*call // over the model server's SETTINGS_MAX_CONCURRENT_STREAMS
	nextID     uint32
	maxStreams uint32
	draining   bool
	failed     bool
	pingSent   time.Time
	pinging    bool

	lastRead    atomic.Int64 // unix nanoseconds of the last frame read
	pingsNoData atomic.Int32 // PINGs sent since the last HEADERS or DATA from the model server
	stop        chan struct{}
}

func newUpConn(u *upstreamH2, nc net.Conn) *upConn {
	c := &upConn{u: u, h2: newH2Conn(nc), streams: map[uint32]*call{}, nextID: 1, maxStreams: math.MaxUint32,
		stop: make(chan struct{})}
	c.lastRead.Store(time.Now().UnixNano())
	c.h2.mu.Lock()
	c.h2.pending = append(c.h2.pending, http2.ClientPreface...)
	c.h2.mu.Unlock()
	c.h2.start(http2.Setting{ID: http2.SettingEnablePush, Val: 0})
	go c.read()
	go c.keepalive()
	return c
}

// open starts k's stream (or queues it); false when this connection takes no new calls.
func (c *upConn) open(k *call) bool {
	c.h2.mu.Lock()
	defer c.h2.mu.Unlock()
	if c.failed || c.draining || c.nextID > maxStreamID {
		c.draining = true
		return false
	}
	k.up.Store(c)
	if uint32(len(c.streams)) >= c.maxStreams {
		c.queued = append(c.queued, k)
		return true
	}
	c.startLocked(k)
	return true
}

func (c *upConn) startLocked(k *call) {
	if k.done.Load() { // ended while it waited; nothing to send
		return
	}
	id := c.nextID
	c.nextID += 2
	k.upID = id
	c.streams[id] = k
	headers := k.upstreamHeaders(c.u.target)
	if len(k.body) == 0 {
		c.h2.writeHeadersLocked(id, headers, true)
	} else {
		c.h2.writeHeadersLocked(id, headers, false)
		state := c.h2.openSendLocked(id)
		state.data, state.endData = k.body, true
		c.h2.sendLocked(id, state)
	}
	c.h2.flushLocked()
}

// release resets k's stream when the call ended before its answer (deadline, caller gone).
func (c *upConn) release(k *call) {
	c.h2.mu.Lock()
	defer c.h2.mu.Unlock()
	if k.upID != 0 && c.streams[k.upID] == k {
		delete(c.streams, k.upID)
		if !c.failed {
			c.h2.resetLocked(k.upID, http2.ErrCodeCancel)
		}
		c.afterStreamLocked()
		return
	}
	for i, queued := range c.queued {
		if queued == k {
			c.queued = append(c.queued[:i], c.queued[i+1:]...)
			return
		}
	}
}

// afterStreamLocked starts queued calls in the freed slots, and closes a draining connection with no streams left.
func (c *upConn) afterStreamLocked() {
	for len(c.queued) > 0 && uint32(len(c.streams)) < c.maxStreams && !c.failed {
		k := c.queued[0]
		c.queued = c.queued[1:]
		c.startLocked(k)
	}
	if c.draining && len(c.streams) == 0 && len(c.queued) == 0 && !c.failed {
		c.failed = true
		close(c.stop)
		c.h2.closed = true
		c.h2.flushLocked()
	}
}

// fail ends the connection and every call on it (UNAVAILABLE, counted).
func (c *upConn) fail(detail string) {
	c.h2.mu.Lock()
	if c.failed {
		c.h2.mu.Unlock()
		c.h2.abort()
		return
	}
	c.failed = true
	close(c.stop)
	calls := make([]*call, 0, len(c.streams)+len(c.queued))
	for _, k := range c.streams {
		calls = append(calls, k)
	}
	calls = append(calls, c.queued...)
	c.streams, c.queued = map[uint32]*call{}, nil
	c.h2.mu.Unlock()
	c.h2.abort()
	c.u.forget(c)
	message := upstreamUnavailable(c.u.target, detail).Message
	for _, k := range calls {
		k.finish(codes.Unavailable, message, true)
	}
}

func (c *upConn) stream(id uint32) *call {
	c.h2.mu.Lock()
	defer c.h2.mu.Unlock()
	return c.streams[id]
}

// ended removes k's stream (its answer is complete or the model server reset it).
func (c *upConn) ended(k *call) {
	c.h2.mu.Lock()
	if c.streams[k.upID] == k {
		delete(c.streams, k.upID)
	}
	delete(c.h2.sends, k.upID)
	k.upID = 0
	c.afterStreamLocked()
	c.h2.mu.Unlock()
}

func (c *upConn) read() {
	for {
		frame, err := c.h2.reader.ReadFrame()
		if err != nil {
			c.fail(readFailure(err))
			return
		}
		c.lastRead.Store(time.Now().UnixNano())
		if failure := c.handle(frame); failure != "" {
			c.fail(failure)
			return
		}
	}
}

func readFailure(err error) string {
	var connErr http2.ConnectionError
	if ok := asConnectionError(err, &connErr); ok {
		return fmt.Sprintf("HTTP/2 error from the model server's connection: %v", http2.ErrCode(connErr))
	}
	return err.Error()
}

func asConnectionError(err error, target *http2.ConnectionError) bool {
	ce, ok := err.(http2.ConnectionError)
	if ok {
		*target = ce
	}
	return ok
}

func (c *upConn) handle(frame http2.Frame) string {
	switch f := frame.(type) {
	case *http2.MetaHeadersFrame:
		c.pingsNoData.Store(0)
		k := c.stream(f.StreamID)
		if k == nil {
			return ""
		}
		if !k.responded {
			status := headerValue(f.Fields, ":status")
			if status != "200" {
				c.ended(k)
				code := httpStatusCode(status)
				k.finish(code, fmt.Sprintf("unexpected HTTP status code from the model server: %s", status), true)
				return ""
			}
			k.responded = true
			if f.StreamEnded() { // trailers-only
				c.ended(k)
				k.answered(nil, nil, f.Fields)
				return ""
			}
			k.response = append(k.response[:0], f.Fields...)
			return ""
		}
		if !f.StreamEnded() {
			return "" // headers after headers without END_STREAM: not gRPC; the trailers will end the call
		}
		c.ended(k)
		k.answered(k.response, k.answer, f.Fields)
	case *http2.DataFrame:
		c.pingsNoData.Store(0)
		k := c.stream(f.StreamID)
		var unacked *int64
		if k != nil && !f.StreamEnded() {
			unacked = &k.answerUnacked
		}
		c.h2.received(f.StreamID, f.Length, unacked)
		if k == nil {
			return ""
		}
		k.answer = append(k.answer, f.Data()...)
		if f.StreamEnded() {
			c.ended(k)
			k.finish(codes.Internal, "the model server closed the stream without sending trailers", true)
		}
	case *http2.RSTStreamFrame:
		k := c.stream(f.StreamID)
		if k == nil {
			return ""
		}
		c.ended(k)
		if f.ErrCode == http2.ErrCodeCancel && !time.Now().Before(k.deadline) {
			// The model server gives up on the deadline the router passed on (never earlier than the router's
			// own: grpc-timeout is rounded up), as the router's timer is about to: DEADLINE_EXCEEDED either way.
			k.expire()
			return ""
		}
		if f.ErrCode == http2.ErrCodeRefusedStream && !k.retried && !k.done.Load() {
			k.retried = true // never processed: once more, on this connection or the next
			c.u.submit(k)
			return ""
		}
		k.finish(rstCode(f.ErrCode), fmt.Sprintf("stream terminated by RST_STREAM with error code: %v", f.ErrCode), true)
	case *http2.SettingsFrame:
		if f.IsAck() {
			return ""
		}
		if v, ok := f.Value(http2.SettingMaxConcurrentStreams); ok {
			c.h2.mu.Lock()
			c.maxStreams = v
			c.afterStreamLocked()
			c.h2.mu.Unlock()
		}
		if err := c.h2.settings(f); err != nil {
			return err.Error()
		}
	case *http2.PingFrame:
		c.h2.mu.Lock()
		if f.IsAck() {
			c.pinging = false
		} else {
			_ = c.h2.writer.WritePing(true, f.Data)
			c.h2.flushLocked()
		}
		c.h2.mu.Unlock()
	case *http2.WindowUpdateFrame:
		c.h2.windowUpdate(f.StreamID, f.Increment)
	case *http2.GoAwayFrame:
		c.goAway(f.LastStreamID, f.ErrCode)
	}
	return ""
}

// goAway: the model server takes no new streams; those above lastID were never processed and go again on a new
// connection (once), the others finish here.
func (c *upConn) goAway(lastID uint32, code http2.ErrCode) {
	c.u.forget(c)
	c.h2.mu.Lock()
	c.draining = true
	var again []*call
	for id, k := range c.streams {
		if id > lastID {
			delete(c.streams, id)
			delete(c.h2.sends, id)
			k.upID = 0
			again = append(again, k)
		}
	}
	again = append(again, c.queued...)
	c.queued = nil
	c.afterStreamLocked()
	c.h2.mu.Unlock()
	for _, k := range again {
		if k.retried || k.done.Load() {
			k.finish(codes.Unavailable, upstreamUnavailable(c.u.target,
				fmt.Sprintf("the model server went away (GOAWAY %v)", code)).Message, true)
			continue
		}
		k.retried = true
		c.u.submit(k)
	}
}

// keepalive PINGs the model server while calls are in flight and nothing arrives; an unanswered PING fails the
// connection.
func (c *upConn) keepalive() {
	pingAfter, pingTimeout := c.u.pingAfter, c.u.pingTimeout
	tick := min(pingAfter, pingTimeout) / 4
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for {
		select {
		case <-c.stop:
			return
		case now := <-ticker.C:
			c.h2.mu.Lock()
			if c.pinging && now.Sub(c.pingSent) >= pingTimeout {
				c.h2.mu.Unlock()
				c.fail(fmt.Sprintf("no answer to a keepalive PING within %v", pingTimeout))
				return
			}
			idle := now.Sub(time.Unix(0, c.lastRead.Load()))
			if !c.pinging && len(c.streams) > 0 && idle >= pingAfter &&
				c.pingsNoData.Load() < maxPingsWithoutData {
				c.pingsNoData.Add(1)
				var data [8]byte
				copy(data[:], strconv.FormatInt(now.UnixNano()%1e8, 10))
				_ = c.h2.writer.WritePing(false, data)
				c.h2.flushLocked()
				c.pinging, c.pingSent = true, now
			}
			c.h2.mu.Unlock()
		}
	}
}

func headerValue(fields []hpack.HeaderField, name string) string {
	for _, f := range fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// httpStatusCode: the gRPC code for an HTTP status that is not 200, as gRPC's HTTP-to-gRPC status mapping says.
func httpStatusCode(status string) codes.Code {
	switch status {
	case "400":
		return codes.Internal
	case "401":
		return codes.Unauthenticated
	case "403":
		return codes.PermissionDenied
	case "404":
		return codes.Unimplemented
	case "429", "502", "503", "504":
		return codes.Unavailable
	}
	return codes.Unknown
}

// rstCode: the gRPC code for a stream the model server reset (grpc-go's table).
func rstCode(code http2.ErrCode) codes.Code {
	switch code {
	case http2.ErrCodeRefusedStream:
		return codes.Unavailable
	case http2.ErrCodeCancel:
		return codes.Canceled
	case http2.ErrCodeFlowControl, http2.ErrCodeEnhanceYourCalm:
		return codes.ResourceExhausted
	case http2.ErrCodeInadequateSecurity:
		return codes.PermissionDenied
	}
	return codes.Internal
}
