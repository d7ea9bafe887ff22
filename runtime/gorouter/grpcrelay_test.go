package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/encoding/gzip" // registers the gzip compressor for callers and model servers
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
)

// The gRPC relay between grpc-go callers and grpc-go model servers that record what reaches them. Messages are raw
// bytes on both sides (relayTestCodec), so what the relay changes in a request is seen byte for byte.

const (
	predictPath          = "/tensorflow.serving.PredictionService/Predict"
	classifyPath         = "/tensorflow.serving.PredictionService/Classify"
	regressPath          = "/tensorflow.serving.PredictionService/Regress"
	getModelMetadataPath = "/tensorflow.serving.PredictionService/GetModelMetadata"
	getModelStatusPath   = "/tensorflow.serving.ModelService/GetModelStatus"
	relayUnitHeader      = "x-unit"
	maxTestMessage       = 64 << 20
)

func rankerTable(weight float64) string {
	return fmt.Sprintf("salt: s1\nmodels: {ranker: {stable: 1, canary: 2, canaryWeight: %v}}", weight)
}

// relayTestCodec passes messages as bytes ([]byte out, *[]byte in), under the name grpc-go uses for protobuf.
type relayTestCodec struct{}

func (relayTestCodec) Marshal(v any) (mem.BufferSlice, error) {
	switch b := v.(type) {
	case []byte:
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	case *[]byte:
		return mem.BufferSlice{mem.SliceBuffer(*b)}, nil
	}
	return nil, fmt.Errorf("relayTestCodec: cannot marshal %T", v)
}

func (relayTestCodec) Unmarshal(data mem.BufferSlice, v any) error {
	target, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("relayTestCodec: cannot unmarshal into %T", v)
	}
	*target = data.Materialize()
	return nil
}

func (relayTestCodec) Name() string { return "proto" }

// Requests built by hand: model_spec (field 1) and, when payload is not nil, an inputs field (2) the relay must keep.

func specNamed(name string) []byte {
	spec := protowire.AppendTag(nil, specName, protowire.BytesType)
	return protowire.AppendString(spec, name)
}

func specWithVersion(spec []byte, version int64) []byte {
	value := protowire.AppendTag(nil, int64ValueValue, protowire.VarintType)
	value = protowire.AppendVarint(value, uint64(version))
	spec = protowire.AppendTag(spec, specVersion, protowire.BytesType)
	return protowire.AppendBytes(spec, value)
}

func specWithLabel(spec []byte, label string) []byte {
	spec = protowire.AppendTag(spec, specVersionLabel, protowire.BytesType)
	return protowire.AppendString(spec, label)
}

func requestWith(spec, payload []byte) []byte {
	request := protowire.AppendTag(nil, requestModelSpec, protowire.BytesType)
	request = protowire.AppendBytes(request, spec)
	if payload != nil {
		request = protowire.AppendTag(request, 2, protowire.BytesType)
		request = protowire.AppendBytes(request, payload)
	}
	return request
}

// relabelled and repinned are request as the relay must send it on: with the label it chose, or the pinned version.
func relabelled(t *testing.T, request []byte, label string) []byte {
	t.Helper()
	head, err := ParseRequestHead(request)
	if err != nil {
		t.Fatal(err)
	}
	head.SetLabel(label)
	return head.Marshal()
}

func repinned(t *testing.T, request []byte, version int64) []byte {
	t.Helper()
	head, err := ParseRequestHead(request)
	if err != nil {
		t.Fatal(err)
	}
	head.SetVersion(version)
	return head.Marshal()
}

func seededBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	source := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 7})
	_, _ = source.Read(b)
	return b
}

func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = listener.Close() })
	return listener
}

// modelCall is one call as the model server received it.
type modelCall struct {
	method      string
	request     []byte
	md          metadata.MD
	hasDeadline bool
	remaining   time.Duration // until the deadline, on arrival
}

// modelHandler answers a call (the answer's bytes, or a status error).
type modelHandler func(ctx context.Context, stream grpc.ServerStream, call modelCall) ([]byte, error)

func answerWith(answer string) modelHandler {
	return func(context.Context, grpc.ServerStream, modelCall) ([]byte, error) { return []byte(answer), nil }
}

// fakeModelServer serves every method with handler and records each call; static 64 KiB windows, so that large
// messages need the relay to follow flow control.
type fakeModelServer struct {
	addr   string
	server *grpc.Server
	mu     sync.Mutex
	calls  []modelCall
}

func startModelServer(t *testing.T, handler modelHandler, options ...grpc.ServerOption) *fakeModelServer {
	t.Helper()
	return serveModelServer(t, listenLoopback(t), handler, options...)
}

func serveModelServer(t *testing.T, listener net.Listener, handler modelHandler,
	options ...grpc.ServerOption) *fakeModelServer {
	t.Helper()
	m := &fakeModelServer{addr: listener.Addr().String()}
	m.server = grpc.NewServer(append([]grpc.ServerOption{
		grpc.ForceServerCodecV2(relayTestCodec{}),
		grpc.MaxRecvMsgSize(maxTestMessage), grpc.MaxSendMsgSize(maxTestMessage),
		grpc.InitialWindowSize(65535), grpc.InitialConnWindowSize(65535),
		grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
			ctx := stream.Context()
			call := modelCall{}
			if deadline, ok := ctx.Deadline(); ok {
				call.hasDeadline, call.remaining = true, time.Until(deadline)
			}
			call.method, _ = grpc.MethodFromServerStream(stream)
			if err := stream.RecvMsg(&call.request); err != nil {
				return err
			}
			md, _ := metadata.FromIncomingContext(ctx)
			call.md = md.Copy()
			m.mu.Lock()
			m.calls = append(m.calls, call)
			m.mu.Unlock()
			answer, err := handler(ctx, stream, call)
			if err != nil {
				return err
			}
			return stream.SendMsg(answer)
		})}, options...)...)
	go func() { _ = m.server.Serve(listener) }()
	t.Cleanup(m.server.Stop)
	return m
}

func (m *fakeModelServer) received() []modelCall {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]modelCall(nil), m.calls...)
}

// relayUnderTest is a relay serving on a loopback port, with its own metrics.
type relayUnderTest struct {
	relay   *GrpcRelay
	service *Service
	addr    string
	served  chan error
	closed  atomic.Bool
}

func startRelay(t *testing.T, upstream string, timeoutSeconds float64, table string) *relayUnderTest {
	t.Helper()
	parsed, err := ParseTable([]byte(table), "routing.yaml")
	if err != nil {
		t.Fatal(err)
	}
	service := NewService(NewMetrics(), parsed)
	listener := listenLoopback(t)
	r := &relayUnderTest{
		relay:   NewGrpcRelay(service, upstream, relayUnitHeader, timeoutSeconds),
		service: service,
		addr:    listener.Addr().String(),
		served:  make(chan error, 1),
	}
	go func() { r.served <- r.relay.Serve(listener) }()
	t.Cleanup(func() {
		if r.closed.CompareAndSwap(false, true) {
			r.relay.Close(100 * time.Millisecond)
		}
		select {
		case <-r.served:
		case <-time.After(3 * time.Second):
			t.Error("Serve did not return after Close")
		}
	})
	return r
}

func (r *relayUnderTest) close(grace time.Duration) {
	if r.closed.CompareAndSwap(false, true) {
		r.relay.Close(grace)
	}
}

// dialClient is a grpc-go client of addr with the raw codec and no message size limit of its own.
func dialClient(t *testing.T, addr string, options ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	options = append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(relayTestCodec{}),
			grpc.MaxCallRecvMsgSize(maxTestMessage), grpc.MaxCallSendMsgSize(maxTestMessage)),
	}, options...)
	conn, err := grpc.NewClient(addr, options...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// callResult is one call's outcome as the caller sees it.
type callResult struct {
	body    []byte
	header  metadata.MD
	trailer metadata.MD
	err     error
	took    time.Duration
}

func invokeCall(ctx context.Context, conn *grpc.ClientConn, method string, request []byte,
	options ...grpc.CallOption) callResult {
	var a callResult
	start := time.Now()
	options = append(options, grpc.Header(&a.header), grpc.Trailer(&a.trailer))
	a.err = conn.Invoke(ctx, method, request, &a.body, options...)
	a.took = time.Since(start)
	return a
}

func invokeWithin(conn *grpc.ClientConn, timeout time.Duration, method string, request []byte,
	options ...grpc.CallOption) callResult {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return invokeCall(ctx, conn, method, request, options...)
}

func invokeWithMetadata(conn *grpc.ClientConn, md metadata.MD, method string, request []byte) callResult {
	ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(context.Background(), md), 5*time.Second)
	defer cancel()
	return invokeCall(ctx, conn, method, request)
}

func (a callResult) mustSucceed(t *testing.T) callResult {
	t.Helper()
	if a.err != nil {
		t.Fatalf("call failed: %v", a.err)
	}
	return a
}

func expectStatus(t *testing.T, err error, code codes.Code) *status.Status {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != code {
		t.Errorf("code %v (%q), want %v", st.Code(), st.Message(), code)
	}
	return st
}

// expectRouteTrailer: the trailing metadata names the served version and label (no label key for "none").
func expectRouteTrailer(t *testing.T, trailer metadata.MD, version, label string) {
	t.Helper()
	if got := trailer.Get(pinHeader); len(got) != 1 || got[0] != version {
		t.Errorf("trailer %s = %q, want [%s] (trailer %v)", pinHeader, got, version, trailer)
	}
	got := trailer.Get(labelHeader)
	if label == labelNone {
		if len(got) != 0 {
			t.Errorf("trailer %s = %q, want none", labelHeader, got)
		}
	} else if len(got) != 1 || got[0] != label {
		t.Errorf("trailer %s = %q, want [%s] (trailer %v)", labelHeader, got, label, trailer)
	}
}

// requestCount sums croupier_router_requests_total over the series whose labels include match.
func requestCount(t *testing.T, service *Service, match map[string]string) float64 {
	t.Helper()
	families, err := service.Metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, family := range families {
		if family.GetName() != "croupier_router_requests_total" {
			continue
		}
	series:
		for _, m := range family.GetMetric() {
			labels := map[string]string{}
			for _, pair := range m.GetLabel() {
				labels[pair.GetName()] = pair.GetValue()
			}
			for name, value := range match {
				if labels[name] != value {
					continue series
				}
			}
			total += m.GetCounter().GetValue()
		}
	}
	return total
}

// expectCount waits briefly for the count to reach want (a call may be counted just after its answer left), then
// asserts it is exactly want.
func expectCount(t *testing.T, service *Service, match map[string]string, want float64) {
	t.Helper()
	for stop := time.Now().Add(2 * time.Second); time.Now().Before(stop); time.Sleep(5 * time.Millisecond) {
		if requestCount(t, service, match) == want {
			break
		}
	}
	if got := requestCount(t, service, match); got != want {
		t.Errorf("croupier_router_requests_total%v = %v, want %v", match, got, want)
	}
}

func rankerSeries(version, label, code string) map[string]string {
	return map[string]string{"model": "ranker", "version": version, "label": label, "code": code}
}

// setKeepalive sets the relay's upstream keepalive for this test (before the relay is created, restored after it is
// closed).
func setKeepalive(t *testing.T, interval, timeout time.Duration) {
	savedInterval, savedTimeout := keepaliveInterval, keepaliveTimeout
	keepaliveInterval, keepaliveTimeout = interval, timeout
	t.Cleanup(func() { keepaliveInterval, keepaliveTimeout = savedInterval, savedTimeout })
}

func TestRelayRoutesARequestNamingOnlyTheModelAndKeepsItsOtherBytes(t *testing.T) {
	model := startModelServer(t, answerWith("prediction"))
	relay := startRelay(t, model.addr, 5, rankerTable(0))
	conn := dialClient(t, relay.addr)
	payload := append([]byte("inputs"), 0xff, 0x00, 0xfe) // not UTF-8, not the relay's to read
	request := requestWith(specNamed("ranker"), payload)

	a := invokeWithin(conn, 5*time.Second, predictPath, request).mustSucceed(t)
	if string(a.body) != "prediction" {
		t.Errorf("answer %q, want the model server's", a.body)
	}
	expectRouteTrailer(t, a.trailer, "1", labelStable)
	calls := model.received()
	if len(calls) != 1 || calls[0].method != predictPath {
		t.Fatalf("the model server received %d calls (%+v), want one Predict", len(calls), calls)
	}
	if want := relabelled(t, request, labelStable); !bytes.Equal(calls[0].request, want) {
		t.Errorf("the model server received %x, want %x", calls[0].request, want)
	}
	head, err := ParseRequestHead(calls[0].request)
	if err != nil || head.Spec.Name != "ranker" || head.Spec.Choice != choiceVersionLabel ||
		head.Spec.VersionLabel != "stable" {
		t.Errorf("model_spec as received: %+v %v", head, err)
	}
	expectCount(t, relay.service, rankerSeries("1", labelStable, "OK"), 1)

	// Weight 100: every such request goes to the canary, Classify and Regress as Predict.
	table, err := ParseTable([]byte(rankerTable(100)), "routing.yaml")
	if err != nil {
		t.Fatal(err)
	}
	relay.service.Replace(table)
	for i, method := range []string{predictPath, classifyPath, regressPath} {
		a := invokeWithin(conn, 5*time.Second, method, request).mustSucceed(t)
		expectRouteTrailer(t, a.trailer, "2", labelCanary)
		calls := model.received()
		if len(calls) != 2+i || calls[1+i].method != method {
			t.Fatalf("%s: the model server received %+v", method, calls)
		}
		if want := relabelled(t, request, labelCanary); !bytes.Equal(calls[1+i].request, want) {
			t.Errorf("%s: the model server received %x, want %x", method, calls[1+i].request, want)
		}
	}
	expectCount(t, relay.service, rankerSeries("2", labelCanary, "OK"), 3)
}

func TestRelayPassesARequestNamingItsVersionOrLabelUnchanged(t *testing.T) {
	model := startModelServer(t, answerWith("ok"))
	relay := startRelay(t, model.addr, 5, rankerTable(100))
	conn := dialClient(t, relay.addr)
	cases := []struct {
		name           string
		request        []byte
		version, label string
	}{
		{"version 1", requestWith(specWithVersion(specNamed("ranker"), 1), []byte("x")), "1", labelNone},
		{"version 2", requestWith(specWithVersion(specNamed("ranker"), 2), nil), "2", labelNone},
		{"label stable", requestWith(specWithLabel(specNamed("ranker"), "stable"), []byte("y")), "1", labelStable},
	}
	for i, c := range cases {
		a := invokeWithin(conn, 5*time.Second, predictPath, c.request).mustSucceed(t)
		expectRouteTrailer(t, a.trailer, c.version, c.label)
		calls := model.received()
		if len(calls) != i+1 || !bytes.Equal(calls[i].request, c.request) {
			t.Errorf("%s: the model server received %+v, want the request unchanged (%x)", c.name, calls, c.request)
		}
	}
	expectCount(t, relay.service, rankerSeries("1", labelNone, "OK"), 1)
	expectCount(t, relay.service, rankerSeries("2", labelNone, "OK"), 1)
	expectCount(t, relay.service, rankerSeries("1", labelStable, "OK"), 1)
}

func TestRelayPassesARequestItCannotParseUnchanged(t *testing.T) {
	model := startModelServer(t, func(context.Context, grpc.ServerStream, modelCall) ([]byte, error) {
		return nil, status.Error(codes.InvalidArgument, "Could not parse request")
	})
	relay := startRelay(t, model.addr, 5, rankerTable(50))
	conn := dialClient(t, relay.addr)
	request := []byte{0x0a, 0x05, 0x0a} // model_spec longer than the bytes that follow
	a := invokeWithin(conn, 5*time.Second, predictPath, request)
	if st := expectStatus(t, a.err, codes.InvalidArgument); st.Message() != "Could not parse request" {
		t.Errorf("message %q, want the model server's", st.Message())
	}
	calls := model.received()
	if len(calls) != 1 || !bytes.Equal(calls[0].request, request) {
		t.Errorf("the model server received %+v, want %x unchanged", calls, request)
	}
	if got := requestCount(t, relay.service, map[string]string{}); got != 0 {
		t.Errorf("%v calls counted, want 0: a request without a readable model_spec has no route", got)
	}
}

func TestRelayPinHeaderPinsAVersionAndABadPinIsRefused(t *testing.T) {
	model := startModelServer(t, answerWith("ok"))
	relay := startRelay(t, model.addr, 5, rankerTable(0))
	conn := dialClient(t, relay.addr)
	request := requestWith(specNamed("ranker"), []byte("inputs"))

	a := invokeWithMetadata(conn, metadata.Pairs(pinHeader, "2"), predictPath, request).mustSucceed(t)
	expectRouteTrailer(t, a.trailer, "2", labelNone)
	calls := model.received()
	if want := repinned(t, request, 2); len(calls) != 1 || !bytes.Equal(calls[0].request, want) {
		t.Errorf("the model server received %+v, want %x", calls, want)
	}
	expectCount(t, relay.service, rankerSeries("2", labelNone, "OK"), 1)

	// A request that names its label keeps it: the pin is for requests that name nothing.
	labelled := requestWith(specWithLabel(specNamed("ranker"), "canary"), nil)
	a = invokeWithMetadata(conn, metadata.Pairs(pinHeader, "1"), predictPath, labelled).mustSucceed(t)
	expectRouteTrailer(t, a.trailer, "2", labelCanary)
	if calls := model.received(); len(calls) != 2 || !bytes.Equal(calls[1].request, labelled) {
		t.Errorf("the model server received %+v, want %x", calls, labelled)
	}

	bad := "abc"
	_, pinErr := PinnedVersion(&bad)
	a = invokeWithMetadata(conn, metadata.Pairs(pinHeader, bad), predictPath, request)
	if st := expectStatus(t, a.err, codes.InvalidArgument); pinErr == nil || st.Message() != pinErr.Error() {
		t.Errorf("message %q, want %v", st.Message(), pinErr)
	}
	if calls := model.received(); len(calls) != 2 {
		t.Errorf("a bad pin reached the model server: %+v", calls[2:])
	}
}

func TestRelayUnitHeaderKeepsAUnitOnOneLabel(t *testing.T) {
	model := startModelServer(t, answerWith("ok"))
	relay := startRelay(t, model.addr, 5, rankerTable(50))
	conn := dialClient(t, relay.addr)
	request := requestWith(specNamed("ranker"), nil)
	want := map[string]string{}
	labels := map[string]int{}
	for i := range 12 {
		unit := "unit-" + strconv.Itoa(i)
		want[unit] = labelStable
		if UnitPoint("s1", unit) < 0.5 {
			want[unit] = labelCanary
		}
		labels[want[unit]]++
	}
	if labels[labelStable] == 0 || labels[labelCanary] == 0 {
		t.Fatalf("the units all fall on one label (%v): choose others", labels)
	}
	n := 0
	for round := range 3 {
		for i := range 12 {
			unit := "unit-" + strconv.Itoa(i)
			a := invokeWithMetadata(conn, metadata.Pairs(relayUnitHeader, unit), predictPath, request).mustSucceed(t)
			version := map[string]string{labelStable: "1", labelCanary: "2"}[want[unit]]
			expectRouteTrailer(t, a.trailer, version, want[unit])
			calls := model.received()
			n++
			if len(calls) != n {
				t.Fatalf("the model server received %d calls, want %d", len(calls), n)
			}
			if got := relabelled(t, request, want[unit]); !bytes.Equal(calls[n-1].request, got) {
				t.Errorf("round %d, %s: the model server received %x, want label %s", round, unit, calls[n-1].request,
					want[unit])
			}
		}
	}
	expectCount(t, relay.service, rankerSeries("2", labelCanary, "OK"), float64(3*labels[labelCanary]))
	expectCount(t, relay.service, rankerSeries("1", labelStable, "OK"), float64(3*labels[labelStable]))
}

func TestRelayPassesTheMetadataAndStatusMethodsUnchanged(t *testing.T) {
	model := startModelServer(t, func(_ context.Context, _ grpc.ServerStream, call modelCall) ([]byte, error) {
		return append([]byte("answer to "+call.method+": "), call.request...), nil
	})
	relay := startRelay(t, model.addr, 5, rankerTable(100))
	conn := dialClient(t, relay.addr)
	metadataRequest := requestWith(specNamed("ranker"), nil)
	metadataRequest = protowire.AppendTag(metadataRequest, 2, protowire.BytesType)
	metadataRequest = protowire.AppendString(metadataRequest, "signature_def")
	statusRequest := requestWith(specNamed("ranker"), nil)
	for i, c := range []struct {
		method  string
		request []byte
	}{{getModelMetadataPath, metadataRequest}, {getModelStatusPath, statusRequest}} {
		a := invokeWithin(conn, 5*time.Second, c.method, c.request).mustSucceed(t)
		if want := append([]byte("answer to "+c.method+": "), c.request...); !bytes.Equal(a.body, want) {
			t.Errorf("%s: answer %q, want %q", c.method, a.body, want)
		}
		calls := model.received()
		if len(calls) != i+1 || calls[i].method != c.method || !bytes.Equal(calls[i].request, c.request) {
			t.Errorf("%s: the model server received %+v, want the request unchanged", c.method, calls)
		}
		if got := a.trailer.Get(labelHeader); len(got) != 0 {
			t.Errorf("%s: a route trailer %q on a method that is not routed", c.method, got)
		}
	}
	if got := requestCount(t, relay.service, map[string]string{}); got != 0 {
		t.Errorf("%v pass-through calls counted, want 0", got)
	}
}

func TestRelayAnswersOtherMethodsUnimplemented(t *testing.T) {
	model := startModelServer(t, answerWith("should not be here"))
	relay := startRelay(t, model.addr, 5, rankerTable(0))
	conn := dialClient(t, relay.addr)
	for _, method := range []string{
		"/tensorflow.serving.PredictionService/MultiInference",
		"/tensorflow.serving.ModelService/HandleReloadConfigRequest",
		"/foo.Bar/Baz",
		"/tensorflow.serving.PredictionService/predict",
	} {
		a := invokeWithin(conn, 5*time.Second, method, requestWith(specNamed("ranker"), nil))
		expectStatus(t, a.err, codes.Unimplemented)
	}
	if calls := model.received(); len(calls) != 0 {
		t.Errorf("the model server received %+v, want nothing", calls)
	}
	// The connection is still good.
	invokeWithin(conn, 5*time.Second, predictPath, requestWith(specNamed("ranker"), nil)).mustSucceed(t)
}

func TestRelayPassesTheModelServersCodesAndMessages(t *testing.T) {
	const message = "Servable not found for request: Latest(x) — 100% ünknown"
	model := startModelServer(t, func(_ context.Context, stream grpc.ServerStream, call modelCall) ([]byte, error) {
		if bytes.Contains(call.request, []byte("after-headers")) {
			if err := stream.SendHeader(metadata.Pairs("x-sent", "first")); err != nil {
				return nil, err
			}
		} // else a trailers-only answer: nothing sent before the status
		return nil, status.Error(codes.NotFound, message)
	})
	relay := startRelay(t, model.addr, 5, rankerTable(0))
	conn := dialClient(t, relay.addr)
	for i, payload := range []string{"trailers-only", "after-headers"} {
		a := invokeWithin(conn, 5*time.Second, predictPath, requestWith(specNamed("ranker"), []byte(payload)))
		if st := expectStatus(t, a.err, codes.NotFound); st.Message() != message {
			t.Errorf("%s: message %q, want %q", payload, st.Message(), message)
		}
		expectRouteTrailer(t, a.trailer, "1", labelStable)
		if payload == "after-headers" && strings.Join(a.header.Get("x-sent"), ",") != "first" {
			t.Errorf("%s: header %v, want the model server's x-sent", payload, a.header)
		}
		expectCount(t, relay.service, rankerSeries("1", labelStable, "NOT_FOUND"), float64(i+1))
	}
	if got := requestCount(t, relay.service, map[string]string{"code": "OK"}); got != 0 {
		t.Errorf("%v calls counted OK, want 0", got)
	}
}

func TestRelayPassesMetadataBothWays(t *testing.T) {
	model := startModelServer(t, func(_ context.Context, stream grpc.ServerStream, _ modelCall) ([]byte, error) {
		if err := stream.SetHeader(metadata.Pairs("x-model-header", "h1")); err != nil {
			return nil, err
		}
		stream.SetTrailer(metadata.Pairs("x-model-trailer", "t1", "model-bin", "\x00\x01\x02"))
		return []byte("ok"), nil
	})
	relay := startRelay(t, model.addr, 5, rankerTable(0))
	md := metadata.MD{
		"authorization": {"Bearer t0ken"},
		"x-request-id":  {"r-1"},
		"trace-bin":     {"\x00\x01"},
		"x-multi":       {"a", "b"},
	}
	request := requestWith(specNamed("ranker"), nil)

	// What grpc-go itself adds, calling the model server directly.
	invokeWithMetadata(dialClient(t, model.addr), md, predictPath, request).mustSucceed(t)
	direct := model.received()[0].md
	a := invokeWithMetadata(dialClient(t, relay.addr), md, predictPath, request).mustSucceed(t)
	relayed := model.received()[1].md

	for key, want := range md {
		if got := relayed.Get(key); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("the model server received %s = %q, want %q", key, got, want)
		}
	}
	for key, values := range relayed {
		if strings.HasPrefix(key, ":") || strings.HasPrefix(key, "grpc-") {
			if _, ok := direct[key]; !ok {
				t.Errorf("the relay passed %s = %q, which grpc-go does not send", key, values)
			}
			if len(values) != 1 {
				t.Errorf("the model server received %s %d times: %q", key, len(values), values)
			}
		}
	}
	if got := a.header.Get("x-model-header"); len(got) != 1 || got[0] != "h1" {
		t.Errorf("initial metadata %v, want the model server's x-model-header", a.header)
	}
	if got := a.trailer.Get("x-model-trailer"); len(got) != 1 || got[0] != "t1" {
		t.Errorf("trailing metadata %v, want the model server's x-model-trailer", a.trailer)
	}
	if got := a.trailer.Get("model-bin"); len(got) != 1 || got[0] != "\x00\x01\x02" {
		t.Errorf("trailing metadata model-bin = %q, want the model server's bytes", got)
	}
	expectRouteTrailer(t, a.trailer, "1", labelStable)
}

func TestRelayPassesAndCapsTheDeadline(t *testing.T) {
	const timeout = 0.4
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	// A model server slower than any deadline, that does not even look at its own.
	model := startModelServer(t, func(context.Context, grpc.ServerStream, modelCall) ([]byte, error) {
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
		return []byte("late"), nil
	})
	relay := startRelay(t, model.addr, timeout, rankerTable(0))
	conn := dialClient(t, relay.addr)
	request := requestWith(specNamed("ranker"), nil)
	const slack = 10 * time.Millisecond // grpc-timeout's units and the receiver's clock

	// The relay's timeout is shorter than the caller's deadline, or the caller has none: it ends the call, counted.
	for i, callerTimeout := range []time.Duration{10 * time.Second, 0} {
		ctx, cancel := context.Background(), context.CancelFunc(func() {})
		if callerTimeout > 0 {
			ctx, cancel = context.WithTimeout(ctx, callerTimeout)
		}
		a := invokeCall(ctx, conn, predictPath, request)
		cancel()
		expectStatus(t, a.err, codes.DeadlineExceeded)
		if a.took < 300*time.Millisecond || a.took > time.Duration(timeout*float64(time.Second))+500*time.Millisecond {
			t.Errorf("caller timeout %v: the call took %v, want about the relay's %v s", callerTimeout, a.took, timeout)
		}
		calls := model.received()
		if len(calls) != i+1 {
			t.Fatalf("the model server received %d calls, want %d", len(calls), i+1)
		}
		seen := calls[i]
		if !seen.hasDeadline || seen.remaining <= 200*time.Millisecond || seen.remaining > 400*time.Millisecond+slack {
			t.Errorf("caller timeout %v: the model server saw %v left (deadline %v), want the relay's %v s",
				callerTimeout, seen.remaining, seen.hasDeadline, timeout)
		}
		expectCount(t, relay.service, rankerSeries("1", labelStable, "DEADLINE_EXCEEDED"), float64(i+1))
	}

	// Many calls the relay's timeout ends at once (a model server that stalls): each is DEADLINE_EXCEEDED, whether
	// the relay's timer or the model server's reset at the same deadline (grpc-go's server sends RST_STREAM CANCEL
	// when the deadline the relay gave it passes) comes first.
	const together = 16
	codesSeen := make(chan codes.Code, together)
	for range together {
		go func() { codesSeen <- status.Code(invokeWithin(conn, 10*time.Second, predictPath, request).err) }()
	}
	for range together {
		if code := <-codesSeen; code != codes.DeadlineExceeded {
			t.Errorf("a call the relay's timeout ended: %v, want DeadlineExceeded", code)
		}
	}
	expectCount(t, relay.service, rankerSeries("1", labelStable, "DEADLINE_EXCEEDED"), 2+together)

	// The caller's shorter deadline is passed on.
	a := invokeWithin(conn, 200*time.Millisecond, predictPath, request)
	expectStatus(t, a.err, codes.DeadlineExceeded)
	if a.took > 700*time.Millisecond {
		t.Errorf("a 200 ms call took %v", a.took)
	}
	calls := model.received()
	if len(calls) != 3+together {
		t.Fatalf("the model server received %d calls, want %d", len(calls), 3+together)
	}
	seen := calls[2+together]
	if !seen.hasDeadline || seen.remaining <= 50*time.Millisecond || seen.remaining > 200*time.Millisecond+slack {
		t.Errorf("the model server saw %v left (deadline %v), want the caller's 200 ms", seen.remaining, seen.hasDeadline)
	}
}

func TestRelayCarriesLargeMessagesBothWays(t *testing.T) {
	const size = 8 << 20
	request := requestWith(specNamed("ranker"), seededBytes(1, size))
	wantSent := sha256.Sum256(relabelled(t, request, labelStable))
	reply := seededBytes(2, size)
	model := startModelServer(t, func(_ context.Context, _ grpc.ServerStream, call modelCall) ([]byte, error) {
		if sha256.Sum256(call.request) != wantSent {
			return nil, status.Errorf(codes.DataLoss, "request of %d bytes differs from the one sent", len(call.request))
		}
		return reply, nil
	})
	relay := startRelay(t, model.addr, 30, rankerTable(0))
	// Fixed 64 KiB windows on the caller's side too: the answer needs many window updates.
	conn := dialClient(t, relay.addr, grpc.WithInitialWindowSize(65535), grpc.WithInitialConnWindowSize(65535))
	for range 2 {
		a := invokeWithin(conn, 20*time.Second, predictPath, request).mustSucceed(t)
		if len(a.body) != size || sha256.Sum256(a.body) != sha256.Sum256(reply) {
			t.Errorf("answer of %d bytes differs from the model server's (%d bytes)", len(a.body), size)
		}
		expectRouteTrailer(t, a.trailer, "1", labelStable)
	}
	expectCount(t, relay.service, rankerSeries("1", labelStable, "OK"), 2)
}

func TestRelayConcurrentCallsEachGetTheirOwnAnswer(t *testing.T) {
	model := startModelServer(t, func(_ context.Context, _ grpc.ServerStream, call modelCall) ([]byte, error) {
		head, err := ParseRequestHead(call.request)
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		time.Sleep(time.Duration(len(head.rest)%5) * time.Millisecond)
		return append([]byte(head.Spec.VersionLabel+"|"), head.rest...), nil
	})
	relay := startRelay(t, model.addr, 10, rankerTable(50))
	const connections, calls = 8, 200
	conns := make([]*grpc.ClientConn, connections)
	for i := range conns {
		conns[i] = dialClient(t, relay.addr)
	}
	var wg sync.WaitGroup
	failures := make(chan string, calls)
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			payload := []byte(fmt.Sprintf("call-%03d", i))
			request := requestWith(specNamed("ranker"), payload)
			a := invokeWithin(conns[i%connections], 10*time.Second, predictPath, request)
			if a.err != nil {
				failures <- fmt.Sprintf("call %d: %v", i, a.err)
				return
			}
			label := a.trailer.Get(labelHeader)
			if len(label) != 1 {
				failures <- fmt.Sprintf("call %d: trailer %v", i, a.trailer)
				return
			}
			rest := requestWith(nil, payload)[2:] // the inputs field alone
			if want := append([]byte(label[0]+"|"), rest...); !bytes.Equal(a.body, want) {
				failures <- fmt.Sprintf("call %d: answer %q, want %q", i, a.body, want)
			}
		}()
	}
	wg.Wait()
	close(failures)
	n := 0
	for failure := range failures {
		if n++; n <= 10 {
			t.Error(failure)
		}
	}
	if n > 0 {
		t.Errorf("%d of %d calls failed", n, calls)
	}
	// The sequence at weight 50 is the same whatever the order of the calls.
	canary := int64(2)
	router := NewRouter(&RoutingTable{Models: map[string]ModelRoute{
		"ranker": {Stable: 1, Canary: &canary, CanaryWeight: 50}}})
	canaries := 0
	for range calls {
		if router.Route("ranker", nil, nil, nil).Label == labelCanary {
			canaries++
		}
	}
	expectCount(t, relay.service, rankerSeries("2", labelCanary, "OK"), float64(canaries))
	expectCount(t, relay.service, rankerSeries("1", labelStable, "OK"), float64(calls-canaries))
}

func TestRelayRoutesGzipCompressedRequests(t *testing.T) {
	payload := bytes.Repeat([]byte("compressible "), 1000)
	request := requestWith(specNamed("ranker"), payload)
	want := relabelled(t, request, labelCanary)
	model := startModelServer(t, func(_ context.Context, _ grpc.ServerStream, call modelCall) ([]byte, error) {
		if call.method == getModelMetadataPath {
			return append([]byte("metadata: "), call.request...), nil
		}
		if !bytes.Equal(call.request, want) {
			return nil, status.Errorf(codes.InvalidArgument, "received %x", call.request)
		}
		return payload, nil
	})
	relay := startRelay(t, model.addr, 5, rankerTable(100))
	conn := dialClient(t, relay.addr, grpc.WithDefaultCallOptions(grpc.UseCompressor("gzip")))
	for range 2 {
		a := invokeWithin(conn, 5*time.Second, predictPath, request).mustSucceed(t)
		if !bytes.Equal(a.body, payload) {
			t.Errorf("answer of %d bytes, want the model server's %d", len(a.body), len(payload))
		}
		expectRouteTrailer(t, a.trailer, "2", labelCanary)
	}
	// A method that is not routed passes compressed as it came; the model server's compressed answer comes back.
	a := invokeWithin(conn, 5*time.Second, getModelMetadataPath, request).mustSucceed(t)
	if want := append([]byte("metadata: "), request...); !bytes.Equal(a.body, want) {
		t.Errorf("GetModelMetadata answer of %d bytes, want %d", len(a.body), len(want))
	}
	if calls := model.received(); len(calls) != 3 {
		t.Errorf("the model server received %d calls, want 3", len(calls))
	}
	expectCount(t, relay.service, rankerSeries("2", labelCanary, "OK"), 2)
}

func TestRelayUnreachableModelServerIsUnavailable(t *testing.T) {
	listener := listenLoopback(t)
	addr := listener.Addr().String()
	_ = listener.Close() // nobody listens there now
	relay := startRelay(t, addr, 5, rankerTable(0))
	conn := dialClient(t, relay.addr)
	for i := range 2 {
		a := invokeWithin(conn, 5*time.Second, predictPath, requestWith(specNamed("ranker"), nil))
		st := expectStatus(t, a.err, codes.Unavailable)
		if !strings.Contains(st.Message(), "is unreachable") || !strings.Contains(st.Message(), addr) {
			t.Errorf("message %q, want one that says the model server at %s is unreachable", st.Message(), addr)
		}
		if a.took > 2*time.Second {
			t.Errorf("a refused connection took %v to answer", a.took)
		}
		expectCount(t, relay.service, rankerSeries("1", labelStable, "UNAVAILABLE"), float64(i+1))
	}
}

func TestRelayRedialsAfterTheModelServerRestarts(t *testing.T) {
	entered := make(chan struct{}, 1)
	first := startModelServer(t, func(ctx context.Context, _ grpc.ServerStream, call modelCall) ([]byte, error) {
		if call.method != predictPath {
			return []byte("up"), nil
		}
		entered <- struct{}{}
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
		return []byte("too late"), nil
	})
	relay := startRelay(t, first.addr, 10, rankerTable(0))
	conn := dialClient(t, relay.addr)
	request := requestWith(specNamed("ranker"), nil)
	// The relay's connection to the model server is up and idle before the call that will be in flight.
	invokeWithin(conn, 5*time.Second, getModelStatusPath, request).mustSucceed(t)

	done := make(chan callResult, 1)
	go func() { done <- invokeWithin(conn, 5*time.Second, predictPath, request) }()
	<-entered
	first.server.Stop()
	select {
	case a := <-done:
		expectStatus(t, a.err, codes.Unavailable)
		if a.took > 2*time.Second {
			t.Errorf("the call in flight took %v to fail", a.took)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the call in flight when the model server stopped did not end")
	}
	expectCount(t, relay.service, rankerSeries("1", labelStable, "UNAVAILABLE"), 1)

	var listener net.Listener
	for stop := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var err error
		if listener, err = net.Listen("tcp", first.addr); err == nil {
			break
		} else if time.Now().After(stop) {
			t.Fatalf("cannot listen on %s again: %v", first.addr, err)
		}
	}
	t.Cleanup(func() { _ = listener.Close() })
	second := serveModelServer(t, listener, answerWith("back"))
	a := invokeWithin(conn, 5*time.Second, predictPath, request).mustSucceed(t)
	if string(a.body) != "back" {
		t.Errorf("answer %q, want the new model server's", a.body)
	}
	if calls := second.received(); len(calls) != 1 {
		t.Errorf("the new model server received %d calls, want 1", len(calls))
	}
	expectCount(t, relay.service, rankerSeries("1", labelStable, "OK"), 1)
}

// blackholeServer accepts TCP connections and reads them, but never writes a byte: a model server that hangs.
type blackholeServer struct {
	addr     string
	accepted chan chan struct{} // one per connection, closed when the other end closes it
}

func startBlackhole(t *testing.T) *blackholeServer {
	listener := listenLoopback(t)
	b := &blackholeServer{addr: listener.Addr().String(), accepted: make(chan chan struct{}, 16)}
	var conns sync.Map
	t.Cleanup(func() {
		conns.Range(func(key, _ any) bool { _ = key.(net.Conn).Close(); return true })
	})
	go func() {
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			conns.Store(conn, true)
			gone := make(chan struct{})
			b.accepted <- gone
			go func() {
				_, _ = io.Copy(io.Discard, conn)
				close(gone)
			}()
		}
	}()
	return b
}

func TestRelayBlackholedModelServerDoesNotStallCallers(t *testing.T) {
	setKeepalive(t, 200*time.Millisecond, 200*time.Millisecond)
	hole := startBlackhole(t)
	relay := startRelay(t, hole.addr, 10, rankerTable(0))
	conn := dialClient(t, relay.addr)
	small := requestWith(specNamed("ranker"), []byte("x"))
	large := requestWith(specNamed("ranker"), seededBytes(3, 1<<20)) // more than the model server's first window
	start := time.Now()
	var wg sync.WaitGroup
	results := make(chan string, 16)
	for i := range 8 {
		deadline := 300 * time.Millisecond
		if i%2 == 1 {
			deadline = 2 * time.Second
		}
		request := small
		if i%4 == 3 {
			request = large
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := invokeWithin(conn, deadline, predictPath, request)
			code := status.Code(a.err)
			if code != codes.DeadlineExceeded && code != codes.Unavailable {
				results <- fmt.Sprintf("call %d (%v deadline): %v, want DEADLINE_EXCEEDED or UNAVAILABLE", i, deadline, a.err)
			}
			if a.took > deadline+time.Second {
				results <- fmt.Sprintf("call %d (%v deadline) took %v", i, deadline, a.took)
			}
		}()
	}
	// Meanwhile a caller the model server is not needed for is answered at once.
	if a := invokeWithin(conn, time.Second, "/foo.Bar/Baz", small); status.Code(a.err) != codes.Unimplemented ||
		a.took > 500*time.Millisecond {
		t.Errorf("an unimplemented call while the model server hangs: %v after %v", a.err, a.took)
	}
	wg.Wait()
	close(results)
	for r := range results {
		t.Error(r)
	}

	var firstGone chan struct{}
	select {
	case firstGone = <-hole.accepted:
	default:
		t.Fatal("the relay never connected to the model server")
	}
	select {
	case <-firstGone:
		t.Logf("the relay closed the silent connection %v after the first calls", time.Since(start))
	case <-time.After(2*time.Second - time.Since(start)):
		t.Fatal("the relay kept the connection to a model server that answers nothing (no keepalive expiry)")
	}
	// The next call dials again.
	a := invokeWithin(conn, 300*time.Millisecond, predictPath, small)
	if code := status.Code(a.err); code != codes.DeadlineExceeded && code != codes.Unavailable {
		t.Errorf("a call after the connection closed: %v", a.err)
	}
	select {
	case <-hole.accepted:
	case <-time.After(time.Second):
		t.Error("no new connection to the model server after the silent one was closed")
	}
}

func TestRelayKeepaliveSparesASlowModelServer(t *testing.T) {
	// grpc-go's server (like TF Serving's) closes a connection that PINGs more often than its policy allows (3
	// strikes, 5 minutes apart by default) while it sends nothing; a healthy model server that takes its time must
	// not lose its calls to the relay's keepalive.
	setKeepalive(t, 100*time.Millisecond, 100*time.Millisecond)
	model := startModelServer(t, func(ctx context.Context, _ grpc.ServerStream, _ modelCall) ([]byte, error) {
		select {
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		case <-time.After(700 * time.Millisecond):
		}
		return []byte("slow but sure"), nil
	})
	relay := startRelay(t, model.addr, 5, rankerTable(0))
	conn := dialClient(t, relay.addr)
	a := invokeWithin(conn, 5*time.Second, predictPath, requestWith(specNamed("ranker"), nil)).mustSucceed(t)
	if string(a.body) != "slow but sure" {
		t.Errorf("answer %q", a.body)
	}
}

// readUntilClosed reads conn until the other end closes it; false when it is still open after wait.
func readUntilClosed(conn net.Conn, wait time.Duration) bool {
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	_, err := io.Copy(io.Discard, conn)
	var netErr net.Error
	return !errors.As(err, &netErr) || !netErr.Timeout()
}

func TestRelayClosesBadCallerConnections(t *testing.T) {
	model := startModelServer(t, answerWith("ok"))
	relay := startRelay(t, model.addr, 5, rankerTable(0))
	good := dialClient(t, relay.addr)
	request := requestWith(specNamed("ranker"), nil)
	invokeWithin(good, 5*time.Second, predictPath, request).mustSucceed(t)

	const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	emptySettings := []byte{0, 0, 0, 0x4, 0, 0, 0, 0, 0}
	frame := func(kind, flags byte, stream uint32, payload []byte) []byte {
		n := len(payload)
		return append([]byte{byte(n >> 16), byte(n >> 8), byte(n), kind, flags,
			byte(stream >> 24), byte(stream >> 16), byte(stream >> 8), byte(stream)}, payload...)
	}
	bad := map[string][]byte{
		"HTTP/1.1 instead of the preface": []byte("GET / HTTP/1.1\r\nHost: relay\r\nAccept: */*\r\n\r\n"),
		"garbage instead of the preface":  bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 16),
		"a SETTINGS frame of 3 bytes":     append([]byte(preface), frame(0x4, 0, 0, []byte{0, 1, 0})...),
		"DATA on stream 0": append(append([]byte(preface), emptySettings...),
			frame(0x0, 0, 0, []byte("x"))...),
		"HEADERS that hpack cannot decode": append(append([]byte(preface), emptySettings...),
			frame(0x1, 0x5, 1, []byte{0x80})...),
	}
	conns := map[string]net.Conn{}
	for name, data := range bad {
		conn, err := net.Dial("tcp", relay.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		if _, err := conn.Write(data); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		conns[name] = conn
	}
	// While they are open, and after they are closed, another caller's calls go on.
	invokeWithin(good, 5*time.Second, predictPath, request).mustSucceed(t)
	for name, conn := range conns {
		if !readUntilClosed(conn, 3*time.Second) {
			t.Errorf("%s: the relay kept the connection open", name)
		}
	}
	invokeWithin(good, 5*time.Second, predictPath, request).mustSucceed(t)
	invokeWithin(dialClient(t, relay.addr), 5*time.Second, predictPath, request).mustSucceed(t)
	expectCount(t, relay.service, rankerSeries("1", labelStable, "OK"), 4)
}

func TestRelayCancelledCallResetsTheModelServersStreamAndIsNotCounted(t *testing.T) {
	entered := make(chan struct{}, 1)
	ended := make(chan error, 1)
	model := startModelServer(t, func(ctx context.Context, _ grpc.ServerStream, call modelCall) ([]byte, error) {
		if !bytes.Contains(call.request, []byte("wait")) {
			return []byte("ok"), nil
		}
		return holdUntilCancelled(ctx, entered, ended)
	})
	relay := startRelay(t, model.addr, 10, rankerTable(0))
	conn := dialClient(t, relay.addr)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan callResult, 1)
	go func() { done <- invokeCall(ctx, conn, predictPath, requestWith(specNamed("ranker"), []byte("wait"))) }()
	<-entered
	cancel()
	expectStatus(t, (<-done).err, codes.Canceled)
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("the model server's call ended with %v, want its context cancelled", err)
		}
	case <-time.After(2 * time.Second):
		t.Error("the model server's call was not cancelled")
	}
	invokeWithin(conn, 5*time.Second, predictPath, requestWith(specNamed("ranker"), nil)).mustSucceed(t)
	expectCount(t, relay.service, rankerSeries("1", labelStable, "OK"), 1)
	time.Sleep(50 * time.Millisecond)
	if got := requestCount(t, relay.service, map[string]string{}); got != 1 {
		t.Errorf("%v calls counted, want only the one that was answered", got)
	}
}

func TestRelayCloseFinishesTheCallsInFlightAndRefusesNewConnections(t *testing.T) {
	entered := make(chan struct{}, 8)
	release := make(chan struct{})
	model := startModelServer(t, func(_ context.Context, _ grpc.ServerStream, call modelCall) ([]byte, error) {
		holdCall(entered, release)
		head, _ := ParseRequestHead(call.request)
		return append([]byte("done:"), head.rest...), nil
	})
	relay := startRelay(t, model.addr, 10, rankerTable(0))
	conns := []*grpc.ClientConn{dialClient(t, relay.addr), dialClient(t, relay.addr)}
	const calls = 4
	results := make(chan error, calls)
	for i := range calls {
		go func() {
			payload := []byte("call-" + strconv.Itoa(i))
			a := invokeWithin(conns[i%2], 5*time.Second, predictPath, requestWith(specNamed("ranker"), payload))
			if a.err == nil && !bytes.Equal(a.body, append([]byte("done:"), requestWith(nil, payload)[2:]...)) {
				a.err = fmt.Errorf("call %d: answer %q", i, a.body)
			}
			results <- a.err
		}()
	}
	for range calls {
		select {
		case <-entered:
		case <-time.After(3 * time.Second):
			t.Fatal("the calls did not reach the model server")
		}
	}
	closed := make(chan struct{})
	go func() {
		relay.close(2 * time.Second)
		close(closed)
	}()
	time.Sleep(100 * time.Millisecond)
	select {
	case <-closed:
		t.Fatal("Close returned while calls were in flight")
	default:
	}
	released := time.Now()
	close(release)
	for range calls {
		if err := <-results; err != nil {
			t.Errorf("a call in flight at Close: %v", err)
		}
	}
	select {
	case <-closed:
		if took := time.Since(released); took > time.Second {
			t.Errorf("Close returned %v after the last call ended", took)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Close did not return")
	}
	select {
	case <-relay.served:
		relay.served <- nil // for the cleanup
	case <-time.After(2 * time.Second):
		t.Error("Serve did not return after Close")
	}
	if conn, err := net.DialTimeout("tcp", relay.addr, time.Second); err == nil {
		_ = conn.Close()
		t.Error("a new connection was accepted after Close")
	}
	expectCount(t, relay.service, rankerSeries("1", labelStable, "OK"), calls)
}

func TestRelayCloseGivesUpOnCallsAfterTheGrace(t *testing.T) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	model := startModelServer(t, func(ctx context.Context, _ grpc.ServerStream, _ modelCall) ([]byte, error) {
		entered <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return []byte("late"), nil
	})
	relay := startRelay(t, model.addr, 10, rankerTable(0))
	conn := dialClient(t, relay.addr)
	done := make(chan callResult, 1)
	go func() { done <- invokeWithin(conn, 5*time.Second, predictPath, requestWith(specNamed("ranker"), nil)) }()
	<-entered
	start := time.Now()
	relay.close(200 * time.Millisecond)
	if took := time.Since(start); took < 150*time.Millisecond || took > time.Second {
		t.Errorf("Close(200 ms) took %v", took)
	}
	select {
	case a := <-done:
		if a.err == nil {
			t.Error("the call outlived Close")
		}
	case <-time.After(time.Second):
		t.Error("the call in flight did not end when Close gave up on it")
	}
}

func TestRelayCallerThatGoesAwayResetsTheModelServersStreams(t *testing.T) {
	entered := make(chan struct{}, 4)
	ended := make(chan error, 4)
	model := startModelServer(t, func(ctx context.Context, _ grpc.ServerStream, _ modelCall) ([]byte, error) {
		return holdUntilCancelled(ctx, entered, ended)
	})
	relay := startRelay(t, model.addr, 10, rankerTable(0))
	leaving, err := grpc.NewClient(relay.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(relayTestCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	const calls = 3
	done := make(chan callResult, calls)
	for range calls {
		go func() {
			done <- invokeWithin(leaving, 5*time.Second, predictPath, requestWith(specNamed("ranker"), nil))
		}()
	}
	for range calls {
		<-entered
	}
	_ = leaving.Close()
	for range calls {
		<-done
		select {
		case err := <-ended:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("a model server's call ended with %v, want its context cancelled", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("the model server's calls were not cancelled when their caller went away")
		}
	}
	time.Sleep(50 * time.Millisecond)
	if got := requestCount(t, relay.service, map[string]string{}); got != 0 {
		t.Errorf("%v calls counted, want none: their caller went away", got)
	}
}

func TestRelayLetsCallsInFlightFinishWhenTheModelServerGoesAway(t *testing.T) {
	entered := make(chan struct{}, 4)
	release := make(chan struct{})
	model := startModelServer(t, func(_ context.Context, _ grpc.ServerStream, _ modelCall) ([]byte, error) {
		holdCall(entered, release)
		return []byte("finished"), nil
	})
	relay := startRelay(t, model.addr, 10, rankerTable(0))
	conn := dialClient(t, relay.addr)
	const calls = 3
	done := make(chan callResult, calls)
	for range calls {
		go func() { done <- invokeWithin(conn, 5*time.Second, predictPath, requestWith(specNamed("ranker"), nil)) }()
	}
	for range calls {
		<-entered
	}
	stopped := make(chan struct{})
	go func() { model.server.GracefulStop(); close(stopped) }() // GOAWAY, then waits for the calls in flight
	time.Sleep(100 * time.Millisecond)
	close(release)
	for range calls {
		a := <-done
		if a.err != nil || string(a.body) != "finished" {
			t.Errorf("a call in flight when the model server went away: %q %v", a.body, a.err)
		}
	}
	select {
	case <-stopped:
	case <-time.After(3 * time.Second):
		t.Error("the model server's graceful stop did not end")
	}
	expectCount(t, relay.service, rankerSeries("1", labelStable, "OK"), calls)
}

func TestRelayKeepsWithinTheModelServersStreamLimit(t *testing.T) {
	var active, most atomic.Int64
	model := startModelServer(t, func(context.Context, grpc.ServerStream, modelCall) ([]byte, error) {
		n := active.Add(1)
		defer active.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(20 * time.Millisecond)
		return []byte("ok"), nil
	}, grpc.MaxConcurrentStreams(4))
	relay := startRelay(t, model.addr, 10, rankerTable(0))
	conn := dialClient(t, relay.addr)
	const calls = 40
	errs := make(chan error, calls)
	for range calls {
		go func() {
			errs <- invokeWithin(conn, 5*time.Second, predictPath, requestWith(specNamed("ranker"), nil)).err
		}()
	}
	for range calls {
		if err := <-errs; err != nil {
			t.Errorf("a call beyond the model server's stream limit: %v", err)
		}
	}
	if got := most.Load(); got > 4 {
		t.Errorf("%d calls at once at the model server, its limit is 4", got)
	}
	expectCount(t, relay.service, rankerSeries("1", labelStable, "OK"), calls)
}

func TestRelayCloseLetsALargeAnswerInFlightReachItsCaller(t *testing.T) {
	const size = 16 << 20
	reply := seededBytes(4, size)
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	model := startModelServer(t, func(context.Context, grpc.ServerStream, modelCall) ([]byte, error) {
		holdCall(entered, release)
		return reply, nil
	})
	relay := startRelay(t, model.addr, 10, rankerTable(0))
	// A caller that takes its answer 64 KiB at a time: the answer is still on its way when the model server is done.
	conn := dialClient(t, relay.addr, grpc.WithInitialWindowSize(65535), grpc.WithInitialConnWindowSize(65535))
	done := make(chan callResult, 1)
	go func() { done <- invokeWithin(conn, 10*time.Second, predictPath, requestWith(specNamed("ranker"), nil)) }()
	<-entered
	closed := make(chan struct{})
	go func() {
		relay.close(5 * time.Second)
		close(closed)
	}()
	time.Sleep(50 * time.Millisecond)
	close(release)
	a := <-done
	if a.err != nil {
		t.Errorf("the call in flight at Close: %v", a.err)
	} else if sha256.Sum256(a.body) != sha256.Sum256(reply) {
		t.Errorf("answer of %d bytes differs from the model server's %d", len(a.body), size)
	}
	select {
	case <-closed:
	case <-time.After(6 * time.Second):
		t.Error("Close did not return")
	}
}

func TestRelayPassesLargeMetadataBothWays(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 3<<10) // 48 KiB: more than a 16 KiB frame, so CONTINUATION frames
	model := startModelServer(t, func(_ context.Context, stream grpc.ServerStream, _ modelCall) ([]byte, error) {
		if err := stream.SetHeader(metadata.Pairs("x-big-header", big)); err != nil {
			return nil, err
		}
		stream.SetTrailer(metadata.Pairs("x-big-trailer", big))
		return []byte("ok"), nil
	})
	relay := startRelay(t, model.addr, 5, rankerTable(0))
	conn := dialClient(t, relay.addr)
	for range 2 { // the second time the header tables on both sides are no longer empty
		a := invokeWithMetadata(conn, metadata.Pairs("x-big", big, "x-small", "s"), predictPath,
			requestWith(specNamed("ranker"), nil)).mustSucceed(t)
		if got := a.header.Get("x-big-header"); len(got) != 1 || got[0] != big {
			t.Errorf("initial metadata x-big-header of %d values, want the model server's", len(got))
		}
		if got := a.trailer.Get("x-big-trailer"); len(got) != 1 || got[0] != big {
			t.Errorf("trailing metadata x-big-trailer of %d values, want the model server's", len(got))
		}
		expectRouteTrailer(t, a.trailer, "1", labelStable)
	}
	for i, call := range model.received() {
		if got := call.md.Get("x-big"); len(got) != 1 || got[0] != big || strings.Join(call.md.Get("x-small"), "") != "s" {
			t.Errorf("call %d: the model server received x-big of %d values and x-small %q", i, len(got), call.md.Get("x-small"))
		}
	}
}

// rawCaller is an HTTP/2 client written frame by frame, for what grpc-go never sends.
type rawCaller struct {
	t       *testing.T
	conn    net.Conn
	framer  *http2.Framer
	encoder *hpack.Encoder
	block   bytes.Buffer
}

func dialRaw(t *testing.T, addr string) *rawCaller {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	r := &rawCaller{t: t, conn: conn}
	r.encoder = hpack.NewEncoder(&r.block)
	r.framer = http2.NewFramer(conn, conn)
	r.framer.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	if err := r.framer.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return r
}

// call opens stream id with the given header fields (after gRPC's own) and sends message as its one request.
func (r *rawCaller) call(id uint32, path string, message []byte, extra ...hpack.HeaderField) {
	r.t.Helper()
	r.block.Reset()
	fields := append([]hpack.HeaderField{
		{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "http"}, {Name: ":path", Value: path},
		{Name: ":authority", Value: "relay"}, {Name: "content-type", Value: "application/grpc"},
		{Name: "te", Value: "trailers"},
	}, extra...)
	for _, f := range fields {
		if err := r.encoder.WriteField(f); err != nil {
			r.t.Fatal(err)
		}
	}
	if err := r.framer.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: r.block.Bytes(),
		EndHeaders: true}); err != nil {
		r.t.Fatal(err)
	}
	framed := append([]byte{0, byte(len(message) >> 24), byte(len(message) >> 16), byte(len(message) >> 8),
		byte(len(message))}, message...)
	if err := r.framer.WriteData(id, true, framed); err != nil {
		r.t.Fatal(err)
	}
}

// readUntil reads frames until done says so; false when the connection ended or wait passed first.
func (r *rawCaller) readUntil(wait time.Duration, done func(http2.Frame) bool) (bool, error) {
	_ = r.conn.SetReadDeadline(time.Now().Add(wait))
	for {
		frame, err := r.framer.ReadFrame()
		if err != nil {
			return false, err
		}
		if goAway, ok := frame.(*http2.GoAwayFrame); ok {
			return false, fmt.Errorf("GOAWAY %v", goAway.ErrCode)
		}
		if done(frame) {
			return true, nil
		}
	}
}

func TestRelayAnswersACallersPing(t *testing.T) {
	relay := startRelay(t, "127.0.0.1:1", 5, rankerTable(0))
	raw := dialRaw(t, relay.addr)
	data := [8]byte{'c', 'r', 'o', 'u', 'p', 'i', 'e', 'r'}
	if err := raw.framer.WritePing(false, data); err != nil {
		t.Fatal(err)
	}
	ok, err := raw.readUntil(2*time.Second, func(frame http2.Frame) bool {
		ping, isPing := frame.(*http2.PingFrame)
		return isPing && ping.IsAck() && ping.Data == data
	})
	if !ok {
		t.Errorf("no PING acknowledgement: %v", err)
	}
}

func TestRelayResetsOnlyTheStreamWhoseHeadersAreMalformed(t *testing.T) {
	// RFC 9113 8.1.1: a malformed request is a stream error; the caller's other streams go on.
	entered := make(chan struct{}, 2)
	release := make(chan struct{})
	model := startModelServer(t, func(context.Context, grpc.ServerStream, modelCall) ([]byte, error) {
		holdCall(entered, release)
		return []byte("answered"), nil
	})
	relay := startRelay(t, model.addr, 5, rankerTable(0))
	raw := dialRaw(t, relay.addr)
	request := requestWith(specNamed("ranker"), nil)
	raw.call(1, predictPath, request)
	select {
	case <-entered:
	case <-time.After(3 * time.Second):
		t.Fatal("the first call did not reach the model server")
	}
	raw.call(3, predictPath, request, hpack.HeaderField{Name: "X-Upper-Case", Value: "v"}) // names are lowercase in HTTP/2
	close(release)
	reset, httpStatus1, status1 := false, "", ""
	ok, err := raw.readUntil(3*time.Second, func(frame http2.Frame) bool {
		switch f := frame.(type) {
		case *http2.RSTStreamFrame:
			if f.StreamID == 3 {
				reset = true
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID == 1 && httpStatus1 == "" {
				httpStatus1 = f.PseudoValue("status")
			}
			if f.StreamID == 1 && f.StreamEnded() {
				status1 = headerValue(f.Fields, "grpc-status")
			}
		}
		return reset && status1 != ""
	})
	if !ok {
		t.Errorf("stream 3 reset %v, stream 1 ended with grpc-status %q, then: %v", reset, status1, err)
	}
	if status1 != "" && (httpStatus1 != "200" || status1 != "0") {
		t.Errorf("stream 1 ended with :status %s grpc-status %s", httpStatus1, status1)
	}
	if calls := model.received(); len(calls) != 1 {
		t.Errorf("the model server received %d calls, want only the well-formed one", len(calls))
	}
	// The connection goes on.
	raw.call(5, getModelStatusPath, request)
	if ok, err := raw.readUntil(3*time.Second, func(frame http2.Frame) bool {
		f, isHeaders := frame.(*http2.MetaHeadersFrame)
		return isHeaders && f.StreamID == 5 && f.StreamEnded() && headerValue(f.Fields, "grpc-status") == "0"
	}); !ok {
		t.Errorf("a call after the malformed one: %v", err)
	}
}

// holdCall tells entered that a model-server call arrived and holds it until release is closed (at most 5 s).
func holdCall(entered chan<- struct{}, release <-chan struct{}) {
	entered <- struct{}{}
	select {
	case <-release:
	case <-time.After(5 * time.Second):
	}
}

// holdUntilCancelled tells entered that a model-server call arrived and holds it until its context ends (at most
// 5 s), then tells ended how it ended (nil: it was not cancelled).
func holdUntilCancelled(ctx context.Context, entered chan<- struct{}, ended chan<- error) ([]byte, error) {
	entered <- struct{}{}
	select {
	case <-ctx.Done():
		ended <- ctx.Err()
		return nil, status.FromContextError(ctx.Err()).Err()
	case <-time.After(5 * time.Second):
		ended <- nil
		return []byte("not cancelled"), nil
	}
}

// relayState counts what the relay keeps per call: calls and streams still sending on the callers' connections,
// streams and queued calls on the model server's connection.
func relayState(g *GrpcRelay) (kept int) {
	g.mu.Lock()
	callers := make([]*callerConn, 0, len(g.callers))
	for c := range g.callers {
		callers = append(callers, c)
	}
	g.mu.Unlock()
	for _, c := range callers {
		c.h2.mu.Lock()
		kept += len(c.calls) + len(c.h2.sends) + len(c.h2.blocked)
		c.h2.mu.Unlock()
	}
	g.upstream.mu.Lock()
	up := g.upstream.conn
	kept += len(g.upstream.waiting)
	g.upstream.mu.Unlock()
	if up != nil {
		up.h2.mu.Lock()
		kept += len(up.streams) + len(up.queued) + len(up.h2.sends) + len(up.h2.blocked)
		up.h2.mu.Unlock()
	}
	return kept
}

func TestRelayKeepsNothingOfCallsThatEnded(t *testing.T) {
	model := startModelServer(t, func(ctx context.Context, _ grpc.ServerStream, call modelCall) ([]byte, error) {
		switch {
		case bytes.Contains(call.request, []byte("slow")):
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Second):
			}
		case bytes.Contains(call.request, []byte("fail")):
			return nil, status.Error(codes.NotFound, "no such thing")
		}
		return seededBytes(7, 100<<10), nil // larger than the caller's first window: sent in steps
	})
	relay := startRelay(t, model.addr, 10, rankerTable(50))
	conn := dialClient(t, relay.addr)
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch i % 4 {
			case 0: // answered
				invokeWithin(conn, 5*time.Second, predictPath, requestWith(specNamed("ranker"), nil)).mustSucceed(t)
			case 1: // the model server's error
				invokeWithin(conn, 5*time.Second, predictPath, requestWith(specNamed("ranker"), []byte("fail")))
			case 2: // the caller's deadline passes
				invokeWithin(conn, 100*time.Millisecond, predictPath, requestWith(specNamed("ranker"), []byte("slow")))
			case 3: // the caller cancels
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				time.AfterFunc(50*time.Millisecond, cancel)
				invokeCall(ctx, conn, predictPath, requestWith(specNamed("ranker"), []byte("slow")))
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(2 * time.Second)
	for relayState(relay.relay) != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if kept := relayState(relay.relay); kept != 0 {
		t.Errorf("%d entries kept for calls that ended", kept)
	}
}
