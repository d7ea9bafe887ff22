package main

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// Settings are the Python router's RouterSettings: CROUPIER_ROUTER_* environment variables (names in any case),
// overridden by flags of the same name (--rest-port=8501 or --rest-port 8501), with the same defaults and bounds.
type Settings struct {
	Host                   string
	RestPort               int
	GrpcPort               int
	UpstreamRest           string
	UpstreamGrpc           string
	RoutingFile            string
	PollSeconds            float64
	UnitHeader             string
	UpstreamTimeoutSeconds float64
	MaxBodyBytes           int64
	LogLevel               string
	LogFormat              string
}

// errHelp asks for the usage text (exit 0).
var errHelp = errors.New("help requested")

type setting struct {
	name  string // the field's name, as pydantic names it in errors and the environment
	help  string
	apply func(s *Settings, value string) error
}

func intSetting(target func(*Settings) *int, lo, hi int64) func(*Settings, string) error {
	return func(s *Settings, value string) error {
		n := pythonInt(strings.TrimSpace(value))
		if n == nil {
			return fmt.Errorf("Input should be a valid integer, unable to parse string as an integer, got %q", value)
		}
		if n.Cmp(bigInt(lo)) < 0 {
			return fmt.Errorf("Input should be greater than or equal to %d, got %s", lo, value)
		}
		if n.Cmp(bigInt(hi)) > 0 {
			return fmt.Errorf("Input should be less than or equal to %d, got %s", hi, value)
		}
		*target(s) = int(n.Int64())
		return nil
	}
}

func floatSetting(target func(*Settings) *float64, hi float64) func(*Settings, string) error {
	return func(s *Settings, value string) error {
		f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil || math.IsNaN(f) {
			return fmt.Errorf("Input should be a valid number, got %q", value)
		}
		if f <= 0 {
			return fmt.Errorf("Input should be greater than 0, got %s", value)
		}
		if f > hi {
			return fmt.Errorf("Input should be less than or equal to %g, got %s", hi, value)
		}
		*target(s) = f
		return nil
	}
}

var settingsTable = []setting{
	{"host", "Listen address (default: 127.0.0.1, or 0.0.0.0 inside a pod).",
		func(s *Settings, v string) error { s.Host = v; return nil }},
	{"rest_port", "REST port (default 8501; 0 picks a free port).",
		intSetting(func(s *Settings) *int { return &s.RestPort }, 0, 65535)},
	{"grpc_port", "gRPC port (default 8500; 0 picks a free port).",
		intSetting(func(s *Settings) *int { return &s.GrpcPort }, 0, 65535)},
	{"upstream_rest", "The model server's REST base URL, e.g. http://127.0.0.1:8511.",
		func(s *Settings, v string) error {
			if _, err := ParseUpstream(v); err != nil {
				return err
			}
			s.UpstreamRest = v
			return nil
		}},
	{"upstream_grpc", "The model server's gRPC address, e.g. 127.0.0.1:8510.",
		func(s *Settings, v string) error { s.UpstreamGrpc = v; return nil }},
	{"routing_file", "The routing table (YAML or JSON), read every poll.",
		func(s *Settings, v string) error { s.RoutingFile = v; return nil }},
	{"poll_seconds", "How often the routing file is read (default 1, at most 5).",
		floatSetting(func(s *Settings) *float64 { return &s.PollSeconds }, 5)},
	{"unit_header", "Header (gRPC metadata key) whose value makes routing sticky (default x-croupier-unit).",
		func(s *Settings, v string) error {
			if v == "" {
				return errors.New("String should have at least 1 character")
			}
			s.UnitHeader = v
			return nil
		}},
	{"upstream_timeout_seconds", "Longest wait for the model server (default 30; a gRPC caller's shorter deadline wins).",
		floatSetting(func(s *Settings) *float64 { return &s.UpstreamTimeoutSeconds }, 600)},
	{"max_body_bytes", "REST bodies beyond this are refused (default 64 MiB, at least 1024).",
		func(s *Settings, v string) error {
			var n int
			if err := intSetting(func(*Settings) *int { return &n }, 1024, math.MaxInt64)(s, v); err != nil {
				return err
			}
			s.MaxBodyBytes = int64(n)
			return nil
		}},
	{"log_level", "debug, info, warning, error.", func(s *Settings, v string) error { s.LogLevel = v; return nil }},
	{"log_format", "json, console, or auto (console on a terminal).",
		func(s *Settings, v string) error { s.LogFormat = v; return nil }},
}

func flagName(name string) string { return "--" + strings.ReplaceAll(name, "_", "-") }

// DefaultSettings are RouterSettings' defaults.
func DefaultSettings() Settings {
	host := "127.0.0.1"
	if os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		host = "0.0.0.0" // in a pod the Service must reach the port
	}
	return Settings{
		Host: host, RestPort: 8501, GrpcPort: 8500,
		UpstreamRest: "http://127.0.0.1:8511", UpstreamGrpc: "127.0.0.1:8510",
		RoutingFile: "/etc/croupier/routing/routing.yaml", PollSeconds: 1.0, UnitHeader: "x-croupier-unit",
		UpstreamTimeoutSeconds: 30.0, MaxBodyBytes: 64 << 20, LogLevel: "info", LogFormat: "auto",
	}
}

// LoadSettings reads environ (KEY=VALUE) and then args; the error names the flag and the setting.
func LoadSettings(args []string, environ []string) (Settings, error) {
	s := DefaultSettings()
	byFlag := map[string]setting{}
	env := map[string]string{}
	for _, kv := range environ {
		key, value, _ := strings.Cut(kv, "=")
		env[strings.ToUpper(key)] = value
	}
	for _, item := range settingsTable {
		byFlag[flagName(item.name)] = item
		key := "CROUPIER_ROUTER_" + strings.ToUpper(item.name)
		if value, ok := env[key]; ok {
			if err := item.apply(&s, value); err != nil {
				return s, fmt.Errorf("%s (%s): %v", key, item.name, err)
			}
		}
	}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "-h" || arg == "--help" {
			return s, errHelp
		}
		name, value, inline := strings.Cut(arg, "=")
		item, ok := byFlag[name]
		if !ok {
			return s, fmt.Errorf("unrecognized argument: %s", arg)
		}
		if !inline {
			if i+1 >= len(args) || (strings.HasPrefix(args[i+1], "--") && len(args[i+1]) > 2) {
				return s, fmt.Errorf("argument %s: expected one argument", name)
			}
			i++
			value = args[i]
		}
		if err := item.apply(&s, value); err != nil {
			return s, fmt.Errorf("argument %s (%s): %v", name, item.name, err)
		}
	}
	return s, nil
}

func usage() string {
	var b strings.Builder
	b.WriteString("usage: croupier-modelrouter [flags]\n\nServe TF Serving's REST and gRPC API in front of TF Serving, " +
		"splitting stable/canary by weight.\nEvery flag may also be set as CROUPIER_ROUTER_<NAME> (e.g. " +
		"CROUPIER_ROUTER_REST_PORT).\n\n")
	for _, item := range settingsTable {
		fmt.Fprintf(&b, "  %s VALUE\n        %s\n", flagName(item.name), item.help)
	}
	return b.String()
}

// Upstream is where the model server's REST API is: scheme, host, port and an optional path prefix.
type Upstream struct {
	URL      string
	Scheme   string
	Host     string // host[:port] as written, for the Host header
	Hostname string
	Port     string
	Prefix   string
}

// ParseUpstream refuses a URL the REST adapter cannot use, naming the problem.
func ParseUpstream(raw string) (*Upstream, error) {
	trimmed := strings.TrimRight(raw, "/")
	u, err := url.Parse(trimmed)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return nil, fmt.Errorf("upstream REST URL must be http(s)://host[:port][/prefix], got %s", pyRepr(raw))
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(trimmed, "#") {
		return nil, fmt.Errorf("upstream REST URL may not carry a query or fragment, got %s", pyRepr(raw))
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return &Upstream{URL: trimmed, Scheme: u.Scheme, Host: u.Host, Hostname: u.Hostname(), Port: port,
		Prefix: u.EscapedPath()}, nil
}
