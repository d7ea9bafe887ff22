package main

import (
	"fmt"
	"strings"
	"unicode/utf16"

	"google.golang.org/grpc/codes"
)

// httpStatus is TF Serving's ToHTTPStatusCode by canonical code name
// (tensorflow_serving/model_servers/http_server.cc).
var httpStatus = map[string]int{
	"OK": 200, "CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400, "DEADLINE_EXCEEDED": 504, "NOT_FOUND": 404,
	"ALREADY_EXISTS": 409, "PERMISSION_DENIED": 403, "RESOURCE_EXHAUSTED": 429, "FAILED_PRECONDITION": 400,
	"ABORTED": 409, "OUT_OF_RANGE": 400, "UNIMPLEMENTED": 501, "INTERNAL": 500, "UNAVAILABLE": 503, "DATA_LOSS": 500,
	"UNAUTHENTICATED": 401,
}

// codeOfStatus: the first code for each status in the order above (several codes share 400, 409 and 500).
var codeOfStatus = map[int]string{
	200: "OK", 499: "CANCELLED", 500: "UNKNOWN", 400: "INVALID_ARGUMENT", 504: "DEADLINE_EXCEEDED", 404: "NOT_FOUND",
	409: "ALREADY_EXISTS", 403: "PERMISSION_DENIED", 429: "RESOURCE_EXHAUSTED", 501: "UNIMPLEMENTED",
	503: "UNAVAILABLE", 401: "UNAUTHENTICATED",
}

// codeName is a gRPC code's canonical name (grpc-go's String() is CamelCase).
var codeName = map[codes.Code]string{
	codes.OK: "OK", codes.Canceled: "CANCELLED", codes.Unknown: "UNKNOWN", codes.InvalidArgument: "INVALID_ARGUMENT",
	codes.DeadlineExceeded: "DEADLINE_EXCEEDED", codes.NotFound: "NOT_FOUND", codes.AlreadyExists: "ALREADY_EXISTS",
	codes.PermissionDenied: "PERMISSION_DENIED", codes.ResourceExhausted: "RESOURCE_EXHAUSTED",
	codes.FailedPrecondition: "FAILED_PRECONDITION", codes.Aborted: "ABORTED", codes.OutOfRange: "OUT_OF_RANGE",
	codes.Unimplemented: "UNIMPLEMENTED", codes.Internal: "INTERNAL", codes.Unavailable: "UNAVAILABLE",
	codes.DataLoss: "DATA_LOSS", codes.Unauthenticated: "UNAUTHENTICATED",
}

func codeOfHTTPStatus(status int) string {
	if code, ok := codeOfStatus[status]; ok {
		return code
	}
	return "UNKNOWN"
}

// RouterError is a request the router answers itself, with a canonical code and a TF Serving-style message.
type RouterError struct {
	Code    codes.Code
	Message string
}

func (e *RouterError) Error() string { return e.Message }

func (e *RouterError) CodeName() string { return codeName[e.Code] }

func (e *RouterError) HTTPStatus() int {
	if status, ok := httpStatus[e.CodeName()]; ok {
		return status
	}
	return 500
}

func upstreamUnavailable(target, detail string) *RouterError {
	return &RouterError{codes.Unavailable, fmt.Sprintf("Model server at %s is unreachable: %s", target, detail)}
}

func upstreamDeadline(target string, seconds float64) *RouterError {
	return &RouterError{codes.DeadlineExceeded,
		fmt.Sprintf("Model server at %s did not answer within %s s", target, pyFloat(seconds))}
}

// bodyRejected: a request body the router will not read (413 → RESOURCE_EXHAUSTED, answered 429 as TF Serving does).
func bodyRejected(status int, reason string) *RouterError {
	code := codes.InvalidArgument
	if status == 413 {
		code = codes.ResourceExhausted
	}
	return &RouterError{code, "Request body rejected: " + reason}
}

// errorBody is TF Serving's error shape as Python's json.dumps writes it: {"error": "..."}, ASCII only.
func errorBody(message string) []byte {
	var b strings.Builder
	b.WriteString(`{"error": "`)
	for _, r := range message {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r < 0x20 || (r >= 0x80 && r < 0x10000):
			fmt.Fprintf(&b, `\u%04x`, r)
		case r >= 0x10000:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&b, `\u%04x\u%04x`, r1, r2)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteString(`"}`)
	return []byte(b.String())
}
