package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestTableFileAppliesChangesAndKeepsTheTableOnBadOrMissingFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "routing.yaml")
	var applied []*RoutingTable
	var outcomes []string
	file := NewTableFile(path, func(table *RoutingTable) { applied = append(applied, table) },
		func(outcome string) { outcomes = append(outcomes, outcome) })
	write := func(text string) {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	logger = NewLogger(os.Stderr, "error", "json")
	steps := []struct {
		do      func()
		applied bool
	}{
		{func() {}, false}, // missing
		{func() {}, false}, // still missing: not counted again
		{func() { write("models: {m: {stable: 1, canary: 2, canaryWeight: 10}}") }, true},
		{func() {}, false}, // unchanged
		{func() { write("models: {m: {stable: 0}}") }, false},
		{func() { write(`{"models": {"m": {"stable": 1, "canary": 2, "canaryWeight": 20}}}`) }, true},
		{func() { os.Remove(path) }, false},
	}
	for i, step := range steps {
		step.do()
		if got := file.Check(); got != step.applied {
			t.Errorf("step %d: applied %v, want %v", i, got, step.applied)
		}
	}
	want := []string{"unreadable", "applied", "invalid", "applied", "unreadable"}
	if len(outcomes) != len(want) {
		t.Fatalf("outcomes %v, want %v", outcomes, want)
	}
	for i := range want {
		if outcomes[i] != want[i] {
			t.Errorf("outcomes %v, want %v", outcomes, want)
		}
	}
	if len(applied) != 2 || applied[1].Models["m"].CanaryWeight != 20 {
		t.Errorf("applied %+v", applied)
	}
}

func TestAReplacedTableMovesTheWeightGauge(t *testing.T) {
	metrics := NewMetrics()
	canary := int64(2)
	service := NewService(metrics, &RoutingTable{Models: map[string]ModelRoute{
		"a": {Stable: 1, Canary: &canary, CanaryWeight: 30}, "b": {Stable: 1}}})
	service.Replace(&RoutingTable{Models: map[string]ModelRoute{"a": {Stable: 1, Canary: &canary, CanaryWeight: 40}}})
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]float64{}
	for _, family := range families {
		if family.GetName() != "croupier_router_canary_weight" {
			continue
		}
		for _, m := range family.GetMetric() {
			found[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
		}
	}
	if len(found) != 1 || found["a"] != 40 {
		t.Errorf("canary weight gauge %v, want only a=40", found)
	}
}
