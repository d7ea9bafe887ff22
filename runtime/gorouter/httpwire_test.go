package main

import (
	"bufio"
	"errors"
	"strings"
	"testing"
)

func TestRequestHeadsAreReadAsThePythonRouterReadsThem(t *testing.T) {
	raw := "POST /v1/models/m:predict?x=1 HTTP/1.1\r\nHost: r\r\nContent-Type: application/json\r\n" +
		"Authorization: Bearer t\r\nX-Hop: 1\r\nConnection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\n" +
		"X-Croupier-Unit: u1\r\nx-croupier-model-version: 2\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\nGET / HTTP/1.0\r\n\r\n"
	br := bufio.NewReader(strings.NewReader(raw))
	req, err := readHead(br, "x-croupier-unit")
	if err != nil {
		t.Fatal(err)
	}
	if req.method != "POST" || req.target != "/v1/models/m:predict?x=1" || !req.http11 || !req.keepAlive ||
		!req.chunked || !req.expectContinue || *req.unit != "u1" || *req.pin != "2" ||
		*req.contentType != "application/json" {
		t.Errorf("head %+v", req)
	}
	if len(req.passed) != 1 || req.passed[0] != [2]string{"Authorization", "Bearer t"} {
		t.Errorf("passed on %v, want only Authorization", req.passed)
	}
	body, err := readBody(br, req, 1024)
	if err != nil || string(body) != "hello world" {
		t.Errorf("body %q %v", body, err)
	}
	next, err := readHead(br, "x-croupier-unit")
	if err != nil || next.http11 || next.keepAlive || next.method != "GET" {
		t.Errorf("the pipelined HTTP/1.0 request: %+v %v", next, err)
	}
}

func TestMalformedRequestsAreRefused(t *testing.T) {
	for _, raw := range []string{
		"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\nzz",
		"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
		"NOT HTTP AT ALL\r\n\r\n",
		"GET / HTTP/2.0\r\n\r\n",
		"POST / HTTP/1.1\r\nBad Header Name: x\r\n\r\n",
		"POST / HTTP/1.1\r\nX: 1\r\n folded\r\n\r\n",
	} {
		if _, err := readHead(bufio.NewReader(strings.NewReader(raw)), "x-croupier-unit"); !errors.As(err, new(*malformed)) {
			t.Errorf("%q: %v, want a malformed request", raw, err)
		}
	}
	chunked := "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nnothex\r\n"
	br := bufio.NewReader(strings.NewReader(chunked))
	req, _ := readHead(br, "x-croupier-unit")
	if _, err := readBody(br, req, 1024); !errors.As(err, new(*malformed)) {
		t.Errorf("a bad chunk size: %v", err)
	}
	big := "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" + strings.Repeat("x", 2048) + "\r\n0\r\n\r\n"
	br = bufio.NewReader(strings.NewReader(big))
	req, _ = readHead(br, "x-croupier-unit")
	if _, err := readBody(br, req, 1024); !errors.Is(err, errTooLarge) {
		t.Errorf("a chunked body over the limit: %v", err)
	}
	upgrade := "GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
	if _, err := readHead(bufio.NewReader(strings.NewReader(upgrade)), "x"); !errors.Is(err, errUpgrade) {
		t.Errorf("an upgrade: %v", err)
	}
}

func TestPathsAndHeadersAreDecodedAsPythonDoes(t *testing.T) {
	cases := map[string]string{"a%20b": "a b", "%zz": "%zz", "%e2%82%ac": "€", "%ff": "\ufffd", "50%": "50%"}
	for in, want := range cases {
		if got := pyUnquote(in); got != want {
			t.Errorf("pyUnquote(%q) = %q, want %q", in, got, want)
		}
	}
	if got := originForm("http://host:1/v1/models/m?x=1#f"); got != "/v1/models/m?x=1" {
		t.Errorf("originForm: %q", got)
	}
	if got := string(errorBody("a \"b\" é <c>")); got != `{"error": "a \"b\" \u00e9 <c>"}` {
		t.Errorf("errorBody: %s", got)
	}
}
