package main

import (
	"context"
	"math"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// The gRPC adapter: TF Serving's PredictionService and ModelService.GetModelStatus, forwarded as bytes. Predict,
// Classify and Regress whose model_spec names no version and no label get version_label set by the routing core
// (only model_spec is decoded; the rest of the request is written back as received); GetModelMetadata and
// GetModelStatus go through unchanged. The served version and label go back as trailing metadata. The caller's
// deadline (capped by --upstream-timeout-seconds) and metadata (minus gRPC's transport headers) are passed on; the
// model server's codes and messages reach the caller as they are; a model server that cannot be reached is
// UNAVAILABLE with a message that says so. Other methods are UNIMPLEMENTED, as grpc answers them.

const (
	predictionService = "tensorflow.serving.PredictionService"
	modelService      = "tensorflow.serving.ModelService"
)

var passedMethods = []struct {
	service string
	methods []string
}{
	{predictionService, []string{"Predict", "Classify", "Regress", "GetModelMetadata"}},
	{modelService, []string{"GetModelStatus"}},
}

var routedMethods = map[string]bool{"Predict": true, "Classify": true, "Regress": true}

var transportMetadata = map[string]bool{"user-agent": true, "te": true, "content-type": true, "host": true}

// rawCodec passes messages through as bytes.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	switch b := v.(type) {
	case []byte:
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	case *[]byte:
		return mem.BufferSlice{mem.SliceBuffer(*b)}, nil
	}
	return nil, status.Errorf(codes.Internal, "raw codec: cannot marshal %T", v)
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	target, ok := v.(*[]byte)
	if !ok {
		return status.Errorf(codes.Internal, "raw codec: cannot unmarshal into %T", v)
	}
	*target = data.Materialize()
	return nil
}

func (rawCodec) Name() string { return "proto" }

type GrpcRouter struct {
	service    *Service
	upstream   string
	unitHeader string
	timeout    time.Duration
	conn       *grpc.ClientConn
}

func NewGrpcRouter(service *Service, upstream, unitHeader string, timeoutSeconds float64) (*GrpcRouter, error) {
	conn, err := grpc.NewClient(upstream,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32), grpc.MaxCallSendMsgSize(math.MaxInt32),
			grpc.ForceCodecV2(rawCodec{})),
	)
	if err != nil {
		return nil, err
	}
	return &GrpcRouter{service: service, upstream: upstream, unitHeader: strings.ToLower(unitHeader),
		timeout: time.Duration(timeoutSeconds * float64(time.Second)), conn: conn}, nil
}

// Server is a gRPC server (h2c, no message size limit: the model server sets its own) with the passed methods.
func (g *GrpcRouter) Server() *grpc.Server {
	server := grpc.NewServer(grpc.MaxRecvMsgSize(math.MaxInt32), grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.ForceServerCodecV2(rawCodec{}))
	for _, entry := range passedMethods {
		desc := &grpc.ServiceDesc{ServiceName: entry.service, HandlerType: (*any)(nil)}
		for _, method := range entry.methods {
			path := "/" + entry.service + "/" + method
			routed := routedMethods[method]
			desc.Methods = append(desc.Methods, grpc.MethodDesc{
				MethodName: method,
				Handler: func(_ any, ctx context.Context, decode func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
					var request []byte
					if err := decode(&request); err != nil {
						return nil, err
					}
					return g.forward(ctx, path, routed, request)
				},
			})
		}
		server.RegisterService(desc, g)
	}
	return server
}

func (g *GrpcRouter) Close() error { return g.conn.Close() }

func (g *GrpcRouter) forward(ctx context.Context, path string, routed bool, request []byte) (any, error) {
	start := time.Now()
	incoming, _ := metadata.FromIncomingContext(ctx)
	var route *Route
	if routed {
		rewritten, chosen, err := g.route(request, incoming)
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		request, route = rewritten, chosen
	}
	outgoing := metadata.MD{}
	for key, values := range incoming {
		if strings.HasPrefix(key, ":") || strings.HasPrefix(key, "grpc-") || transportMetadata[key] {
			continue
		}
		outgoing[key] = values
	}
	// The caller's deadline, or the upstream timeout when that is shorter. A little before the caller's own deadline:
	// grpc-go resets the caller's stream (CANCELLED) when that passes, so the router answers DEADLINE_EXCEEDED first,
	// as the Python router's caller sees it.
	deadline := start.Add(g.timeout)
	if callerDeadline, ok := ctx.Deadline(); ok && callerDeadline.Add(-deadlineMargin).Before(deadline) {
		deadline = callerDeadline.Add(-deadlineMargin)
	}
	callCtx, cancel := context.WithDeadline(metadata.NewOutgoingContext(ctx, outgoing), deadline)
	defer cancel()
	var answer []byte
	err := g.conn.Invoke(callCtx, path, request, &answer)
	code := "OK"
	if err != nil {
		st := status.Convert(err)
		code = codeName[st.Code()]
		message := st.Message()
		if st.Code() == codes.Unavailable {
			message = upstreamUnavailable(g.upstream, message).Message
		}
		err = status.Error(st.Code(), message)
	}
	if route != nil && !callerGone(ctx) { // a call its caller gave up (deadline, cancel) is not counted, as in Python
		trailer := metadata.MD{}
		for _, h := range routeHeaders(*route) {
			trailer.Append(h[0], h[1])
		}
		grpc.SetTrailer(ctx, trailer)
		g.service.Record(*route, code, time.Since(start).Seconds())
	}
	if err != nil {
		return nil, err
	}
	return answer, nil
}

// route decodes model_spec and returns the request to send and its route (nil: a request protobuf refuses, sent
// unchanged for the model server to answer); an error for a bad pin header.
func (g *GrpcRouter) route(request []byte, incoming metadata.MD) ([]byte, *Route, error) {
	head, err := ParseRequestHead(request)
	if err != nil {
		return request, nil, nil
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
	first := func(key string) *string {
		if values := incoming.Get(key); len(values) > 0 {
			v := utf8Replace(values[0])
			return &v
		}
		return nil
	}
	unit := first(g.unitHeader)
	var pin *int64
	if head.Spec.Choice == choiceNone {
		if pin, err = PinnedVersion(first(pinHeader)); err != nil {
			return nil, nil, err
		}
	}
	chosen := version
	if pin != nil {
		chosen = pin
	}
	route := g.service.Route(head.Spec.Name, chosen, label, unit)
	if pin != nil {
		head.SetVersion(*pin)
		return head.Marshal(), &route, nil
	}
	if !route.Rewrite {
		return request, &route, nil
	}
	head.SetLabel(route.Label)
	return head.Marshal(), &route, nil
}

// deadlineMargin: how long before the caller's deadline the router gives up on the model server.
const deadlineMargin = 3 * time.Millisecond

// callerGone: the caller cancelled the call or its deadline (less the margin) passed. The Python router's handler is
// cancelled with such a call and never counts it.
func callerGone(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	deadline, ok := ctx.Deadline()
	return ok && !time.Now().Add(deadlineMargin).Before(deadline)
}
