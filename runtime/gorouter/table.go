package main

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ModelRoute is one model's labels and the canary's share of the requests that name no version.
type ModelRoute struct {
	Stable       int64
	Canary       *int64
	CanaryWeight float64
}

// RoutingTable is the file the operator writes (a ConfigMap key mounted as a volume), YAML or JSON.
type RoutingTable struct {
	Salt   string
	Models map[string]ModelRoute
}

// ParseTable reads a routing table with the Python router's rules (pydantic's lax mode): unknown keys are refused,
// numbers may be written as numeric strings, stable >= 1, canary >= 1 or absent, canaryWeight finite in 0..100 and
// above 0 only with a canary. The error names the source and every problem.
func ParseTable(text []byte, source string) (*RoutingTable, error) {
	var document yaml.Node
	if err := yaml.Unmarshal(text, &document); err != nil {
		return nil, fmt.Errorf("%s: not YAML or JSON: %v", source, err)
	}
	table := &RoutingTable{Models: map[string]ModelRoute{}}
	if len(document.Content) == 0 {
		return table, nil
	}
	root := resolve(document.Content[0])
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return table, nil
	}
	var problems []string
	fail := func(at, message string) { problems = append(problems, at+": "+message) }
	if root.Kind != yaml.MappingNode {
		fail("(top)", "Input should be a valid dictionary or instance of RoutingTable")
		return nil, fmt.Errorf("%s: %s", source, strings.Join(problems, "; "))
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, value := resolve(root.Content[i]), resolve(root.Content[i+1])
		switch key.Value {
		case "salt":
			if salt, ok := stringValue(value); ok {
				table.Salt = salt
			} else {
				fail("salt", "Input should be a valid string")
			}
		case "models":
			if value.Kind != yaml.MappingNode {
				fail("models", "Input should be a valid dictionary")
				continue
			}
			for j := 0; j+1 < len(value.Content); j += 2 {
				nameNode, routeNode := resolve(value.Content[j]), resolve(value.Content[j+1])
				name, ok := stringValue(nameNode)
				if !ok {
					fail("models."+nameNode.Value+".[key]", "Input should be a valid string")
					continue
				}
				route, routeProblems := parseRoute(routeNode)
				for _, problem := range routeProblems {
					fail("models."+name+problem, "")
				}
				if len(routeProblems) == 0 {
					table.Models[name] = route
				}
			}
		default:
			fail(key.Value, "Extra inputs are not permitted")
		}
	}
	if len(problems) > 0 {
		for i, p := range problems {
			problems[i] = strings.TrimSuffix(p, ": ")
		}
		return nil, fmt.Errorf("%s: %s", source, strings.Join(problems, "; "))
	}
	return table, nil
}

// yaml11Bools are the plain scalars YAML 1.1 (PyYAML, the Python router's parser) reads as booleans where YAML 1.2
// reads strings.
var yaml11Bools = map[string]bool{
	"yes": true, "Yes": true, "YES": true, "on": true, "On": true, "ON": true,
	"no": false, "No": false, "NO": false, "off": false, "Off": false, "OFF": false,
}

func resolve(node *yaml.Node) *yaml.Node {
	for node.Kind == yaml.AliasNode && node.Alias != nil {
		node = node.Alias
	}
	if node.Kind == yaml.ScalarNode && node.Tag == "!!str" && node.Style == 0 {
		if value, ok := yaml11Bools[node.Value]; ok {
			copied := *node
			copied.Tag, copied.Value = "!!bool", map[bool]string{true: "true", false: "false"}[value]
			return &copied
		}
	}
	return node
}

// parseRoute returns the route or problems as ".field: message" strings.
func parseRoute(node *yaml.Node) (ModelRoute, []string) {
	route := ModelRoute{}
	var problems []string
	if node.Kind != yaml.MappingNode {
		return route, []string{": Input should be a valid dictionary or instance of ModelRoute"}
	}
	seenStable, seenWeight := false, false
	for i := 0; i+1 < len(node.Content); i += 2 {
		key, value := resolve(node.Content[i]), resolve(node.Content[i+1])
		switch key.Value {
		case "stable":
			seenStable = true
			if v, err := intValue(value, 1); err != nil {
				problems = append(problems, ".stable: "+err.Error())
			} else {
				route.Stable = v
			}
		case "canary":
			if value.Kind == yaml.ScalarNode && value.Tag == "!!null" {
				route.Canary = nil
			} else if v, err := intValue(value, 1); err != nil {
				problems = append(problems, ".canary: "+err.Error())
			} else {
				route.Canary = &v
			}
		case "canaryWeight", "canary_weight":
			seenWeight = true
			if v, err := floatValue(value); err != nil {
				problems = append(problems, "."+key.Value+": "+err.Error())
			} else if v < 0 {
				problems = append(problems, "."+key.Value+": Input should be greater than or equal to 0")
			} else if v > 100 {
				problems = append(problems, "."+key.Value+": Input should be less than or equal to 100")
			} else {
				route.CanaryWeight = v
			}
		default:
			problems = append(problems, "."+key.Value+": Extra inputs are not permitted")
		}
	}
	_ = seenWeight
	if !seenStable {
		problems = append(problems, ".stable: Field required")
	}
	if len(problems) == 0 && route.Canary == nil && route.CanaryWeight > 0 {
		problems = append(problems, fmt.Sprintf(": Value error, canaryWeight is %s but no canary version is set",
			pyFloat(route.CanaryWeight)))
	}
	return route, problems
}

func stringValue(node *yaml.Node) (string, bool) {
	if node.Kind != yaml.ScalarNode || node.Tag != "!!str" {
		return "", false
	}
	return node.Value, true
}

// intValue reads an integer as pydantic does in lax mode: an integer, a float without a fractional part, a bool,
// or a string holding a Python integer literal; at least minimum.
func intValue(node *yaml.Node, minimum int64) (int64, error) {
	if node.Kind != yaml.ScalarNode {
		return 0, errors.New("Input should be a valid integer")
	}
	var n *big.Int
	switch node.Tag {
	case "!!int":
		n = yamlInt(node.Value)
	case "!!bool":
		var b bool
		if node.Decode(&b) == nil {
			n = big.NewInt(0)
			if b {
				n = big.NewInt(1)
			}
		}
	case "!!float":
		var f float64
		if node.Decode(&f) != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return 0, errors.New("Input should be a finite number")
		}
		if f != math.Trunc(f) {
			return 0, errors.New("Input should be a valid integer, got a number with a fractional part")
		}
		n, _ = new(big.Float).SetFloat64(f).Int(nil)
	case "!!str":
		n = pythonInt(strings.TrimSpace(node.Value))
		if n == nil {
			return 0, errors.New("Input should be a valid integer, unable to parse string as an integer")
		}
	}
	if n == nil {
		return 0, errors.New("Input should be a valid integer")
	}
	if n.Cmp(big.NewInt(minimum)) < 0 {
		return 0, fmt.Errorf("Input should be greater than or equal to %d", minimum)
	}
	if !n.IsInt64() {
		return 0, errors.New("Input should be a version number below 2^63")
	}
	return n.Int64(), nil
}

func yamlInt(text string) *big.Int {
	var v int64
	if err := yaml.Unmarshal([]byte(text), &v); err == nil {
		return big.NewInt(v)
	}
	n, ok := new(big.Int).SetString(strings.ReplaceAll(text, "_", ""), 0)
	if !ok {
		return nil
	}
	return n
}

// pythonInt parses Python's int() literal: optional sign, decimal digits with single underscores between them.
func pythonInt(text string) *big.Int {
	digits := strings.TrimPrefix(strings.TrimPrefix(text, "+"), "-")
	if digits == "" || digits[0] == '_' || digits[len(digits)-1] == '_' || strings.Contains(digits, "__") {
		return nil
	}
	plain := strings.ReplaceAll(digits, "_", "")
	if !isDigits(plain) {
		return nil
	}
	n, _ := new(big.Int).SetString(plain, 10)
	if strings.HasPrefix(text, "-") {
		n.Neg(n)
	}
	return n
}

// floatValue reads a finite number as pydantic does in lax mode (numbers, bools, numeric strings).
func floatValue(node *yaml.Node) (float64, error) {
	if node.Kind != yaml.ScalarNode {
		return 0, errors.New("Input should be a valid number")
	}
	var f float64
	switch node.Tag {
	case "!!int", "!!float":
		if node.Decode(&f) != nil {
			n := yamlInt(node.Value)
			if n == nil {
				return 0, errors.New("Input should be a valid number")
			}
			f, _ = new(big.Float).SetInt(n).Float64()
		}
	case "!!bool":
		var b bool
		if node.Decode(&b) != nil {
			return 0, errors.New("Input should be a valid number")
		}
		if b {
			f = 1
		}
	case "!!str":
		text := strings.TrimSpace(node.Value)
		parsed, err := strconv.ParseFloat(strings.ReplaceAll(text, "_", ""), 64)
		if err != nil || strings.HasPrefix(strings.ToLower(strings.TrimLeft(text, "+-")), "0x") {
			return 0, errors.New("Input should be a valid number, unable to parse string as a number")
		}
		f = parsed
	default:
		return 0, errors.New("Input should be a valid number")
	}
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, errors.New("Input should be a finite number")
	}
	return f, nil
}

// pyFloat formats a float as Python's str() does for the values a weight takes.
func pyFloat(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e16 {
		return strconv.FormatFloat(f, 'f', 1, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// TableFile reads Path when its bytes change and hands the new table to apply; a bad or missing file keeps the table
// in force (and is logged once per distinct content).
type TableFile struct {
	Path     string
	apply    func(*RoutingTable)
	onReload func(outcome string)
	seen     []byte
	seenSet  bool
}

func NewTableFile(path string, apply func(*RoutingTable), onReload func(string)) *TableFile {
	return &TableFile{Path: path, apply: apply, onReload: onReload}
}

// Check reads the file once; true when a new table was applied.
func (t *TableFile) Check() bool {
	content, err := os.ReadFile(t.Path)
	if err != nil {
		if !t.seenSet || len(t.seen) != 0 {
			logger.Warning("routing file unreadable, the table in force stays", "path", t.Path, "error", err.Error())
			t.onReload("unreadable")
		}
		t.seen, t.seenSet = []byte{}, true
		return false
	}
	if t.seenSet && bytes.Equal(content, t.seen) {
		return false
	}
	t.seen, t.seenSet = content, true
	table, err := ParseTable(content, t.Path)
	if err != nil {
		logger.Error("routing file rejected, the table in force stays", "error", err.Error())
		t.onReload("invalid")
		return false
	}
	t.apply(table)
	t.onReload("applied")
	weights := map[string]any{}
	names := make([]string, 0, len(table.Models))
	for name := range table.Models {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		weights[name] = table.Models[name].CanaryWeight
	}
	logger.Info("routing table applied", "path", t.Path, "weights", weights)
	return true
}

func bigInt(n int64) *big.Int { return big.NewInt(n) }
