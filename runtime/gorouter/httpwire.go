package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// The client side of the REST adapter reads HTTP/1.1 itself (as the Python router does with httptools) rather than
// through net/http's server: the request target reaches the model server byte for byte (net/http refuses, with its
// own plain-text 400, paths that TF Serving answers itself), and every error the router gives is in TF Serving's
// {"error": "..."} shape.

const maxHeadBytes = 1 << 20

// malformed is a request the parser refuses (answered 400, "malformed HTTP request: ...", and the connection closed).
type malformed struct{ detail string }

func (m *malformed) Error() string { return m.detail }

// upgradeRefused is a protocol upgrade (or CONNECT): answered 400.
var errUpgrade = errors.New("protocol upgrade is not supported")

type request struct {
	method, target    string
	http11, keepAlive bool
	headOnly          bool
	contentType       *string
	unit, pin         *string
	length            int64 // -1: none given
	chunked           bool
	expectContinue    bool
	passed            [][2]string // the caller's other end-to-end headers, as received
	body              []byte
}

var hopByHop = map[string]bool{
	"connection": true, "keep-alive": true, "proxy-connection": true, "proxy-authenticate": true,
	"proxy-authorization": true, "te": true, "trailer": true, "transfer-encoding": true, "upgrade": true,
	"host": true, "content-length": true,
}

func isTchar(c byte) bool {
	return c > 0x20 && c < 0x7f && !strings.ContainsRune("\"(),/:;<=>?@[\\]{}", rune(c))
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTchar(s[i]) {
			return false
		}
	}
	return true
}

func tokens(value string) []string {
	var out []string
	for _, t := range strings.Split(value, ",") {
		if t = strings.ToLower(strings.TrimSpace(t)); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// readLine reads one line without its CRLF (or bare LF), counting against budget.
func readLine(br *bufio.Reader, budget *int) (string, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		*budget -= len(chunk)
		if *budget < 0 {
			return "", &malformed{"the request head is too large"}
		}
		line = append(line, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && len(line) > 0 {
				return "", io.ErrUnexpectedEOF
			}
			return "", err
		}
		line = line[:len(line)-1]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		return string(line), nil
	}
}

// readHead reads a request line and headers. io.EOF: the connection ended cleanly between requests.
func readHead(br *bufio.Reader, unitHeader string) (*request, error) {
	budget := maxHeadBytes
	line, err := readLine(br, &budget)
	for err == nil && line == "" { // RFC 9112 2.2: empty lines before a request line are ignored
		line, err = readLine(br, &budget)
	}
	if err != nil {
		return nil, err
	}
	parts := strings.Split(line, " ")
	if len(parts) != 3 || !isToken(parts[0]) || parts[1] == "" {
		return nil, &malformed{"invalid request line"}
	}
	for i := 0; i < len(parts[1]); i++ {
		if c := parts[1][i]; c < 0x21 || c == 0x7f {
			return nil, &malformed{"invalid character in the request target"}
		}
	}
	req := &request{method: parts[0], target: parts[1], length: -1}
	switch parts[2] {
	case "HTTP/1.1":
		req.http11 = true
	case "HTTP/1.0":
	default:
		return nil, &malformed{"invalid HTTP version"}
	}
	req.headOnly = req.method == "HEAD"
	var connection, transferEncoding []string
	upgrade, seenLength := false, false
	dropped := map[string]bool{}
	for {
		line, err := readLine(br, &budget)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if line == "" {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return nil, &malformed{"obsolete line folding in a header"}
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || !isToken(name) {
			return nil, &malformed{"invalid header name"}
		}
		value = strings.Trim(value, " \t")
		for i := 0; i < len(value); i++ {
			if c := value[i]; (c < 0x20 && c != '\t') || c == 0x7f {
				return nil, &malformed{"invalid character in a header value"}
			}
		}
		lowered := strings.ToLower(name)
		switch {
		case lowered == "content-type":
			v := value
			req.contentType = &v
		case lowered == "content-length":
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || !isDigits(value) {
				return nil, &malformed{"invalid Content-Length"}
			}
			if seenLength && n != req.length {
				return nil, &malformed{"duplicate Content-Length"}
			}
			seenLength, req.length = true, n
		case lowered == "transfer-encoding":
			transferEncoding = append(transferEncoding, tokens(value)...)
		case lowered == unitHeader:
			v := value
			req.unit = &v
		case lowered == pinHeader:
			v := value
			req.pin = &v
		case lowered == "expect":
			req.expectContinue = strings.ToLower(value) == "100-continue"
		case lowered == "connection":
			for _, t := range tokens(value) {
				connection = append(connection, t)
				dropped[t] = true
			}
		case lowered == "upgrade":
			upgrade = true
		case !hopByHop[lowered]:
			req.passed = append(req.passed, [2]string{name, value})
		}
	}
	if len(dropped) > 0 { // headers the Connection header names are hop-by-hop too (RFC 9110, 7.6.1)
		kept := req.passed[:0]
		for _, h := range req.passed {
			if !dropped[strings.ToLower(h[0])] {
				kept = append(kept, h)
			}
		}
		req.passed = kept
	}
	closeAsked, keepAsked, upgradeAsked := false, false, false
	for _, t := range connection {
		closeAsked = closeAsked || t == "close"
		keepAsked = keepAsked || t == "keep-alive"
		upgradeAsked = upgradeAsked || t == "upgrade"
	}
	if req.http11 {
		req.keepAlive = !closeAsked
	} else {
		req.keepAlive = keepAsked && !closeAsked
	}
	if req.method == "CONNECT" || (upgrade && upgradeAsked) {
		return req, errUpgrade
	}
	if len(transferEncoding) > 0 {
		if transferEncoding[len(transferEncoding)-1] != "chunked" {
			return nil, &malformed{"invalid Transfer-Encoding"}
		}
		if seenLength {
			return nil, &malformed{"Content-Length can't be present with Transfer-Encoding"}
		}
		req.chunked = true
	}
	return req, nil
}

// errTooLarge: the body grew past the limit.
var errTooLarge = errors.New("body too large")

// readBody reads a Content-Length or chunked body of at most limit bytes.
func readBody(br *bufio.Reader, req *request, limit int64) ([]byte, error) {
	if !req.chunked {
		if req.length <= 0 {
			return nil, nil
		}
		body := make([]byte, req.length)
		if _, err := io.ReadFull(br, body); err != nil {
			return nil, err
		}
		return body, nil
	}
	var body []byte
	budget := maxHeadBytes
	for {
		line, err := readLine(br, &budget)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		sizeText, _, _ := strings.Cut(line, ";")
		sizeText = strings.TrimRight(sizeText, " \t")
		size, err := strconv.ParseUint(sizeText, 16, 63)
		if err != nil || sizeText == "" || strings.HasPrefix(sizeText, "+") {
			return nil, &malformed{"invalid character in chunk size"}
		}
		if size == 0 {
			for { // trailers, until the empty line
				line, err := readLine(br, &budget)
				if err != nil {
					if err == io.EOF {
						err = io.ErrUnexpectedEOF
					}
					return nil, err
				}
				if line == "" {
					return body, nil
				}
			}
		}
		if int64(len(body))+int64(size) > limit {
			return nil, errTooLarge
		}
		start := len(body)
		body = append(body, make([]byte, size)...)
		if _, err := io.ReadFull(br, body[start:]); err != nil {
			return nil, err
		}
		end, err := readLine(br, &budget)
		if err != nil {
			return nil, err
		}
		if end != "" {
			return nil, &malformed{"chunk data is not followed by CRLF"}
		}
	}
}

var statusPhrases = map[int]string{
	100: "Continue", 200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 206: "Partial Content",
	301: "Moved Permanently", 302: "Found", 304: "Not Modified", 400: "Bad Request", 401: "Unauthorized",
	403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout", 409: "Conflict",
	411: "Length Required", 413: "Request Entity Too Large", 414: "Request-URI Too Long",
	415: "Unsupported Media Type", 422: "Unprocessable Entity", 429: "Too Many Requests",
	431: "Request Header Fields Too Large", 499: "", 500: "Internal Server Error", 501: "Not Implemented",
	502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout", 505: "HTTP Version Not Supported",
}

func statusLine(status int) string {
	return fmt.Sprintf("HTTP/1.1 %d %s\r\n", status, statusPhrases[status])
}
