package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/blake2b"
)

// Labels a routed request is counted under, as the Python router's routing module names them.
const (
	labelStable = "stable"
	labelCanary = "canary"
	labelOther  = "other" // a model, version or label the table does not know (keeps metric labels bounded)
	labelNone   = "none"  // no label (a request that named its version)
	// pinHeader pins a request naming no version or label to one version; the router answers with the same name.
	pinHeader = "x-croupier-model-version"
	golden    = 0.6180339887498949
	maxPin    = math.MaxInt64
)

// Route says where a request goes and how it is counted; Label is set on the forwarded request when Rewrite.
type Route struct {
	Model   string
	Version string
	Label   string
	Rewrite bool
}

// Router chooses routes from the current table; Replace swaps the table and starts the sequences again.
type Router struct {
	mu       sync.Mutex
	table    *RoutingTable
	sequence map[string]uint64
}

func NewRouter(table *RoutingTable) *Router {
	if table == nil {
		table = &RoutingTable{Models: map[string]ModelRoute{}}
	}
	return &Router{table: table, sequence: map[string]uint64{}}
}

func (r *Router) Replace(table *RoutingTable) {
	r.mu.Lock()
	r.table = table
	r.sequence = map[string]uint64{}
	r.mu.Unlock()
}

func (r *Router) Table() *RoutingTable {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.table
}

// Route picks the route of a request for model; version and label are nil when the request names none.
func (r *Router) Route(model string, version *int64, label *string, unit *string) Route {
	r.mu.Lock()
	defer r.mu.Unlock()
	entry, known := r.table.Models[model]
	if !known {
		return Route{labelOther, labelOther, metricLabel(label), false}
	}
	if version != nil {
		served := labelOther
		if *version == entry.Stable || (entry.Canary != nil && *version == *entry.Canary) {
			served = strconv.FormatInt(*version, 10)
		}
		return Route{model, served, labelNone, false}
	}
	if label != nil {
		served := labelOther
		switch *label {
		case labelStable:
			served = strconv.FormatInt(entry.Stable, 10)
		case labelCanary:
			if entry.Canary != nil {
				served = strconv.FormatInt(*entry.Canary, 10)
			}
		}
		return Route{model, served, metricLabel(label), false}
	}
	if r.canary(model, entry, unit) {
		return Route{model, strconv.FormatInt(*entry.Canary, 10), labelCanary, true}
	}
	return Route{model, strconv.FormatInt(entry.Stable, 10), labelStable, true}
}

func (r *Router) canary(model string, entry ModelRoute, unit *string) bool {
	share := entry.CanaryWeight / 100.0
	if entry.Canary == nil || share <= 0.0 {
		return false
	}
	if share >= 1.0 {
		return true
	}
	if unit != nil && *unit != "" {
		return UnitPoint(r.table.Salt, *unit) < share
	}
	n := r.sequence[model] + 1
	r.sequence[model] = n
	return math.Mod(float64(n)*golden, 1.0) < share
}

func metricLabel(label *string) string {
	if label == nil {
		return labelNone
	}
	if *label == labelStable || *label == labelCanary {
		return *label
	}
	return labelOther
}

// UnitPoint is a unit's fixed point in [0, 1): blake2b (8-byte digest) of salt, NUL, unit, big-endian over 2^64.
// The same for REST and gRPC, across router replicas and across the Python and Go routers.
func UnitPoint(salt, unit string) float64 {
	h, err := blake2b.New(8, nil)
	if err != nil {
		panic(err) // 8 is a valid digest size
	}
	h.Write([]byte(salt))
	h.Write([]byte{0})
	h.Write([]byte(unit))
	return math.Ldexp(float64(binary.BigEndian.Uint64(h.Sum(nil))), -64)
}

// PinnedVersion is the version the pin header pins (nil: no header). The error names the header.
func PinnedVersion(value *string) (*int64, error) {
	if value == nil {
		return nil, nil
	}
	text := strings.TrimSpace(*value)
	if isDigits(text) {
		if v, err := strconv.ParseInt(text, 10, 64); err == nil && v >= 1 {
			return &v, nil
		}
	}
	return nil, fmt.Errorf("%s must be a version number (1 to 2^63-1), got %s", pinHeader, pyRepr(truncateRunes(*value, 64)))
}

func isDigits(text string) bool {
	if text == "" {
		return false
	}
	for _, c := range text {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func truncateRunes(s string, n int) string {
	runes := []rune(s)
	if len(runes) > n {
		return string(runes[:n])
	}
	return s
}

// pyRepr quotes a string as Python's repr does for the printable ASCII text headers carry.
func pyRepr(s string) string {
	quote := "'"
	if strings.Contains(s, "'") && !strings.Contains(s, "\"") {
		quote = "\""
	}
	var b strings.Builder
	b.WriteString(quote)
	for _, c := range s {
		switch {
		case c == '\\':
			b.WriteString(`\\`)
		case string(c) == quote:
			b.WriteString(`\` + quote)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		case c >= 0x80 && c < 0xa0:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteRune(c)
		}
	}
	b.WriteString(quote)
	return b.String()
}
