// Runs plain kstatus (what Flux's kustomize-controller uses for `wait: true` and healthChecks, without custom health
// expressions) over the same testdata as the Argo CD checks. kstatus_expectations.yaml says what Compute must answer
// for each object (the documented Current / InProgress / Failed); docs/gitops.md has the table.
package healthchecks

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

type kstatusCase struct {
	InputPath string `json:"inputPath"`
	Status    string `json:"status"`
	Message   string `json:"message"`
	// Flux is what kustomize-controller reports with flux-healthcheckexprs.yaml (flux_cel_test.go).
	Flux string `json:"flux"`
}

type kstatusCases struct {
	Tests []kstatusCase `json:"tests"`
}

func loadKstatusCases(t *testing.T) kstatusCases {
	t.Helper()
	raw, err := os.ReadFile("kstatus_expectations.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cases kstatusCases
	if err := yaml.UnmarshalStrict(raw, &cases); err != nil {
		t.Fatalf("kstatus_expectations.yaml: %v", err)
	}
	return cases
}

// checkStandardConditions requires what makes plain kstatus (no custom health expressions) agree with the documented
// verdicts in kstatus_expectations.yaml: an object with status carries kstatus's Reconciling and Stalled for the same
// generation as Ready, Reconciling True exactly when Progressing is True and the object is not Stalled, and Stalled
// True only while Degraded is (with its reason). expectations.py decides the verdicts from Ready, Progressing,
// Degraded and its hand-decided table of stalling reasons, so Compute agreeing with them checks both the operator's
// Stalled decisions and the recorded objects.
func checkStandardConditions(t *testing.T, obj *unstructured.Unstructured) {
	t.Helper()
	list, found, err := unstructured.NestedSlice(obj.Object, "status", "conditions")
	if err != nil {
		t.Fatal(err)
	}
	if !found {
		return // no status yet: Current by kstatus's rules, and the operator writes one within seconds
	}
	conditions := map[string]map[string]any{}
	for _, item := range list {
		condition, _ := item.(map[string]any)
		conditions[fmt.Sprint(condition["type"])] = condition
	}
	for _, kind := range []string{"Ready", "Progressing", "Degraded", "Reconciling", "Stalled"} {
		if conditions[kind] == nil {
			t.Fatalf("no %s condition: plain kstatus would not see the operator's verdict", kind)
		}
	}
	ready, progressing, degraded := conditions["Ready"], conditions["Progressing"], conditions["Degraded"]
	reconciling, stalled := conditions["Reconciling"], conditions["Stalled"]
	for _, kind := range []string{"Reconciling", "Stalled"} {
		if fmt.Sprint(conditions[kind]["observedGeneration"]) != fmt.Sprint(ready["observedGeneration"]) {
			t.Errorf("%s observedGeneration %v, Ready's %v", kind, conditions[kind]["observedGeneration"],
				ready["observedGeneration"])
		}
	}
	isStalled := stalled["status"] == "True"
	if isStalled && (degraded["status"] != "True" || stalled["reason"] != degraded["reason"]) {
		t.Errorf("Stalled True (%v) without Degraded True for the same reason (%v %v)", stalled["reason"],
			degraded["status"], degraded["reason"])
	}
	if want := progressing["status"] == "True" && !isStalled; (reconciling["status"] == "True") != want {
		t.Errorf("Reconciling %v with Progressing %v and Stalled %v", reconciling["status"], progressing["status"],
			stalled["status"])
	}
}

func TestKstatusCompute(t *testing.T) {
	cases := loadKstatusCases(t)
	listed := map[string]bool{}
	for _, tc := range cases.Tests {
		listed[filepath.Clean(tc.InputPath)] = true
		t.Run(tc.InputPath, func(t *testing.T) {
			manifest, err := os.ReadFile(filepath.Join(customizations, tc.InputPath))
			if err != nil {
				t.Fatal(err)
			}
			encoded, err := yaml.YAMLToJSON(manifest)
			if err != nil {
				t.Fatal(err)
			}
			obj := &unstructured.Unstructured{}
			if err := obj.UnmarshalJSON(encoded); err != nil {
				t.Fatal(err)
			}
			result, err := status.Compute(obj)
			if err != nil {
				t.Fatalf("Compute: %v", err)
			}
			checkStandardConditions(t, obj)
			if string(result.Status) != tc.Status || result.Message != tc.Message {
				t.Errorf("kstatus = %s %q, want %s %q", result.Status, result.Message, tc.Status, tc.Message)
			}
		})
	}
	// Every object the Argo CD checks are tested with has a kstatus expectation too.
	for _, dir := range kindDirs(t) {
		files, _ := filepath.Glob(filepath.Join(dir, "testdata", "*.yaml"))
		for _, file := range files {
			rel, _ := filepath.Rel(customizations, file)
			if !listed[rel] {
				t.Errorf("%s has no entry in kstatus_expectations.yaml", rel)
			}
		}
	}
}
