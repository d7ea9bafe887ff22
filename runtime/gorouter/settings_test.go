package main

import (
	"errors"
	"strings"
	"testing"
)

func TestFlagsTakeBothFormsAndOverrideTheEnvironment(t *testing.T) {
	s, err := LoadSettings(
		[]string{"--rest-port=0", "--grpc-port", "9", "--poll-seconds", "0.25", "--unit-header=x-player",
			"--upstream-rest", "https://model:8511/prefix/", "--max-body-bytes=2048", "--log-format", "json"},
		[]string{"CROUPIER_ROUTER_REST_PORT=7", "croupier_router_upstream_grpc=model:8510",
			"CROUPIER_ROUTER_UPSTREAM_TIMEOUT_SECONDS=2.5", "CROUPIER_RUNTIME_PORT=1"},
	)
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultSettings()
	want.RestPort, want.GrpcPort, want.PollSeconds, want.UnitHeader = 0, 9, 0.25, "x-player"
	want.UpstreamRest, want.MaxBodyBytes, want.LogFormat = "https://model:8511/prefix/", 2048, "json"
	want.UpstreamGrpc, want.UpstreamTimeoutSeconds = "model:8510", 2.5
	if s != want {
		t.Errorf("settings %+v, want %+v", s, want)
	}
	upstream, _ := ParseUpstream(s.UpstreamRest)
	if upstream.Host != "model:8511" || upstream.Prefix != "/prefix" || upstream.URL != "https://model:8511/prefix" {
		t.Errorf("upstream %+v", upstream)
	}
}

func TestDefaultsAreThePythonRoutersDefaults(t *testing.T) {
	s, err := LoadSettings(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.RestPort != 8501 || s.GrpcPort != 8500 || s.UpstreamRest != "http://127.0.0.1:8511" ||
		s.UpstreamGrpc != "127.0.0.1:8510" || s.RoutingFile != "/etc/croupier/routing/routing.yaml" ||
		s.PollSeconds != 1 || s.UnitHeader != "x-croupier-unit" || s.UpstreamTimeoutSeconds != 30 ||
		s.MaxBodyBytes != 64<<20 || s.LogLevel != "info" || s.LogFormat != "auto" {
		t.Errorf("defaults %+v", s)
	}
}

func TestBadSettingsNameTheFlag(t *testing.T) {
	cases := []struct {
		args  []string
		env   []string
		named string
	}{
		{[]string{"--poll-seconds", "0"}, nil, "poll_seconds"},
		{[]string{"--poll-seconds=6"}, nil, "--poll-seconds"},
		{[]string{"--rest-port", "70000"}, nil, "rest_port"},
		{[]string{"--grpc-port=-1"}, nil, "--grpc-port"},
		{[]string{"--rest-port=x"}, nil, "--rest-port"},
		{[]string{"--upstream-rest", "ftp://model:8511"}, nil, "upstream_rest"},
		{[]string{"--upstream-rest", "http://model:8511/v1?x=1"}, nil, "upstream_rest"},
		{[]string{"--upstream-rest=http://"}, nil, "upstream_rest"},
		{[]string{"--upstream-timeout-seconds=601"}, nil, "upstream_timeout_seconds"},
		{[]string{"--max-body-bytes=1023"}, nil, "max_body_bytes"},
		{[]string{"--unit-header="}, nil, "unit_header"},
		{[]string{"--rest-port"}, nil, "--rest-port"},
		{[]string{"--no-such-flag=1"}, nil, "--no-such-flag"},
		{nil, []string{"CROUPIER_ROUTER_POLL_SECONDS=nan"}, "CROUPIER_ROUTER_POLL_SECONDS"},
	}
	for _, c := range cases {
		_, err := LoadSettings(c.args, c.env)
		if err == nil || !strings.Contains(err.Error(), c.named) {
			t.Errorf("%v %v: %v does not name %s", c.args, c.env, err, c.named)
		}
	}
	if _, err := LoadSettings([]string{"--help"}, nil); !errors.Is(err, errHelp) {
		t.Errorf("--help: %v", err)
	}
}
