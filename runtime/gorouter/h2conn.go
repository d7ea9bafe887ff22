package main

import (
	"bufio"
	"net"
	"sync"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// One end of an HTTP/2 connection as the gRPC relay uses it, for both the callers' connections and the one to the
// model server: frames are read by one goroutine (the owner of the connection), and written by any goroutine into a
// pending buffer under mu that a writer goroutine sends, so a burst of frames (a call's headers, data and trailers,
// acknowledgements batched with them) leaves in one write and no goroutine waits on a socket it does not read.
//
// Flow control: the relay reads every message whole before sending it on, so it advertises a large receive window
// (relayWindow, per stream and for the connection) and tops it up as data arrives; what it sends respects the peer's
// windows, and data a window holds back waits in the stream's sendState until the peer's WINDOW_UPDATE.

const (
	relayWindow    = 1 << 30 // the receive window advertised per stream and for the connection
	relayTopUp     = 1 << 29 // received bytes after which the window is topped up again
	relayFrameSize = 1 << 20 // the largest frame the relay accepts (SETTINGS_MAX_FRAME_SIZE)
	defaultWindow  = 65535   // HTTP/2's initial window before the peer's SETTINGS say otherwise
	readBufferSize = 64 << 10
)

// sendState is what a stream still has to send: data (as much as the windows allow goes at once) and the header
// block to end the stream with (trailers), written after the last of the data.
type sendState struct {
	window   int64
	data     []byte
	trailers []hpack.HeaderField
	endWith  bool // trailers end the stream once data is out
	endData  bool // the last DATA frame ends the stream (no trailers)
	blocked  bool
	finished bool
}

type h2Conn struct {
	nc     net.Conn
	reader *http2.Framer // read side: owned by the reading goroutine

	mu       sync.Mutex
	pending  []byte // encoded frames not yet written
	writer   *http2.Framer
	encoder  *hpack.Encoder
	block    headerBlock
	wake     chan struct{}
	writing  bool // the writer holds frames it has not finished writing
	closed   bool
	sends    map[uint32]*sendState // streams this end may still send on
	blocked  []uint32              // streams with data waiting for a window
	window   int64                 // the peer's connection window for what this end sends
	initial  int64                 // the peer's SETTINGS_INITIAL_WINDOW_SIZE
	maxFrame int                   // the peer's SETTINGS_MAX_FRAME_SIZE

	unacked int64 // received DATA bytes not yet returned to the peer (connection), reader only
}

// headerBlock is the hpack encoder's output buffer.
type headerBlock struct{ b []byte }

func (h *headerBlock) Write(p []byte) (int, error) { h.b = append(h.b, p...); return len(p), nil }

// pendingWriter lets the write side's Framer append frames to the connection's pending buffer (under mu).
type pendingWriter struct{ c *h2Conn }

func (w pendingWriter) Write(p []byte) (int, error) {
	w.c.pending = append(w.c.pending, p...)
	return len(p), nil
}

func newH2Conn(nc net.Conn) *h2Conn {
	c := &h2Conn{
		nc:       nc,
		wake:     make(chan struct{}, 1),
		sends:    map[uint32]*sendState{},
		window:   defaultWindow,
		initial:  defaultWindow,
		maxFrame: 16384,
	}
	c.reader = http2.NewFramer(nil, bufio.NewReaderSize(nc, readBufferSize))
	c.reader.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.reader.SetMaxReadFrameSize(relayFrameSize)
	c.reader.SetReuseFrames()
	c.writer = http2.NewFramer(pendingWriter{c}, nil)
	c.encoder = hpack.NewEncoder(&c.block)
	go c.writeLoop()
	return c
}

// start queues this end's SETTINGS and the connection window's increase (after the client preface, on the client).
func (c *h2Conn) start(extra ...http2.Setting) {
	c.mu.Lock()
	defer c.mu.Unlock()
	settings := append([]http2.Setting{
		{ID: http2.SettingInitialWindowSize, Val: relayWindow},
		{ID: http2.SettingMaxFrameSize, Val: relayFrameSize},
	}, extra...)
	_ = c.writer.WriteSettings(settings...)
	_ = c.writer.WriteWindowUpdate(0, relayWindow-defaultWindow)
	c.flushLocked()
}

func (c *h2Conn) writeLoop() {
	var out []byte
	for range c.wake {
		c.mu.Lock()
		out, c.pending = c.pending, out[:0]
		closed := c.closed
		c.writing = len(out) > 0
		c.mu.Unlock()
		if len(out) > 0 {
			_, err := c.nc.Write(out)
			c.mu.Lock()
			c.writing = false
			c.mu.Unlock()
			if err != nil {
				c.close()
				return
			}
		}
		if closed {
			_ = c.nc.Close()
			return
		}
	}
}

// flushLocked wakes the writer (mu held).
func (c *h2Conn) flushLocked() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// close stops the connection: what is pending is still written, then the socket is closed, which ends the reader.
func (c *h2Conn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		c.flushLocked()
	}
}

// idle: nothing is left to send (no stream still sending, no frame unwritten).
func (c *h2Conn) idle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sends) == 0 && len(c.pending) == 0 && !c.writing
}

// abort closes the socket at once (a peer that does not read must not hold the writer).
func (c *h2Conn) abort() {
	c.close()
	_ = c.nc.Close()
}

// writeHeadersLocked encodes fields and writes them as HEADERS (and CONTINUATION past the peer's frame size).
func (c *h2Conn) writeHeadersLocked(id uint32, fields []hpack.HeaderField, endStream bool) {
	c.block.b = c.block.b[:0]
	for _, f := range fields {
		_ = c.encoder.WriteField(f)
	}
	block := c.block.b
	first := true
	for first || len(block) > 0 {
		n := min(len(block), c.maxFrame)
		chunk := block[:n]
		block = block[n:]
		if first {
			_ = c.writer.WriteHeaders(http2.HeadersFrameParam{
				StreamID: id, BlockFragment: chunk, EndStream: endStream, EndHeaders: len(block) == 0,
			})
			first = false
		} else {
			_ = c.writer.WriteContinuation(id, len(block) == 0, chunk)
		}
	}
}

// openSendLocked registers a stream this end will send on, with the peer's initial window.
func (c *h2Conn) openSendLocked(id uint32) *sendState {
	s := &sendState{window: c.initial}
	c.sends[id] = s
	return s
}

// sendLocked writes what s holds as far as the windows allow; true when the stream's sending is done.
func (c *h2Conn) sendLocked(id uint32, s *sendState) bool {
	for len(s.data) > 0 {
		n := int64(min(len(s.data), c.maxFrame))
		n = min(n, s.window, c.window)
		if n <= 0 {
			if !s.blocked {
				s.blocked = true
				c.blocked = append(c.blocked, id)
			}
			return false
		}
		last := int(n) == len(s.data)
		_ = c.writer.WriteData(id, last && s.endData, s.data[:n])
		s.data = s.data[n:]
		s.window -= n
		c.window -= n
	}
	if s.endWith {
		c.writeHeadersLocked(id, s.trailers, true)
		s.endWith = false
	}
	s.finished = true
	delete(c.sends, id)
	return true
}

// windowUpdate applies a WINDOW_UPDATE and sends what it frees (reader goroutine).
func (c *h2Conn) windowUpdate(id uint32, increment uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id == 0 {
		c.window += int64(increment)
	} else if s, ok := c.sends[id]; ok {
		s.window += int64(increment)
	} else {
		return
	}
	c.resumeLocked()
}

func (c *h2Conn) resumeLocked() {
	if len(c.blocked) == 0 {
		return
	}
	waiting := c.blocked
	c.blocked = nil
	for _, id := range waiting {
		if s, ok := c.sends[id]; ok {
			s.blocked = false
			c.sendLocked(id, s)
		}
	}
	c.flushLocked()
}

// settings applies the peer's SETTINGS and acknowledges them (reader goroutine).
func (c *h2Conn) settings(f *http2.SettingsFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := f.ForeachSetting(func(s http2.Setting) error {
		switch s.ID {
		case http2.SettingInitialWindowSize:
			delta := int64(s.Val) - c.initial
			c.initial = int64(s.Val)
			for _, state := range c.sends {
				state.window += delta
			}
		case http2.SettingMaxFrameSize:
			c.maxFrame = int(s.Val)
		case http2.SettingHeaderTableSize:
			c.encoder.SetMaxDynamicTableSizeLimit(s.Val)
		}
		return nil
	})
	if err != nil {
		return err
	}
	_ = c.writer.WriteSettingsAck()
	c.resumeLocked()
	c.flushLocked()
	return nil
}

// received accounts for a DATA frame's flow-controlled length and returns window to the peer when enough was read
// (reader goroutine). unacked is the stream's own count (kept by the call, so nothing outlives the stream), nil when
// the stream is closed or unknown.
func (c *h2Conn) received(id uint32, length uint32, unacked *int64) {
	if length == 0 {
		return
	}
	c.unacked += int64(length)
	var streamTopUp int64
	if unacked != nil {
		*unacked += int64(length)
		if *unacked >= relayTopUp {
			streamTopUp, *unacked = *unacked, 0
		}
	}
	if c.unacked < relayTopUp && streamTopUp == 0 {
		return
	}
	c.mu.Lock()
	if c.unacked >= relayTopUp {
		_ = c.writer.WriteWindowUpdate(0, uint32(c.unacked))
		c.unacked = 0
	}
	if streamTopUp > 0 {
		_ = c.writer.WriteWindowUpdate(id, uint32(streamTopUp))
	}
	c.flushLocked()
	c.mu.Unlock()
}

// resetLocked sends RST_STREAM and drops what the stream still had to send.
func (c *h2Conn) resetLocked(id uint32, code http2.ErrCode) {
	delete(c.sends, id)
	_ = c.writer.WriteRSTStream(id, code)
	c.flushLocked()
}
