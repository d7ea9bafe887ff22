package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/expfmt"
	"google.golang.org/grpc/codes"
)

// The REST adapter: TF Serving's REST API (/v1/models/...) forwarded to the model server's REST port.
// POST /v1/models/{name}:predict|:classify|:regress naming no version and no label is rewritten to
// /v1/models/{name}/labels/{stable|canary}:... as the routing core decides (or /versions/{v} for a pin header); every
// other request goes through unchanged, so TF Serving answers bad input with its own error shapes and codes.

// predictionPath is TF Serving's inference path (http_rest_api_handler.cc): a version as digits, a label without / or :.
var predictionPath = regexp.MustCompile(
	`(?i)^/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?:(classify|regress|predict)$`)

const (
	labelHeader      = "x-croupier-model-label"
	metricsPath      = "/metrics"
	keepAliveSeconds = 75 // an idle keep-alive connection is closed after this long
	readSeconds      = 60 // from a request's first byte to its last
	flushBytes       = 64 * 1024
	metricsType      = "text/plain; version=0.0.4; charset=utf-8"
	jsonType         = "application/json"
)

type RestRouter struct {
	service    *Service
	upstream   *Upstream
	unitHeader string
	timeout    time.Duration
	timeoutS   float64
	maxBody    int64
	pool       *UpstreamPool

	mu       sync.Mutex
	listener net.Listener
	conns    map[net.Conn]bool // true while a request is being answered
	closing  bool
	active   sync.WaitGroup
}

func NewRestRouter(service *Service, upstream *Upstream, unitHeader string, timeoutSeconds float64, maxBody int64) *RestRouter {
	return &RestRouter{
		service: service, upstream: upstream, unitHeader: strings.ToLower(unitHeader),
		timeout: time.Duration(timeoutSeconds * float64(time.Second)), timeoutS: timeoutSeconds, maxBody: maxBody,
		pool:  NewUpstreamPool(upstream, 256),
		conns: map[net.Conn]bool{},
	}
}

// Serve accepts connections until Close.
func (rr *RestRouter) Serve(listener net.Listener) {
	rr.mu.Lock()
	rr.listener = listener
	rr.mu.Unlock()
	for {
		conn, err := listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return
		}
		rr.mu.Lock()
		if rr.closing {
			rr.mu.Unlock()
			conn.Close()
			return
		}
		rr.conns[conn] = false
		rr.active.Add(1)
		rr.mu.Unlock()
		go rr.serveConn(conn)
	}
}

// Close stops accepting, closes idle connections, waits up to grace for answers in progress, then closes the rest.
func (rr *RestRouter) Close(grace time.Duration) {
	rr.mu.Lock()
	rr.closing = true
	if rr.listener != nil {
		rr.listener.Close()
	}
	for conn, busy := range rr.conns {
		if !busy {
			conn.Close()
		}
	}
	rr.mu.Unlock()
	done := make(chan struct{})
	go func() { rr.active.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		rr.mu.Lock()
		for conn := range rr.conns {
			conn.Close()
		}
		rr.mu.Unlock()
	}
	rr.pool.Close()
}

func (rr *RestRouter) setBusy(conn net.Conn, busy bool) bool {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	rr.conns[conn] = busy
	return !rr.closing
}

// clientConn is one client connection: its reader, its writer.
type clientConn struct {
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
}

func (rr *RestRouter) serveConn(conn net.Conn) {
	defer func() {
		rr.mu.Lock()
		delete(rr.conns, conn)
		rr.mu.Unlock()
		conn.Close()
		rr.active.Done()
	}()
	c := &clientConn{conn, bufio.NewReaderSize(conn, 64<<10), bufio.NewWriterSize(conn, 64<<10)}
	for {
		conn.SetReadDeadline(time.Now().Add(keepAliveSeconds * time.Second))
		if _, err := c.br.Peek(1); err != nil {
			return // closed, or idle too long
		}
		if !rr.setBusy(conn, true) {
			return
		}
		conn.SetReadDeadline(time.Now().Add(readSeconds * time.Second))
		keep := rr.serveRequest(c)
		c.bw.Flush()
		if !keep || !rr.setBusy(conn, false) {
			return
		}
	}
}

// serveRequest reads and answers one request; false when the connection must close.
func (rr *RestRouter) serveRequest(c *clientConn) bool {
	req, err := readHead(c.br, rr.unitHeader)
	if err != nil {
		if errors.Is(err, errUpgrade) {
			rr.refuse(c, 400, "protocol upgrade is not supported", nil)
		} else {
			rr.readFailed(c, err)
		}
		return false
	}
	if req.length > rr.maxBody {
		rr.rejectBody(c, req)
		return false
	}
	if req.expectContinue {
		c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
		c.bw.Flush()
	}
	req.body, err = readBody(c.br, req, rr.maxBody)
	if err != nil {
		if errors.Is(err, errTooLarge) {
			rr.rejectBody(c, req)
		} else {
			rr.readFailed(c, err)
		}
		return false
	}
	c.conn.SetReadDeadline(time.Time{})
	return rr.answer(c, req)
}

func (rr *RestRouter) readFailed(c *clientConn, err error) {
	var m *malformed
	var ne net.Error
	switch {
	case errors.As(err, &m):
		rr.refuse(c, 400, "malformed HTTP request: "+m.detail, nil)
	case errors.As(err, &ne) && ne.Timeout():
		rr.refuse(c, 408, fmt.Sprintf("the request did not arrive within %d s", readSeconds), nil)
	}
	// anything else: the client went away mid-request
}

// rejectBody answers a body over the limit with 429 (TF Serving's RESOURCE_EXHAUSTED) without reading it, counted
// when the path is a routed one, and closes: the rest of the body is not read.
func (rr *RestRouter) rejectBody(c *clientConn, req *request) {
	rejected := bodyRejected(413, fmt.Sprintf("the body exceeds %d bytes", rr.maxBody))
	var route *Route
	path, _, _ := strings.Cut(req.target, "?")
	if req.method == "POST" {
		if match := predictionPath.FindStringSubmatch(path); match != nil {
			if planned, _, err := rr.plan(match, req); err == nil {
				route = &planned
				rr.service.Record(planned, rejected.CodeName(), 0)
			}
		}
	}
	rr.refuse(c, rejected.HTTPStatus(), rejected.Message, route)
}

// refuse answers the request being read with status and closes (nothing more of it is read).
func (rr *RestRouter) refuse(c *clientConn, status int, message string, route *Route) {
	body := errorBody(message)
	var b strings.Builder
	b.WriteString(statusLine(status))
	b.WriteString("Content-Type: application/json\r\n")
	if route != nil {
		b.WriteString(routeHeaderLines(*route))
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\nConnection: close\r\n\r\n", len(body))
	c.bw.WriteString(b.String())
	c.bw.Write(body)
	c.bw.Flush()
}

func routeHeaders(route Route) [][2]string {
	var headers [][2]string
	if isDigits(route.Version) {
		headers = append(headers, [2]string{pinHeader, route.Version})
	}
	if route.Label != labelNone {
		headers = append(headers, [2]string{labelHeader, route.Label})
	}
	return headers
}

func routeHeaderLines(route Route) string {
	var b strings.Builder
	for _, h := range routeHeaders(route) {
		b.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	return b.String()
}

// plan is the route of an inference request and its path for the model server ("" unchanged); a RouterError for a
// bad pin header.
func (rr *RestRouter) plan(match []string, req *request) (Route, string, error) {
	var version *int64
	if match[2] != "" {
		v, err := strconv.ParseInt(match[2], 10, 64)
		if err != nil {
			v = -1 // beyond int64: no table holds it, counted as "other"
		}
		version = &v
	}
	var label *string
	if match[3] != "" {
		l := pyUnquote(match[3])
		label = &l
	}
	var pin *int64
	if version == nil && label == nil && req.pin != nil {
		text := latin1(*req.pin)
		var err error
		if pin, err = PinnedVersion(&text); err != nil {
			return Route{}, "", &RouterError{codes.InvalidArgument, err.Error()}
		}
	}
	var unit *string
	if req.unit != nil {
		u := utf8Replace(*req.unit)
		unit = &u
	}
	chosen := version
	if pin != nil {
		chosen = pin
	}
	route := rr.service.Route(pyUnquote(match[1]), chosen, label, unit)
	if pin != nil {
		return route, fmt.Sprintf("/v1/models/%s/versions/%d:%s", match[1], *pin, match[4]), nil
	}
	if route.Rewrite {
		return route, fmt.Sprintf("/v1/models/%s/labels/%s:%s", match[1], route.Label, match[4]), nil
	}
	return route, "", nil
}

// reply writes one answer to the client: head, body pieces, end.
type reply struct {
	c         *clientConn
	req       *request
	route     *Route
	chunked   bool
	keepAlive bool
	sent      bool
}

func (r *reply) head(status int, contentType *string, length int64) {
	var b strings.Builder
	b.WriteString(statusLine(status))
	if contentType != nil {
		b.WriteString("Content-Type: " + *contentType + "\r\n")
	}
	if r.route != nil {
		b.WriteString(routeHeaderLines(*r.route))
	}
	r.keepAlive = r.req.keepAlive
	switch {
	case length >= 0:
		fmt.Fprintf(&b, "Content-Length: %d\r\n", length)
	case r.req.http11:
		r.chunked = true
		b.WriteString("Transfer-Encoding: chunked\r\n")
	default:
		r.keepAlive = false // an HTTP/1.0 client: the end of the connection ends the answer
	}
	if !r.keepAlive {
		b.WriteString("Connection: close\r\n")
	} else if !r.req.http11 {
		b.WriteString("Connection: keep-alive\r\n") // an HTTP/1.0 client assumes a close otherwise
	}
	b.WriteString("\r\n")
	r.c.bw.WriteString(b.String())
}

func (r *reply) body(data []byte) error {
	if len(data) == 0 {
		return nil
	}
	r.sent = true
	if r.chunked {
		fmt.Fprintf(r.c.bw, "%x\r\n", len(data))
		r.c.bw.Write(data)
		_, err := r.c.bw.WriteString("\r\n")
		return err
	}
	_, err := r.c.bw.Write(data)
	return err
}

func (r *reply) end() {
	if r.chunked {
		r.c.bw.WriteString("0\r\n\r\n")
	}
	r.c.bw.Flush()
}

func (rr *RestRouter) writeAnswer(c *clientConn, req *request, status int, contentType string, body []byte) bool {
	r := &reply{c: c, req: req}
	r.head(status, &contentType, int64(len(body)))
	r.body(body)
	r.end()
	return r.keepAlive
}

func (rr *RestRouter) answer(c *clientConn, req *request) bool {
	start := time.Now()
	target := req.target
	if !strings.HasPrefix(target, "/") { // absolute form (a proxy request) or '*': forward the origin form
		target = originForm(target)
	}
	rawPath, query, hasQuery := strings.Cut(target, "?")
	if req.method == "GET" && rawPath == metricsPath {
		return rr.writeAnswer(c, req, 200, metricsType, rr.exposition())
	}
	var route *Route
	if req.method == "POST" {
		if match := predictionPath.FindStringSubmatch(rawPath); match != nil {
			planned, rewritten, err := rr.plan(match, req)
			if err != nil {
				var re *RouterError
				errors.As(err, &re)
				return rr.writeAnswer(c, req, re.HTTPStatus(), jsonType, errorBody(re.Message))
			}
			route = &planned
			if rewritten != "" {
				rawPath = rewritten
			}
		}
	}
	deadline := start.Add(rr.timeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	outgoing := rawPath
	if hasQuery {
		outgoing += "?" + query
	}
	data := requestBytes(req.method, outgoing, rr.upstream, req.contentType, req.passed, req.body)
	r := &reply{c: c, req: req, route: route, keepAlive: req.keepAlive}
	record := func(code string) {
		if route != nil {
			rr.service.Record(*route, code, time.Since(start).Seconds())
		}
	}
	exchange, err := rr.pool.Do(ctx, data, req.method, deadline)
	if err != nil {
		failure := rr.upstreamError(ctx, err)
		record(failure.CodeName())
		return rr.fail(r, failure)
	}
	response := exchange.Response
	complete := false
	defer func() { exchange.Finish(complete) }()
	length := response.ContentLength
	if req.headOnly {
		length = 0
		if declared, err := strconv.ParseInt(response.Header.Get("Content-Length"), 10, 64); err == nil {
			length = declared
		}
	} else if length < 0 && (response.StatusCode == 204 || response.StatusCode == 304) {
		length = 0
	}
	var contentType *string
	if values, ok := response.Header["Content-Type"]; ok && len(values) > 0 {
		contentType = &values[len(values)-1]
	}
	// The first 64 KiB (or the whole answer) are held back: an answer that breaks off before then is replaced by the
	// router's 503, as nothing of it reached the client.
	pooled := buffers.Get().(*[]byte)
	defer buffers.Put(pooled)
	buffer := *pooled
	filled, ended := 0, req.headOnly
	var readErr error
	for !ended && filled < len(buffer) {
		n, err := response.Body.Read(buffer[filled:])
		filled += n
		if err == io.EOF {
			ended = true
		} else if err != nil {
			readErr = err
			break
		}
	}
	if readErr != nil {
		failure := rr.upstreamError(ctx, readErr)
		record(failure.CodeName())
		return rr.fail(r, failure)
	}
	r.head(response.StatusCode, contentType, length)
	clientErr := r.body(buffer[:filled])
	for !ended && clientErr == nil {
		n, err := response.Body.Read(buffer)
		if n > 0 {
			clientErr = r.body(buffer[:n])
		}
		if err == io.EOF {
			ended = true
		} else if err != nil {
			// part of the answer is out: the client can only learn of the failure by a close
			record(rr.upstreamError(ctx, err).CodeName())
			r.c.bw.Flush()
			return false
		}
	}
	complete = true
	if clientErr != nil {
		record(codeOfHTTPStatus(response.StatusCode))
		return false
	}
	r.end()
	record(codeOfHTTPStatus(response.StatusCode))
	return r.keepAlive
}

var buffers = sync.Pool{New: func() any { b := make([]byte, flushBytes); return &b }}

func (rr *RestRouter) fail(r *reply, failure *RouterError) bool {
	body := errorBody(failure.Message)
	contentType := jsonType
	r.head(failure.HTTPStatus(), &contentType, int64(len(body)))
	r.body(body)
	r.end()
	return r.keepAlive
}

func (rr *RestRouter) upstreamError(ctx context.Context, err error) *RouterError {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return upstreamDeadline(rr.upstream.URL, rr.timeoutS)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return upstreamDeadline(rr.upstream.URL, rr.timeoutS)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return upstreamUnavailable(rr.upstream.URL, "connection closed before the answer was complete")
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return upstreamUnavailable(rr.upstream.URL, err.Error())
	}
	if errors.Is(err, errShutDown) {
		return upstreamUnavailable(rr.upstream.URL, err.Error())
	}
	if !errors.As(err, &oe) {
		return upstreamUnavailable(rr.upstream.URL, "malformed HTTP answer: "+err.Error())
	}
	return upstreamUnavailable(rr.upstream.URL, err.Error())
}

func (rr *RestRouter) exposition() []byte {
	families, err := rr.service.Metrics.Registry.Gather()
	var b bytes.Buffer
	if err != nil {
		fmt.Fprintf(os.Stderr, "metrics: %v\n", err)
	}
	encoder := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, family := range families {
		encoder.Encode(family)
	}
	return b.Bytes()
}

// originForm is an absolute-form target's path and query (path "/" when it has none).
func originForm(target string) string {
	rest := target
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
		j := strings.IndexAny(rest, "/?#")
		if j < 0 {
			return "/"
		}
		rest = rest[j:]
	}
	rest, _, _ = strings.Cut(rest, "#")
	path, query, _ := strings.Cut(rest, "?")
	if path == "" {
		path = "/"
	}
	if query != "" {
		return path + "?" + query
	}
	return path
}

// pyUnquote decodes %XX escapes as Python's urllib.parse.unquote: invalid escapes stay, bytes decode as UTF-8 with
// replacement characters.
func pyUnquote(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var out []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			v, _ := strconv.ParseUint(s[i+1:i+3], 16, 8)
			out = append(out, byte(v))
			i += 2
			continue
		}
		out = append(out, s[i])
	}
	return utf8Replace(string(out))
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// utf8Replace decodes bytes as UTF-8, each invalid byte a replacement character.
func utf8Replace(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		b.WriteRune(r)
		i += size
	}
	return b.String()
}

// latin1 reads header bytes as Latin-1 (each byte one code point), as the Python router reads the pin header.
func latin1(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteRune(rune(s[i]))
	}
	return b.String()
}
