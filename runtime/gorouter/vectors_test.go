package main

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The cross-language vectors tests/data/router-vectors.json holds, written by croupier.generators.router_vectors
// (devtools/generators/router_vectors.py) from the Python router.
type vectors struct {
	UnitPoints []struct {
		Salt, Unit string
		Point      float64
	} `json:"unit_points"`
	Sequences []struct {
		Weight float64
		Labels string
	}
	Routes []struct {
		Replace *string
		Model   string
		Version *int64
		Label   *string
		Unit    *string
		Route   *struct {
			Model, Version, Label string
			Rewrite               bool
		}
	}
	Tables []struct {
		Text   string
		OK     bool
		Error  string
		Salt   string
		Models map[string]struct {
			Stable       int64
			Canary       *int64
			CanaryWeight float64 `json:"canaryWeight"`
		}
	}
	Pins []struct {
		Value   string
		OK      bool
		Version int64
		Error   string
	}
	ModelSpecs []struct {
		Name        string
		Request     string
		Malformed   bool
		Model       string
		Choice      string
		Version     *int64
		Label       *string
		WithLabel   string `json:"with_label"`
		WithVersion string `json:"with_version"`
	} `json:"model_specs"`
}

func loadVectors(t *testing.T) *vectors {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "tests", "data", "router-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.UnitPoints) == 0 || len(v.Sequences) == 0 || len(v.Routes) == 0 || len(v.Tables) == 0 ||
		len(v.Pins) == 0 || len(v.ModelSpecs) == 0 {
		t.Fatal("a section of the vectors is empty")
	}
	return &v
}

func TestUnitPointsMatchThePythonRouter(t *testing.T) {
	for _, c := range loadVectors(t).UnitPoints {
		if got := UnitPoint(c.Salt, c.Unit); got != c.Point {
			t.Errorf("UnitPoint(%q, %q) = %v, the Python router says %v", c.Salt, c.Unit, got, c.Point)
		}
	}
}

func TestSequencesMatchThePythonRouter(t *testing.T) {
	for _, c := range loadVectors(t).Sequences {
		canary := int64(2)
		router := NewRouter(&RoutingTable{Models: map[string]ModelRoute{
			"m": {Stable: 1, Canary: &canary, CanaryWeight: c.Weight}}})
		var b strings.Builder
		for range len(c.Labels) {
			if router.Route("m", nil, nil, nil).Label == labelCanary {
				b.WriteByte('c')
			} else {
				b.WriteByte('s')
			}
		}
		if b.String() != c.Labels {
			t.Errorf("weight %v: labels\n%s\nthe Python router chose\n%s", c.Weight, b.String(), c.Labels)
		}
	}
}

func TestRoutesMatchThePythonRouter(t *testing.T) {
	router := NewRouter(nil)
	for i, c := range loadVectors(t).Routes {
		if c.Replace != nil {
			table, err := ParseTable([]byte(*c.Replace), "t")
			if err != nil {
				t.Fatal(err)
			}
			router.Replace(table)
			continue
		}
		got := router.Route(c.Model, c.Version, c.Label, c.Unit)
		want := Route{c.Route.Model, c.Route.Version, c.Route.Label, c.Route.Rewrite}
		if got != want {
			t.Errorf("call %d %+v: %+v, the Python router says %+v", i, c, got, want)
		}
	}
}

func TestTablesParseAsThePythonRouterParsesThem(t *testing.T) {
	for _, c := range loadVectors(t).Tables {
		table, err := ParseTable([]byte(c.Text), "routing.yaml")
		if !c.OK {
			if err == nil {
				t.Errorf("%q: accepted, the Python router refuses it: %s", c.Text, c.Error)
				continue
			}
			// The same place is named (the wording of a YAML syntax error is the parser's own).
			where := strings.SplitN(strings.TrimPrefix(c.Error, "routing.yaml: "), ": ", 2)[0]
			if !strings.Contains(err.Error(), where) {
				t.Errorf("%q: %v does not name %q (the Python router: %s)", c.Text, err, where, c.Error)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: refused (%v), the Python router accepts it", c.Text, err)
			continue
		}
		if table.Salt != c.Salt || len(table.Models) != len(c.Models) {
			t.Errorf("%q: %+v, the Python router reads %+v", c.Text, table, c)
			continue
		}
		for name, want := range c.Models {
			got, ok := table.Models[name]
			sameCanary := (got.Canary == nil) == (want.Canary == nil) &&
				(got.Canary == nil || *got.Canary == *want.Canary)
			if !ok || got.Stable != want.Stable || !sameCanary || got.CanaryWeight != want.CanaryWeight {
				t.Errorf("%q: model %s is %+v, the Python router reads %+v", c.Text, name, got, want)
			}
		}
	}
}

func TestPinHeadersAsThePythonRouterReadsThem(t *testing.T) {
	for _, c := range loadVectors(t).Pins {
		value := c.Value
		got, err := PinnedVersion(&value)
		switch {
		case c.OK && (err != nil || *got != c.Version):
			t.Errorf("%q: %v %v, the Python router reads %d", c.Value, got, err, c.Version)
		case !c.OK && (err == nil || err.Error() != c.Error):
			t.Errorf("%q: %v, the Python router says %q", c.Value, err, c.Error)
		}
	}
}

func TestModelSpecsReadAndWrittenAsThePythonRouterDoes(t *testing.T) {
	for _, c := range loadVectors(t).ModelSpecs {
		request, _ := hex.DecodeString(c.Request)
		head, err := ParseRequestHead(request)
		if c.Malformed {
			if err == nil {
				t.Errorf("%s: read, the Python router leaves it to the model server to refuse", c.Name)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: refused (%v), the Python router reads it", c.Name, err)
			continue
		}
		choice := map[int]string{choiceNone: "", choiceVersion: "version", choiceVersionLabel: "version_label"}
		if head.Spec.Name != c.Model || choice[head.Spec.Choice] != c.Choice {
			t.Errorf("%s: %+v, the Python router reads %q %q", c.Name, head.Spec, c.Model, c.Choice)
		}
		if c.Version != nil && head.Spec.Version != *c.Version {
			t.Errorf("%s: version %d, the Python router reads %d", c.Name, head.Spec.Version, *c.Version)
		}
		if c.Label != nil && head.Spec.VersionLabel != *c.Label {
			t.Errorf("%s: label %q, the Python router reads %q", c.Name, head.Spec.VersionLabel, *c.Label)
		}
		if c.Choice != "" {
			continue
		}
		labelled, _ := ParseRequestHead(request)
		labelled.SetLabel("canary")
		if got := hex.EncodeToString(labelled.Marshal()); got != c.WithLabel {
			t.Errorf("%s: with a label\n%s\nthe Python router writes\n%s", c.Name, got, c.WithLabel)
		}
		pinned, _ := ParseRequestHead(request)
		pinned.SetVersion(7)
		if got := hex.EncodeToString(pinned.Marshal()); got != c.WithVersion {
			t.Errorf("%s: with a version\n%s\nthe Python router writes\n%s", c.Name, got, c.WithVersion)
		}
	}
}
