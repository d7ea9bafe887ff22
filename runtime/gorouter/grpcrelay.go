package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"
)

// The gRPC side of the router: a relay of HTTP/2 frames between the callers and one h2c connection to the model
// server, with no gRPC library in the path. TF Serving's PredictionService and ModelService.GetModelStatus pass.
// A call is read whole; for Predict, Classify and Regress whose model_spec names no version and no label, only
// model_spec is decoded and version_label set by the routing core (the rest of the request is sent as received);
// GetModelMetadata and GetModelStatus pass unchanged. The answer goes back as the model server wrote it, with the
// served version and label added to its trailers. The caller's deadline (capped by --upstream-timeout-seconds) and
// metadata (minus gRPC's transport headers) are passed on; the model server's codes and messages reach the caller as
// they are; a model server that cannot be reached is UNAVAILABLE with a message that says so. Other methods are
// UNIMPLEMENTED, as a gRPC server answers a method it does not serve.

const (
	predictionService = "tensorflow.serving.PredictionService"
	modelService      = "tensorflow.serving.ModelService"
)

// relayedMethods: path → routed (model_spec decoded and the label chosen).
var relayedMethods = map[string]bool{
	"/" + predictionService + "/Predict":          true,
	"/" + predictionService + "/Classify":         true,
	"/" + predictionService + "/Regress":          true,
	"/" + predictionService + "/GetModelMetadata": false,
	"/" + modelService + "/GetModelStatus":        false,
}

// Headers the router sets itself on the call to the model server instead of passing the caller's.
var transportMetadata = map[string]bool{"user-agent": true, "te": true, "content-type": true, "host": true}

// deadlineMargin: how long before the caller's deadline the router gives up on the model server, so that the caller
// reads the router's DEADLINE_EXCEEDED rather than its own.
const deadlineMargin = 3 * time.Millisecond

type GrpcRelay struct {
	service    *Service
	upstream   *upstreamH2
	target     string
	unitHeader string
	timeout    time.Duration

	mu       sync.Mutex
	listener net.Listener
	callers  map[*callerConn]bool
	closing  bool
	inFlight atomic.Int64 // calls begun and not ended
}

func NewGrpcRelay(service *Service, upstream, unitHeader string, timeoutSeconds float64) *GrpcRelay {
	return &GrpcRelay{
		service:    service,
		upstream:   newUpstreamH2(upstream, keepaliveInterval, keepaliveTimeout),
		target:     upstream,
		unitHeader: strings.ToLower(unitHeader),
		timeout:    time.Duration(timeoutSeconds * float64(time.Second)),
		callers:    map[*callerConn]bool{},
	}
}

// Serve accepts h2c callers (prior knowledge, as gRPC clients connect) until Close.
func (g *GrpcRelay) Serve(listener net.Listener) error {
	g.mu.Lock()
	if g.closing {
		g.mu.Unlock()
		return net.ErrClosed
	}
	g.listener = listener
	g.mu.Unlock()
	for {
		nc, err := listener.Accept()
		if err != nil {
			var temporary interface{ Temporary() bool }
			if errors.As(err, &temporary) && temporary.Temporary() {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			return err
		}
		if tcp, ok := nc.(*net.TCPConn); ok {
			_ = tcp.SetNoDelay(true)
		}
		c := &callerConn{relay: g, h2: newH2Conn(nc), calls: map[uint32]*call{}}
		g.mu.Lock()
		if g.closing {
			g.mu.Unlock()
			c.h2.abort()
			continue
		}
		g.callers[c] = true
		g.mu.Unlock()
		go c.serve()
	}
}

// Close stops accepting, tells callers to go away (GOAWAY), waits up to grace for the calls in flight, then closes
// every connection.
func (g *GrpcRelay) Close(grace time.Duration) {
	g.mu.Lock()
	g.closing = true
	if g.listener != nil {
		_ = g.listener.Close()
	}
	callers := make([]*callerConn, 0, len(g.callers))
	for c := range g.callers {
		callers = append(callers, c)
	}
	g.mu.Unlock()
	for _, c := range callers {
		c.goAway()
	}
	// Calls in flight end, and their answers reach their callers (an answer may still wait for a caller's window).
	stop := time.Now().Add(grace)
	for !g.drained(callers) && time.Now().Before(stop) {
		time.Sleep(10 * time.Millisecond)
	}
	for _, c := range callers {
		if c.h2.idle() {
			c.h2.close() // after what is pending is written
		} else {
			c.h2.abort()
		}
	}
	g.upstream.close()
}

func (g *GrpcRelay) drained(callers []*callerConn) bool {
	if g.inFlight.Load() > 0 {
		return false
	}
	for _, c := range callers {
		if !c.h2.idle() {
			return false
		}
	}
	return true
}

// callerConn is one caller's connection; its goroutine reads the caller's frames.
type callerConn struct {
	relay *GrpcRelay
	h2    *h2Conn
	// calls by stream id: written by the reader, removed by whoever ends the call (under h2.mu)
	calls   map[uint32]*call
	lastID  atomic.Uint32 // the highest stream id the caller opened (written by the reader, read by Close too)
	goneAwy atomic.Bool
}

func (c *callerConn) serve() {
	defer c.closed()
	preface := make([]byte, len(http2.ClientPreface))
	_ = c.h2.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c.h2.nc, preface); err != nil || string(preface) != http2.ClientPreface {
		return
	}
	_ = c.h2.nc.SetReadDeadline(time.Time{})
	c.h2.start()
	for {
		frame, err := c.h2.reader.ReadFrame()
		var streamErr http2.StreamError
		if errors.As(err, &streamErr) {
			// A header block the framer refuses for one stream (having decoded it, so the connection's header
			// table stays in step): that stream is reset, the connection goes on.
			if streamErr.StreamID > c.lastID.Load() {
				c.lastID.Store(streamErr.StreamID)
			}
			c.h2.mu.Lock()
			c.h2.resetLocked(streamErr.StreamID, streamErr.Code)
			c.h2.mu.Unlock()
			continue
		}
		if err != nil {
			c.readFailed(err)
			return
		}
		if err := c.handle(frame); err != nil {
			c.connectionError(err)
			return
		}
	}
}

func (c *callerConn) readFailed(err error) {
	var connErr http2.ConnectionError
	if errors.As(err, &connErr) {
		c.connectionError(connErr)
	}
}

// connectionError ends the connection with GOAWAY and the error's code.
func (c *callerConn) connectionError(err error) {
	code := http2.ErrCodeProtocol
	var connErr http2.ConnectionError
	if errors.As(err, &connErr) {
		code = http2.ErrCode(connErr)
	}
	c.h2.mu.Lock()
	_ = c.h2.writer.WriteGoAway(c.lastID.Load(), code, nil)
	c.h2.flushLocked()
	c.h2.mu.Unlock()
	c.h2.close()
}

// closed: the caller's connection ended; its calls still in flight are cancelled (not counted).
func (c *callerConn) closed() {
	c.h2.abort()
	c.h2.mu.Lock()
	calls := make([]*call, 0, len(c.calls))
	for _, k := range c.calls {
		calls = append(calls, k)
	}
	c.h2.mu.Unlock()
	for _, k := range calls {
		k.cancel()
	}
	c.relay.mu.Lock()
	delete(c.relay.callers, c)
	c.relay.mu.Unlock()
}

func (c *callerConn) goAway() {
	if c.goneAwy.Swap(true) {
		return
	}
	c.h2.mu.Lock()
	_ = c.h2.writer.WriteGoAway(c.lastID.Load(), http2.ErrCodeNo, nil)
	c.h2.flushLocked()
	c.h2.mu.Unlock()
}

func (c *callerConn) lookup(id uint32) *call {
	c.h2.mu.Lock()
	defer c.h2.mu.Unlock()
	return c.calls[id]
}

func (c *callerConn) handle(frame http2.Frame) error {
	switch f := frame.(type) {
	case *http2.MetaHeadersFrame:
		id := f.StreamID
		if k := c.lookup(id); k != nil && !k.requestDone {
			// Trailers from a client end its request; gRPC clients send none, so there is nothing to keep.
			if f.StreamEnded() {
				k.requestDone = true
				k.requestComplete()
			}
			return nil
		}
		if id%2 == 0 {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		if id <= c.lastID.Load() { // a stream this end closed or already read to its end
			c.h2.mu.Lock()
			c.h2.resetLocked(id, http2.ErrCodeStreamClosed)
			c.h2.mu.Unlock()
			return nil
		}
		c.lastID.Store(id)
		if c.goneAwy.Load() {
			c.h2.mu.Lock()
			c.h2.resetLocked(id, http2.ErrCodeRefusedStream)
			c.h2.mu.Unlock()
			return nil
		}
		k := c.relay.newCall(c, id, f.Fields)
		if k == nil {
			return nil // answered already (unknown method, not gRPC)
		}
		if f.StreamEnded() {
			k.requestDone = true
			k.requestComplete()
		}
	case *http2.DataFrame:
		k := c.lookup(f.StreamID)
		var unacked *int64
		if k != nil && !k.requestDone && !f.StreamEnded() {
			unacked = &k.requestUnacked
		}
		c.h2.received(f.StreamID, f.Length, unacked)
		if k == nil || k.requestDone {
			if f.StreamID > c.lastID.Load() {
				return http2.ConnectionError(http2.ErrCodeProtocol)
			}
			if k != nil { // DATA after the caller ended its request
				c.h2.mu.Lock()
				c.h2.resetLocked(f.StreamID, http2.ErrCodeStreamClosed)
				c.h2.mu.Unlock()
				k.cancel()
			}
			return nil // a stream already answered or reset
		}
		k.body = append(k.body, f.Data()...)
		if f.StreamEnded() {
			k.requestDone = true
			k.requestComplete()
		}
	case *http2.RSTStreamFrame:
		c.h2.mu.Lock()
		delete(c.h2.sends, f.StreamID) // an answer still waiting for the caller's window is dropped
		c.h2.mu.Unlock()
		if k := c.lookup(f.StreamID); k != nil {
			k.cancel()
		}
	case *http2.SettingsFrame:
		if !f.IsAck() {
			return c.h2.settings(f)
		}
	case *http2.PingFrame:
		if !f.IsAck() {
			c.h2.mu.Lock()
			_ = c.h2.writer.WritePing(true, f.Data)
			c.h2.flushLocked()
			c.h2.mu.Unlock()
		}
	case *http2.WindowUpdateFrame:
		c.h2.windowUpdate(f.StreamID, f.Increment)
	case *http2.GoAwayFrame:
		c.goneAwy.Store(true)
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	return nil
}

// call is one gRPC call from its caller's HEADERS to its answer. Exactly one of the ways a call ends wins (done):
// the model server's answer, the deadline, the caller's reset or disconnection, an upstream failure, the router's own
// refusal.
type call struct {
	relay    *GrpcRelay
	caller   *callerConn
	id       uint32
	path     string
	routed   bool
	metadata []hpack.HeaderField // the caller's metadata to pass on
	encoding string              // the caller's grpc-encoding ("" once the router decompressed the request)
	unit     *string
	pin      *string
	body     []byte
	start    time.Time
	deadline time.Time // when the router answers DEADLINE_EXCEEDED
	ownLimit bool      // the deadline is the router's own timeout, not the caller's
	route    *Route
	// the request was read to its end; its bytes not yet returned to the caller as window (the caller's reader only)
	requestDone    bool
	requestUnacked int64

	done  atomic.Bool
	timer *time.Timer // set in newCall under the caller connection's lock, before the timer can end the call

	// the model server's side: the connection and stream id (set under that connection's lock), then what only its
	// reader touches
	up        atomic.Pointer[upConn]
	upID      uint32
	retried   bool
	responded bool
	// the answer's bytes not yet returned to the model server as window (its reader only)
	answerUnacked int64
	response      []hpack.HeaderField
	answer        []byte
}

func (g *GrpcRelay) newCall(c *callerConn, id uint32, fields []hpack.HeaderField) *call {
	now := time.Now()
	k := &call{relay: g, caller: c, id: id, start: now}
	var method, contentType string
	var timeout time.Duration
	hasTimeout := false
	for _, f := range fields {
		switch {
		case f.Name == ":path":
			k.path = f.Value
		case f.Name == ":method":
			method = f.Value
		case f.Name == "content-type":
			contentType = f.Value
		case f.Name == "grpc-encoding":
			k.encoding = f.Value
		case f.Name == "grpc-timeout":
			if d, ok := parseTimeout(f.Value); ok {
				timeout, hasTimeout = d, true
			}
		case strings.HasPrefix(f.Name, ":") || strings.HasPrefix(f.Name, "grpc-") || transportMetadata[f.Name]:
		default:
			k.metadata = append(k.metadata, f)
			if f.Name == g.unitHeader && k.unit == nil {
				v := utf8Replace(f.Value)
				k.unit = &v
			}
			if f.Name == pinHeader && k.pin == nil {
				v := utf8Replace(f.Value)
				k.pin = &v
			}
		}
	}
	c.h2.mu.Lock()
	defer c.h2.mu.Unlock()
	if method != "POST" || !strings.HasPrefix(contentType, "application/grpc") {
		c.h2.writeHeadersLocked(id, []hpack.HeaderField{{Name: ":status", Value: "415"}}, true)
		c.h2.flushLocked()
		return nil
	}
	routed, known := relayedMethods[k.path]
	if !known {
		c.h2.writeHeadersLocked(id, trailersOnly(codes.Unimplemented, unknownMethod(k.path), nil), true)
		c.h2.flushLocked()
		return nil
	}
	k.routed = routed
	k.deadline = now.Add(g.timeout)
	k.ownLimit = true
	if hasTimeout {
		if callerDeadline := now.Add(timeout - deadlineMargin); callerDeadline.Before(k.deadline) {
			k.deadline, k.ownLimit = callerDeadline, false
		}
	}
	c.calls[id] = k
	c.h2.openSendLocked(id)
	g.inFlight.Add(1)
	// The deadline covers reading the request too. The timer cannot end the call before this returns: its first
	// step takes the lock held here.
	k.timer = time.AfterFunc(time.Until(k.deadline), k.expire)
	return k
}

// requestComplete: the whole request is in (reader goroutine); route it and send it to the model server.
func (k *call) requestComplete() {
	if k.done.Load() {
		return
	}
	if k.routed {
		message, route, failure := k.relay.routeRequest(k)
		if failure != nil {
			k.finish(failure.Code, failure.Message, false)
			return
		}
		k.caller.h2.mu.Lock() // the deadline's timer reads the route
		k.body, k.route = message, route
		k.caller.h2.mu.Unlock()
	}
	k.relay.upstream.submit(k)
}

// routeRequest decodes the request's model_spec, asks the routing core and returns the request to send, its route
// (nil: a request protobuf refuses, or not a single message, sent unchanged for the model server to answer) and a
// refusal for a bad pin header.
func (g *GrpcRelay) routeRequest(k *call) ([]byte, *Route, *RouterError) {
	body := k.body
	if len(body) < 5 || int(binary.BigEndian.Uint32(body[1:5])) != len(body)-5 {
		return body, nil, nil
	}
	message := body[5:]
	switch body[0] {
	case 0:
	case 1:
		if k.encoding != "gzip" {
			return body, nil, nil // an encoding the router cannot read: the model server answers it
		}
		inflated, err := gunzip(message)
		if err != nil {
			return body, nil, nil
		}
		message, k.encoding = inflated, ""
	default:
		return body, nil, nil
	}
	head, err := ParseRequestHead(message)
	if err != nil {
		return frameMessage(message), nil, nil
	}
	var version *int64
	var label *string
	switch head.Spec.Choice {
	case choiceVersion:
		v := head.Spec.Version
		version = &v
	case choiceVersionLabel:
		l := head.Spec.VersionLabel
		label = &l
	}
	var pin *int64
	if head.Spec.Choice == choiceNone {
		if pin, err = PinnedVersion(k.pin); err != nil {
			return nil, nil, &RouterError{codes.InvalidArgument, err.Error()}
		}
	}
	chosen := version
	if pin != nil {
		chosen = pin
	}
	route := g.service.Route(head.Spec.Name, chosen, label, k.unit)
	switch {
	case pin != nil:
		head.SetVersion(*pin)
	case route.Rewrite:
		head.SetLabel(route.Label)
	default:
		if body[0] == 0 {
			return body, &route, nil
		}
		return frameMessage(message), &route, nil
	}
	return frameMessage(head.Marshal()), &route, nil
}

func frameMessage(message []byte) []byte {
	framed := make([]byte, 5+len(message))
	binary.BigEndian.PutUint32(framed[1:5], uint32(len(message)))
	copy(framed[5:], message)
	return framed
}

func gunzip(data []byte) ([]byte, error) {
	reader, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(reader)
}

// upstreamHeaders: the HEADERS of the call to the model server.
func (k *call) upstreamHeaders(authority string) []hpack.HeaderField {
	fields := make([]hpack.HeaderField, 0, 8+len(k.metadata))
	fields = append(fields,
		hpack.HeaderField{Name: ":method", Value: "POST"},
		hpack.HeaderField{Name: ":scheme", Value: "http"},
		hpack.HeaderField{Name: ":path", Value: k.path},
		hpack.HeaderField{Name: ":authority", Value: authority},
		hpack.HeaderField{Name: "content-type", Value: "application/grpc"},
		hpack.HeaderField{Name: "te", Value: "trailers"},
		hpack.HeaderField{Name: "user-agent", Value: "croupier-modelrouter"},
		hpack.HeaderField{Name: "grpc-timeout", Value: encodeTimeout(time.Until(k.deadline))},
	)
	if k.encoding != "" {
		fields = append(fields, hpack.HeaderField{Name: "grpc-encoding", Value: k.encoding})
	}
	return append(fields, k.metadata...)
}

// answered: the model server's answer is complete (upstream reader): headers (nil for a trailers-only answer), the
// message bytes and the trailers go to the caller with the route's headers added to the trailers.
func (k *call) answered(response []hpack.HeaderField, answer []byte, trailers []hpack.HeaderField) {
	if !k.begin() {
		return
	}
	code := codes.Unknown
	for _, f := range trailers {
		if f.Name == "grpc-status" {
			if n, err := strconv.Atoi(f.Value); err == nil {
				code = codes.Code(n)
			}
		}
	}
	h := k.caller.h2
	h.mu.Lock()
	trailers = k.withRoute(trailers)
	if state, ok := h.sends[k.id]; ok {
		if response == nil {
			h.writeHeadersLocked(k.id, trailers, true)
			delete(h.sends, k.id)
		} else {
			h.writeHeadersLocked(k.id, response, false)
			state.data, state.trailers, state.endWith = answer, trailers, true
			h.sendLocked(k.id, state)
		}
		h.flushLocked()
	}
	delete(k.caller.calls, k.id)
	h.mu.Unlock()
	k.end(code, true)
}

// finish ends the call with the router's own answer (trailers-only); count says whether it is counted.
func (k *call) finish(code codes.Code, message string, count bool) {
	if !k.begin() {
		return
	}
	h := k.caller.h2
	h.mu.Lock()
	if _, ok := h.sends[k.id]; ok {
		h.writeHeadersLocked(k.id, k.withRoute(trailersOnly(code, message, nil)), true)
		delete(h.sends, k.id)
		h.flushLocked()
	}
	delete(k.caller.calls, k.id)
	h.mu.Unlock()
	k.end(code, count)
}

// cancel: the caller reset the stream or went away; the call to the model server is reset, nothing is counted.
func (k *call) cancel() {
	if !k.begin() {
		return
	}
	h := k.caller.h2
	h.mu.Lock()
	delete(h.sends, k.id)
	delete(k.caller.calls, k.id)
	h.mu.Unlock()
	k.end(codes.Canceled, false)
}

// expire: the deadline passed before the model server answered.
func (k *call) expire() {
	k.caller.h2.mu.Lock() // newCall has returned (and set k.timer)
	k.caller.h2.mu.Unlock()
	seconds := k.deadline.Sub(k.start).Seconds()
	k.finish(codes.DeadlineExceeded, upstreamDeadline(k.relay.target, seconds).Message, k.ownLimit)
}

func (k *call) begin() bool { return k.done.CompareAndSwap(false, true) }

// end releases the call's upstream stream (reset when it is still open), its timer, and counts it.
func (k *call) end(code codes.Code, count bool) {
	k.caller.h2.mu.Lock()
	timer, route := k.timer, k.route
	k.caller.h2.mu.Unlock()
	timer.Stop()
	k.relay.upstream.release(k)
	if count && route != nil {
		name, ok := codeName[code]
		if !ok {
			name = "UNKNOWN"
		}
		k.relay.service.Record(*route, name, time.Since(k.start).Seconds())
	}
	k.relay.inFlight.Add(-1)
}

// withRoute adds the route's headers to trailers (the caller connection's lock held: the route is set under it).
func (k *call) withRoute(trailers []hpack.HeaderField) []hpack.HeaderField {
	if k.route == nil {
		return trailers
	}
	out := make([]hpack.HeaderField, 0, len(trailers)+2)
	out = append(out, trailers...)
	for _, h := range routeHeaders(*k.route) {
		out = append(out, hpack.HeaderField{Name: h[0], Value: h[1]})
	}
	return out
}

// trailersOnly is a gRPC answer without a message: HTTP status, content type, code and message.
func trailersOnly(code codes.Code, message string, extra []hpack.HeaderField) []hpack.HeaderField {
	fields := []hpack.HeaderField{
		{Name: ":status", Value: "200"},
		{Name: "content-type", Value: "application/grpc"},
		{Name: "grpc-status", Value: strconv.Itoa(int(code))},
	}
	if message != "" {
		fields = append(fields, hpack.HeaderField{Name: "grpc-message", Value: encodeGrpcMessage(message)})
	}
	return append(fields, extra...)
}

// unknownMethod is grpc-go's message for a method its server does not serve.
func unknownMethod(path string) string {
	service, method, ok := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	if !ok {
		return fmt.Sprintf("malformed method name: %q", path)
	}
	if service == predictionService || service == modelService {
		return fmt.Sprintf("unknown method %s for service %s", method, service)
	}
	return fmt.Sprintf("unknown service %s", service)
}

// encodeGrpcMessage percent-encodes what the gRPC spec says grpc-message may not carry as it is.
func encodeGrpcMessage(message string) string {
	var b strings.Builder
	for i := 0; i < len(message); i++ {
		c := message[i]
		if c >= 0x20 && c <= 0x7e && c != '%' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// parseTimeout reads grpc-timeout: at most 8 digits and a unit (H, M, S, m, u, n).
func parseTimeout(value string) (time.Duration, bool) {
	if len(value) < 2 || len(value) > 9 {
		return 0, false
	}
	n, err := strconv.ParseInt(value[:len(value)-1], 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	units := map[byte]time.Duration{
		'H': time.Hour, 'M': time.Minute, 'S': time.Second, 'm': time.Millisecond, 'u': time.Microsecond,
		'n': time.Nanosecond,
	}
	unit, ok := units[value[len(value)-1]]
	if !ok {
		return 0, false
	}
	return time.Duration(n) * unit, true
}

// encodeTimeout writes d as grpc-timeout in the finest unit that fits 8 digits, rounded up (as grpc-go does).
func encodeTimeout(d time.Duration) string {
	if d <= 0 {
		return "0n"
	}
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{time.Nanosecond, "n"}, {time.Microsecond, "u"}, {time.Millisecond, "m"}, {time.Second, "S"}, {time.Minute, "M"}} {
		if v := (d + u.unit - 1) / u.unit; v <= 99999999 {
			return strconv.FormatInt(int64(v), 10) + u.name
		}
	}
	return strconv.FormatInt(int64((d+time.Hour-1)/time.Hour), 10) + "H"
}
