package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// The REST adapter's side towards the model server: persistent HTTP/1.1 connections, one request at a time each.
// A request leaves as one write of the bytes the adapter built; the answer is read by net/http's response parser on
// the same goroutine (no per-connection reader and writer goroutines, no hand-off per request). A connection goes
// back to the pool after a complete answer that allows keep-alive.
//
// A keep-alive connection can be closed by the model server while it sits idle, and the close may cross a request
// just written on it. Such a request never reached the model server's handler, so when a reused connection ends
// before a single byte of the answer arrived, the request is sent again, once, on a new connection. A fresh connection
// that fails, or one that ends after part of the answer, is an error: the model server may have acted on it.

type upstreamConn struct {
	net.Conn
	br       *bufio.Reader
	received int64 // bytes of answers read on this connection
	reused   bool
}

func (c *upstreamConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.received += int64(n)
	return n, err
}

type UpstreamPool struct {
	upstream *Upstream
	address  string
	tls      *tls.Config
	max      int

	mu   sync.Mutex
	cond *sync.Cond
	idle []*upstreamConn
	open int
	shut bool
}

func NewUpstreamPool(upstream *Upstream, maxConnections int) *UpstreamPool {
	host, port := upstream.Hostname, upstream.Port
	p := &UpstreamPool{upstream: upstream, address: net.JoinHostPort(host, port), max: maxConnections}
	if upstream.Scheme == "https" {
		p.tls = &tls.Config{ServerName: host}
	}
	p.cond = sync.NewCond(&p.mu)
	return p
}

// exchange is one request's answer on its connection; Release or Discard it when its body is done.
type exchange struct {
	pool     *UpstreamPool
	conn     *upstreamConn
	Response *http.Response
}

var errShutDown = errors.New("the router is shutting down")

// get takes an idle connection (the most recently used) or opens one, waiting while max are open.
func (p *UpstreamPool) get(ctx context.Context) (*upstreamConn, error) {
	p.mu.Lock()
	for {
		if p.shut {
			p.mu.Unlock()
			return nil, errShutDown
		}
		if n := len(p.idle); n > 0 {
			c := p.idle[n-1]
			p.idle = p.idle[:n-1]
			p.mu.Unlock()
			return c, nil
		}
		if p.open < p.max {
			p.open++
			p.mu.Unlock()
			return p.dial(ctx)
		}
		p.cond.Wait()
	}
}

func (p *UpstreamPool) dial(ctx context.Context) (*upstreamConn, error) {
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", p.address)
	if err == nil && p.tls != nil {
		tlsConn := tls.Client(conn, p.tls)
		if err = tlsConn.HandshakeContext(ctx); err == nil {
			conn = tlsConn
		} else {
			conn.Close()
		}
	}
	if err != nil {
		p.forget()
		return nil, err
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		tcp.SetNoDelay(true)
	}
	c := &upstreamConn{Conn: conn}
	c.br = bufio.NewReaderSize(c, 64<<10)
	return c, nil
}

func (p *UpstreamPool) forget() {
	p.mu.Lock()
	p.open--
	p.mu.Unlock()
	p.cond.Signal()
}

func (p *UpstreamPool) release(c *upstreamConn) {
	c.SetDeadline(time.Time{})
	c.reused = true
	p.mu.Lock()
	if p.shut {
		p.mu.Unlock()
		c.Close()
		p.forget()
		return
	}
	p.idle = append(p.idle, c)
	p.mu.Unlock()
	p.cond.Signal()
}

func (p *UpstreamPool) discard(c *upstreamConn) {
	c.Close()
	p.forget()
}

// Close closes the idle connections; connections in use close when their exchange ends.
func (p *UpstreamPool) Close() {
	p.mu.Lock()
	p.shut = true
	idle := p.idle
	p.idle = nil
	p.open -= len(idle)
	p.mu.Unlock()
	p.cond.Broadcast()
	for _, c := range idle {
		c.Close()
	}
}

// Do sends request (one whole HTTP/1.1 request) and reads its answer's head by deadline. The answer's body is read
// from the exchange's Response; then Finish hands the connection back.
func (p *UpstreamPool) Do(ctx context.Context, request []byte, method string, deadline time.Time) (*exchange, error) {
	for attempt := 0; ; attempt++ {
		c, err := p.get(ctx)
		if err != nil {
			return nil, err
		}
		c.SetDeadline(deadline)
		before := c.received
		_, err = c.Write(request)
		var response *http.Response
		if err == nil {
			response, err = readAnswerHead(c.br, method)
		}
		if err == nil {
			return &exchange{pool: p, conn: c, Response: response}, nil
		}
		p.discard(c)
		var ne net.Error
		timedOut := errors.As(err, &ne) && ne.Timeout()
		if c.reused && c.received == before && attempt == 0 && !timedOut {
			continue // closed while idle, crossing our request: it never reached the model server
		}
		return nil, err
	}
}

// readAnswerHead reads the answer's head, skipping interim (1xx) answers.
func readAnswerHead(br *bufio.Reader, method string) (*http.Response, error) {
	for {
		response, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			return nil, err
		}
		if response.StatusCode >= 200 || response.StatusCode == 101 {
			return response, nil
		}
		io.Copy(io.Discard, response.Body)
	}
}

// Finish hands the connection back after a complete answer that allows keep-alive, and closes it otherwise.
func (e *exchange) Finish(complete bool) {
	if complete && !e.Response.Close {
		e.pool.release(e.conn)
		return
	}
	e.pool.discard(e.conn)
}

// requestBytes is the request line, the headers the router forwards and the body, in one buffer.
func requestBytes(method, target string, upstream *Upstream, contentType *string, passed [][2]string, body []byte) []byte {
	size := len(method) + len(target) + len(upstream.Host) + len(body) + 64
	for _, h := range passed {
		size += len(h[0]) + len(h[1]) + 4
	}
	out := make([]byte, 0, size)
	out = append(out, method...)
	out = append(out, ' ')
	out = append(out, upstream.Prefix...)
	out = append(out, target...)
	out = append(out, " HTTP/1.1\r\nHost: "...)
	out = append(out, upstream.Host...)
	out = append(out, "\r\nContent-Length: "...)
	out = strconv.AppendInt(out, int64(len(body)), 10)
	out = append(out, "\r\n"...)
	if contentType != nil {
		out = append(out, "Content-Type: "...)
		out = append(out, *contentType...)
		out = append(out, "\r\n"...)
	}
	for _, h := range passed {
		out = append(out, h[0]...)
		out = append(out, ": "...)
		out = append(out, h[1]...)
		out = append(out, "\r\n"...)
	}
	out = append(out, "\r\n"...)
	return append(out, body...)
}
